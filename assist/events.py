"""Live events: what changed, published on Redis pub/sub for the consoles (assist/web/live.py relays them).

Any process (web, worker) publishes; every events process relays to its own browsers (one subscription each,
Relay), each only what its user may see, so updates reach every console whichever process handled the message.

A user holds at most STREAMS_PER_USER streams at once, counted in Redis across every events process: each
stream holds a slot, a lease renewed while it runs, so the slots of a process that died free themselves.
"""

import contextlib
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable

import redis

from assist import background

log = logging.getLogger(__name__)

# Pub/sub ignores the Redis database (SELECT): every channel name carries it, so services sharing one Redis server
# on databases of their own (or two test workers) never hear each other's events.
CHANNEL = "console:{db}:events"
USER_CHANNEL = "console:{db}:user:"  # + a user's id: the channel that tells their streams to end
STREAMS_PER_USER = 5  # open consoles (tabs) one user may have live at once
STREAM_LEASE = 60  # seconds a stream's slot lasts unless renewed


# Events only an open case page listens to (who is on it, a delivery status): the stream names them (the "event:"
# field of server-sent events), so the queue, which refreshes its rows on every unnamed event, ignores them.
CASE_PAGE_KINDS = frozenset({"viewers", "delivery"})


def publish(kind: str, **data) -> None:
    """Tell the consoles something changed (ids, and the case's queue and assignee, which decide who may see it:
    assist.access.event_visible); the browser fetches what it may see."""
    connection = background.connection()
    connection.publish(channel(connection), json.dumps({"kind": kind, **data}))


def channel(connection: redis.Redis) -> str:
    """The events channel of the database connection uses."""
    return CHANNEL.format(db=_database(connection))


def user_channel(connection: redis.Redis, user_id: int) -> str:
    return USER_CHANNEL.format(db=_database(connection)) + str(user_id)


def _database(connection: redis.Redis) -> int:
    return int(connection.connection_pool.connection_kwargs.get("db") or 0)


def end_streams(user_id: int) -> None:
    """End the open streams of a user (logged out): each ends at once, wherever it runs."""
    connection = background.connection()
    connection.publish(user_channel(connection, user_id), "end")


def _slots(user_id: int) -> str:
    return f"console:streams:{user_id}"


def open_stream(user_id: int) -> str | None:
    """Take one of the user's stream slots; return its id, or None when the user has STREAMS_PER_USER open."""
    connection, key, stream_id, now = background.connection(), _slots(user_id), uuid.uuid4().hex, time.time()
    with connection.pipeline() as pipe:  # MULTI/EXEC: the count includes this slot and no other newcomer's
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zadd(key, {stream_id: now + STREAM_LEASE})
        pipe.zcard(key)
        pipe.expire(key, STREAM_LEASE)
        _, _, taken, _ = pipe.execute()
    if taken > STREAMS_PER_USER:  # two racing for the last slot may both be refused: never one too many
        connection.zrem(key, stream_id)
        return None
    return stream_id


def renew_stream(user_id: int, stream_id: str) -> None:
    connection, key = background.connection(), _slots(user_id)
    with connection.pipeline() as pipe:
        pipe.zadd(key, {stream_id: time.time() + STREAM_LEASE})
        pipe.expire(key, STREAM_LEASE)
        pipe.execute()


def close_stream(user_id: int, stream_id: str) -> None:
    background.connection().zrem(_slots(user_id), stream_id)


END = "end"  # what a listener of Relay receives when its stream must end


class Relay:
    """The live events of one process's streams: one Redis subscription, shared by every stream while any
    listens (a stream's own subscription would cost a Redis connection per open console).

    Each listener gets a queue of (event, its JSON) and END when its user logged out or Redis went away (the
    browser reconnects). The subscription ends with the last listener.
    """

    QUEUED = 1000  # events a stream may have waiting; beyond, a stuck client misses some (each means "refresh")
    SUBSCRIBE_TIMEOUT = 5  # seconds the first listener waits for the subscription

    def __init__(self, connection: Callable[[], redis.Redis]):
        self._connection = connection
        self._lock = threading.Lock()
        self._listeners: dict[queue.Queue, int] = {}  # a stream's queue -> its user's id
        self._running = False
        self._subscribed = threading.Event()  # set once the running thread's subscription is made (or failed)

    def listen(self, user_id: int) -> queue.Queue:
        """A queue of the events from now on for a stream of user_id; forget() it when the stream ends."""
        inbox: queue.Queue = queue.Queue(maxsize=self.QUEUED)
        with self._lock:
            self._listeners[inbox] = user_id
            if not self._running:
                self._running, self._subscribed = True, threading.Event()
                threading.Thread(target=self._run, args=(self._subscribed,), name="live-relay", daemon=True).start()
            subscribed = self._subscribed
        subscribed.wait(self.SUBSCRIBE_TIMEOUT)  # so nothing published once the stream is answered is missed
        return inbox

    def forget(self, inbox: queue.Queue) -> None:
        with self._lock:
            self._listeners.pop(inbox, None)

    def _run(self, subscribed: threading.Event) -> None:
        try:
            # A connection of its own: the runtime closing its client (as the demo exits) must not pull the
            # socket from under this thread while it reads.
            shared = self._connection().connection_pool
            own = type(shared)(connection_class=shared.connection_class, **shared.connection_kwargs)
            with contextlib.closing(own), redis.Redis(connection_pool=own) as client, \
                    client.pubsub(ignore_subscribe_messages=True) as pubsub:
                events, users = channel(client), USER_CHANNEL.format(db=_database(client))
                pubsub.subscribe(events)
                pubsub.psubscribe(f"{users}*")
                subscribed.set()
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    with self._lock:
                        if not self._listeners:
                            self._running = False
                            return
                        listeners = list(self._listeners.items())
                    if message is not None:
                        self._hand_out(message, listeners, events, users)
        except redis.RedisError as exc:
            log.warning("live events: Redis failed (%s); the streams end and their browsers reconnect", exc)
            with self._lock:
                listeners, self._running = list(self._listeners.items()), False
                self._listeners.clear()
            for inbox, _ in listeners:
                _offer(inbox, END)
        finally:
            subscribed.set()

    @staticmethod
    def _hand_out(message: dict, listeners: list[tuple[queue.Queue, int]], events: str, users: str) -> None:
        name = message["channel"].decode()
        if name == events:
            data = message["data"].decode()
            item = (json.loads(data), data)
            for inbox, _ in listeners:
                _offer(inbox, item)
        else:
            for inbox, user_id in listeners:
                if name == f"{users}{user_id}":
                    _offer(inbox, END)


def _offer(inbox: queue.Queue, item) -> None:
    try:
        inbox.put_nowait(item)
    except queue.Full:
        if item == END:  # the end matters more than any event waiting
            with contextlib.suppress(queue.Empty):
                inbox.get_nowait()
            with contextlib.suppress(queue.Full):
                inbox.put_nowait(END)
