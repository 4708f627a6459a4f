"""Benchmark: `assist smtp` beside a durable SMTP sink, in one run, under the same load.

The sink is what any SMTP server that never loses mail must do at least: an aiosmtpd server that appends
each message to a spool file and fsyncs it before answering 250. Both get the same load: unique messages,
one per SMTP session, from THREADS client threads (smtplib). Prints messages per second, p50 and p99 of a
whole session for each, and the ratio; then starts `assist worker` and times how long it takes to ingest
(parse, triage, route, answer) every message `assist smtp` accepted.

Usage: .venv/bin/python bench/smtp.py [--messages 600] [--threads 8] [--database-url postgresql+psycopg://…]
Needs a Redis at REDIS_URL (default redis://127.0.0.1:6379/12, flushed).
"""

import argparse
import os
import random
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import redis
from sqlalchemy import create_engine, func, select

from assist import db
from assist.models import RawEmail
from assist.simulate import free_port

TEAM = "incidents@incident-team.test"
ASSIST = str(Path(sys.executable).with_name("assist"))

SINK = '''
import asyncio, os, signal, sys
from aiosmtpd.controller import Controller

class Spool:
    def __init__(self, path):
        self.file = open(path, "ab")

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        await asyncio.get_running_loop().run_in_executor(None, self.store, data)
        return "250 2.0.0 Message accepted"

    def store(self, data):
        self.file.write(len(data).to_bytes(8, "big") + data)
        self.file.flush()
        os.fsync(self.file.fileno())  # durable before 250

controller = Controller(Spool(sys.argv[2]), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
controller.stop()
'''

BODIES = ["My dog got out of the yard this morning and we can't find her.",
          "The sitter never came today and my cat has not been fed.",
          "I was charged twice for last week's walks, can you refund one?",
          "Can I change my booking to Friday instead of Thursday?",
          "Our sitter sent a photo of a cut on Bella's paw, should we see a vet?"]


def mails(count: int) -> list[tuple[str, bytes]]:
    rng = random.Random(3)
    out = []
    for i in range(count):
        sender = f"owner{i}@example.com"
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = f"Owner {i} <{sender}>", TEAM, f"Question {i}"
        message["Message-ID"] = make_msgid(domain="example.com")
        message.set_content(f"{rng.choice(BODIES)}\n\nThanks,\nOwner {i}\n")
        out.append((sender, bytes(message)))
    return out


def wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on {port} exited with {process.returncode}")
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=2) as session:
                session.noop()
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"nothing answered on port {port}")


def load(port: int, messages: list[tuple[str, bytes]], threads: int) -> dict:
    def one(item):
        sender, raw = item
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as session:
            session.sendmail(sender, [TEAM], raw)
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        times = sorted(pool.map(one, messages))
    elapsed = time.perf_counter() - started
    return {"rate": len(messages) / elapsed, "p50": statistics.median(times) * 1000,
            "p99": times[int(len(times) * 0.99) - 1] * 1000}


def measure(command: list[str], env: dict | None, folder: Path, port: int, args: argparse.Namespace) -> dict:
    """Start an SMTP server, load it once it answers, stop it; the load's figures."""
    server = subprocess.Popen(command, env=env, cwd=folder, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, server)
        return load(port, mails(args.messages), args.threads)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="assist-smtp-"))
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    redis.Redis.from_url(redis_url).flushdb()
    url = args.database_url or f"sqlite:///{folder / 'assist.db'}"
    db.upgrade(url)
    results = {}

    (folder / "sink.py").write_text(SINK)
    port = free_port()
    results["durable sink"] = measure([sys.executable, str(folder / "sink.py"), str(port), str(folder / "spool")],
                                      None, folder, port, args)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "SECRET_KEY": "bench",
           "INSTANCE_PATH": str(folder), "LOG_LEVEL": "WARNING", "SMTP_LISTEN": f"127.0.0.1:{port}",
           "TEAM_EMAIL": TEAM}
    results["assist smtp"] = measure([ASSIST, "smtp"], env, folder, port, args)

    where = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"{args.messages} unique messages, one per SMTP session, {args.threads} client threads; assist on {where}")
    for name, r in results.items():
        print(f"{name:<13} {r['rate']:>7.1f} msg/s  session p50 {r['p50']:>7.1f} ms  p99 {r['p99']:>7.1f} ms")
    print(f"assist smtp / durable sink: {results['assist smtp']['rate'] / results['durable sink']['rate']:.0%}")

    engine = create_engine(url)
    started = time.perf_counter()
    worker = subprocess.Popen([ASSIST, "worker"], env=env, cwd=folder, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # no SMTP_RELAY here: each reply's send fails, logged
    try:
        with engine.connect() as connection:
            while connection.scalar(select(func.count()).where(RawEmail.message_id.is_(None))) > 0:
                if time.perf_counter() - started > 600:
                    raise SystemExit("the worker did not ingest everything in 10 minutes")
                time.sleep(0.5)
                connection.commit()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    elapsed = time.perf_counter() - started
    print(f"assist worker ingested all {args.messages} in {elapsed:.1f} s from its start "
          f"({args.messages / elapsed:.1f} msg/s, model loading included)")


if __name__ == "__main__":
    main()
