"""Nothing accepted is dropped: what a commit owes goes through the outbox (assist/outbox.py), so a Redis
that goes away, loses its data or a send cut off after the hand-over delays work and never loses or
repeats it. A Redis server of the test's own is stopped and started again; the database is the app's."""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller
from conftest import ACCOUNT_SID, configure, csrf_token, need_service, runtime_of, seen_marker
from conftest import test_environment as app_environment
from processes import BASE_ENVIRONMENT, alive, descendants
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from test_email import ANN, TEAM, email, send, sink, smtp_server  # noqa: F401  (fixtures)
from test_routing import run_now

from assist import audit, background, cases, db, outbox, sandbox
from assist.models import Case, CaseStatus, DeliveryStatus, Direction, Message, OutboxEntry, UserRole
from assist.simulate import free_port, sms_params
from assist.triage.labels import QUEUES

pytestmark = pytest.mark.both_databases

CUSTOMER, TEAM_NUMBER = "+15035550123", "+15005550006"
ASSIST = str(Path(sys.executable).with_name("assist"))


class RedisServer:
    """A redis-server of the test's own, without persistence (as .ci/run starts the shared one)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    redis.Redis.from_url(self.url).ping()
                    return
                except redis.ConnectionError:
                    time.sleep(0.05)
            raise AssertionError("redis-server did not start")
        except BaseException:
            self.stop()  # never leave the server behind, whatever stopped the wait
            raise

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


def sms(body: str, sender: str = CUSTOMER) -> dict:
    return sms_params(from_=sender, to=TEAM_NUMBER, body=body, account_sid=ACCOUNT_SID)


def sent_sms(app) -> list[dict]:
    with app.app_context():
        return sandbox.sent_messages(background.connection())


def reply_in_console(client, case_id: int, text: str) -> None:
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    answer = client.post(f"/cases/{case_id}/reply", data={"text": text, "csrf_token": csrf_token(page),
                                                           "seen": seen_marker(page)})
    assert answer.status_code == 302, answer.get_data(as_text=True)


def test_with_redis_down_contacts_are_answered_and_every_reply_goes_out_once_when_it_returns(
        app, live_server, own_redis, smtp_server, sink, client, login, make_user, session, drain, clock):  # noqa: F811
    lead = make_user(UserRole.LEAD)
    login(UserRole.AGENT, queues=list(QUEUES))
    own_redis.stop()

    # An SMS: stored, triaged and answered in the webhook's TwiML, though nothing can be queued.
    answer = live_server.post_signed("/twilio/sms", sms("my dog just got hit by a car, he's not moving"))
    assert answer.status_code == 200 and "<Message " in answer.text and "keep your pet warm" in answer.text
    # An email: 250, stored, and its ingest owed.
    assert send(smtp_server, email("Question about my booking", "Can I change the dates of my booking?"),
                work=False)[0] == 250
    sms_case = session.scalars(select(Case).where(Case.contact.has(phone=CUSTOMER))).one()
    # An agent's reply to another customer's question: accepted by the console.
    other = "+15035550999"
    assert live_server.post_signed("/twilio/sms", sms("how do I change my payout account?", sender=other)).ok
    question = session.scalars(select(Case).where(Case.contact.has(phone=other))).one()
    reply_in_console(client, question.id, "Settings, then Payouts: change it there.")
    session.expire_all()
    owed = session.scalars(select(OutboxEntry).where(OutboxEntry.relayed_at.is_(None))).all()
    assert {e.target for e in owed} >= {"assist.jobs.after_inbound", "assist.mail.ingest_stored",
                                        "assist.jobs.send_message", "case"}
    assert sink.messages == [] and session.scalars(select(Case).where(Case.contact.has(email=ANN))).all() == []

    own_redis.start()
    drain()
    session.expire_all()
    email_case = session.scalars(select(Case).where(Case.contact.has(email=ANN))).one()  # ingested now
    [bot_reply] = session.scalars(select(Message).where(Message.case_id == email_case.id,
                                                        Message.direction == Direction.OUTBOUND)).all()
    assert bot_reply.delivery_status == DeliveryStatus.SENT and [m["To"] for m in sink.messages] == [ANN]
    assert [m["body"] for m in sent_sms(app)] == ["Settings, then Payouts: change it there."]
    assert outbox.unrelayed(session) == 0
    drain()  # again: nothing goes out twice
    assert len(sink.messages) == 1 and len(sent_sms(app)) == 1

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
    assert session.get(Case, question.id).first_response_at is not None  # the agent's reply answered it


def test_jobs_redis_lost_after_they_were_handed_over_are_relayed_again(app, live_server, own_redis, session,
                                                                      drain, clock):
    answer = live_server.post_signed("/twilio/sms", sms("my dog just got hit by a car, he's not moving"))
    assert answer.status_code == 200
    case = session.scalars(select(Case)).one()
    with app.app_context():
        s = db.session()
        reply = cases.reply(s, s.get(Case, case.id), "We are calling you now.", author=None)
        cases.done(s, s.get(Case, case.id), send=reply)
        reply_id = reply.id
    own_redis.stop()  # a restart without persistence: the send job and the SLA check are gone
    own_redis.start()
    clock.set(clock.now() + outbox.LOST_AFTER + timedelta(seconds=5))
    with app.app_context():
        assert outbox.recover(db.session()) >= 1
    drain()
    session.expire_all()
    assert session.get(Message, reply_id).delivery_status in (DeliveryStatus.QUEUED, DeliveryStatus.SENT,
                                                              DeliveryStatus.DELIVERED)
    assert [m["body"] for m in sent_sms(app)].count("We are calling you now.") == 1


def test_a_send_whose_commit_fails_after_the_relay_accepted_it_is_not_sent_again(
        app, smtp_server, sink, session, drain, monkeypatch):  # noqa: F811
    assert send(smtp_server, email("Question about my booking", "Can I change the dates of my booking?"),
                work=False)[0] == 250
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


class SlowRelay:
    """An SMTP relay that takes a while over each message, so a worker can be killed in the middle."""

    def __init__(self, seconds: float):
        self.seconds, self.recipients, self.lock = seconds, [], threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.seconds)
        with self.lock:
            self.recipients += envelope.rcpt_tos
        return "250 OK"


def start_worker(env: dict, cwd) -> subprocess.Popen:
    return subprocess.Popen([ASSIST, "worker"], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_a_killed_worker_leaves_nothing_running_and_the_next_one_sends_every_reply_once(
        app, own_redis, smtp_server, session, database_url, tmp_path):  # noqa: F811
    relay = SlowRelay(0.05)
    controller = Controller(relay, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        customers = [f"customer{i}@example.com" for i in range(50)]
        for i, customer in enumerate(customers):  # 50 cases, each owing the bot's emailed reply
            assert send(smtp_server, email(f"booking question {i}", "Can I move my booking to Friday?",
                                           sender=customer), mail_from=customer, work=False)[0] == 250
        env = {**BASE_ENVIRONMENT, **app_environment(database_url, tmp_path / "instance"),
               "REDIS_URL": own_redis.url, "SMTP_RELAY": f"127.0.0.1:{controller.port}", "TEAM_EMAIL": TEAM}
        first = start_worker(env, tmp_path)
        deadline = time.monotonic() + 60
        while len(relay.recipients) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        started = descendants(first.pid)
        first.kill()  # SIGKILL, mid-queue
        first.wait(timeout=10)
        assert [pid for pid in started if alive(pid)] == []  # no orphaned scheduler or anything else

        second = start_worker(env, tmp_path)
        restarted, done = time.monotonic(), False
        try:
            while time.monotonic() - restarted < 60 and not done:
                time.sleep(0.5)
                session.expire_all()
                statuses = Counter(m.delivery_status for m in session.scalars(
                    select(Message).where(Message.direction == Direction.OUTBOUND)))
                done = statuses[DeliveryStatus.SENT] + statuses[DeliveryStatus.SENDING] == 50 \
                    and statuses[DeliveryStatus.SENDING] <= 1
        finally:
            second.terminate()
            assert second.wait(timeout=30) == 0
        assert done, statuses  # within 60 s of the restart
        sent_twice = [r for r, n in Counter(relay.recipients).items() if n > 1]
        assert sent_twice == []
        # Every reply went out once; at most the one in the relay's hands at the kill is left `sending`:
        # it may have gone out, so it is never sent again (assist.outbox relays it, and the send marks it
        # unconfirmed, once RQ gives the killed worker's job up).
        assert len(relay.recipients) >= 49 and set(relay.recipients) <= set(customers)
    finally:
        controller.stop()


def test_a_job_whose_worker_died_is_relayed_again_and_a_live_workers_is_not(app, session, clock):
    with app.app_context():
        s = db.session()
        entry = outbox.job(s, "assist.jobs.sweep_overdue_cases")
        outbox.commit(s)
        connection = background.connection()
        job = Job.fetch(outbox.rq_job_id(entry), connection=connection)
        job.set_status(JobStatus.STARTED)  # a worker took it...
        job.worker_name = "worker-a"
        job.save()
        clock.set(clock.now() + outbox.LOST_AFTER + timedelta(seconds=1))
        outbox.beat(connection, "worker-a")  # ...and is alive: its job is not lost
        assert outbox.recover(s) == 0
        connection.delete(outbox.ALIVE_KEY.format("worker-a"))  # ...and was killed
        assert outbox.recover(s) == 1
        s.refresh(entry)
        assert entry.relayed_at is None and entry.done_at is None
        assert outbox.relay(s) == 1 and Job.fetch(outbox.rq_job_id(entry), connection=connection).get_status() \
            == JobStatus.QUEUED
        clock.set(clock.now() + outbox.LOST_AFTER + timedelta(seconds=1))
        assert outbox.recover(s) == 0  # waiting in its queue: not lost
        queue = background.queue(entry.queue)
        queue.connection.lrem(queue.key, 0, outbox.rq_job_id(entry))  # taken by a worker that died at once
        assert outbox.recover(s) == 1


@pytest.mark.parametrize("relay_seconds", [8, 2], ids=["job-ends-after-the-outage", "job-ends-during-the-outage"])
def test_the_worker_waits_out_a_redis_outage_in_the_middle_of_a_job_and_works_on(
        app, own_redis, smtp_server, session, database_url, tmp_path, relay_seconds):  # noqa: F811
    relay = SlowRelay(relay_seconds)
    controller = Controller(relay, hostname="127.0.0.1", port=free_port())
    controller.start()
    env = {**BASE_ENVIRONMENT, **app_environment(database_url, tmp_path / "instance"),
           "REDIS_URL": own_redis.url, "SMTP_RELAY": f"127.0.0.1:{controller.port}", "TEAM_EMAIL": TEAM}
    worker = start_worker(env, tmp_path)
    try:
        assert send(smtp_server, email("Question about my booking", "Can I change the dates?"), work=False)[0] == 250
        deadline = time.monotonic() + 30
        while not session.scalars(select(Message).where(Message.delivery_status == DeliveryStatus.SENDING)).all() \
                and time.monotonic() < deadline:  # the worker ingests the mail, then takes the reply's job...
            time.sleep(0.1)
            session.expire_all()
        time.sleep(1)  # ...and the relay is still on it
        own_redis.stop()  # ...when Redis goes away for 4 s: the send ends after it, or in it (RQ cannot record it)
        time.sleep(4)
        assert worker.poll() is None, "the worker exited when Redis went away"
        own_redis.start()
        # Mail arrives after the outage: the same worker sends the bot's reply.
        assert send(smtp_server, email("Another question", "Do you board rabbits?", sender="bo@example.com"),
                    mail_from="bo@example.com", work=False)[0] == 250
        deadline = time.monotonic() + 30
        while "bo@example.com" not in relay.recipients and time.monotonic() < deadline:
            time.sleep(0.2)
        assert relay.recipients.count("bo@example.com") == 1 and relay.recipients.count(ANN) == 1
    finally:
        worker.terminate()
        assert worker.wait(timeout=30) == 0
        controller.stop()


def test_the_worker_stops_when_whoever_started_it_is_killed(app, own_redis, database_url, tmp_path):
    env = {**BASE_ENVIRONMENT, **app_environment(database_url, tmp_path / "instance"), "REDIS_URL": own_redis.url}
    parent = subprocess.Popen(["bash", "-c", f"'{ASSIST}' worker & wait"], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not (workers := descendants(parent.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(3)  # the worker is up
    parent.kill()
    parent.wait(timeout=10)
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:  # leave nothing running, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert workers and not left


def test_a_hand_over_that_fails_after_the_commit_leaves_the_work_to_the_worker(twilio, session, drain, monkeypatch,
                                                                             make_user, clock):
    agent = make_user(queues=["emergency"])
    real_hand_over = outbox._hand_over

    def hand_over(entry, now):
        raise redis.ConnectionError("Redis went away just after the commit")

    monkeypatch.setattr(outbox, "_hand_over", hand_over)
    answer = twilio.post("/twilio/sms", sms("my dog just got hit by a car, he's not moving"))
    assert answer.status_code == 200 and "<Message " in answer.get_data(as_text=True)
    assert outbox.unrelayed(session) == 2  # what follows and the consoles' event: unmarked for the worker's pass
    monkeypatch.setattr(outbox, "_hand_over", real_hand_over)
    drain()
    session.expire_all()
    assert outbox.unrelayed(session) == 0
    assert session.scalars(select(Case)).one().assignee_id == agent.id


def test_work_whose_hand_over_died_with_the_process_is_relayed_once_it_is_overdue(app, twilio, session, drain,
                                                                                  monkeypatch, make_user, clock):
    agent = make_user(queues=["emergency"])
    real_hand_over, real_unmark = outbox._hand_over, outbox._unmark

    def hand_over(entry, now):
        raise redis.ConnectionError("Redis went away just after the commit")

    monkeypatch.setattr(outbox, "_hand_over", hand_over)
    monkeypatch.setattr(outbox, "_unmark", lambda session, ids: None)  # ...and the process died before unmarking
    answer = twilio.post("/twilio/sms", sms("my dog just got hit by a car, he's not moving"))
    assert answer.status_code == 200 and "<Message " in answer.get_data(as_text=True)
    monkeypatch.setattr(outbox, "_hand_over", real_hand_over)
    monkeypatch.setattr(outbox, "_unmark", real_unmark)
    assert outbox.unrelayed(session) == 0  # marked relayed in the commit: only recovery can find it
    with app.app_context():
        assert outbox.recover(db.session()) == 0  # not overdue yet
        clock.advance(outbox.LOST_AFTER.total_seconds() + 1)
        assert outbox.recover(db.session()) == 1
    drain()
    session.expire_all()
    assert session.scalars(select(Case)).one().assignee_id == agent.id
    waiting = {e.target for e in session.scalars(select(OutboxEntry).where(OutboxEntry.done_at.is_(None)))}
    assert waiting == {"assist.jobs.check_first_response"}  # due in 15 minutes
