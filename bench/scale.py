"""Benchmark: the pages and the webhook as the data grows, on PostgreSQL.

Loads CASES cases (two messages and two events each, a third of them open) into a fresh database with
bulk inserts, then times in-process (Flask's test client, so without HTTP): the supervisors' dashboard,
the agents' queue page, the first page of /api/cases, and one signed inbound SMS. It times each on the
empty database first, then on the loaded one.

Usage: .venv/bin/python bench/scale.py [--cases 100000] [--postgres postgresql://postgres@127.0.0.1:5432/test]
Needs a Redis at REDIS_URL (default redis://127.0.0.1:6379/12, flushed).
"""

import argparse
import os
import random
import signal
import subprocess
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
import requests
from inbound import serve  # bench/inbound.py: gunicorn, up once /healthz answers
from scratch import scratch_database, timed  # bench/scratch.py
from sqlalchemy import insert
from twilio.request_validator import RequestValidator

from assist import db, tokens, users
from assist.models import Case, Contact, Event, Message, UserRole
from assist.settings import SANDBOX_ACCOUNT_SID
from assist.simulate import free_port, sms_params
from assist.triage.labels import CATEGORY, QUEUES, URGENCY
from assist.web.app import create_app

TOKEN = "bench-auth-token"
PASSWORD = "bench-password-123"
BATCH = 5000


def load(session, count: int, now: datetime) -> None:
    rng = random.Random(11)
    for start in range(0, count, BATCH):
        size = min(BATCH, count - start)
        contacts = session.execute(insert(Contact).returning(Contact.id), [
            {"phone": f"+1503{6000000 + start + i:07d}", "opted_out": False, "created_at": now} for i in range(size)
        ]).scalars().all()
        cases = session.execute(insert(Case).returning(Case.id), [{
            "contact_id": contact_id, "status": rng.choice(["new", "open", "pending"] + ["resolved"] * 6),
            "queue": rng.choice(QUEUES), "priority": rng.randint(1, 4), "urgency": rng.choice(URGENCY),
            "created_at": now - timedelta(minutes=rng.randint(1, 60 * 24 * 30)), "updated_at": now,
            "first_response_due_at": now - timedelta(minutes=rng.randint(-60, 600)), "checklist_done": [],
        } for contact_id in contacts]).scalars().all()
        messages = []
        for case_id, contact_id in zip(cases, contacts, strict=True):
            at = now - timedelta(minutes=rng.randint(1, 60 * 24 * 7))
            triage = {"urgency": rng.choice(URGENCY), "emotion": "neutral", "category": rng.choice(CATEGORY)}
            messages += [
                {"case_id": case_id, "contact_id": contact_id, "direction": "inbound", "channel": "sms",
                 "channel_id": "SM" + uuid.uuid4().hex, "sender": "+15030000000", "recipient": "+15005550006",
                 "text": "my dog got out", "original": "my dog got out", "triage": triage, "attachments": [],
                 "urgency": triage["urgency"], "category": triage["category"],
                 "attempts": 0, "created_at": at},
                {"case_id": case_id, "contact_id": contact_id, "direction": "outbound", "channel": "sms",
                 "sender": "+15005550006", "recipient": "+15030000000", "text": "We are on it.",
                 "original": "We are on it.", "attachments": [], "delivery_status": "delivered", "attempts": 1,
                 "created_at": at},
            ]
        session.execute(insert(Message), messages)
        session.execute(insert(Event), [{"at": now, "kind": kind, "case_id": case_id, "data": {}}
                                        for case_id in cases for kind in ("case.opened", "message.received")])
        session.commit()
        print(f"  loaded {start + size} cases", flush=True)


def measure(app, counter: list[int]) -> dict:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post("/login", data={"email": "boss@bench.test", "password": PASSWORD, "csrf_token": token})
    api = {"Authorization": f"Bearer {app.config['BENCH_TOKEN']}"}
    validator = RequestValidator(TOKEN)

    def sms():
        counter[0] += 1
        params = sms_params(from_=f"+1971{counter[0]:07d}", to="+15005550006", body="the sitter never came",
                            account_sid=SANDBOX_ACCOUNT_SID)
        signature = validator.compute_signature("http://localhost/twilio/sms", params)
        assert client.post("/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}).status_code == 200

    def ok(path, **kwargs):
        answer = client.get(path, **kwargs)
        assert answer.status_code == 200, (path, answer.status_code)

    return {"dashboard": timed("dashboard", lambda: ok("/dashboard/"), runs=7),
            "queue page": timed("queue page", lambda: ok("/"), runs=7),
            "api first page": timed("/api/cases (first page)", lambda: ok("/api/cases", headers=api), runs=7),
            "webhook": timed("one inbound SMS", sms, runs=30)}


def served_rss(url: str, redis_url: str, folder: Path, token: str, api_pages: int) -> None:
    """One gunicorn worker serving the loaded database: its resident memory before and after the pages
    (the dashboard and the queue page ten times each, and api_pages pages of /api/cases by cursor)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING",
           "INSTANCE_PATH": str(folder), "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": base}
    server = serve("assist.wsgi:app", {**env, "BENCH_CWD": str(folder)}, port, 1)
    try:
        browser = requests.Session()
        page = browser.get(f"{base}/login", timeout=30).text
        [worker] = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        before = rss_mb(int(worker))
        csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        browser.post(f"{base}/login", data={"email": "boss@bench.test", "password": PASSWORD, "csrf_token": csrf})
        for _ in range(10):
            browser.get(f"{base}/dashboard/").raise_for_status()
            browser.get(f"{base}/").raise_for_status()
        following, pages = f"{base}/api/cases?limit=200", 0
        while following and pages < api_pages:
            answer = requests.get(following, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            answer.raise_for_status()
            following, pages = answer.links.get("next", {}).get("url"), pages + 1
        print(f"\none gunicorn worker: {before:.0f} MB resident after boot, {rss_mb(int(worker)):.0f} MB after "
              f"20 pages and {pages} pages of /api/cases (200 cases each)")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--api-pages", type=int, default=100, help="pages of /api/cases the served worker walks")
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    redis.Redis.from_url(redis_url).flushdb()
    with scratch_database(args.postgres, "assist_scale") as (url, vacuum):
        db.upgrade(url)
        folder = Path(tempfile.mkdtemp(prefix="assist-scale-"))
        app = create_app(environ={"DATABASE_URL": url, "INSTANCE_PATH": str(folder), "TWILIO_AUTH_TOKEN": TOKEN,
                                  "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING", "REDIS_URL": redis_url,
                                  "PUBLIC_BASE_URL": "http://localhost"})
        with app.app_context():
            session = db.session()
            boss = users.create_user(session, email="boss@bench.test", name="Boss", role=UserRole.SUPERVISOR,
                                     password=PASSWORD, queues=list(QUEUES))
            _, app.config["BENCH_TOKEN"] = tokens.issue(session, boss, name="bench")
            session.commit()
        counter = [0]
        print("empty database")
        empty = measure(app, counter)
        with app.app_context():
            print(f"loading {args.cases} cases")
            session = db.session()
            load(session, args.cases, datetime.now(UTC))
            session.commit()
        vacuum()
        print(f"{args.cases} cases")
        full = measure(app, counter)
        print("\nwith the data / empty:")
        for key in empty:
            print(f"  {key:<16} {full[key] / empty[key]:.1f}×  ({empty[key]:.1f} → {full[key]:.1f} ms)")
        served_rss(url, redis_url, folder, app.config["BENCH_TOKEN"], args.api_pages)


if __name__ == "__main__":
    main()
