"""Nothing accepted is dropped: what a commit owes goes through the outbox (assist/outbox.py), so a Redis
that goes away, loses its data or a send cut off after the hand-over delays work and never loses or
repeats it. A Redis server of the test's own is stopped and started again; the database is the app's."""

import shutil
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import redis
from conftest import ACCOUNT_SID, configure, csrf_token, need_service, runtime_of
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from test_email import ANN, TEAM, email, send, sink, smtp_server  # noqa: F401  (fixtures)
from test_routing import run_now

from assist import audit, background, outbox, sandbox
from assist.models import Case, CaseStatus, DeliveryStatus, Direction, Message, OutboxEntry, UserRole
from assist.simulate import free_port, sms_params

pytestmark = pytest.mark.both_databases

CUSTOMER, TEAM_NUMBER = "+15035550123", "+15005550006"


class RedisServer:
    """A redis-server of the test's own, without persistence (as .ci/run starts the shared one)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        """Stop it as a crash or a restart would: nothing it held survives."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(app):
    if shutil.which("redis-server") is None:
        need_service("redis-server (the Debian package redis-server)", FileNotFoundError("redis-server"))
    server = RedisServer()
    server.start()
    configure(app, redis_url=server.url)
    yield server
    runtime_of(app).close_redis()
    server.stop()


def sms(body: str) -> dict:
    return sms_params(from_=CUSTOMER, to=TEAM_NUMBER, body=body, account_sid=ACCOUNT_SID)


def sent_sms(app) -> list[dict]:
    with app.app_context():
        return sandbox.sent_messages(background.connection())


def reply_in_console(client, case_id: int, text: str) -> None:
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    answer = client.post(f"/cases/{case_id}/reply", data={"text": text, "csrf_token": csrf_token(page)})
    assert answer.status_code == 302, answer.get_data(as_text=True)


def test_with_redis_down_contacts_are_answered_and_every_reply_goes_out_once_when_it_returns(
        app, live_server, own_redis, smtp_server, sink, client, login, make_user, session, drain, clock):  # noqa: F811
    lead = make_user(UserRole.LEAD)
    login(UserRole.AGENT)
    own_redis.stop()

    # An SMS: stored, triaged and answered in the webhook's TwiML, though nothing can be queued.
    answer = live_server.post_signed("/twilio/sms", sms("my dog just got hit by a car, he's not moving"))
    assert answer.status_code == 200 and "<Message " in answer.text and "keep your pet warm" in answer.text
    # An email: 250, and the bot's emailed reply is owed.
    assert send(smtp_server, email("Question about my booking", "Can I change the dates of my booking?"))[0] == 250
    sms_case = session.scalars(select(Case).where(Case.contact.has(phone=CUSTOMER))).one()
    email_case = session.scalars(select(Case).where(Case.contact.has(email=ANN))).one()
    # An agent's reply on the email case: accepted by the console.
    reply_in_console(client, email_case.id, "Yes: reply with the new dates and we will move it.")
    session.expire_all()
    owed = session.scalars(select(OutboxEntry).where(OutboxEntry.relayed_at.is_(None))).all()
    assert {e.target for e in owed} >= {"assist.jobs.send_message", "assist.jobs.check_first_response",
                                        "message", "case"}
    assert sink.messages == []

    own_redis.start()
    drain()
    session.expire_all()
    outbound = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND,
                                                     Message.channel == "email")).all()
    assert sorted(m.delivery_status for m in outbound) == [DeliveryStatus.SENT, DeliveryStatus.SENT]
    assert [m["To"] for m in sink.messages] == [ANN, ANN]  # the bot's reply and the agent's, once each
    bodies = [m.get_body(("plain",)).get_content() for m in sink.messages]
    assert sum("new dates and we will move it" in body for body in bodies) == 1
    assert outbox.unrelayed(session) == 0
    drain()  # again: nothing goes out twice
    assert len(sink.messages) == 2

    # The emergency's first-response check was scheduled once Redis came back, for its due time.
    with app.app_context():
        registry = ScheduledJobRegistry(queue=background.queue("critical"))
        [job_id] = registry.get_job_ids()
    assert job_id.startswith(f"sla-{sms_case.id}-")
    clock.set(sms_case.first_response_due_at + timedelta(seconds=1))
    run_now(app, registry, job_id)
    drain()
    session.expire_all()
    escalated = session.get(Case, sms_case.id)
    assert escalated.status == CaseStatus.ESCALATED and escalated.assignee_id == lead.id
    assert escalated.sla_breached_at >= escalated.first_response_due_at
    assert session.get(Case, email_case.id).first_response_at is not None  # the agent's reply answered it


def test_jobs_redis_lost_after_they_were_handed_over_are_relayed_again(app, live_server, own_redis, session,
                                                                      drain, clock):
    answer = live_server.post_signed("/twilio/sms", sms("my dog just got hit by a car, he's not moving"))
    assert answer.status_code == 200
    case = session.scalars(select(Case)).one()
    from assist import cases

    with app.app_context():
        from assist import db

        s = db.session()
        reply = cases.reply(s, s.get(Case, case.id), "We are calling you now.", author=None)
        cases.done(s, s.get(Case, case.id), send=reply)
        reply_id = reply.id
    own_redis.stop()  # a restart without persistence: the send job and the SLA check are gone
    own_redis.start()
    clock.set(clock.now() + outbox.LOST_AFTER + timedelta(seconds=5))
    with app.app_context():
        from assist import db

        assert outbox.recover(db.session()) >= 1
    drain()
    session.expire_all()
    assert session.get(Message, reply_id).delivery_status in (DeliveryStatus.QUEUED, DeliveryStatus.SENT,
                                                              DeliveryStatus.DELIVERED)
    assert [m["body"] for m in sent_sms(app)].count("We are calling you now.") == 1


def test_a_send_whose_commit_fails_after_the_relay_accepted_it_is_not_sent_again(
        app, smtp_server, sink, session, drain, monkeypatch):  # noqa: F811
    assert send(smtp_server, email("Question about my booking", "Can I change the dates of my booking?"))[0] == 250
    real_record = audit.record

    def record(session, kind, **data):  # the database goes away just after the relay said 250
        if kind == "message.sent":
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
        return real_record(session, kind, **data)

    monkeypatch.setattr(audit, "record", record)
    drain()
    session.expire_all()
    [bot_reply] = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)).all()
    assert len(sink.messages) == 1  # handed over once, and never again after the failed commit
    assert bot_reply.delivery_status == DeliveryStatus.UNCONFIRMED
    assert "may have been sent" in bot_reply.error
    assert TEAM in str(sink.messages[0]["From"])


def test_bursts_of_parallel_messages_from_new_numbers_are_all_stored_triaged_and_answered_once(
        app, live_server, session):
    bodies = ["my dog got out of the yard", "she ran off down the street", "please help me find her",
              "she is a small brown terrier", "last seen by the park gate"]
    answers = []
    for burst in range(10):
        number = f"+1503556{burst:04d}"
        params = [sms_params(from_=number, to=TEAM_NUMBER, body=body, account_sid=ACCOUNT_SID) for body in bodies]
        with ThreadPoolExecutor(max_workers=5) as pool:
            answers += list(pool.map(lambda p: live_server.post_signed("/twilio/sms", p), params))
    assert sorted({a.status_code for a in answers}) == [200]
    session.expire_all()
    inbound = session.scalars(select(Message).where(Message.direction == Direction.INBOUND)).all()
    assert len(inbound) == 50 and all(m.triage is not None for m in inbound)
    cases = session.scalars(select(Case)).all()
    assert len(cases) == 10 and len({c.contact_id for c in cases}) == 10
    bot_replies = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND,
                                                        Message.playbook_id.is_not(None))).all()
    per_case = Counter((m.case_id, m.playbook_id) for m in bot_replies)
    assert set(per_case.values()) == {1} and {case_id for case_id, _ in per_case} == {c.id for c in cases}
