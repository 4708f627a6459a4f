"""Live console updates: events published on Redis pub/sub, streamed to browsers as server-sent events.

Any process (web, worker) publishes; every web process relays to its own browsers, so updates
reach every console whichever process handled the message.
"""

import json
import logging
import time

from flask import Blueprint, Response, stream_with_context

from assist import queues
from assist.auth import role_required
from assist.models import UserRole

log = logging.getLogger(__name__)

CHANNEL = "console:events"
HEARTBEAT = 15  # seconds between keep-alive comments, so proxies keep the stream open

bp = Blueprint("live", __name__)


def publish(kind: str, **data) -> None:
    """Tell every console something changed (ids only: the browser fetches what it may see)."""
    queues.connection().publish(CHANNEL, json.dumps({"kind": kind, **data}))


@bp.get("/events")
@role_required(UserRole.AGENT)
def events():
    connection = queues.connection()

    @stream_with_context
    def stream():
        pubsub = connection.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(CHANNEL)
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
