"""Benchmark: `/twilio/sms` beside a minimal honest SMS webhook, in one run, under the same gunicorn and load.

The anchor is what any correct webhook must do at least: a Flask view that checks X-Twilio-Signature with
twilio's RequestValidator, inserts the message once into SQLite (WAL) and answers MessagingResponse TwiML.
Both run under `gunicorn -w 4` and get `wrk -t2 -c50` of unique signed messages (a fifth of them
follow-ups from a sender seen before). Prints req/s, p50, p99 and errors for each, and the ratio.

Usage: .venv/bin/python bench/inbound.py [--seconds 15] [--database-url postgresql+psycopg://…]
Needs wrk (apt-get install wrk) and a Redis at REDIS_URL (default redis://127.0.0.1:6379/12, flushed).
"""

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests
from twilio.request_validator import RequestValidator

from assist import db
from assist.settings import SANDBOX_ACCOUNT_SID
from assist.simulate import free_port, sms_params

TOKEN = "bench-auth-token"
ACCOUNT = SANDBOX_ACCOUNT_SID
HERE = Path(__file__).parent
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))

ANCHOR_APP = '''
import os, sqlite3
from flask import Flask, request, abort
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

app = Flask(__name__)
validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
DB = os.environ["ANCHOR_DB"]

def connection():
    c = sqlite3.connect(DB, timeout=15)
    c.execute("PRAGMA journal_mode=WAL")
    return c

with connection() as c:
    c.execute("CREATE TABLE IF NOT EXISTS messages (sid TEXT PRIMARY KEY, sender TEXT, body TEXT)")

@app.post("/twilio/sms")
def sms():
    url = os.environ["PUBLIC_BASE_URL"] + "/twilio/sms"
    if not validator.validate(url, request.form, request.headers.get("X-Twilio-Signature", "")):
        abort(403)
    with connection() as c:
        c.execute("INSERT OR IGNORE INTO messages VALUES (?, ?, ?)",
                  (request.form["MessageSid"], request.form["From"], request.form.get("Body", "")))
    reply = MessagingResponse()
    reply.message("Thanks, we have your message.")
    return str(reply), 200, {"Content-Type": "text/xml"}
'''

WRK_SCRIPT = '''
local lines, at, step = {}, 0, 1
function setup(thread)
  counter = (counter or 0) + 1
  thread:set("first", counter)
end
function init(args)
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do lines[#lines + 1] = line end
  at, step = first, 2
end
function request()
  local line = lines[at]
  at = at + step
  if at > #lines then at = first end
  local signature, body = line:match("([^\\t]*)\\t(.*)")
  return wrk.format("POST", "/twilio/sms", {["Content-Type"] = "application/x-www-form-urlencoded",
                                              ["X-Twilio-Signature"] = signature}, body)
end
'''

BODIES = ["my dog got out of the yard", "the sitter never came this morning", "I was charged twice for the walk",
          "our cat is hiding and will not eat", "can I change my booking to Friday?", "thanks, all sorted now"]


def requests_file(folder: Path, base: str, count: int) -> Path:
    """Unique signed messages: a fifth are follow-ups from a sender seen before."""
    rng, validator, senders = random.Random(7), RequestValidator(TOKEN), []
    path = folder / "requests.tsv"
    with path.open("w") as out:
        for i in range(count):
            sender = rng.choice(senders) if senders and rng.random() < 0.2 else f"+1503{5550000 + i:07d}"
            senders.append(sender)
            params = sms_params(from_=sender, to="+15005550006", body=rng.choice(BODIES), account_sid=ACCOUNT)
            body = "&".join(f"{k}={requests.utils.quote(v, safe='')}" for k, v in params.items())
            out.write(f"{validator.compute_signature(base + '/twilio/sms', params)}\t{body}\n")
    return path


def serve(app: str, env: dict, port: int, workers: int) -> subprocess.Popen:
    process = subprocess.Popen([GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "60",
                                "--log-level", "warning", app], env=env, cwd=env.get("BENCH_CWD"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except requests.RequestException:
            time.sleep(0.5)
    raise SystemExit(f"{app} did not start")


def load(port: int, path: Path, seconds: int) -> dict:
    script = path.with_suffix(".lua")
    script.write_text(WRK_SCRIPT)
    out = subprocess.run(["wrk", "-t2", "-c50", f"-d{seconds}s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}"], env={**os.environ, "BENCH_REQUESTS": str(path)},
                         capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: .*", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": ms("50%"), "p99": ms("99%"),
            "errors": int(errors.group(1)) if errors else 0, "socket": socket_errors.group(0) if socket_errors else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--database-url")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="assist-inbound-"))
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    redis.Redis.from_url(redis_url).flushdb()
    results = {}
    for name in ("anchor", "assist"):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        path = requests_file(folder, base, 40_000)
        env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": base, "BENCH_CWD": str(folder)}
        if name == "anchor":
            (folder / "anchor.py").write_text(ANCHOR_APP + "\n@app.get('/healthz')\ndef healthz():\n    return 'ok'\n")
            env.update(ANCHOR_DB=str(folder / "anchor.db"), PYTHONPATH=str(folder))
            process = serve("anchor:app", env, port, args.workers)
        else:
            url = args.database_url or f"sqlite:///{folder / 'assist.db'}"
            db.upgrade(url)
            env.update(DATABASE_URL=url, REDIS_URL=redis_url, SECRET_KEY="bench", INSTANCE_PATH=str(folder),
                       LOG_LEVEL="WARNING")  # sandbox mode: TwiML answers need no Twilio account
            process = serve("assist.wsgi:app", env, port, args.workers)
        try:
            results[name] = load(port, path, args.seconds)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    where = "PostgreSQL" if args.database_url and args.database_url.startswith("postgres") else "SQLite"
    print(f"gunicorn -w {args.workers}, wrk -t2 -c50 -d{args.seconds}s, unique signed SMS (20% follow-ups); "
          f"assist on {where}")
    for name, r in results.items():
        print(f"{name:<8} {r['rps']:>8.1f} req/s  p50 {r['p50']:>8.1f} ms  p99 {r['p99']:>8.1f} ms  "
              f"non-2xx {r['errors']}  {r['socket']}")
    print(f"assist / anchor throughput: {results['assist']['rps'] / results['anchor']['rps']:.0%}")


if __name__ == "__main__":
    main()
