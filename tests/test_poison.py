"""Input that cannot be stored as it is gets a clear 4xx, or is cleaned and stored: never a 5xx, which
Twilio and mail servers would retry forever."""

import pytest
from conftest import ACCOUNT_SID
from sqlalchemy import select
from test_email import TEAM, send, smtp_server  # noqa: F401  (fixture)

from assist.models import Case, Direction, Message
from assist.simulate import sms_params

pytestmark = pytest.mark.both_databases

CUSTOMER, TEAM_NUMBER = "+15035550123", "+15005550006"


def sms(body: str = "my dog got out", **changes) -> dict:
    return {**sms_params(from_=CUSTOMER, to=TEAM_NUMBER, body=body, account_sid=ACCOUNT_SID), **changes}


def inbound(session) -> list[Message]:
    return session.scalars(select(Message).where(Message.direction == Direction.INBOUND)).all()


def test_a_nul_byte_is_removed_and_the_message_stored(twilio, session):
    assert twilio.post("/twilio/sms", sms("my dog\x00 got out")).status_code == 200
    [message] = inbound(session)
    assert message.text == "my dog got out"


def test_a_body_longer_than_twilio_sends_is_kept_whole_and_triaged_on_its_start(twilio, session):
    body = "my dog got out of the yard " + "and " * 250_000  # 1 MB: Twilio itself sends at most 1,600 chars
    assert twilio.post("/twilio/sms", sms(body)).status_code == 200
    [message] = inbound(session)
    assert message.text == body and message.triage["category"] == "lost_pet"


@pytest.mark.parametrize("changes, reason", [
    ({"MessageSid": "SM" + "a" * 300}, "MessageSid"),
    ({"To": "+1" + "5" * 200}, "To"),
    ({"From": "+1" + "5" * 200}, "From"),
    ({"NumMedia": "3000000"}, "NumMedia"),
    ({"NumMedia": "-1"}, "NumMedia"),
], ids=["sid", "to", "from", "num-media", "negative-media"])
def test_out_of_bounds_sms_parameters_get_400_with_the_reason(twilio, session, changes, reason):
    answer = twilio.post("/twilio/sms", sms(**changes))
    assert answer.status_code == 400 and reason in answer.get_data(as_text=True)
    assert inbound(session) == []


@pytest.mark.parametrize("path, params", [
    ("/twilio/sms/status?message=99999999999999999999", {"MessageSid": "SM1", "MessageStatus": "delivered"}),
    ("/twilio/sms/status?message=abc", {"MessageSid": "SM1", "MessageStatus": "delivered"}),
    ("/twilio/sms/status", {"MessageSid": "SM" + "b" * 300, "MessageStatus": "delivered"}),
    ("/twilio/sms/status", {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "3" * 300}),
    ("/twilio/sms/status?message=%C2%B2", {"MessageSid": "SM1", "MessageStatus": "delivered"}),
], ids=["huge-id", "word-id", "long-sid", "long-error-code", "superscript-id"])
def test_bad_status_callbacks_get_400(twilio, session, path, params):
    assert twilio.post(path, {"AccountSid": ACCOUNT_SID, **params}).status_code == 400


def test_a_status_callback_never_touches_an_inbound_message(twilio, session):
    twilio.post("/twilio/sms", sms())
    [message] = inbound(session)
    params = {"AccountSid": ACCOUNT_SID, "MessageSid": message.channel_id, "MessageStatus": "failed"}
    assert twilio.post(f"/twilio/sms/status?message={message.id}", params).status_code in (200, 204)
    session.expire_all()
    assert session.get(Message, message.id).delivery_status is None


RAW = {
    "nul-byte": b"From: ann@example.com\r\nTo: " + TEAM.encode() + b"\r\nSubject: help\r\n\r\nmy dog\x00 got out\r\n",
    "attachment-only": (b"From: ann@example.com\r\nTo: " + TEAM.encode() + b"\r\nSubject: photo\r\n"
                        b"MIME-Version: 1.0\r\n"
                        b"Content-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n"
                        b"Content-Disposition: attachment; filename=dog.jpg\r\n\r\n/9j/4AAQSkZJRgABAQ==\r\n"),
    "crlf-in-encoded-word": (b"From: ann@example.com\r\nTo: " + TEAM.encode() +
                             b"\r\nSubject: =?utf-8?q?my_dog=0D=0Agot_out?=\r\n\r\nplease call\r\n"),
}


@pytest.mark.parametrize("raw", RAW.values(), ids=RAW.keys())
def test_poison_mail_gets_250_and_a_case(smtp_server, session, raw):  # noqa: F811
    assert send(smtp_server, raw, mail_from="ann@example.com")[0] == 250
    [message] = inbound(session)
    assert message.case_id is not None and "\x00" not in message.text
    assert session.get(Case, message.case_id).contact.email == "ann@example.com"
