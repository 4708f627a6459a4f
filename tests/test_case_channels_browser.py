"""An email case and a voice case in Debian's Chromium: one subject, a long message folded until "Show all", an
attachment downloaded, the voicemail played through the console's proxy, its transcript once."""

from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from conftest import (
    ACCOUNT_SID,
    ARTIFACTS,
    AUTH_TOKEN,
    IN_HOURS,
    PASSWORD,
    TEAM_NUMBER,
    business_time,
    configure,
    runtime_of,
)
from sqlalchemy import select

from assist import mail
from assist.models import Call, Case, UserRole
from assist.phone_network import Network

TEAM = "incidents@incident-team.test"
ANN = "ann@example.com"
NOTES = b"<html><body><script>alert(1)</script>The sitter's notes</body></html>"
STORY = ("Our dog Bella was bitten by another dog at the park this morning and her ear is bleeding.\n"
         + "\n".join(f"Detail {i}: what the other owner said and did afterwards." for i in range(1, 15))
         + "\nThe last line of the story.")
VOICEMAIL_WORDS = "the sitter left the gate open and Bella ran off"


def email(subject: str, body: str, **headers) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = f"Ann Peters <{ANN}>", TEAM, subject
    message["Message-ID"] = make_msgid(domain="example.com")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def receive(app, drain, message: EmailMessage) -> None:
    """What the SMTP server does with a mail (stores it before its 250), then the worker ingests it."""
    mail.receive(runtime_of(app), [(bytes(message), ANN)])
    drain()


def test_an_email_case_and_a_voice_case_read_well(browser, app, live_server, drain, session, make_user, clock):
    configure(app, team_email=TEAM)
    first = email("Bella bitten at the park", STORY)
    first.add_attachment(NOTES, maintype="text", subtype="html", filename="notes.html")
    receive(app, drain, first)
    email_case = session.scalars(select(Case)).one()
    receive(app, drain, email(f"Re: Bella bitten at the park [Case #{email_case.id}]", "Thanks, she is calmer now.",
                              In_Reply_To=first["Message-ID"]))
    clock.set(business_time(IN_HOURS))
    network = Network(live_server.url, auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID, team_number=TEAM_NUMBER)
    caller = network.incoming("+15035550800")
    caller.say("i have a question about a booking")
    caller.press("1")  # the menu: leave a message
    caller.leave_message(3, VOICEMAIL_WORDS)
    drain()
    call = session.scalars(select(Call)).one()

    ARTIFACTS.mkdir(exist_ok=True)
    lead = make_user(UserRole.LEAD)
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    problems = []
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", lead.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")

    page.goto(f"{live_server.url}/cases/{email_case.id}")
    timeline = page.locator("ol.timeline")
    assert timeline.get_by_text("Bella bitten at the park").count() == 1  # the thread's subject, once
    story = timeline.locator("li.msg", has_text="Our dog Bella")
    last_line = story.get_by_text("The last line of the story.")
    assert not last_line.is_visible()  # folded
    page.screenshot(path=str(ARTIFACTS / "case-email.png"), full_page=True)
    story.get_by_text("Show all").click()
    last_line.wait_for(state="visible", timeout=2000)
    with page.expect_download() as downloading:
        story.get_by_role("link", name="notes.html").click()
    download = downloading.value
    assert download.suggested_filename == "notes.html"
    assert Path(download.path()).read_bytes() == NOTES  # saved as sent, never opened as a page

    page.goto(f"{live_server.url}/cases/{call.case_id}")
    audio = page.locator("li.call audio")
    assert audio.get_attribute("src") == f"/cases/{call.case_id}/calls/{call.id}/recording"
    assert page.locator("ol.timeline").get_by_text(VOICEMAIL_WORDS).count() == 1  # the transcript, once
    # The player loads the voicemail through the console (the browser holds no Twilio credentials).
    seconds = page.evaluate("""audio => new Promise((resolve, reject) => {
        audio.addEventListener('loadedmetadata', () => resolve(audio.duration), {once: true});
        audio.addEventListener('error', () => reject(new Error('the recording did not load')), {once: true});
        audio.preload = 'metadata'; audio.load();
    })""", audio.element_handle())
    assert round(seconds) == 3
    page.screenshot(path=str(ARTIFACTS / "case-voice.png"), full_page=True)
    context.close()
    assert problems == []
