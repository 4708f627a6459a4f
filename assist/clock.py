"""The service's clock: every "what time is it" asks it, so tests can set the time.

The runtime holds one clock (assist.runtime); now() reads the bound runtime's, or the system clock.
"""

import threading
import time
from datetime import UTC, datetime, timedelta


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SetClock:
    """A clock that reads a set time and runs on from it at the real pace (tests set and advance it).

    It keeps running so that rows written one after another keep their order.
    """

    def __init__(self, at: datetime):
        self._lock = threading.Lock()
        self.set(at)

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("set the clock to a timezone-aware time")
        with self._lock:
            self._at, self._started = at.astimezone(UTC), time.monotonic()

    def advance(self, seconds: float) -> None:
        self.set(self.now() + timedelta(seconds=seconds))

    def now(self) -> datetime:
        with self._lock:
            return self._at + timedelta(seconds=time.monotonic() - self._started)


SYSTEM = SystemClock()


def now() -> datetime:
    """The current time in UTC by the bound runtime's clock (the system clock when none is bound)."""
    from assist import runtime  # runtime imports this module

    return runtime.now()
