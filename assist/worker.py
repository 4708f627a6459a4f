"""The RQ worker that runs the service's jobs, and the periodic jobs it enqueues."""

import logging
import threading

import redis
from rq import SimpleWorker
from rq.cron import CronScheduler

from assist import background, jobs, runtime

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


class Ticker(threading.Thread):
    """Enqueue the periodic jobs when they are due, from a thread of the worker's process.

    RQ's `CronScheduler.start()` wants a process of its own and the main thread's signals; driving
    its `enqueue_jobs()` from here keeps one process per worker. Several workers each enqueue the
    sweeps, which are idempotent. A Redis outage only delays them.
    """

    def __init__(self, cron: CronScheduler):
        super().__init__(name="periodic-jobs", daemon=True)
        self.cron = cron
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.cron.enqueue_jobs()
            except redis.RedisError as exc:
                log.warning("could not enqueue the periodic jobs (%s); trying again", type(exc).__name__)
            self.stopped.wait(max(1.0, self.cron.calculate_sleep_interval()))


def run(rt: runtime.Runtime, *, burst: bool = False, logging_level: str = "INFO") -> None:
    """Work the queues with RQ's scheduler (and, unless burst, the periodic jobs) until stopped."""
    worker = make_worker(rt)
    ticker = None if burst else Ticker(periodic_jobs(worker.connection))
    if ticker is not None:
        ticker.start()
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
    finally:
        if ticker is not None:
            ticker.stopped.set()
