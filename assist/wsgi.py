"""The WSGI app for gunicorn: `gunicorn assist.wsgi:app`."""

import sys

from assist import triage
from assist.errors import ConfigError
from assist.web.app import create_app

try:
    app = create_app()
except ConfigError as exc:
    # One clear line instead of a traceback; gunicorn stops on a worker's boot error (exit code 3).
    print(f"assist: {exc}", file=sys.stderr)
    raise SystemExit(3) from None

# Load the triage model when the worker boots, not on the first customer's message (seconds per worker).
triage.classify("warm up", "sms")
