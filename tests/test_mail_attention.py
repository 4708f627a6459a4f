"""Mail that cannot become a case is still seen: the envelope sender stands in for a broken From, and
what has no sender at all waits in the leads' list of mail needing attention, to be tried again."""

import pytest
from conftest import configure, csrf_token
from sqlalchemy import select
from test_email import TEAM, send, smtp_server  # noqa: F401  (fixture)

from assist import mail
from assist.models import Case, Direction, Message, RawEmail, UserRole
from channels import email as email_channel

pytestmark = pytest.mark.both_databases


def raw_mail(from_header: str, body: str = "my dog got out of the garden") -> bytes:
    return (f"From: {from_header}\r\nTo: {TEAM}\r\nSubject: help\r\n\r\n{body}\r\n").encode()


def inbound(session) -> list[Message]:
    return session.scalars(select(Message).where(Message.direction == Direction.INBOUND)).all()


def test_a_broken_from_header_falls_back_to_the_envelope_sender(smtp_server, session):  # noqa: F811
    assert send(smtp_server, raw_mail("Ann Lee (no address here)"), mail_from="ann@example.com")[0] == 250
    [message] = inbound(session)
    assert session.get(Case, message.case_id).contact.email == "ann@example.com"


def test_mail_without_any_sender_is_listed_for_leads_and_escaped(smtp_server, session, client, login):  # noqa: F811
    body = "<script>alert('x')</script> my dog got out"
    assert send(smtp_server, raw_mail("nobody", body), mail_from="<>")[0] == 250
    assert inbound(session) == []
    [raw] = session.scalars(select(RawEmail)).all()
    assert raw.message_id is None and "neither the From header nor the envelope" in raw.error

    login(UserRole.LEAD)
    page = client.get("/attention/").get_data(as_text=True)
    assert f'data-raw="{raw.id}"' in page and "neither the From header nor the envelope" in page
    assert "&lt;script&gt;alert(" in page and "<script>alert(" not in page


def test_agents_do_not_see_the_list(client, login):
    login(UserRole.AGENT)
    assert client.get("/attention/").status_code == 403


def test_a_mail_that_failed_is_tried_again_after_the_fix(smtp_server, session, client, login, monkeypatch):  # noqa: F811
    real_parse = email_channel.parse_email

    def broken(raw, **kwargs):
        raise email_channel.BadWebhook("the parser choked (a bug)")

    monkeypatch.setattr(email_channel, "parse_email", broken)
    assert send(smtp_server, raw_mail("Ann Lee <ann@example.com>"), mail_from="ann@example.com")[0] == 250
    [raw] = session.scalars(select(RawEmail)).all()
    assert raw.error == "the parser choked (a bug)"

    monkeypatch.setattr(email_channel, "parse_email", real_parse)  # the fix is deployed
    login(UserRole.LEAD)
    page = client.get("/attention/").get_data(as_text=True)
    answer = client.post(f"/attention/{raw.id}/retry", data={"csrf_token": csrf_token(page)})
    assert answer.status_code == 302
    session.expire_all()
    [message] = inbound(session)
    assert session.get(RawEmail, raw.id).message_id == message.id and message.case_id is not None
    assert "Nothing needs attention" in client.get("/attention/").get_data(as_text=True)


def test_long_lines_are_taken_as_postfix_takes_them_up_to_a_limit(smtp_server, session):  # noqa: F811
    long_line = "my dog got out " * 400  # 6,000 characters on one line: bare-LF mail and HTML mail do this
    raw = f"From: ann@example.com\nTo: {TEAM}\nSubject: help\n\n{long_line}\n".encode()
    assert send(smtp_server, raw, mail_from="ann@example.com")[0] == 250
    [message] = inbound(session)
    assert long_line.strip() in message.original
    endless = f"From: bo@example.com\nTo: {TEAM}\nSubject: x\n\n{'x' * 70_000}\n".encode()
    assert send(smtp_server, endless, mail_from="bo@example.com")[0] == 500  # beyond 64 KiB: refused, deliberately


def test_a_mail_whose_ingest_fails_gets_250_and_a_job_tries_again(app, smtp_server, session, drain,  # noqa: F811
                                                                  monkeypatch):
    from assist import ingest

    configure(app, send_retry_intervals=(4,))  # time to look before RQ tries again

    real_ingest, failures = ingest.ingest, []

    def fails_once(session, inbound, **kwargs):
        if not failures:
            failures.append(inbound.channel_id)
            raise RuntimeError("a bug in triage")
        return real_ingest(session, inbound, **kwargs)

    monkeypatch.setattr(ingest, "ingest", fails_once)
    assert send(smtp_server, raw_mail("Ann Lee <ann@example.com>"), mail_from="ann@example.com",
                work=False)[0] == 250  # not 451
    drain(soon=0)  # the first try only: RQ tries again in a few seconds
    session.expire_all()
    [raw] = session.scalars(select(RawEmail)).all()
    assert raw.message_id is None and "tried again" in raw.error
    assert [r.id for r in mail.needing_attention(session)] == [raw.id]
    drain()
    session.expire_all()
    [message] = inbound(session)
    raw = session.get(RawEmail, raw.id)
    assert raw.message_id == message.id and raw.error is None and failures
