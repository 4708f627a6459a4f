"""SMS end to end on real parts: a live server, the real twilio SDK, an RQ worker on the real Redis."""

import xml.etree.ElementTree as ET

import pytest
from conftest import ACCOUNT_SID, TEAM_NUMBER, configure, count, load_fixture, runtime_of
from sqlalchemy import select

from assist import background, cases, outbound, sandbox
from assist.models import Case, Contact, DeliveryStatus, Direction, Event, Message
from assist.simulate import sms_params

CUSTOMER = "+15035550199"


def sms(body: str, sender: str = CUSTOMER) -> dict:
    return sms_params(from_=sender, to=TEAM_NUMBER, body=body, account_sid=ACCOUNT_SID)


def sent(app) -> list[dict]:
    with app.app_context():
        return sandbox.sent_messages(background.connection())


def reply_to_case(app, case_id: int, text: str) -> int:
    with app.app_context():
        from assist import db

        session = db.session()
        case = session.get(Case, case_id)
        message = outbound.create_reply(session, case, text)
        cases.done(session, case, send=message)
        return message.id


def test_signed_sms_to_a_live_server_is_stored_once(live_server, session):
    params = sms("Hi, our sitter Jordan says Fig ate a grape. Is that bad?")
    response = live_server.post_signed("/twilio/sms", params)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    [reply] = list(root)
    assert root.tag == "Response" and reply.tag == "Message"
    assert reply.get("action").startswith(live_server.url + "/twilio/sms/status?message=")
    assert (count(session, Contact), count(session, Case), count(session, Message)) == (1, 1, 2)

    again = live_server.post_signed("/twilio/sms", params)
    assert again.status_code == 200 and again.content == response.content
    assert (count(session, Contact), count(session, Case), count(session, Message)) == (1, 1, 2)

    inbound = session.scalars(select(Message).where(Message.direction == Direction.INBOUND)).one()
    assert inbound.channel_id == params["MessageSid"] and inbound.sender == CUSTOMER


def test_a_redelivery_with_the_same_idempotency_token_stores_nothing(live_server, session):
    params = sms("my dog got out")
    token = "0f6b1e6a-redelivery-token"
    live_server.post_signed("/twilio/sms", params, **{"I-Twilio-Idempotency-Token": token})
    retry = {**params, "MessageSid": "SM" + "9" * 32}
    assert live_server.post_signed("/twilio/sms", retry, **{"I-Twilio-Idempotency-Token": token}).status_code == 200
    assert count(session, Message) == 2  # the first inbound and its reply


def test_forged_and_missing_signatures_get_403_on_the_live_server(live_server, session):
    import requests

    params = sms("hello")
    assert requests.post(live_server.url + "/twilio/sms", data=params, timeout=5).status_code == 403
    forged = requests.post(live_server.url + "/twilio/sms", data=params, timeout=5,
                           headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
    assert forged.status_code == 403
    missing = {k: v for k, v in params.items() if k != "From"}
    assert live_server.post_signed("/twilio/sms", missing).status_code == 400
    assert count(session, Message) == count(session, Contact) == 0


def test_a_follow_up_joins_the_open_case_without_a_second_acknowledgement(live_server, session):
    first = live_server.post_signed("/twilio/sms", sms("sitter never came"))
    second = live_server.post_signed("/twilio/sms", sms("still nobody, it's been an hour"))
    assert len(ET.fromstring(first.content)) == 1
    assert len(ET.fromstring(second.content)) == 0
    assert count(session, Case) == 1


def test_reply_goes_through_the_worker_to_the_twilio_api(app, live_server, drain, session):
    live_server.post_signed("/twilio/sms", sms("sitter never came"))
    case = session.scalars(select(Case)).one()
    message_id = reply_to_case(app, case.id, "Hi, I'm on it: calling Jordan now and lining up a backup sitter.")
    drain()

    [request] = [m for m in sent(app) if m["body"].startswith("Hi, I'm on it")]
    assert request["to"] == CUSTOMER
    assert request["from"] == TEAM_NUMBER
    assert request["status_callback"] == f"{live_server.url}/twilio/sms/status?message={message_id}"
    session.expire_all()
    message = session.get(Message, message_id)
    assert message.channel_id == request["sid"]
    assert message.segments == 1 and message.attempts == 1
    # The sandbox posted Twilio's signed status callbacks; the worker ran them.
    assert message.delivery_status == DeliveryStatus.DELIVERED
    assert message.delivered_at is not None


def test_a_500_from_twilio_is_retried_and_then_marked_failed(app, live_server, drain, session, client, login):
    live_server.post_signed("/twilio/sms", sms("refund please"))
    case = session.scalars(select(Case)).one()
    with app.app_context():
        sandbox.fail_next(background.connection(), 10)  # more than the tries: a lasting outage
    message_id = reply_to_case(app, case.id, "We are looking at the charge now.")
    drain()

    session.expire_all()
    message = session.get(Message, message_id)
    assert message.delivery_status == DeliveryStatus.FAILED
    assert message.attempts == 1 + len(runtime_of(app).settings.send_retry_intervals)
    assert "500" in message.error
    assert sent(app) == []
    failures = session.scalars(select(Event).where(Event.kind == "message.send_failed")).all()
    assert [e.data["final"] for e in failures] == [False, False, True]
    # The agent sees it on the case.
    login(queues=[case.queue])
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "status-failed" in page and "Twilio 500" in page


def test_a_passing_outage_is_retried_until_it_is_sent(app, live_server, drain, session):
    live_server.post_signed("/twilio/sms", sms("refund please"))
    case = session.scalars(select(Case)).one()
    with app.app_context():
        sandbox.fail_next(background.connection(), 1)
    message_id = reply_to_case(app, case.id, "Refund issued.")
    drain()
    session.expire_all()
    message = session.get(Message, message_id)
    assert message.attempts == 2
    assert message.delivery_status == DeliveryStatus.DELIVERED
    assert [m["body"] for m in sent(app)] == ["Refund issued."]


@pytest.mark.parametrize("name, status", [
    ("status_queued.json", DeliveryStatus.QUEUED),
    ("status_sent.json", DeliveryStatus.SENT),
    ("status_delivered.json", DeliveryStatus.DELIVERED),
    ("status_undelivered.json", DeliveryStatus.UNDELIVERED),
    ("status_failed.json", DeliveryStatus.FAILED),
], ids=lambda v: str(v))
def test_a_status_callback_updates_the_delivery_status(live_server, session, name, status):
    live_server.post_signed("/twilio/sms", sms("hello"))
    reply = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)).one()
    form = load_fixture(f"sms/{name}")
    assert live_server.post_signed(f"/twilio/sms/status?message={reply.id}", form).status_code == 204
    session.expire_all()
    reply = session.get(Message, reply.id)
    assert reply.delivery_status == status
    assert reply.channel_id == form["MessageSid"]
    if form.get("ErrorCode"):
        assert form["ErrorCode"] in reply.error


def test_late_status_callbacks_do_not_move_a_message_backwards(live_server, session):
    live_server.post_signed("/twilio/sms", sms("hello"))
    reply = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)).one()
    for name in ("status_delivered.json", "status_sent.json", "status_queued.json"):
        live_server.post_signed(f"/twilio/sms/status?message={reply.id}", load_fixture(f"sms/{name}"))
    session.expire_all()
    assert session.get(Message, reply.id).delivery_status == DeliveryStatus.DELIVERED


def test_after_stop_nothing_is_sent_and_start_restores(app, live_server, drain, session):
    live_server.post_signed("/twilio/sms", sms("the sitter left the gate open"))
    case = session.scalars(select(Case)).one()
    live_server.post_signed("/twilio/sms", sms("STOP"))

    blocked = reply_to_case(app, case.id, "Is everyone safe?")
    drain()
    session.expire_all()
    assert session.get(Message, blocked).delivery_status == DeliveryStatus.SUPPRESSED
    assert sent(app) == []

    start = live_server.post_signed("/twilio/sms", sms("START"))
    assert len(ET.fromstring(start.content)) == 0
    allowed = reply_to_case(app, case.id, "Is everyone safe?")
    drain()
    session.expire_all()
    assert session.get(Message, allowed).delivery_status == DeliveryStatus.DELIVERED
    assert [m["body"] for m in sent(app)] == ["Is everyone safe?"]


def test_a_job_for_a_contact_who_opted_out_after_queueing_sends_nothing(app, live_server, drain, session):
    live_server.post_signed("/twilio/sms", sms("hello"))
    case = session.scalars(select(Case)).one()
    queued = reply_to_case(app, case.id, "Following up on your case.")
    live_server.post_signed("/twilio/sms", sms("STOP"))
    drain()
    session.expire_all()
    assert session.get(Message, queued).delivery_status == DeliveryStatus.SUPPRESSED
    assert sent(app) == []


def test_logs_carry_no_phone_numbers_or_message_text(app, live_server, drain, session, caplog):
    caplog.set_level("DEBUG")
    live_server.post_signed("/twilio/sms", sms("my neighbour threatened me"))
    case = session.scalars(select(Case)).one()
    with app.app_context():
        sandbox.fail_next(background.connection(), 1)
    reply_to_case(app, case.id, "Are you somewhere safe right now?")
    drain(logging_level="DEBUG")
    for logged in ("send of message", "sandbox status callbacks", "sent message"):
        assert logged in caplog.text
    for secret in (CUSTOMER, CUSTOMER[2:], "threatened", "somewhere safe"):
        assert secret not in caplog.text


def test_an_email_reply_without_a_relay_fails_visibly_without_retries(app, session, drain):
    configure(app, smtp_relay="")
    from assist.ingest import ingest
    from channels.message import Channel, InboundMessage

    ingest(session, InboundMessage(channel=Channel.EMAIL, channel_id="<1@example.com>", sender="ann@example.com",
                                   recipient="team@example.com", text="the sitter never came",
                                   original="the sitter never came"))
    case = session.scalars(select(Case)).one()
    message_id = reply_to_case(app, case.id, "We're on it.")
    drain()
    session.expire_all()
    message = session.get(Message, message_id)
    assert message.delivery_status == DeliveryStatus.FAILED and message.attempts == 1
    assert "SMTP_RELAY is not configured" in message.error


def test_the_sandbox_outbox_lists_every_message_sent_with_how_and_its_status(app, live_server, drain, session,
                                                                            client, login, runner):
    import json
    import re

    from assist.simulate import deliver_twiml_replies

    params = sms("sitter never came")
    answer = live_server.post_signed("/twilio/sms", params)
    case = session.scalars(select(Case)).one()
    reply_id = reply_to_case(app, case.id, "Calling the backup sitter now.")
    drain()
    [bot_reply, agent_reply] = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)
                                               .order_by(Message.id)).all()
    listed = json.loads(runner.invoke(args=["sandbox", "outbox", "--json"]).output)
    assert listed["emails"] == []
    newest, oldest = listed["messages"]
    assert (newest["id"], newest["via"], newest["status"]) == (reply_id, "rest", "delivered")
    assert newest["body"] == "Calling the backup sitter now." and newest["carrier_id"].startswith("SM")
    # The bot's first answer went out in the webhook's TwiML, not through the API: it is listed all the same.
    assert (oldest["id"], oldest["via"], oldest["status"], oldest["bot"]) == (bot_reply.id, "twiml", "queued", True)
    assert oldest["body"] == bot_reply.text and oldest["to"] == CUSTOMER

    deliver_twiml_replies(answer.text, params, "test-auth-token-0123456789")  # Twilio delivers it
    session.expire_all()  # the CLI runs in the test's app context, with its session
    assert json.loads(runner.invoke(args=["sandbox", "outbox", "--json"]).output)["messages"][1]["status"] == \
        "delivered"
    text = runner.invoke(args=["sandbox", "outbox"]).output
    assert f"#{agent_reply.id}" in text and "rest" in text and "twiml" in text

    login()
    page = client.get("/sandbox/twilio/").get_data(as_text=True)
    assert re.search(r"<title>Sandbox outbox · Incident team</title>", page)
    rows = re.findall(r"<tr><td[^>]*>(\d+)</td>.*?</tr>", page, re.S)
    assert rows == [str(agent_reply.id), str(bot_reply.id)] and "No email sent yet." in page
    assert "Calling the backup sitter now." in page and bot_reply.text.replace("'", "&#39;") in page


def test_twilio_error_21610_on_a_send_marks_the_contact_opted_out(app, live_server, drain, session):
    live_server.post_signed("/twilio/sms", sms("sitter never came"))
    case = session.scalars(select(Case)).one()
    with app.app_context():
        sandbox.carrier_opt_out(background.connection(), CUSTOMER)
    message_id = reply_to_case(app, case.id, "Calling the backup sitter now.")
    drain()
    session.expire_all()
    message = session.get(Message, message_id)
    assert message.delivery_status == DeliveryStatus.FAILED and "21610" in message.error
    assert session.get(Contact, case.contact_id).opted_out


def post_message(client, **params):
    """A request to the sandbox's fake Twilio Messages API, authenticated as the SDK does it."""
    from base64 import b64encode

    from conftest import AUTH_TOKEN

    credentials = b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    return client.post(f"/sandbox/twilio/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
                       data={"To": CUSTOMER, "From": TEAM_NUMBER, "Body": "hello", **params},
                       headers={"Authorization": f"Basic {credentials}"})


@pytest.mark.parametrize("callback", [
    "http://169.254.169.254/latest/meta-data/",
    "http://localhost:6379/",
    "https://localhost/twilio/sms/status",
    "http://localhost@evil.example/twilio/sms/status",
    "file:///etc/passwd",
], ids=["metadata", "other-port", "other-scheme", "userinfo", "file"])
def test_the_sandbox_refuses_a_status_callback_outside_the_service(app, client, callback):
    answer = post_message(client, StatusCallback=callback)
    assert answer.status_code == 400 and answer.get_json()["code"] == 21609
    with app.app_context():
        assert sandbox.sent_messages(background.connection()) == []
        assert background.queue("low").count == 0  # no callback job


def test_the_sandbox_calls_back_the_service_itself(app, client):
    answer = post_message(client, StatusCallback="http://localhost/twilio/sms/status?message=1")
    assert answer.status_code == 201
    with app.app_context():
        assert background.queue("low").count == 1


def test_the_sandbox_callback_job_never_posts_outside_the_service(app, monkeypatch):
    from assist import jobs, runtime
    from assist.errors import ForeignCallback

    posted = []
    monkeypatch.setattr(jobs.requests, "post", lambda url, **kwargs: posted.append(url))
    with runtime.bind(runtime_of(app)), pytest.raises(ForeignCallback):
        jobs.post_status_callbacks("http://169.254.169.254/latest/meta-data/", {"MessageSid": "SM1"}, ["sent"])
    assert posted == []
