"""Durations as the console shows them: hours and minutes (h:mm), seconds only under a minute.

console.js ticks the same texts on in the browser; the page renders them first, so they read right before
the script runs and the tests can read them in the HTML.
"""

from datetime import datetime

from flask import Flask


def hours_minutes(seconds: float) -> str:
    """A duration as h:mm ("23:59" for a day less a minute), or "42 s" under a minute."""
    whole = int(abs(seconds))
    if whole < 60:
        return f"{whole} s"
    hours, minutes = divmod(whole // 60, 60)
    return f"{hours}:{minutes:02d}"


def countdown(due: datetime, now: datetime) -> str:
    """Time left until due ("in 0:04"), or past it ("overdue 1:05")."""
    left = (due - now).total_seconds()
    return f"in {hours_minutes(left)}" if left >= 0 else f"overdue {hours_minutes(left)}"


def waited(since: datetime, now: datetime) -> str:
    """How long since a moment, as h:mm."""
    return hours_minutes(max(0.0, (now - since).total_seconds()))


def init_app(app: Flask) -> None:
    app.add_template_filter(countdown, "countdown")
    app.add_template_filter(waited, "waited")
