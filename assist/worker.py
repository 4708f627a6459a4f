"""The RQ worker that runs the service's jobs, and the periodic jobs it enqueues."""

import contextlib
import logging
import os
import signal
import threading
import time

import redis
from rq import SimpleWorker
from rq.cron import CronScheduler
from rq.scheduler import RQScheduler
from sqlalchemy.exc import SQLAlchemyError

from assist import background, jobs, outbox, runtime

log = logging.getLogger(__name__)

# (job, queue, seconds between runs): work that heals what a lost job would have done.
PERIODIC = (
    (jobs.sweep_overdue_cases, "critical", 60),
    (jobs.apply_retention, "low", 24 * 3600),
)


class RuntimeWorker(SimpleWorker):
    """Run each job with the service's runtime bound, in this process.

    SimpleWorker (no fork per job) keeps the database pool and the Twilio client warm; each job's
    own scope gives it a fresh database session.
    """

    def __init__(self, *args, runtime: runtime.Runtime, **kwargs):
        super().__init__(*args, **kwargs)
        self.runtime = runtime

    def execute_job(self, job, queue):
        with runtime.bind(self.runtime):
            try:
                return super().execute_job(job, queue)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # The job ran, but Redis went away before RQ could record how it ended (RQ would quit here).
                # What it did is in the database: an outbox entry is done once its job succeeded, and
                # recovery relays a job again that never finished. Wait for Redis and work on.
                log.warning("Redis went away as job %s ended (%s); waiting for it", job.id, type(exc).__name__)
                self._wait_for_redis()
                return None

    def _wait_for_redis(self) -> None:
        while not self._stop_requested:
            try:
                self.connection.ping()
                return
            except redis.RedisError:
                time.sleep(1)


def make_worker(rt: runtime.Runtime) -> RuntimeWorker:
    with runtime.bind(rt):
        return RuntimeWorker(background.queues(), connection=background.connection(), runtime=rt)


def periodic_jobs(connection: redis.Redis) -> CronScheduler:
    """RQ's CronScheduler with the service's periodic jobs registered."""
    cron = CronScheduler(connection=connection, logging_level="WARNING")
    for func, queue_name, interval in PERIODIC:
        cron.register(func, queue_name=queue_name, interval=interval)
    return cron


RELAY_EVERY = 1.0  # seconds between passes of the outbox relay and of the scheduler
RECOVER_EVERY = 30.0  # seconds between looks for relayed jobs that Redis lost


class Ticker(threading.Thread):
    """From a thread of the worker's process: relay the outbox (what commits owe) to Redis, relay again
    what Redis lost, move RQ's scheduled jobs that are due to their queues, and enqueue the periodic jobs.

    RQ's own scheduler runs in a forked child that outlives a killed worker and, after an unclean exit,
    waits up to its maintenance interval (10 minutes) to take the lock over; here it lives and dies with
    the worker, and tries for the lock every second (it is free at most 61 s after its holder died).
    `CronScheduler.start()` wants a process of its own and the main thread's signals; driving its
    `enqueue_jobs()` from here keeps one process per worker. Several workers each do all of it: the relay
    skips rows another holds, one of them holds the scheduler lock, and the sweeps are idempotent. A Redis
    or database outage only delays them.
    """

    def __init__(self, rt: runtime.Runtime, worker: RuntimeWorker, cron: CronScheduler, scheduler: RQScheduler,
                 parent: int | None = None):
        super().__init__(name="periodic-jobs", daemon=True)
        self.rt, self.worker, self.cron, self.scheduler = rt, worker, cron, scheduler
        self.stopped = threading.Event()
        self.parent = parent or os.getppid()  # who started the worker, read as early as the caller could

    def run(self) -> None:
        next_cron = next_recover = 0.0
        while not self.stopped.is_set():
            if os.getppid() != self.parent:  # whoever started the worker (the demo, a supervisor) is gone
                log.warning("the worker's parent process is gone; stopping after the current job")
                os.kill(os.getpid(), signal.SIGTERM)  # RQ's warm shutdown
                return
            now = time.monotonic()
            with contextlib.suppress(redis.RedisError):
                outbox.beat(self.worker.connection, self.worker.name)  # first: its jobs are not lost
            self.relay(recover=now >= next_recover)
            if now >= next_recover:
                next_recover = now + RECOVER_EVERY
            try:
                if not self.scheduler.acquired_locks or self.scheduler.should_reacquire_locks:
                    self.scheduler.acquire_locks()  # take the lock, or the free one of a worker that died
                else:
                    self.scheduler.heartbeat()  # keep ours
                if self.scheduler.acquired_locks:
                    self.scheduler.enqueue_scheduled_jobs()
                if now >= next_cron:
                    self.cron.enqueue_jobs()
                    next_cron = now + max(1.0, self.cron.calculate_sleep_interval())
            except redis.RedisError as exc:
                log.warning("could not move scheduled or periodic jobs (%s); trying again", type(exc).__name__)
            self.stopped.wait(RELAY_EVERY)
        with contextlib.suppress(redis.RedisError):
            self.scheduler.release_locks()

    def relay(self, *, recover: bool) -> None:
        try:
            with runtime.bind(self.rt):
                session = runtime.session()
                if recover:
                    outbox.recover(session)
                outbox.relay(session)
        except (redis.RedisError, SQLAlchemyError) as exc:
            log.warning("outbox relay: %s; trying again", type(exc).__name__)


def run(rt: runtime.Runtime, *, burst: bool = False, logging_level: str = "INFO", parent: int | None = None) -> None:
    """Work the queues until stopped (burst: until they are empty), with the Ticker beside the worker.

    RQ's worker waits for Redis to come back when it goes away (tests/test_reliability.py checks it, a job
    running meanwhile included); a signal, or the Ticker seeing the parent gone, stops it. parent is the pid
    of whoever started the process, read when it started (default: now).
    """
    with runtime.bind(rt):
        outbox.relay(runtime.session())  # what commits owed while no worker ran (burst mode relays only this)
    worker = make_worker(rt)
    if burst:
        worker.work(burst=True, with_scheduler=True, logging_level=logging_level)
        return
    ticker = Ticker(rt, worker, periodic_jobs(worker.connection), RQScheduler(worker.queues, worker.connection),
                    parent)
    ticker.start()
    try:
        worker.work(with_scheduler=False, logging_level=logging_level)
    finally:
        ticker.stopped.set()
