"""Benchmark: the dashboard's service levels over 50,000 cases on PostgreSQL, each page and CSV timed.

Generates CASES cases over the last DAYS days (an inbound message each, in a channel and a category; most
answered by an agent after a bot reply, most with a first-response SLA, many resolved, a few escalated or
reopened), loads them with bulk inserts into a fresh database, then times in-process (Flask's test client, so
without HTTP) each dashboard page and CSV export a lead opens. Target: under a second each.

Usage: .venv/bin/python bench/metrics.py [--cases 50000] [--postgres postgresql://postgres@127.0.0.1:5432/test]
Needs a Redis at REDIS_URL (default redis://127.0.0.1:6379/12, flushed).
tests/test_metrics.py loads a few hundred of these cases and checks every figure against Python's own count.
"""

import argparse
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta

import redis
from scratch import scratch_database, timed  # bench/scratch.py
from sqlalchemy import insert

from assist import db, users
from assist.models import Case, Contact, Event, Message, UserRole
from assist.triage.labels import CATEGORY, QUEUES
from assist.web.app import create_app

PASSWORD = "bench-password-123"
BATCH = 5000
DAYS = 90
CHANNELS = ("sms", "email", "voice")
SLA = {"emergency": 300, "safety": 900}  # seconds to the first response; other queues: an hour


def generate(count: int, now: datetime, agent_ids: list[int], seed: int = 7) -> list[dict]:
    """count cases opened over the DAYS days before now, with what the figures read of each."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        opened = now - timedelta(seconds=rng.randint(60, DAYS * 86400))
        queue = rng.choice(QUEUES)
        answered = opened + timedelta(seconds=rng.randint(20, 7200)) if rng.random() < 0.85 else None
        resolved = opened + timedelta(seconds=rng.randint(600, 3 * 86400)) if answered and rng.random() < 0.6 \
            else None
        if resolved and resolved > now:
            resolved = None
        cases.append({
            "created_at": opened, "queue": queue, "channel": rng.choice(CHANNELS), "category": rng.choice(CATEGORY),
            "first_response_at": answered if answered and answered <= now else None,
            "first_response_due_at": opened + timedelta(seconds=SLA.get(queue, 3600)) if rng.random() < 0.9 else None,
            "resolved_at": resolved, "status": "resolved" if resolved else rng.choice(["new", "open", "pending"]),
            "assignee_id": rng.choice(agent_ids) if agent_ids and rng.random() < 0.8 else None,
            "escalated": rng.random() < 0.05, "reopened": rng.random() < 0.03,
        })
    return cases


def load(session, cases: list[dict]) -> None:
    """Insert the generated cases with their contacts, messages and audit events, in batches."""
    for start in range(0, len(cases), BATCH):
        batch = cases[start:start + BATCH]
        contacts = session.execute(insert(Contact).returning(Contact.id), [
            {"phone": f"+1503{6000000 + start + i:07d}", "opted_out": False, "created_at": c["created_at"]}
            for i, c in enumerate(batch)]).scalars().all()
        case_ids = session.execute(insert(Case).returning(Case.id), [{
            "contact_id": contact_id, "checklist_done": [], "updated_at": c["created_at"],
            **{k: c[k] for k in ("created_at", "queue", "status", "first_response_at", "first_response_due_at",
                                 "resolved_at", "assignee_id")},
        } for contact_id, c in zip(contacts, batch, strict=True)]).scalars().all()
        messages, events = [], []
        for case_id, contact_id, c in zip(case_ids, contacts, batch, strict=True):
            address = "owner@example.com" if c["channel"] == "email" else "+15030000000"
            triage = {"urgency": "normal", "emotion": "neutral", "category": c["category"]}
            common = {"case_id": case_id, "contact_id": contact_id, "channel": c["channel"], "attachments": [],
                      "attempts": 1}
            messages.append({**common, "direction": "inbound", "sender": address, "recipient": "team",
                             "text": "help", "original": "help", "triage": triage, "urgency": "normal",
                             "category": c["category"], "created_at": c["created_at"]})
            messages.append({**common, "direction": "outbound", "sender": "team", "recipient": address,
                             "text": "We are on it.", "original": "We are on it.", "created_at": c["created_at"]})
            if c["first_response_at"]:
                messages.append({**common, "direction": "outbound", "sender": "team", "recipient": address,
                                 "text": "Hello", "original": "Hello", "author_id": c["assignee_id"],
                                 "created_at": c["first_response_at"]})
            events += [{"at": c["created_at"], "kind": kind, "case_id": case_id, "data": {}}
                       for kind, happened in (("case.escalated", c["escalated"]), ("case.reopened", c["reopened"]),
                                              ("case.status", True)) if happened]
        session.execute(insert(Message), messages)
        session.execute(insert(Event), events)
        session.commit()


def measure(app) -> dict[str, float]:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post("/login", data={"email": "lead@bench.test", "password": PASSWORD, "csrf_token": token})

    def ok(path):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.status_code)

    today = datetime.now(UTC).date()
    quarter = f"from={today - timedelta(days=DAYS - 1)}&to={today}"
    pages = {
        "dashboard (last 28 days by day)": "/dashboard/",
        f"dashboard (last {DAYS} days by week)": f"/dashboard/?{quarter}&period=week",
        f"dashboard (last {DAYS} days by day)": f"/dashboard/?{quarter}",
        f"dashboard ({DAYS} days, queue emergency, category pet_health)":
            f"/dashboard/?{quarter}&queue=emergency&category=pet_health",
        f"dashboard ({DAYS} days, channel email)": f"/dashboard/?{quarter}&channel=email",
        "figures partial (the minute's refresh)": "/dashboard/figures",
        f"periods.csv ({DAYS} days by day)": f"/dashboard/export/periods.csv?{quarter}",
        f"agents.csv ({DAYS} days)": f"/dashboard/export/agents.csv?{quarter}",
        "queues.csv": "/dashboard/export/queues.csv",
        "categories.csv": "/dashboard/export/categories.csv",
    }
    return {label: timed(label, lambda path=path: ok(path), runs=5, width=58) for label, path in pages.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    redis.Redis.from_url(redis_url).flushdb()
    with scratch_database(args.postgres, "assist_metrics") as (url, vacuum):
        db.upgrade(url)
        app = create_app(environ={"DATABASE_URL": url, "INSTANCE_PATH": tempfile.mkdtemp(prefix="assist-metrics-"),
                                  "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING", "REDIS_URL": redis_url,
                                  "PUBLIC_BASE_URL": "http://localhost"})
        with app.app_context():
            session = db.session()
            users.create_user(session, email="lead@bench.test", name="Lead", role=UserRole.LEAD, password=PASSWORD)
            agents = [users.create_user(session, email=f"agent{i}@bench.test", name=f"Agent {i:02}",
                                        role=UserRole.AGENT, password=PASSWORD, queues=[QUEUES[i % len(QUEUES)]])
                      for i in range(20)]
            session.flush()
            started = time.perf_counter()
            load(session, generate(args.cases, datetime.now(UTC), [a.id for a in agents]))
            print(f"loaded {args.cases} cases in {time.perf_counter() - started:.0f} s")
        vacuum()
        print(f"{args.cases} cases, PostgreSQL")
        slowest = max(measure(app).values())
        print(f"slowest page {slowest:.0f} ms: {'within' if slowest < 1000 else 'OVER'} the 1 s target")

if __name__ == "__main__":
    main()
