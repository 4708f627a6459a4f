"""The WSGI apps for gunicorn: `gunicorn assist.wsgi:app` (webhooks, console, API) and `gunicorn --worker-class
gevent assist.wsgi:events_app` (the consoles' live streams, /events).

Each is created when gunicorn first asks for it, so a process builds only its own (and only the web app loads
the triage model).
"""

import sys

from flask import Flask

from assist.errors import ConfigError
from assist.web.app import Part, create_app


def _create(*parts: Part) -> Flask:
    try:
        return create_app(parts=parts)
    except ConfigError as exc:
        # One clear line instead of a traceback; gunicorn stops on a worker's boot error (exit code 3).
        print(f"assist: {exc}", file=sys.stderr)
        raise SystemExit(3) from None


def __getattr__(name: str) -> Flask:
    if name == "app":
        from assist import triage

        app = globals()["app"] = _create("web")
        # Load the triage model when the worker boots, not on the first customer's message (seconds per worker).
        triage.classify("warm up", "sms")
        return app
    if name == "events_app":
        events_app = globals()["events_app"] = _create("events")
        return events_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
