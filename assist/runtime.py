"""What the core runs with: the settings, the clock, the database and Redis — bound once per request, job or
command, so the core needs no web framework to find them.

    with runtime.bind(rt):
        ingest.ingest(runtime.session(), message)

The web app binds its runtime whenever an app context is pushed (assist/web/app.py), the worker for each
job, the CLI for each command; a test may bind one of its own.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from assist.clock import SYSTEM, SystemClock
from assist.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    sessions: sessionmaker
    clock: Any = field(default=SYSTEM)  # SystemClock, or a clock a test sets
    url_builder: Any = None  # (endpoint, **values) -> absolute URL of a webhook; set by the web app
    _redis: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def redis(self):
        """The Redis connection, connected (or the embedded Redis started) on first use."""
        if self._redis is None:
            with self._lock:
                if self._redis is None:
                    from assist import background

                    self._redis = background.connect(self.settings)
        return self._redis

    def base_url(self) -> str:
        """The service's public URL outside a request: PUBLIC_BASE_URL, else http://127.0.0.1:<PORT>."""
        return self.settings.public_base_url or f"http://127.0.0.1:{self.settings.port}"

    def url(self, endpoint: str, **values) -> str:
        """The absolute URL of one of the web app's endpoints (the callbacks Twilio calls)."""
        if self.url_builder is None:
            raise RuntimeError("this runtime has no web app to build URLs with")
        return self.url_builder(endpoint, **values)

    def configure(self, **changes) -> None:
        """Change some settings of this runtime (the demo's relay and port; tests), checked as at startup.

        Raises:
            ConfigError: a changed value is invalid.
        """
        self.settings = self.settings.changed(**changes)
        if "redis_url" in changes:  # the next use connects to the new one
            self.close_redis()

    def close(self) -> None:
        """Close the Redis connection (stopping the embedded Redis if this runtime started it) and the
        database's connections."""
        self.close_redis()
        self.sessions.kw["bind"].dispose()

    def close_redis(self) -> None:
        from assist import background

        connection, self._redis = self._redis, None
        if connection is not None:
            background.close(connection)


@dataclass
class _Scope:
    runtime: Runtime
    session: Session | None = None


_scope: ContextVar[_Scope | None] = ContextVar("assist_runtime", default=None)


def current() -> Runtime:
    """The runtime bound here.

    Raises:
        RuntimeError: none is bound (code of the core run outside a request, job or command).
    """
    scope = _scope.get()
    if scope is None:
        raise RuntimeError("no runtime is bound: run this in a request, a job or a command (runtime.bind)")
    return scope.runtime


def bound() -> bool:
    return _scope.get() is not None


def settings() -> Settings:
    return current().settings


def now():
    """The time by the bound runtime's clock (the system clock when none is bound)."""
    scope = _scope.get()
    return (scope.runtime.clock if scope else SystemClock()).now()


def session() -> Session:
    """The database session of this scope (one per request, job or command), opened on first use."""
    scope = _scope.get()
    if scope is None:
        raise RuntimeError("no runtime is bound: run this in a request, a job or a command (runtime.bind)")
    if scope.session is None:
        scope.session = scope.runtime.sessions()
    return scope.session


def push(runtime: Runtime) -> Token:
    """Bind runtime here until pop(token); a new scope with a session of its own."""
    return _scope.set(_Scope(runtime))


def pop(token: Token) -> None:
    scope = _scope.get()
    if scope is not None and scope.session is not None:
        scope.session.close()
    _scope.reset(token)


@contextmanager
def bind(runtime: Runtime) -> Iterator[Runtime]:
    token = push(runtime)
    try:
        yield runtime
    finally:
        pop(token)
