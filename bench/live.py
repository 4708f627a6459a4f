"""Benchmark: from an inbound SMS to the consoles' live event, with 50 messages in flight.

Serves `/twilio/sms` under gunicorn (-w 4) with one `assist worker`, sends MESSAGES unique signed SMS from
50 client threads, and listens on the Redis channel the consoles' `/events` streams relay
(assist.events.CHANNEL). For each message it times the request's start to its "message" event (the worker
publishes it after assigning the case), and the request's start to its TwiML answer. Prints p50/p95/max.

Usage: .venv/bin/python bench/live.py [--messages 1000] [--database-url postgresql+psycopg://…]
Needs a Redis at REDIS_URL (default redis://127.0.0.1:6379/12, flushed).
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests
from sqlalchemy import create_engine, select
from twilio.request_validator import RequestValidator

from assist import db, events
from assist.models import Direction, Message
from assist.settings import SANDBOX_ACCOUNT_SID
from assist.simulate import free_port, sms_params

sys.path.insert(0, str(Path(__file__).parent))
from inbound import BODIES, TOKEN, serve  # the same server settings and messages

ASSIST = str(Path(sys.executable).with_name("assist"))
CLIENTS = 50


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="assist-live-"))
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    url = args.database_url or f"sqlite:///{folder / 'assist.db'}"
    db.upgrade(url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING",
           "INSTANCE_PATH": str(folder), "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": base}
    web = serve("assist.wsgi:app", {**env, "BENCH_CWD": str(folder)}, port, 4)
    worker = subprocess.Popen([ASSIST, "worker"], env=env, cwd=folder, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    heard: dict[int, float] = {}
    listening = threading.Event()

    def listen() -> None:
        pubsub = connection.pubsub()
        pubsub.subscribe(events.CHANNEL)
        listening.set()
        for item in pubsub.listen():
            if item["type"] == "message":
                event = json.loads(item["data"])
                if event.get("kind") == "message":
                    heard.setdefault(event["message_id"], time.monotonic())

    threading.Thread(target=listen, daemon=True).start()
    listening.wait()
    try:
        validator = RequestValidator(TOKEN)
        warm = [sms_params(from_=f"+1503444{i:04d}", to="+15005550006", body="warm up", account_sid=SANDBOX_ACCOUNT_SID)
                for i in range(20)]
        for params in warm:  # every gunicorn worker and the worker's model are loaded
            requests.post(f"{base}/twilio/sms", data=params, timeout=30,
                          headers={"X-Twilio-Signature": validator.compute_signature(f"{base}/twilio/sms", params)})
        time.sleep(5)
        sent: dict[str, tuple[float, float]] = {}

        def one(i: int) -> None:
            params = sms_params(from_=f"+1503555{i:04d}", to="+15005550006", body=BODIES[i % len(BODIES)],
                                account_sid=SANDBOX_ACCOUNT_SID)
            signature = validator.compute_signature(f"{base}/twilio/sms", params)
            started = time.monotonic()
            answer = requests.post(f"{base}/twilio/sms", data=params, headers={"X-Twilio-Signature": signature},
                                   timeout=60)
            answer.raise_for_status()
            sent[params["MessageSid"]] = (started, time.monotonic())

        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(one, range(args.messages)))
        deadline = time.monotonic() + 300
        engine = create_engine(url)
        with engine.connect() as c:
            ids = dict(c.execute(select(Message.channel_id, Message.id)
                                 .where(Message.direction == Direction.INBOUND,
                                        Message.channel_id.in_(list(sent)))).all())
        while len([i for i in ids.values() if i in heard]) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for process in (web, worker):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    answers = [(done - start) * 1000 for start, done in sent.values()]
    live = [(heard[ids[sid]] - start) * 1000 for sid, (start, _) in sent.items() if ids.get(sid) in heard]
    where = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"{args.messages} unique signed SMS from {CLIENTS} clients; gunicorn -w 4 and one assist worker on {where}")
    print(f"TwiML answer   p50 {statistics.median(answers):8.1f} ms  p95 {percentile(answers, 0.95):8.1f} ms  "
          f"max {max(answers):8.1f} ms")
    print(f"live event     p50 {statistics.median(live):8.1f} ms  p95 {percentile(live, 0.95):8.1f} ms  "
          f"max {max(live):8.1f} ms  ({len(live)} of {len(sent)} heard)")


if __name__ == "__main__":
    main()
