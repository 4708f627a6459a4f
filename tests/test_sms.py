"""The SMS channel: parsing Twilio's posts, signatures, keywords, segments, and the webhook end to end."""

import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import AUTH_TOKEN, FIXTURES, count, load_fixture, runtime_of
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from assist.errors import BadWebhook, UnknownStatus
from assist.models import Case, Contact, DeliveryStatus, Direction, Message, UserRole
from assist.web.app import create_app
from channels.message import Keyword
from channels.segments import segment_count
from channels.sms import keyword_of, parse_sms, parse_status

pytestmark = pytest.mark.both_databases

INBOUND = sorted(p.name for p in (FIXTURES / "sms").glob("inbound_*.json"))
STATUS = sorted(p.name for p in (FIXTURES / "sms").glob("status_*.json"))


def twiml_messages(body: bytes) -> list[ET.Element]:
    root = ET.fromstring(body)
    assert root.tag == "Response"
    assert all(child.tag == "Message" for child in root)
    return list(root)


# -- parsing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", INBOUND)
def test_every_inbound_fixture_parses(name):
    form = load_fixture(f"sms/{name}")
    message = parse_sms(form)
    assert message.channel_id == form["MessageSid"]
    assert message.sender.startswith("+1") and message.sender[1:].isdigit()
    assert message.text == form["Body"] == message.original
    assert len(message.attachments) == int(form["NumMedia"])
    assert message.raw == form


def test_mms_media_urls_are_kept_with_their_types():
    form = load_fixture("sms/inbound_mms.json")
    media = parse_sms(form).attachments
    assert [(m.ref, m.content_type) for m in media] == [
        (form["MediaUrl0"], "image/jpeg"), (form["MediaUrl1"], "image/png")]


@pytest.mark.parametrize("name", STATUS)
def test_every_status_fixture_maps_to_a_declared_status(name):
    form = load_fixture(f"sms/{name}")
    report = parse_status(form, {"message": "7"})
    assert report.status in {s.value for s in DeliveryStatus}
    assert report.message_sid == form["MessageSid"]
    assert report.message_id == 7
    assert report.error_code == form.get("ErrorCode")


def test_an_undeclared_status_raises():
    form = {**load_fixture("sms/status_sent.json"), "MessageStatus": "teleported"}
    with pytest.raises(UnknownStatus, match="teleported"):
        parse_status(form, {})


@pytest.mark.parametrize("form, missing", [
    ({"From": "+15035550147", "Body": "hi"}, "MessageSid"),
    ({"MessageSid": "SM1", "Body": "hi"}, "From"),
    ({"Body": "hi"}, "MessageSid, From"),
    ({"MessageSid": "SM1", "From": "", "Body": "hi"}, "From"),
], ids=["no-sid", "no-from", "neither", "empty-from"])
def test_missing_parameters_are_named(form, missing):
    with pytest.raises(BadWebhook, match=missing):
        parse_sms(form)


@pytest.mark.parametrize("sender", ["whatsapp-ish", "12", "+1 (555) abc"], ids=["word", "too-short", "letters"])
def test_a_from_that_is_no_phone_number_is_refused(sender):
    with pytest.raises(BadWebhook, match="From is not"):
        parse_sms({"MessageSid": "SM1", "From": sender, "Body": "hi"})


@pytest.mark.parametrize("body, keyword", [
    ("STOP", Keyword.OPT_OUT), ("stop", Keyword.OPT_OUT), (" Stop. ", Keyword.OPT_OUT),
    ("STOPALL", Keyword.OPT_OUT), ("unsubscribe", Keyword.OPT_OUT), ("CANCEL", Keyword.OPT_OUT),
    ("end", Keyword.OPT_OUT), ("QUIT", Keyword.OPT_OUT), ("revoke", Keyword.OPT_OUT), ("OPTOUT", Keyword.OPT_OUT),
    ("START", Keyword.OPT_IN), ("yes", Keyword.OPT_IN), ("Unstop", Keyword.OPT_IN),
    ("HELP", Keyword.HELP), ("info", Keyword.HELP),
    ("stop the sitter from coming", None), ("yes she is bleeding", None), ("I need help", None), ("", None),
], ids=lambda v: repr(v) if isinstance(v, str) else str(v))
def test_keywords_are_whole_messages(body, keyword):
    assert keyword_of(body) == keyword


@pytest.mark.parametrize("text, segments", [
    ("", 1),
    ("a" * 160, 1),
    ("a" * 161, 2),
    ("a" * 306, 2),
    ("a" * 307, 3),
    ("€" * 80, 1),  # extension characters take two septets
    ("€" * 81, 2),
    ("a" * 152 + "€", 1),
    ("a" * 159 + "€", 2),  # 161 septets; the escape pair is not split
    ("é" * 160, 1),  # é is in the GSM basic set
    ("ó" * 70, 1),  # ó is not: UCS-2
    ("ó" * 71, 2),
    ("ó" * 134, 2),
    ("ó" * 135, 3),
    ("😟" * 35, 1),  # astral characters are two UTF-16 units
    ("😟" * 36, 2),
    ("a" * 66 + "😟", 1),
], ids=lambda v: repr(v)[:20] if isinstance(v, str) else str(v))
def test_segment_count(text, segments):
    assert segment_count(text) == segments


# -- the webhook over the test client -------------------------------------------------------------

@pytest.mark.parametrize("name", INBOUND)
def test_each_fixture_is_stored_and_answered_with_twiml(twilio, session, name):
    form = load_fixture(f"sms/{name}")
    response = twilio.post("/twilio/sms", form)
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    [reply] = twiml_messages(response.data)
    message = session.scalars(select(Message).where(Message.channel_id == form["MessageSid"])).one()
    assert message.text == form["Body"]
    assert message.case_id is not None
    assert [a["ref"] for a in message.attachments] == [form[f"MediaUrl{i}"] for i in range(int(form["NumMedia"]))]
    bot = session.scalars(select(Message).where(Message.in_reply_to_id == message.id)).one()
    assert reply.text == bot.text and bot.playbook_id is not None
    assert reply.get("action").startswith("http://localhost/twilio/sms/status?message=")


@pytest.mark.parametrize("fails_in", ["classify", "route", "render"])
def test_a_message_whose_handling_fails_is_stored_and_a_redelivery_finishes_it(twilio, session, monkeypatch,
                                                                              fails_in):
    from assist import ingest, playbooks, routing

    def broken(*args, **kwargs):
        raise RuntimeError(f"a bug in {fails_in}")

    target = {"classify": (ingest.triage, "classify"), "route": (routing, "route"),
              "render": (playbooks, "render")}[fails_in]
    monkeypatch.setattr(*target, broken)
    form = load_fixture("sms/inbound_plain.json")
    with pytest.raises(RuntimeError):  # the carrier hears 500
        twilio.post("/twilio/sms", form)
    session.expire_all()
    message = session.scalars(select(Message).where(Message.channel_id == form["MessageSid"])).one()
    assert message.triage is None and message.case_id is not None  # stored all the same

    monkeypatch.undo()
    response = twilio.post("/twilio/sms", form)  # Twilio's redelivery, or a person's retry
    assert response.status_code == 200 and twiml_messages(response.data)
    session.expire_all()
    assert session.get(Message, message.id).triage is not None
    assert count(session, Message) == 2  # the message once, and its answer


@pytest.mark.parametrize("signature, path_signed, token", [
    ("", "/twilio/sms", AUTH_TOKEN),
    ("forged", "/twilio/sms", AUTH_TOKEN),
    (None, "/twilio/sms", "another-account-token"),
    (None, "/twilio/sms?x=1", AUTH_TOKEN),
], ids=["missing", "garbage", "wrong-token", "other-url"])
def test_a_bad_signature_gets_403_and_stores_nothing(twilio, session, signature, path_signed, token):
    form = load_fixture("sms/inbound_plain.json")
    if signature is None:
        signature = twilio.signature(path_signed, form, token=token)
    response = twilio.post("/twilio/sms", form, signature=signature)
    assert response.status_code == 403
    assert count(session, Message) == count(session, Contact) == count(session, Case) == 0


def test_a_tampered_body_fails_the_signature(twilio, session):
    form = load_fixture("sms/inbound_plain.json")
    signature = twilio.signature("/twilio/sms", form)
    response = twilio.post("/twilio/sms", {**form, "Body": "send the refund to my other card"}, signature=signature)
    assert response.status_code == 403
    assert count(session, Message) == 0


@pytest.mark.parametrize("drop, named", [
    (["From"], "From"), (["MessageSid"], "MessageSid"), (["From", "MessageSid"], "MessageSid, From"),
], ids=["no-from", "no-sid", "neither"])
def test_missing_parameters_get_400_with_a_clear_message(twilio, session, drop, named):
    form = {k: v for k, v in load_fixture("sms/inbound_plain.json").items() if k not in drop}
    response = twilio.post("/twilio/sms", form)
    assert response.status_code == 400
    assert named in response.get_data(as_text=True)
    assert count(session, Message) == 0


def test_behind_a_proxy_the_forwarded_public_url_is_verified(app, session):
    environ = {name.upper(): str(value) for name, value in runtime_of(app).settings.model_dump().items()
               if isinstance(value, (str, int, Path)) and value != ""}
    proxied = create_app({"TESTING": True}, environ={**environ, "PUBLIC_BASE_URL": "", "TRUSTED_PROXIES": "1"})
    client = proxied.test_client()
    form = load_fixture("sms/inbound_plain.json")
    signature = RequestValidator(AUTH_TOKEN).compute_signature("https://assist.example.org/twilio/sms", form)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "assist.example.org"}
    signed = {"X-Twilio-Signature": signature, **forwarded}
    assert client.post("/twilio/sms", data=form, headers=signed).status_code == 200
    # The same signature does not pass for the internal URL the proxy called.
    assert client.post("/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}).status_code == 403


def test_a_status_callback_needs_a_signature(twilio, session):
    form = load_fixture("sms/status_delivered.json")
    assert twilio.post("/twilio/sms/status", form, signature="forged").status_code == 403


def test_partially_delivered_is_a_known_status(twilio, session):
    form = {**load_fixture("sms/status_sent.json"), "MessageStatus": "partially_delivered"}
    assert twilio.post("/twilio/sms/status", form).status_code == 204


def test_error_21610_marks_the_contact_opted_out(twilio, session):
    from assist import outbound

    twilio.post("/twilio/sms", load_fixture("sms/inbound_plain.json"))
    case = session.scalars(select(Case)).one()
    reply = outbound.create_reply(session, case, "We are on it.")
    session.commit()
    form = {**load_fixture("sms/status_failed.json"), "ErrorCode": "21610"}
    assert twilio.post(f"/twilio/sms/status?message={reply.id}", form).status_code == 204
    session.expire_all()
    assert session.get(Contact, case.contact_id).opted_out  # they had texted STOP to Twilio


def test_status_callback_with_an_undeclared_status_gets_400(twilio):
    form = {**load_fixture("sms/status_sent.json"), "MessageStatus": "teleported"}
    response = twilio.post("/twilio/sms/status", form)
    assert response.status_code == 400
    assert "teleported" in response.get_data(as_text=True)


# -- keywords through the webhook ------------------------------------------------------------------

def test_help_is_answered_with_help_text_and_pages_nobody(twilio, session, make_user):
    from assist.models import Event, UserRole

    make_user(UserRole.LEAD)
    response = twilio.post("/twilio/sms", load_fixture("sms/keyword_help.json"))
    [reply] = twiml_messages(response.data)
    assert "STOP" in reply.text and "911" in reply.text
    assert count(session, Case) == 0  # carrier bookkeeping, not an incident: no case, no queue
    kinds = {e.kind for e in session.scalars(select(Event))}
    assert "case.lead_alerted" not in kinds and "case.routed" not in kinds


def test_stop_opts_out_and_is_not_answered(twilio, session):
    response = twilio.post("/twilio/sms", load_fixture("sms/keyword_stop.json"))
    assert twiml_messages(response.data) == []
    contact = session.scalars(select(Contact)).one()
    assert contact.opted_out and contact.opted_out_at is not None
    assert count(session, Case) == 0  # opting out is no incident
    # A message after STOP is stored but answered with nothing.
    later = {**load_fixture("sms/inbound_plain.json"), "From": contact.phone}
    assert twiml_messages(twilio.post("/twilio/sms", later).data) == []
    assert session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)).all() == []
    # START opts back in.
    twilio.post("/twilio/sms", load_fixture("sms/keyword_start.json"))
    session.expire_all()
    assert not session.get(Contact, contact.id).opted_out


def test_an_unknown_numbers_reply_and_suggestions_read_right_without_a_name(twilio, session, client, login):
    form = {**load_fixture("sms/inbound_plain.json"), "From": "+15035550777",
            "Body": "I'm terrified, the dog I'm walking just bit me and another dog, there's blood everywhere"}
    [reply] = twiml_messages(twilio.post("/twilio/sms", form).data)
    case = session.scalars(select(Case)).one()
    assert case.contact.name is None
    login(UserRole.LEAD)
    page = html.unescape(client.get(f"/cases/{case.id}").get_data(as_text=True))
    suggestions = re.findall(r'class="suggestion" data-text="([^"]*)"', page)
    assert suggestions[0].startswith("First make sure you're safe.")  # once "there, first make sure you're safe."
    for text in [reply.text, *suggestions]:
        assert text[0].isupper() and not re.search(r"(^|, )there\b(?!')", text, re.IGNORECASE), text
