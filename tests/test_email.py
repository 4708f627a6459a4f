"""The email channel over real SMTP sessions (smtplib) against the running aiosmtpd server."""

import base64
import html
import logging
import re
import smtplib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from aiosmtpd.controller import Controller
from conftest import configure, count, csrf_token, runtime_of
from sqlalchemy import select

from assist import cases, mail, sandbox
from assist.errors import ConfigError
from assist.models import Case, Contact, Direction, Event, Member, MemberRole, Message, Pet, RawEmail, UserRole
from assist.simulate import free_port
from channels.email import parse_email

TEAM = "incidents@incident-team.test"
ANN = "ann@example.com"


class Sink:
    """A local relay that keeps what the service sends."""

    def __init__(self):
        self.messages, self.lock = [], threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp_server(app, drain):
    configure(app, smtp_listen=f"127.0.0.1:{free_port()}", smtp_max_bytes=200_000,
              inbound_email=(TEAM, "@claims.incident-team.test"), team_email=TEAM)
    controller = mail.start_server(runtime_of(app))
    controller.drain = drain  # what `assist worker` does after each 250: ingest the stored mail (see send())
    yield controller
    controller.stop()


@pytest.fixture
def sink(app):
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    configure(app, smtp_relay=f"127.0.0.1:{port}")
    yield handler
    controller.stop()


def send(server, raw: bytes, *, rcpt: str = TEAM, mail_from: str = ANN, work: bool = True):
    """One whole SMTP session; returns (code, message) of DATA or of the refusal.

    After a 250 the worker ingests the stored mail (`work`; off to see what the session alone did).
    """
    with smtplib.SMTP(server.hostname, server.port, timeout=10) as session:
        try:
            session.sendmail(mail_from, [rcpt], raw)
        except smtplib.SMTPRecipientsRefused as exc:
            return exc.recipients[rcpt]
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error
        except smtplib.SMTPSenderRefused as exc:
            return exc.smtp_code, exc.smtp_error
    if work and hasattr(server, "drain"):
        server.drain()
    return 250, b"OK"


def email(subject: str, body: str, *, sender: str = f"Ann Lee <{ANN}>", **headers) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, TEAM, subject
    message["Message-ID"] = make_msgid(domain="example.com")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return bytes(message)


def inbound(session) -> list[Message]:
    session.expire_all()
    return list(session.scalars(select(Message).where(Message.direction == Direction.INBOUND).order_by(Message.id)))


# -- formats -----------------------------------------------------------------------------------

def html_only() -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = ANN, TEAM, "Dog bitten at daycare"
    message.set_content("<html><body><p>Our dog <b>Rex</b> was <i>bitten</i> at daycare today.</p>"
                        "<p>He is bleeding from the ear.</p><script>alert(1)</script></body></html>", subtype="html")
    return bytes(message)


def alternative_with_invoice() -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = ANN, TEAM, "Vet claim for Bailey"
    message.set_content("Hi, please find the vet invoice attached for my claim.\n\nThanks,\nAnn")
    message.add_alternative("<p>Hi, please find the <b>vet invoice</b> attached for my claim.</p>", subtype="html")
    message.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice-4471.pdf")
    return bytes(message)


def charset(name: str, text: str) -> bytes:
    body = text.encode(name)
    head = (f"From: {ANN}\r\nTo: {TEAM}\r\nSubject: charset {name}\r\nMessage-ID: <{name}@example.com>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset={name}\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n").encode()
    return head + body + b"\r\n"


FORMATS = [
    ("plain", lambda: email("Sitter never came", "The sitter never showed up this morning and the dogs are alone."),
     "never showed up", 0),
    ("html-only", html_only, "bleeding from the ear", 0),
    ("alternative+pdf", alternative_with_invoice, "vet invoice attached", 1),
    ("iso-8859-1", lambda: charset("iso-8859-1", "Mi perro está sangrando, ¿qué hago?"), "está sangrando", 0),
    ("windows-1252", lambda: charset("windows-1252", "The sitter’s dog bit mine – it’s bleeding"), "it’s bleeding", 0),
    ("shift_jis", lambda: charset("shift_jis", "犬が逃げました。助けてください。"), "犬が逃げました", 0),
]


@pytest.mark.parametrize("build, expected, attachments", [f[1:] for f in FORMATS], ids=[f[0] for f in FORMATS])
def test_formats_are_stored_triaged_and_readable(smtp_server, session, build, expected, attachments):
    assert send(smtp_server, build())[0] == 250
    [message] = inbound(session)
    assert expected in message.original and message.triage is not None
    assert len(message.attachments) == attachments
    if attachments:
        assert message.attachments[0]["name"] == "invoice-4471.pdf"
        assert message.attachments[0]["content_type"] == "application/pdf"


def test_html_only_mail_is_triaged_on_its_text_and_keeps_its_html(smtp_server, session):
    send(smtp_server, html_only())
    [message] = inbound(session)
    assert "<b>" not in message.text and "Rex" in message.text and "<b>Rex</b>" in message.html
    assert message.triage["category"] == "bite_attack"


def test_triage_reads_the_new_part_and_keeps_the_whole(smtp_server, session):
    body = ("Thanks, all sorted now.\n\nOn Tue, 3 Mar 2026 at 09:12, Team <incidents@incident-team.test> wrote:\n"
            "> Is your dog still bleeding? Did he eat chocolate?\n")
    send(smtp_server, email("Re: update", body))
    [message] = inbound(session)
    assert "bleeding" not in message.text and "bleeding" in message.original
    assert message.triage["urgency"] != "critical"


# -- threading and loops -------------------------------------------------------------------------

def test_a_reply_to_the_bots_email_lands_on_the_same_case(smtp_server, sink, session, drain):
    send(smtp_server, email("Sitter no-show", "Nobody came to walk Bella today and she has been alone since 8."))
    drain()
    [bot] = sink.messages
    assert bot["Auto-Submitted"] == "auto-replied" and bot["Reply-To"] == TEAM
    case = session.scalars(select(Case)).one()
    assert f"[Case #{case.id}]" in bot["Subject"] and bot["In-Reply-To"] == inbound(session)[0].channel_id
    [listed] = sandbox.outbox(session)["emails"]  # the relay said 250: sent
    assert (listed["via"], listed["status"], listed["carrier_id"]) == ("smtp", "sent", bot["Message-ID"])
    reply = email("totally different subject", "She is fine now, a neighbour walked her.",
                  In_Reply_To=bot["Message-ID"], References=bot["Message-ID"])
    send(smtp_server, reply)
    assert count(session, Case) == 1
    assert [m.case_id for m in inbound(session)] == [case.id, case.id]


def test_a_case_token_threads_a_reply_without_headers(smtp_server, session):
    send(smtp_server, email("Refund please", "I was charged twice for the drop-in visits."))
    case = session.scalars(select(Case)).one()
    case.status = case.status.RESOLVED
    session.commit()
    send(smtp_server, email(f"Still waiting [Case #{case.id}]", "Any news on the refund?"))
    assert count(session, Case) == 1
    session.refresh(case)
    assert case.status.value == "open"  # reopened by the customer's answer


OTHER = "mallory@elsewhere.example"


def test_another_contact_quoting_a_case_number_gets_a_case_of_their_own(smtp_server, session):
    send(smtp_server, email("Refund please", "I was charged twice for the drop-in visits."))
    anns = session.scalars(select(Case)).one()
    send(smtp_server, email(f"Re: [Case #{anns.id}]", "What did she say about the refund?", sender=OTHER),
         mail_from=OTHER)
    [first, second] = inbound(session)
    assert second.case_id != anns.id and second.case.contact.email == OTHER
    assert [m.id for m in session.get(Case, anns.id).messages if m.direction == Direction.INBOUND] == [first.id]


def test_another_contact_replying_on_a_forwarded_thread_gets_a_case_of_their_own(smtp_server, sink, session, drain):
    send(smtp_server, email("Sitter no-show", "Nobody came to walk Bella today and she has been alone since 8."))
    drain()
    [bot] = sink.messages
    forwarded = email("Fwd: Sitter no-show", "Which sitter was it?", sender=OTHER, In_Reply_To=bot["Message-ID"],
                      References=bot["Message-ID"])
    send(smtp_server, forwarded, mail_from=OTHER)
    [anns, others] = inbound(session)
    assert others.case_id != anns.case_id and others.case.contact.email == OTHER
    assert count(session, Case) == 2


def test_a_vacation_auto_reply_is_stored_but_never_answered(smtp_server, sink, session, drain):
    send(smtp_server, email("Out of office", "I am away until Monday with limited access to email.",
                            Auto_Submitted="auto-replied"))
    drain()
    assert len(inbound(session)) == 1 and inbound(session)[0].triage is not None
    assert sink.messages == []
    assert session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)).all() == []


@pytest.mark.parametrize("headers", [
    {"Precedence": "bulk"}, {"Precedence": "list"}, {"List_Id": "<pets.lists.example.com>"},
    {"X_Autoreply": "yes"},
], ids=["bulk", "list", "list-id", "x-autoreply"])
def test_automated_mail_is_never_answered(smtp_server, sink, session, drain, headers):
    send(smtp_server, email("Newsletter", "Ten tips for summer walks with your dog.", **headers))
    drain()
    assert sink.messages == []


def test_mailer_daemon_bounces_are_never_answered(smtp_server, sink, session, drain):
    raw = email("Undelivered Mail Returned to Sender", "This is the mail system at host mx.example.com.")
    raw = raw.replace(f"Ann Lee <{ANN}>".encode(), b"Mail Delivery System <MAILER-DAEMON@mx.example.com>")
    send(smtp_server, raw, mail_from="")
    drain()
    assert sink.messages == []


def test_an_agents_reply_is_threaded_and_not_marked_automatic(smtp_server, sink, session, drain, make_user, app):
    from assist import outbound

    send(smtp_server, email("Charged twice", "I was charged twice for boarding, please refund one."))
    drain()
    case = session.scalars(select(Case)).one()
    agent = make_user()
    reply = outbound.create_reply(session, case, "Refund issued today.", author=agent)
    cases.done(session, case, send=reply)
    drain()
    agent_mail = sink.messages[-1]
    assert agent_mail["Auto-Submitted"] is None and "Refund issued today." in agent_mail.get_content()
    assert inbound(session)[0].channel_id in agent_mail["References"]
    session.refresh(reply)
    assert reply.channel_id == agent_mail["Message-ID"] and reply.delivery_status.value == "sent"  # the relay said 250


# -- the SMTP server's rules ----------------------------------------------------------------------

def test_only_the_teams_addresses_are_accepted_at_rcpt(smtp_server, session):
    assert send(smtp_server, email("hi", "hello"), rcpt="someone@elsewhere.example")[0] == 550
    assert send(smtp_server, email("hi", "hello"), rcpt="anyone@claims.incident-team.test")[0] == 250
    assert len(inbound(session)) == 1


def test_an_oversized_message_gets_552(smtp_server, session):
    code, _ = send(smtp_server, email("big", "x" * 300_000))
    assert code == 552
    assert inbound(session) == []


def test_the_size_limit_is_advertised(smtp_server):
    with smtplib.SMTP(smtp_server.hostname, smtp_server.port, timeout=10) as session:
        session.ehlo()
        assert session.has_extn("size") and session.esmtp_features["size"] == "200000"


def test_storage_failing_during_data_gives_451_and_a_resend_is_stored_once(smtp_server, session, monkeypatch):
    from sqlalchemy.exc import OperationalError

    raw = email("Lost dog", "Bella slipped her harness in the park and ran off.")

    def broken(*args, **kwargs):
        raise OperationalError("SELECT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(mail, "_stored", broken)
    assert send(smtp_server, raw)[0] == 451
    assert count(session, RawEmail) == 0 and inbound(session) == []
    monkeypatch.undo()
    assert send(smtp_server, raw)[0] == 250
    assert send(smtp_server, raw)[0] == 250  # the sender retries once more: still one copy
    assert count(session, RawEmail) == 1 and len(inbound(session)) == 1


def test_mail_arriving_at_once_is_stored_in_groups_and_each_hears_250_after_its_commit(smtp_server, session,
                                                                                       monkeypatch):
    real, groups = mail.receive, []

    def slow(rt, items):  # a slow commit: the sessions arriving meanwhile wait for the next group
        groups.append(len(items))
        time.sleep(0.3)
        return real(rt, items)

    monkeypatch.setattr(mail, "receive", slow)
    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(lambda i: send(smtp_server, email(f"Question {i}", f"Is booking {i} confirmed?"),
                                             mail_from=f"owner{i}@example.com", work=False)[0], range(10)))
    assert codes == [250] * 10
    assert sum(groups) == 10 and max(groups) > 1  # fewer transactions than messages
    assert count(session, RawEmail) == 10


def test_a_mail_that_cannot_be_stored_fails_only_its_own_session(smtp_server, session, monkeypatch):
    from sqlalchemy.exc import OperationalError

    real = mail.receive

    def refuses_one(rt, items):
        time.sleep(0.2)  # the others arrive meanwhile and share the group with it
        if any(b"unstorable" in data for data, _ in items):
            raise OperationalError("INSERT", {}, Exception("value too long"))
        return real(rt, items)

    monkeypatch.setattr(mail, "receive", refuses_one)
    bodies = ["unstorable"] + [f"Is booking {i} confirmed?" for i in range(5)]
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda b: send(smtp_server, email("Question", b), work=False)[0], bodies))
    assert codes == [451] + [250] * 5
    assert count(session, RawEmail) == 5


# -- malformed messages -----------------------------------------------------------------------------

H = f"From: Ann <{ANN}>\r\nTo: {TEAM}\r\n".encode()


def raw(*lines: str | bytes) -> bytes:
    return b"\r\n".join(line if isinstance(line, bytes) else line.encode() for line in lines) + b"\r\n"


def nested(depth: int) -> bytes:
    inner = raw("From: x@example.com", "Subject: deepest", "", "my dog got out")
    for level in range(depth):
        inner = raw("From: x@example.com", f"Subject: level {level}", "Content-Type: message/rfc822", "") + inner
    return H + raw("Subject: nested", "MIME-Version: 1.0", "Content-Type: message/rfc822", "") + inner


MALFORMED = {
    "no-boundary-end": H + raw("Subject: a", "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="XX"', "",
                                "--XX", "Content-Type: text/plain", "", "the sitter never came"),
    "wrong-boundary": H + raw("Subject: a", 'Content-Type: multipart/mixed; boundary="XX"', "", "--YY", "",
                              "text", "--YY--"),
    "missing-boundary-param": H + raw("Subject: a", "Content-Type: multipart/mixed", "", "--XX", "", "hello"),
    "empty-multipart": H + raw("Subject: a", 'Content-Type: multipart/alternative; boundary="B"', "", "--B--"),
    "bad-base64": H + raw("Subject: a", "Content-Type: text/plain", "Content-Transfer-Encoding: base64", "",
                          "this is not base64!!!"),
    "truncated-base64": H + raw("Subject: a", "Content-Transfer-Encoding: base64", "", "bXkgZG9nIGdvdCBvdX"),
    "bad-quoted-printable": H + raw("Subject: a", "Content-Transfer-Encoding: quoted-printable", "",
                                    "my dog =ZZ got =\r\nout =E9"),
    "unknown-encoding": H + raw("Subject: a", "Content-Transfer-Encoding: x-unheard-of", "", "hello"),
    "unknown-charset": H + raw("Subject: a", "Content-Type: text/plain; charset=x-klingon", "", "hello there"),
    "wrong-charset-utf8-bytes-as-ascii": H + raw("Subject: a", "Content-Type: text/plain; charset=us-ascii", "",
                                                 "caf\xc3\xa9".encode("latin-1")),
    "latin1-bytes-declared-utf8": H + raw("Subject: a", "Content-Type: text/plain; charset=utf-8", "",
                                          "perro está sangrando".encode("latin-1")),
    "charset-empty": H + raw("Subject: a", "Content-Type: text/plain; charset=", "", "hello"),
    "no-subject": H + raw("", "just a body"),
    "no-date-no-message-id": H + raw("Subject: a", "", "hello"),
    "duplicate-subject": H + raw("Subject: one", "Subject: two", "", "hello"),
    "duplicate-from": raw(f"From: {ANN}", "From: other@example.com", f"To: {TEAM}", "Subject: a", "", "hello"),
    "duplicate-message-id": H + raw("Message-ID: <a@x>", "Message-ID: <b@x>", "Subject: a", "", "hello"),
    "duplicate-content-type": H + raw("Content-Type: text/plain", "Content-Type: text/html", "Subject: a", "", "hi"),
    "8bit-in-subject": H + raw(b"Subject: perro perdido \xe9\xf1", b"", b"se escap\xf3 el perro"),
    "8bit-in-from-name": raw(b"From: Jos\xe9 <jose@example.com>", f"To: {TEAM}".encode(), b"Subject: a", b"",
                             b"hello"),
    "bad-encoded-word": H + raw("Subject: =?utf-8?B?not base64?=", "", "hello"),
    "unknown-charset-encoded-word": H + raw("Subject: =?x-unknown?Q?hola?=", "", "hello"),
    "broken-encoded-word": H + raw("Subject: =?utf-8?Q?unterminated", "", "hello"),
    "header-100kb-folded": H + raw("Subject: a", "X-Long: start", *([" " + "a" * 99] * 1000), "", "my dog got out"),
    "folded-forever": H + raw("Subject: a", "X-Folded: start", *([" continued"] * 2000), "", "hello"),
    "header-without-colon": H + raw("Subject: a", "This line has no colon", "", "hello"),
    "header-with-space-before-colon": H + raw("Subject : a", "", "hello"),
    "no-blank-line": H + raw("Subject: a", "body right after headers?"),
    "only-headers": H + raw("Subject: only headers"),
    "empty-body": H + raw("Subject: empty", "", ""),
    "whitespace-body": H + raw("Subject: spaces", "", "   ", "\t"),
    "nested-rfc822-3": nested(3),
    "nested-rfc822-40": nested(40),
    "html-only-broken-tags": H + raw("Subject: a", "Content-Type: text/html", "", "<p><b>my dog <i>got out</p"),
    "html-script-only": H + raw("Subject: a", "Content-Type: text/html", "", "<script>alert(1)</script>"),
    "attachment-no-filename": H + raw("Subject: a", 'Content-Type: multipart/mixed; boundary="B"', "", "--B",
                                      "Content-Type: text/plain", "", "see attached", "--B",
                                      "Content-Type: application/octet-stream", "Content-Disposition: attachment",
                                      "Content-Transfer-Encoding: base64", "", "AAAA", "--B--"),
    "attachment-bad-base64": H + raw("Subject: a", 'Content-Type: multipart/mixed; boundary="B"', "", "--B",
                                     "Content-Type: text/plain", "", "invoice attached", "--B",
                                     "Content-Type: application/pdf; name=inv.pdf", "Content-Transfer-Encoding: base64",
                                     "", "@@@not base64@@@", "--B--"),
    "content-type-garbage": H + raw("Subject: a", "Content-Type: ;;;===", "", "hello"),
    "mime-version-garbage": H + raw("Subject: a", "MIME-Version: banana", "", "hello"),
    "null-bytes-in-body": H + raw("Subject: a", "", b"my dog \x00 got out"),
    "long-lines-within-the-limit": H + raw("Subject: a", "", *(["word " * 190] * 50)),
    "bare-lf-line-ends": f"From: {ANN}\nTo: {TEAM}\nSubject: bare LF\n\nmy dog got out\n".encode(),
}
# RFC 5321 caps a line at 1,000 octets: longer lines are refused with 500 and the sender must fold them.
REFUSED = {
    "header-100kb-one-line": (H + raw("Subject: a", "X-Long: " + "a" * 100_000, "", "my dog got out"), 500),
    "body-line-100kb": (H + raw("Subject: a", "", "word " * 20_000), 500),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_messages_are_stored_and_triaged_and_the_server_goes_on(smtp_server, session, name):
    assert send(smtp_server, MALFORMED[name])[0] == 250
    [message] = inbound(session)
    assert message.triage is not None and message.triage["urgency"] in ("critical", "high", "normal", "low")
    assert send(smtp_server, email("next", "the next session works"))[0] == 250


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_lines_over_the_smtp_limit_are_refused_and_the_server_goes_on(smtp_server, session, name):
    payload, code = REFUSED[name]
    assert send(smtp_server, payload)[0] == code
    assert inbound(session) == [] and count(session, RawEmail) == 0
    assert send(smtp_server, email("next", "the next session works"))[0] == 250


def test_a_message_without_a_sender_address_is_kept_raw_with_its_error(smtp_server, session):
    payload = raw("From: no address here", f"To: {TEAM}", "Subject: a", "", "hello")
    # No From address and a bounce's empty envelope sender: stored, nothing is lost, but it cannot be a case
    # (tests/test_mail_attention.py: the leads' list of mail needing attention shows it).
    assert send(smtp_server, payload, mail_from="<>")[0] == 250
    raw_email = session.scalars(select(RawEmail)).one()
    assert raw_email.message_id is None and "From" in raw_email.error
    assert inbound(session) == []


def test_starttls_and_auth_when_configured(app, session, tmp_path, drain):
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    configure(app, smtp_listen=f"127.0.0.1:{free_port()}", inbound_email=(TEAM,), smtp_tls_cert=str(cert),
              smtp_tls_key=str(key), smtp_auth_user="relay", smtp_auth_password="s3cret-pass")
    controller = mail.start_server(runtime_of(app))
    client_tls = ssl.create_default_context()
    client_tls.check_hostname, client_tls.verify_mode = False, ssl.CERT_NONE  # a self-signed test certificate
    try:
        with smtplib.SMTP(controller.hostname, controller.port, timeout=10) as plain:
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                plain.sendmail(ANN, [TEAM], email("x", "y"))
            assert refused.value.smtp_code == 530  # STARTTLS first
        with smtplib.SMTP(controller.hostname, controller.port, timeout=10) as tls:
            tls.starttls(context=client_tls)
            with pytest.raises(smtplib.SMTPAuthenticationError):
                tls.login("relay", "wrong")
        with smtplib.SMTP(controller.hostname, controller.port, timeout=10) as tls:
            tls.starttls(context=client_tls)
            tls.login("relay", "s3cret-pass")
            tls.sendmail(ANN, [TEAM], email("Lost dog", "Bella ran off in the park"))
    finally:
        controller.stop()
    drain()
    assert len(inbound(session)) == 1


# -- who the sender is --------------------------------------------------------------------------------

def with_message_id(raw_mail: bytes, message_id: str) -> bytes:
    message = message_from_bytes(raw_mail, policy=policy.default)
    del message["Message-ID"]
    message["Message-ID"] = message_id
    return bytes(message)


def member_ann(session) -> Member:
    ann = Member(external_id="M-ANN", role=MemberRole.OWNER, name="Ann Lee", email=ANN)
    session.add_all([ann, Pet(owner=ann, name="Bella", species="dog")])
    session.commit()
    return ann


def test_a_stranger_who_knows_a_message_id_of_a_thread_gets_a_case_of_their_own_and_learns_nothing(
        smtp_server, sink, session, drain):
    member_ann(session)
    send(smtp_server, email("Lost dog", "Our dog ran away from the sitter's yard an hour ago, please help."))
    drain()
    [to_ann] = sink.messages
    [anns] = inbound(session)
    assert "Ann" in to_ann.get_content()  # what a stranger must not learn (the playbook greets her by name)
    known = f"{anns.channel_id} {to_ann['Message-ID']}"
    send(smtp_server, email("Re: Lost dog", "Any news about the dog that ran away?", sender=OTHER,
                            In_Reply_To=anns.channel_id, References=known), mail_from=OTHER)
    drain()
    [_, strangers] = inbound(session)
    assert strangers.case_id != anns.case_id and strangers.case.contact.email == OTHER
    assert [m.id for m in anns.case.messages if m.direction == Direction.INBOUND] == [anns.id]
    [to_stranger] = [m for m in sink.messages if m["To"] == OTHER]
    head = f"{to_stranger['Subject']} {to_stranger['In-Reply-To']} {to_stranger['References']}"
    assert f"#{anns.case_id}]" not in head and f"[Case #{strangers.case_id}]" in head
    assert anns.channel_id not in head and to_ann["Message-ID"] not in head
    assert not {"Ann", "Bella", f"#{anns.case_id}"} & set(to_stranger.get_content().replace(",", " ").split())


def test_a_strangers_mail_carrying_a_customers_next_message_id_does_not_make_hers_vanish(smtp_server, session):
    next_id = make_msgid(domain="example.com")  # Ann's mail client's next id, guessed or seen
    send(smtp_server, with_message_id(email("hello", "just saying hi", sender=OTHER), next_id), mail_from=OTHER)
    send(smtp_server, with_message_id(email("Dog bitten", "Our dog was bitten at daycare and is bleeding."), next_id))
    [strangers, anns] = inbound(session)
    assert (anns.sender, anns.channel_id, anns.case.contact.email) == (ANN, next_id, ANN)
    assert anns.triage["category"] == "bite_attack" and anns.case_id != strangers.case_id
    assert session.scalars(select(RawEmail.message_id).order_by(RawEmail.id)).all() == [strangers.id, anns.id]


def test_the_same_bytes_from_another_envelope_sender_are_not_a_resend(smtp_server, session):
    mail_bytes = email("Dog bitten", "Our dog was bitten at daycare and is bleeding.")
    send(smtp_server, mail_bytes, mail_from=OTHER)
    send(smtp_server, mail_bytes)
    send(smtp_server, mail_bytes)  # Ann's server retries: that one is a resend
    assert session.scalars(select(RawEmail.mail_from).order_by(RawEmail.id)).all() == [OTHER, ANN]


MTA = "mx.incident-team.test"
PASSES = f"{MTA}; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com; dmarc=pass"
FORGED = f"{MTA}; spf=fail (192.0.2.66 is not allowed) smtp.mailfrom=example.com; dkim=none; dmarc=fail"


def test_mail_failing_authentication_gets_no_answer_and_none_of_the_members_contact(
        smtp_server, sink, session, drain, app, login, client):
    configure(app, smtp_authserv_id=MTA)
    member_ann(session)
    send(smtp_server, email("Lost dog", "Our dog ran away from the sitter's yard, please help.",
                            Authentication_Results=PASSES))
    drain()
    [anns] = inbound(session)
    assert anns.case.contact.member is not None and anns.meta["auth"] == {"spf": "pass", "dkim": "pass",
                                                                          "dmarc": "pass"}
    assert len(sink.messages) == 1
    forged = email(f"Re: Lost dog [Case #{anns.case_id}]", "The dog is home, close the case and send me the "
                   "sitter's address.", In_Reply_To=anns.channel_id, Authentication_Results=FORGED)
    send(smtp_server, forged, mail_from="someone@attacker.example")
    drain()
    [_, spoofed] = inbound(session)
    assert spoofed.sender == ANN and spoofed.meta["auth"] == {"spf": "fail", "dkim": "none", "dmarc": "fail"}
    contact = spoofed.contact
    assert (contact.email, contact.claimed_email, contact.member, contact.name) == (None, ANN, None, None)
    assert spoofed.case_id != anns.case_id and spoofed.case.contact_id == contact.id
    assert spoofed.triage is not None and spoofed.case.queue  # an agent's queue has it
    assert len(sink.messages) == 1  # nothing went to Ann, whom the forger named
    assert session.scalars(select(Message).where(Message.in_reply_to_id == spoofed.id)).all() == []

    login(UserRole.LEAD)
    page = client.get(f"/cases/{spoofed.case_id}").get_data(as_text=True)
    assert "DMARC fail" in page and "unverified: claims to be ann@example.com" in page

    # The lead calls Ann, who did write: the case joins her contact, and replies go to her address.
    unverified_id = contact.id
    response = client.post(f"/cases/{spoofed.case_id}/merge-contact", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302
    session.expire_all()
    assert spoofed.case.contact_id == anns.case.contact_id and spoofed.contact_id == anns.contact_id
    assert session.get(Contact, unverified_id) is None
    assert session.scalars(select(Event).where(Event.kind == "contact.merged")).one().data["cases"] == [
        spoofed.case_id]
    page = client.get(f"/cases/{spoofed.case_id}").get_data(as_text=True)
    assert "unverified" not in page and "by email to ann@example.com" in page
    # A verified contact is not merged again.
    page = client.post(f"/cases/{spoofed.case_id}/merge-contact", data={"csrf_token": csrf_token(page)},
                       follow_redirects=True).get_data(as_text=True)
    assert "Not merged" in page


def test_mail_failing_authentication_from_an_unknown_address_is_not_answered(smtp_server, sink, session, drain,
                                                                             app):
    configure(app, smtp_authserv_id=MTA)
    send(smtp_server, email("Lost dog", "Our dog ran away, please help.", sender=OTHER,
                            Authentication_Results=FORGED.replace("example.com", "elsewhere.example")),
         mail_from=OTHER)
    drain()
    [message] = inbound(session)
    assert message.contact.email == OTHER and message.triage is not None and sink.messages == []


AUTH_RESULTS = [  # (Authentication-Results headers, top first; what is kept; whether the sender is unproven)
    ("passes", [PASSES], {"spf": "pass", "dkim": "pass", "dmarc": "pass"}, False),
    ("dmarc-fails", [f"{MTA}; spf=pass smtp.mailfrom=bulk.example; dkim=none; dmarc=fail header.from=example.com"],
     {"spf": "pass", "dkim": "none", "dmarc": "fail"}, True),
    ("nothing-passes", [f"{MTA}; spf=softfail; dkim=neutral"], {"spf": "softfail", "dkim": "neutral",
                                                                "dmarc": "none"}, True),
    ("none-checked", [f"{MTA} 1; none"], {"spf": "none", "dkim": "none", "dmarc": "none"}, True),
    ("one-dkim-signature-of-two-passes", [f"{MTA}; dkim=fail header.d=a.example; dkim=pass header.d=example.com"],
     {"spf": "none", "dkim": "pass", "dmarc": "none"}, False),
    ("comments-and-quotes", [f'{MTA} (Postfix); spf=pass (ok; "quoted") smtp.mailfrom="a;b"; dmarc=pass'],
     {"spf": "pass", "dkim": "none", "dmarc": "pass"}, False),
    ("case-insensitive-id", [f"{MTA.upper()}; DKIM=Pass"], {"spf": "none", "dkim": "pass", "dmarc": "none"}, False),
    ("a-forger-writes-a-pass-below-ours", [FORGED, PASSES], {"spf": "fail", "dkim": "none", "dmarc": "fail"}, True),
    ("another-servers-header-is-ignored", ["mx.elsewhere.example; spf=pass; dkim=pass; dmarc=pass"], None, False),
    ("no-header", [], None, False),
]


@pytest.mark.parametrize("headers, kept, unproven", [r[1:] for r in AUTH_RESULTS], ids=[r[0] for r in AUTH_RESULTS])
def test_only_the_configured_mtas_authentication_results_count(headers, kept, unproven):
    message = message_from_bytes(email("hi", "hello"), policy=policy.default)
    for header in headers:
        message["Authentication-Results"] = header
    parsed = parse_email(bytes(message), authserv_id=MTA)
    assert parsed.meta.get("auth") == kept and parsed.unauthenticated is unproven


def test_without_a_configured_mta_no_authentication_results_are_believed():
    message = message_from_bytes(email("hi", "hello"), policy=policy.default)
    message["Authentication-Results"] = FORGED
    parsed = parse_email(bytes(message))
    assert parsed.meta == {} and parsed.unauthenticated is False


# -- SMTP logins and logs ------------------------------------------------------------------------------

def test_a_login_without_a_certificate_is_refused_at_startup(app):
    with pytest.raises(ConfigError, match="^SMTP_AUTH_USER is set without SMTP_TLS_CERT: [^\n]+$"):
        configure(app, smtp_auth_user="relay", smtp_auth_password="s3cret-pass")


def test_auth_is_never_accepted_in_cleartext(app, session):
    rt = runtime_of(app)
    # Even were the startup check bypassed, the server would not take a password in cleartext.
    rt.settings = rt.settings.model_copy(update={"smtp_listen": f"127.0.0.1:{free_port()}", "inbound_email": (TEAM,),
                                                 "smtp_auth_user": "relay", "smtp_auth_password": "s3cret-pass"})
    controller = mail.start_server(rt)
    try:
        with smtplib.SMTP(controller.hostname, controller.port, timeout=10) as plain:
            plain.ehlo()
            assert not plain.has_extn("auth")
            token = base64.b64encode(b"\0relay\0s3cret-pass").decode()
            code, _ = plain.docmd("AUTH", f"PLAIN {token}")
            assert code == 538  # encryption required
            with pytest.raises(smtplib.SMTPSenderRefused):
                plain.sendmail(ANN, [TEAM], email("x", "y"))
    finally:
        controller.stop()
    assert count(session, RawEmail) == 0


def test_no_address_or_message_content_is_logged_in_an_smtp_session(smtp_server, session, drain, caplog):
    caplog.set_level(logging.DEBUG)
    sender, rcpt = "ann.private@example.com", "lost-pets@claims.incident-team.test"
    send(smtp_server, email("Lost dog", "Bella ran off near the old quarry.", sender=f"Ann <{sender}>"),
         mail_from=sender, rcpt=rcpt)
    assert [m.sender for m in inbound(session)] == [sender]
    records = [(r.name, r.getMessage()) for r in caplog.records]
    assert any(name == "mail.log" and "a***@example.com" in text for name, text in records)  # masked, still there
    assert any(name == "mail.log" and "l***@claims.incident-team.test" in text for name, text in records)
    leaked = [(name, text) for name, text in records if sender in text or rcpt in text or "quarry" in text]
    assert leaked == []


# -- the sender's name -------------------------------------------------------------------------------

@pytest.mark.parametrize("sender, name", [
    (f'"Ann Peters" <{ANN}>', "Ann Peters"),
    (f"Ann Peters <{ANN}>", "Ann Peters"),
    (f"'Ann  Peters' <{ANN}>", "Ann Peters"),
    (f"=?utf-8?q?Jos=C3=A9_P=C3=A9rez?= <{ANN}>", "José Pérez"),
    (f'"{ANN}" <{ANN}>', ""),
    (f'"ANN@example.com via Forms" <{ANN}>', ""),
    (ANN, ""),
], ids=["quoted", "plain", "single-quotes-and-spaces", "encoded-word", "the-address", "an-address", "none"])
def test_the_from_display_name_is_the_senders_name_unless_it_is_an_address(sender, name):
    message = EmailMessage()
    message["To"], message["Subject"] = TEAM, "hello"
    message.set_content("hello")
    raw_mail = f"From: {sender}\r\n".encode() + bytes(message)
    assert parse_email(raw_mail).sender_name == name


def test_a_new_senders_display_name_names_the_contact_the_reply_and_the_suggestions(
        smtp_server, sink, session, drain, client, login):
    send(smtp_server, email("Sitter no-show", "I'm so worried and scared. Nobody came to walk Bella today and she "
                            "has been alone since 8.", sender=f'"Ann Peters" <{ANN}>'))
    drain()
    contact = session.scalars(select(Contact)).one()
    assert (contact.name, contact.member) == ("Ann Peters", None)
    [bot] = sink.messages
    assert re.search(r"^Hi Ann,\r?$", bot.get_body(("plain",)).get_content(), re.MULTILINE)
    case = session.scalars(select(Case)).one()
    login(UserRole.LEAD)
    page = html.unescape(client.get(f"/cases/{case.id}").get_data(as_text=True))
    suggestions = re.findall(r'class="suggestion" data-text="([^"]*)"', page)
    assert any(", Ann." in s for s in suggestions)  # a fearful customer: "We're going to get someone to ..., Ann."
    assert not [s for s in suggestions if "there," in s or ", there" in s]


def test_a_members_name_comes_before_the_display_name(smtp_server, session):
    member_ann(session)
    send(smtp_server, email("Question", "How do I change my payout account?", sender=f'"Annie P" <{ANN}>'))
    assert session.scalars(select(Contact)).one().name == "Ann Lee"
