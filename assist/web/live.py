"""Live console updates: the events of assist.events streamed to browsers as server-sent events."""

import logging
import time

from flask import Blueprint, Response

from assist import background
from assist import events as live_events
from assist.models import UserRole
from assist.web.auth import role_required

log = logging.getLogger(__name__)

HEARTBEAT = 15  # seconds between keep-alive comments, so proxies keep the stream open

bp = Blueprint("live", __name__)


@bp.get("/events")
@role_required(UserRole.AGENT)
def events():
    connection = background.connection()

    # The stream runs for hours and needs only Redis: it does not keep the request's context, so the
    # database session that loaded the user closes now instead of holding a connection in a transaction.
    def stream():
        pubsub = connection.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(live_events.CHANNEL)
        try:
            yield "retry: 2000\n\n"
            last = time.monotonic()
            while True:
                message = pubsub.get_message(timeout=1.0)
                if message is not None:
                    yield f"data: {message['data'].decode()}\n\n"
                elif time.monotonic() - last > HEARTBEAT:
                    last = time.monotonic()
                    yield ": keep-alive\n\n"
        finally:
            pubsub.close()

    return Response(stream(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
