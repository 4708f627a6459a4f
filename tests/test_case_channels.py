"""Every channel's case reads well: an email thread's subject once, long messages folded, attachments and MMS
media downloaded safely through the console, calls with their outcome, length and voicemail (played through the
console's proxy of Twilio's API: its sandbox fake here), the transcript once."""

import html
import re
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from alembic import command
from conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    IN_HOURS,
    PASSWORD,
    TEAM_NUMBER,
    business_time,
    configure,
    csrf_token,
    runtime_of,
)
from sqlalchemy import select

from assist import background, db, mail, sandbox
from assist.models import Call, Case, Direction, Message, UserRole
from assist.phone_network import Network, tone
from assist.simulate import free_port, sms_params
from assist.web.files import disposition, served_type
from assist.web.timeline import fold, thread_subject

TEAM = "incidents@incident-team.test"
ANN = "ann@example.com"
CALLER = "+15035550800"
HTML_PAGE = b"<html><body><script>alert(document.cookie)</script>Ann's notes</body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><circle r="4"/></svg>'
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
VOICEMAIL_WORDS = "the sitter left the gate open and Bella is gone please call me"


# -- the pieces --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("declared, served", [
    ("text/html", "application/octet-stream"),
    ("image/svg+xml", "application/octet-stream"),
    ("application/xhtml+xml", "application/octet-stream"),
    ("text/xml", "application/octet-stream"),
    ("application/javascript", "application/octet-stream"),
    ("text/plain", "application/octet-stream"),
    ("image/PNG", "image/png"),
    ("image/jpeg; name=x.jpg", "image/jpeg"),
    ("application/pdf", "application/pdf"),
    ("audio/x-wav", "audio/x-wav"),
    ("audio/<script>", "application/octet-stream"),
], ids=["html", "svg", "xhtml", "xml", "javascript", "text", "png", "jpeg-with-name", "pdf", "wav", "audio-garbage"])
def test_only_types_no_browser_runs_are_served_as_themselves(declared, served):
    assert served_type(declared) == served


@pytest.mark.parametrize("name, header", [
    ("invoice.pdf", "attachment; filename=\"invoice.pdf\"; filename*=UTF-8''invoice.pdf"),
    ('a"b\\c/d.pdf', "attachment; filename=\"abcd.pdf\"; filename*=UTF-8''abcd.pdf"),
    ("bill\r\nSet-Cookie: x=1.pdf", "attachment; filename=\"billSet-Cookie: x=1.pdf\"; "
                                    "filename*=UTF-8''billSet-Cookie%3A%20x%3D1.pdf"),
    ("Récépissé 100%.pdf", "attachment; filename=\"R_c_piss_ 100_.pdf\"; "
                           "filename*=UTF-8''R%C3%A9c%C3%A9piss%C3%A9%20100%25.pdf"),
    ("../../.bashrc", "attachment; filename=\"bashrc\"; filename*=UTF-8''bashrc"),
    ("", "attachment; filename=\"attachment\"; filename*=UTF-8''attachment"),
], ids=["plain", "quotes-and-slashes", "header-injection", "non-ascii", "path", "empty"])
def test_a_files_name_cannot_break_out_of_its_header(name, header):
    assert disposition("attachment", name) == header


@pytest.mark.parametrize("subject, thread", [
    ("Dog bitten at the park", "dog bitten at the park"),
    ("Re: Dog bitten at the park [Case #12]", "dog bitten at the park"),
    ("RE: Fwd: re:  Dog bitten   at the park", "dog bitten at the park"),
    ("AW: Dog bitten at the park", "dog bitten at the park"),
    ("Refund for the vet bill", "refund for the vet bill"),
], ids=["first", "reply-with-token", "prefixes", "german-reply", "another"])
def test_a_thread_knows_its_subject_without_reply_prefixes(subject, thread):
    assert thread_subject(subject) == thread


def test_a_long_message_folds_after_its_first_lines_and_a_short_one_does_not():
    long = "\n".join(f"line {i} of what happened at the park" for i in range(1, 21))
    folded = fold(long)
    assert long[:folded.cut].endswith("line 8 of what happened at the park")
    assert long[folded.rest:].startswith("line 9 ")
    assert fold("\n".join(long.split("\n")[:9])) is None  # one line more is shown, not folded
    one_line = "word " * 400
    cut = fold(one_line).cut
    assert cut <= 700 and one_line[cut] == " "  # a long line is cut at a space


# -- email ---------------------------------------------------------------------------------------------------

@pytest.fixture
def smtp_server(app, drain):
    configure(app, smtp_listen=f"127.0.0.1:{free_port()}", inbound_email=(TEAM,), team_email=TEAM)
    controller = mail.start_server(runtime_of(app))
    yield controller
    controller.stop()


def send_mail(server, drain, message: EmailMessage) -> None:
    """One SMTP session with the service, then the worker ingests the stored mail."""
    with smtplib.SMTP(server.hostname, server.port, timeout=10) as smtp:
        smtp.sendmail(ANN, [TEAM], bytes(message))
    drain()


def mail_from_ann(subject: str, body: str, **headers) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = f"Ann Peters <{ANN}>", TEAM, subject
    message["Message-ID"] = make_msgid(domain="example.com")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def with_attachments() -> EmailMessage:
    message = mail_from_ann("Sitter's notes and the vet bill", "Attached: the sitter's notes, her drawing and the "
                                                                "vet's invoice for Bella's stitches.")
    message.add_attachment(HTML_PAGE, maintype="text", subtype="html", filename="notes.html")
    message.add_attachment(SVG, maintype="image", subtype="svg+xml", filename="drawing.svg")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="facture «été».pdf")
    return message


class Browser:
    """A test client whose every request has an app context of its own: a test's requests otherwise share the
    session fixture's, and with it flask-wtf's CSRF token cached in g (tests/test_console.py has the same)."""

    def __init__(self, app):
        self.app, self.client = app, app.test_client()

    def get(self, *args, **kwargs):
        with self.app.app_context():
            return self.client.get(*args, **kwargs)

    def post(self, *args, **kwargs):
        with self.app.app_context():
            return self.client.post(*args, **kwargs)


def signed_in(app, user) -> Browser:
    """A browser of its own logged in as user."""
    browser = Browser(app)
    token = csrf_token(browser.get("/login").get_data(as_text=True))
    response = browser.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser


def the_case(session) -> Case:
    session.expire_all()
    return session.scalars(select(Case)).one()


def timeline_of(page: str) -> str:
    return re.search(r'<ol class="timeline".*?</ol>', page, re.DOTALL).group(0)


def words(markup: str) -> str:
    """What a page fragment reads, without its tags (evidence marks split the words)."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_email_attachments_download_as_files_with_safe_types_and_their_bytes(app, smtp_server, drain, session,
                                                                            make_user):
    send_mail(smtp_server, drain, with_attachments())
    case = the_case(session)
    agent = signed_in(app, make_user(UserRole.AGENT, queues=[case.queue]))
    page = agent.get(f"/cases/{case.id}").get_data(as_text=True)
    links = re.findall(r'<a href="(/cases/\d+/messages/\d+/attachments/\d+)" download>([^<]+)</a>', page)
    assert [name for _, name in links] == ["notes.html", "drawing.svg", "facture «été».pdf"]
    expected = [(HTML_PAGE, "application/octet-stream"), (SVG, "application/octet-stream"), (PDF, "application/pdf")]
    for (url, name), (content, served) in zip(links, expected, strict=True):
        response = agent.get(url)
        assert response.status_code == 200
        assert response.data == content  # the bytes as sent, from the mail as stored
        assert response.mimetype == served
        assert response.headers["Content-Disposition"].startswith("attachment; ")
        assert response.headers["Content-Disposition"].endswith("filename*=UTF-8''" + quote(name, safe=""))
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"].startswith("sandbox")
        assert "private" in response.headers["Cache-Control"]


def test_an_attachment_is_only_for_those_who_may_see_its_case(app, client, smtp_server, drain, session, make_user):
    send_mail(smtp_server, drain, with_attachments())
    case = the_case(session)
    message = session.scalars(select(Message).where(Message.direction == Direction.INBOUND)).one()
    url = f"/cases/{case.id}/messages/{message.id}/attachments/0"
    assert client.get(url).status_code == 302 and "/login" in client.get(url).location  # logged out
    other_queue = "support" if case.queue != "support" else "emergency"
    stranger = signed_in(app, make_user(UserRole.AGENT, email="stranger@team.test", queues=[other_queue]))
    assert stranger.get(url).status_code == 404  # another queue's case: as if there were none
    agent = signed_in(app, make_user(UserRole.AGENT, queues=[case.queue]))
    assert agent.get(url).status_code == 200
    assert agent.get(f"/cases/{case.id}/messages/{message.id}/attachments/3").status_code == 404
    assert agent.get(f"/cases/{case.id + 1}/messages/{message.id}/attachments/0").status_code == 404


def test_an_email_thread_shows_its_subject_once_and_folds_long_messages(app, smtp_server, drain, session,
                                                                       make_user):
    story = ("Our dog Bella was bitten by another dog at the park this morning and she is bleeding from her ear.\n"
             + "\n".join(f"Detail {i}: what the other owner said and did afterwards." for i in range(1, 15))
             + "\nThe last line of the story.")
    first = mail_from_ann("Bella bitten at the park", story)
    send_mail(smtp_server, drain, first)
    case = the_case(session)
    send_mail(smtp_server, drain, mail_from_ann(f"Re: Bella bitten at the park [Case #{case.id}]",
                                                "Thanks, she is calmer now.", In_Reply_To=first["Message-ID"]))
    send_mail(smtp_server, drain, mail_from_ann("Vet bill for Bella", "Where do I send the vet's bill?"))
    lead = signed_in(app, make_user(UserRole.LEAD))
    timeline = timeline_of(lead.get(f"/cases/{the_case(session).id}").get_data(as_text=True))
    assert words(timeline).count("Bella bitten at the park") == 1  # once for the thread, not again in the body
    assert words(timeline).count("Vet bill for Bella") == 1  # a new subject is shown
    head, _, tail = timeline.partition('<details class="more"><summary>Show all</summary><span class="rest">')
    assert "Detail 7:" in head and "Detail 8:" not in head
    assert "The last line of the story." in tail.split("</details>")[0]
    assert '<mark class="evidence rule' in head  # the evidence is still marked in the shown part


def test_the_header_says_where_the_cases_urgency_came_from_when_the_latest_message_is_calmer(
        app, smtp_server, drain, session, make_user):
    first = mail_from_ann("Bella bitten at the park", "A dog bit Bella at the park, her ear is bleeding a lot.")
    send_mail(smtp_server, drain, first)
    case = the_case(session)
    urgent = case.urgency
    send_mail(smtp_server, drain, mail_from_ann(f"Re: Bella bitten [Case #{case.id}]",
                                                "Thank you, the vet says she is fine and we are home now.",
                                                In_Reply_To=first["Message-ID"]))
    case = the_case(session)
    latest = case.latest_inbound.triage["urgency"]
    assert case.urgency == urgent and latest != urgent  # a calmer follow-up never lowers the case
    page = signed_in(app, make_user(UserRole.LEAD)).get(f"/cases/{case.id}").get_data(as_text=True)
    at = case.messages[0].created_at.strftime("%H:%M")
    assert f"the case keeps its most urgent message's (of {at}); the latest reads {latest}" in words(page)
    assert f"Latest message: {latest} (" in words(page)


# -- MMS -----------------------------------------------------------------------------------------------------

def media_url(account: str = ACCOUNT_SID, media: str = "ME" + "1" * 32) -> str:
    return f"https://api.twilio.com/2010-04-01/Accounts/{account}/Messages/MM{'2' * 32}/Media/{media}"


def test_mms_media_come_from_twilio_with_the_accounts_credentials(app, live_server, session, make_user):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    connection = background.connection()
    sandbox.keep_file(connection, media_url().removeprefix("https://api.twilio.com"), "image/png", png)
    sandbox.keep_file(connection, media_url(media="ME" + "3" * 32).removeprefix("https://api.twilio.com"),
                      "text/html", HTML_PAGE)
    params = sms_params(from_="+15035550199", to=TEAM_NUMBER, body="this is the dog that bit mine",
                        account_sid=ACCOUNT_SID, media=((media_url(), "image/png"),
                                                        (media_url(media="ME" + "3" * 32), "text/html"),
                                                        (media_url(account="AC" + "9" * 32), "image/png"),
                                                        ("https://elsewhere.example/ME" + "4" * 32, "image/png")))
    assert live_server.post_signed("/twilio/sms", params).status_code == 200
    case = the_case(session)
    message = case.messages[0]
    agent = signed_in(app, make_user(UserRole.LEAD))
    photo = agent.get(f"/cases/{case.id}/messages/{message.id}/attachments/0")
    assert (photo.status_code, photo.data, photo.mimetype) == (200, png, "image/png")
    assert photo.headers["Content-Disposition"].startswith("attachment; ")
    page = agent.get(f"/cases/{case.id}/messages/{message.id}/attachments/1")
    assert (page.status_code, page.data, page.mimetype) == (200, HTML_PAGE, "application/octet-stream")
    # Another account's media and a URL elsewhere are never fetched, with the account's credentials or without.
    assert agent.get(f"/cases/{case.id}/messages/{message.id}/attachments/2").status_code == 404
    assert agent.get(f"/cases/{case.id}/messages/{message.id}/attachments/3").status_code == 404


# -- calls ---------------------------------------------------------------------------------------------------

@pytest.fixture
def voicemail(app, live_server, drain, clock, session):
    """A caller who tells the greeting what happened, then leaves a voicemail of 3 s: its case and call."""
    clock.set(business_time(IN_HOURS))
    network = Network(live_server.url, auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID, team_number=TEAM_NUMBER)
    caller = network.incoming(CALLER)
    caller.say("i have a question about a booking")
    caller.press("1")  # the menu: leave a message
    caller.leave_message(3, VOICEMAIL_WORDS)
    drain()
    session.expire_all()
    call = session.scalars(select(Call)).one()
    return session.get(Case, call.case_id), call


def test_a_call_shows_its_outcome_length_and_voicemail_and_the_transcript_once(app, voicemail, make_user, session):
    case, call = voicemail
    transcript = session.scalars(select(Message).where(Message.text == VOICEMAIL_WORDS)).one()
    assert transcript.triage is not None  # shown once, and still triaged
    page = signed_in(app, make_user(UserRole.LEAD)).get(f"/cases/{case.id}").get_data(as_text=True)
    timeline = timeline_of(page)
    entry = re.search(r'<li class="call".*?</li>', timeline, re.DOTALL).group(0)
    assert "went to voicemail" in entry and ">1:00<" in entry  # Twilio's CallDuration of the played call
    assert f'src="/cases/{case.id}/calls/{call.id}/recording"></audio>' in entry
    assert "Voicemail, 0:03" in entry
    assert words(timeline).count(VOICEMAIL_WORDS) == 1
    assert "voicemail transcript" in timeline and "said at the greeting" in timeline
    assert "api.twilio.com" not in page  # the browser is never sent to Twilio


def test_the_recording_is_streamed_from_twilio_to_those_who_may_see_the_case(app, client, voicemail, make_user):
    case, call = voicemail
    url = f"/cases/{case.id}/calls/{call.id}/recording"
    assert client.get(url).status_code == 302  # logged out: to the login page
    other_queue = "support" if case.queue != "support" else "emergency"
    stranger = signed_in(app, make_user(UserRole.AGENT, email="stranger@team.test", queues=[other_queue]))
    assert stranger.get(url).status_code == 404
    agent = signed_in(app, make_user(UserRole.AGENT, queues=[case.queue]))
    response = agent.get(url)
    assert response.status_code == 200 and response.data == tone(3)  # the bytes the caller left, via Twilio
    assert response.mimetype == "audio/wav" and response.content_length == len(tone(3))
    assert response.headers["Content-Disposition"].startswith("inline; ")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Location" not in response.headers
    part = agent.get(url, headers={"Range": "bytes=0-99"})  # an audio player seeking
    assert (part.status_code, part.data, part.headers["Content-Range"]) == (206, tone(3)[:100],
                                                                           f"bytes 0-99/{len(tone(3))}")


def test_a_recording_twilio_no_longer_has_is_404_and_twilio_down_is_502(app, voicemail, make_user, session):
    case, call = voicemail
    url = f"/cases/{case.id}/calls/{call.id}/recording"
    agent = signed_in(app, make_user(UserRole.LEAD))
    # Without the account's credentials Twilio's API gives nothing: only the console's proxy can fetch it.
    assert Browser(app).get(f"/sandbox/twilio/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/"
                                 f"{call.recording_sid}.wav").status_code == 401
    call.recording_sid = "RE" + "0" * 32
    session.commit()
    assert agent.get(url).status_code == 404
    configure(app, twilio_api_url=f"http://127.0.0.1:{free_port()}")
    assert agent.get(url).status_code == 502


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_calls_recorded_before_the_migration_get_their_recording_from_their_messages(database_url):
    command.downgrade(db.alembic_config(database_url), "0016")
    recording_sid = "RE" + "5" * 32
    now = business_time(IN_HOURS)
    contacts = sa.table("contacts", sa.column("id"), sa.column("phone"), sa.column("opted_out"),
                        sa.column("created_at", sa.DateTime(timezone=True)))
    calls = sa.table("calls", *(sa.column(name) for name in ("id", "call_sid", "caller", "language", "state",
                                                              "wait_prompts", "on_call_tried")),
                     sa.column("created_at", sa.DateTime(timezone=True)),
                     sa.column("updated_at", sa.DateTime(timezone=True)))
    messages = sa.table("messages", *(sa.column(name) for name in ("id", "contact_id", "direction", "channel",
                                                                    "sender", "recipient", "text", "original",
                                                                    "attempts")),
                        sa.column("meta", sa.JSON), sa.column("attachments", sa.JSON),
                        sa.column("created_at", sa.DateTime(timezone=True)))
    engine = db.make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(contacts.insert().values(id=1, phone=CALLER, opted_out=False, created_at=now))
        for call_id, sid in ((1, "CA" + "1" * 32), (2, "CA" + "2" * 32)):
            connection.execute(calls.insert().values(id=call_id, call_sid=sid, caller=CALLER, language="en",
                                                     state="ended", wait_prompts=0, on_call_tried=False,
                                                     created_at=now, updated_at=now))
        recorded = {"name": f"recording {recording_sid}", "content_type": "audio/x-wav", "size": None,
                    "ref": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}"}
        connection.execute(messages.insert().values(
            id=1, contact_id=1, direction="inbound", channel="voice", sender=CALLER, recipient=TEAM_NUMBER,
            text="my words", original="my words", attempts=0, created_at=now, attachments=[recorded],
            meta={"call_sid": "CA" + "1" * 32, "step": "gather1"}))
    db.upgrade(database_url)
    with engine.connect() as connection:
        found = connection.execute(sa.text("SELECT id, recording_sid FROM calls ORDER BY id")).all()
    engine.dispose()
    assert [tuple(row) for row in found] == [(1, recording_sid), (2, None)]
