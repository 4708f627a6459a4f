"""Benchmark: latency of the signed inbound-SMS webhook on a live server (Twilio gives up after 15 s).

Usage: .venv/bin/python bench/webhook.py [--messages N] [--database-url URL]
Runs on a fresh SQLite file unless --database-url names another (empty, migratable) database.
"""

import argparse
import logging
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from assist import db
from assist.simulate import sms_params
from assist.web.app import create_app

TOKEN = "bench-auth-token"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="assist-bench-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
    db.upgrade(url)
    app = create_app(environ={"DATABASE_URL": url, "INSTANCE_PATH": str(folder), "TWILIO_AUTH_TOKEN": TOKEN,
                              "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING"})
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.extensions["runtime"].configure(public_base_url=base)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    validator, http = RequestValidator(TOKEN), requests.Session()
    latencies = {"new case": [], "follow-up": [], "redelivery": []}
    started = time.perf_counter()
    for i in range(args.messages):
        sender = f"+1503555{i // 2:04d}"  # every second message follows up on the first's case
        params = sms_params(from_=sender, to="+15005550006", body=f"message {i} about my dog", account_sid="AC1")
        kind = "new case" if i % 2 == 0 else "follow-up"
        for label in (kind, "redelivery") if i % 10 == 0 else (kind,):
            signature = validator.compute_signature(f"{base}/twilio/sms", params)
            t0 = time.perf_counter()
            response = http.post(f"{base}/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})
            latencies[label].append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.text
    elapsed = time.perf_counter() - started
    server.shutdown()

    print(f"database: {url.split(':')[0]}, {args.messages} messages in {elapsed:.1f} s "
          f"({sum(map(len, latencies.values())) / elapsed:.0f} requests/s, one client)")
    print(f"{'request':<12} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, values in latencies.items():
        values.sort()
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(f"{label:<12} {len(values):>6} {statistics.median(values):>8.1f} {p99:>8.1f} {values[-1]:>8.1f}")


if __name__ == "__main__":
    main()
