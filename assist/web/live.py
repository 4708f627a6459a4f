"""Live console updates: the events of assist.events streamed to browsers as server-sent events.

A stream lasts as long as the console is open, so in production it is served by the `events` process (gevent:
thousands of idle connections each cost a greenlet), never by the web process's threads, which webhooks need.
Each stream relays only the events its user may see (assist.access.event_visible), at most
assist.events.STREAMS_PER_USER at once per user; it ends when the user's login does (logout, idle, deactivation).
"""

import logging
import queue
import time
from collections.abc import Iterator
from datetime import timedelta

from flask import Blueprint, Response, current_app, session
from flask_login import current_user

from assist import access, logins, runtime
from assist import events as live_events
from assist.models import User, UserRole
from assist.web.auth import LOGIN_KEY, role_required

log = logging.getLogger(__name__)

HEARTBEAT = 15  # seconds between keep-alive comments, so proxies keep the stream open and its slot is renewed
RECHECK = 60  # seconds between looks at the login: still open? the user's role and queues now
RETRY = 2000  # milliseconds a browser waits before reconnecting a stream that ended

bp = Blueprint("live", __name__)


@bp.get("/events")
@role_required(UserRole.AGENT)
def events():
    user = current_user._get_current_object()  # the User itself: the stream outlives the request's proxy
    login = session.get(LOGIN_KEY, "")  # the login session the stream lives on (assist/logins.py)
    stream_id = live_events.open_stream(user.id)
    if stream_id is None:
        return Response(f"At most {live_events.STREAMS_PER_USER} live consoles at once: close another tab.\n",
                        429, mimetype="text/plain", headers={"Retry-After": str(HEARTBEAT)})
    rt, relay = runtime.current(), current_app.extensions["live_relay"]
    inbox = relay.listen(user.id)  # before answering, so nothing published from now on is missed

    def close() -> None:
        relay.forget(inbox)
        with runtime.bind(rt):
            live_events.close_stream(user.id, stream_id)

    # The stream runs for hours: it does not keep the request's context, so the database session that loaded
    # the user closes now instead of holding a connection; the user is loaded again every RECHECK seconds.
    response = Response(_relay(rt, user, login, stream_id, inbox), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(close)
    return response


def _relay(rt: runtime.Runtime, user: User, login: str, stream_id: str, inbox: queue.Queue) -> Iterator[str]:
    yield f"retry: {RETRY}\n\n"
    beat = checked = time.monotonic()
    while True:
        try:
            item = inbox.get(timeout=1.0)
        except queue.Empty:
            item = None
        if item == live_events.END:
            log.info("user %s's stream ends (logged out, or Redis went away)", user.id)
            return
        now = time.monotonic()
        if now - checked >= RECHECK:  # before the event is judged: a queue added a moment ago counts for it
            checked = now
            reloaded = _logged_in_user(rt, login)
            if reloaded is None:
                log.info("user %s's login has ended (logout, idle, deactivation): their stream ends", user.id)
                return
            user = reloaded
        if item is not None and access.event_visible(user, item[0]):
            yield _message(*item)
        if now - beat >= HEARTBEAT:
            beat = now
            with runtime.bind(rt):
                live_events.renew_stream(user.id, stream_id)
            yield ": keep-alive\n\n"


def _message(event: dict, data: str) -> str:
    """One server-sent event: named after its kind if only a case page listens to it (assist.events)."""
    if event.get("kind") in live_events.CASE_PAGE_KINDS:
        return f"event: {event['kind']}\ndata: {data}\n\n"
    return f"data: {data}\n\n"


def _logged_in_user(rt: runtime.Runtime, login: str) -> User | None:
    """The user of this login session as the database has them now (detached: role and queues loaded), or None
    once the session has ended (logout, idle timeout) or the user was deactivated. Streaming is not activity:
    the session's last use is left alone."""
    with runtime.bind(rt):
        idle = timedelta(minutes=rt.settings.session_idle_minutes)
        return logins.user_of(runtime.session(), login, runtime.now(), idle)
