"""The RQ worker that runs the service's jobs, and the periodic jobs it enqueues."""

import logging
import threading
import time

import redis
from rq import SimpleWorker
from rq.cron import CronScheduler
from sqlalchemy.exc import SQLAlchemyError

from assist import background, jobs, outbox, runtime

log = logging.getLogger(__name__)

# (job, queue, seconds between runs): work that heals what a lost job would have done.
PERIODIC = (
    (jobs.sweep_overdue_cases, "critical", 60),
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
            return super().execute_job(job, queue)


def make_worker(rt: runtime.Runtime) -> RuntimeWorker:
    with runtime.bind(rt):
        return RuntimeWorker(background.queues(), connection=background.connection(), runtime=rt)


def periodic_jobs(connection: redis.Redis) -> CronScheduler:
    """RQ's CronScheduler with the service's periodic jobs registered."""
    cron = CronScheduler(connection=connection, logging_level="WARNING")
    for func, queue_name, interval in PERIODIC:
        cron.register(func, queue_name=queue_name, interval=interval)
    return cron


RELAY_EVERY = 1.0  # seconds between passes of the outbox relay
RECOVER_EVERY = 30.0  # seconds between looks for relayed jobs that Redis lost


class Ticker(threading.Thread):
    """From a thread of the worker's process: relay the outbox (what commits owe) to Redis, relay again
    what Redis lost, and enqueue the periodic jobs when they are due.

    RQ's `CronScheduler.start()` wants a process of its own and the main thread's signals; driving
    its `enqueue_jobs()` from here keeps one process per worker. Several workers each do all of it:
    the relay skips rows another holds, and the sweeps are idempotent. A Redis or database outage only
    delays them.
    """

    def __init__(self, rt: runtime.Runtime, cron: CronScheduler):
        super().__init__(name="periodic-jobs", daemon=True)
        self.rt, self.cron = rt, cron
        self.stopped = threading.Event()

    def run(self) -> None:
        next_cron = next_recover = 0.0
        while not self.stopped.is_set():
            now = time.monotonic()
            self.relay(recover=now >= next_recover)
            if now >= next_recover:
                next_recover = now + RECOVER_EVERY
            if now >= next_cron:
                try:
                    self.cron.enqueue_jobs()
                    next_cron = now + max(1.0, self.cron.calculate_sleep_interval())
                except redis.RedisError as exc:
                    log.warning("could not enqueue the periodic jobs (%s); trying again", type(exc).__name__)
            self.stopped.wait(RELAY_EVERY)

    def relay(self, *, recover: bool) -> None:
        try:
            with runtime.bind(self.rt):
                session = runtime.session()
                if recover:
                    outbox.recover(session)
                outbox.relay(session)
        except (redis.RedisError, SQLAlchemyError) as exc:
            log.warning("outbox relay: %s; trying again", type(exc).__name__)


def run(rt: runtime.Runtime, *, burst: bool = False, logging_level: str = "INFO") -> None:
    """Work the queues with RQ's scheduler (and, unless burst, the periodic jobs) until stopped."""
    worker = make_worker(rt)
    with runtime.bind(rt):
        outbox.relay(runtime.session())  # what commits owed while no worker ran (burst mode relays only this)
    ticker = None if burst else Ticker(rt, periodic_jobs(worker.connection))
    if ticker is not None:
        ticker.start()
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
    finally:
        if ticker is not None:
            ticker.stopped.set()
