"""The transactional outbox: what a commit owes is written in its own transaction, then handed to Redis.

A change that needs work after it (send a reply, check a case's first response at its due time, tell the
consoles) adds an entry here before its commit, so the work and the change are stored together or not
at all. After the commit the same process relays its entries at once (the fast path); the worker relays
whatever is left every second and re-relays entries whose job Redis lost. Redis being down therefore
delays the work, and never loses it or fails the request that made it.

Jobs run through `run(entry_id)`, which marks the entry done when the job succeeds; the jobs themselves
are idempotent (a send sends once), since a job relayed twice runs twice.
"""

import importlib
import logging
from datetime import datetime, timedelta

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from assist import background, clock, db
from assist.models import OutboxEntry

log = logging.getLogger(__name__)

BATCH = 200  # entries relayed per pass
LOST_AFTER = timedelta(seconds=20)  # a relayed job lost this long (Redis forgot it, its worker died) is relayed again
ALIVE_KEY = "assist:worker-alive:{}"  # set by each live worker every second (assist.worker.Ticker)
ALIVE_FOR = 15  # seconds a worker counts as alive after its last beat (it beats every second)
MAX_RELAYS = 5  # a job that keeps failing in RQ (not a send's own retries) is given up after this many
CREATED = "assist.outbox.created"  # session.info key: the entries this session added


def job(session: Session, target: str, *args, queue: str = "default", at: datetime | None = None,
        job_id: str | None = None, retry: bool = False, by_worker: bool = False) -> OutboxEntry:
    """Owe a job: target (a dotted function name) with args, at `at` (default: now), on an RQ queue.

    `retry` gives it the carrier retry policy (background.send_retry). `by_worker` leaves it to the worker's
    relay pass (within a second) instead of handing it to Redis after the commit.
    """
    entry = OutboxEntry(kind="job", target=target, args=list(args), queue=queue, job_id=job_id, retry=retry,
                        run_at=at or clock.now())
    if by_worker:
        session.add(entry)
        return entry
    return _add(session, entry)


def event(session: Session, kind: str, **data) -> OutboxEntry:
    """Owe a live event for the consoles (assist.events)."""
    return _add(session, OutboxEntry(kind="event", target=kind, args=data, queue="", run_at=clock.now()))


def _add(session: Session, entry: OutboxEntry) -> OutboxEntry:
    session.add(entry)
    session.info.setdefault(CREATED, []).append(entry)
    return entry


def commit(session: Session) -> None:
    """Commit, then hand what this session owes to Redis at once (the fast path).

    The entries are marked relayed in the commit itself, so the fast path costs the database nothing more.
    Entries Redis does not take are unmarked for the worker's next pass; should even that fail (the process
    dies right after the commit, the database goes too), recover() relays them once they are overdue.
    """
    created = session.info.pop(CREATED, [])
    now = clock.now()
    for entry in created:
        entry.relayed_at, entry.relays = now, 1
        if entry.kind == "event":
            entry.done_at = now  # published once; a console that missed it reloads
    session.commit()
    handed = 0
    try:
        for entry in created:
            _hand_over(entry, now)
            handed += 1
    except redis.RedisError as exc:
        log.warning("outbox: Redis is unavailable (%s); the worker relays %s entries", type(exc).__name__,
                    len(created) - handed)
        _unmark(session, [entry.id for entry in created[handed:]])


def _unmark(session: Session, ids: list[int]) -> None:
    try:
        session.execute(update(OutboxEntry).where(OutboxEntry.id.in_(ids))
                        .values(relayed_at=None, done_at=None, relays=0))
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        log.warning("outbox: unmarking after a failed hand-over failed (%s); recovery relays them later",
                    type(exc).__name__)


def relay(session: Session) -> int:
    """Hand due (or scheduled) entries to Redis and mark them relayed; return how many.

    A Redis error stops the pass: what was handed over is marked, the rest waits for the next pass.
    """
    query = (select(OutboxEntry).where(OutboxEntry.relayed_at.is_(None), OutboxEntry.done_at.is_(None))
             .order_by(OutboxEntry.id).limit(BATCH).with_for_update(skip_locked=True))
    entries = session.scalars(query).all()
    now, relayed = clock.now(), 0
    try:
        for entry in entries:
            _hand_over(entry, now)
            entry.relayed_at, entry.relays = now, entry.relays + 1
            if entry.kind == "event":
                entry.done_at = now
            relayed += 1
    except redis.RedisError as exc:
        log.warning("outbox: Redis is unavailable (%s); %s entries wait for the next pass",
                    type(exc).__name__, len(entries) - relayed)
    finally:
        session.commit()
    return relayed


def _hand_over(entry: OutboxEntry, now: datetime) -> None:
    if entry.kind == "event":
        from assist import events

        events.publish(entry.target, **entry.args)
        return
    retry = background.send_retry() if entry.retry else None
    queue = background.queue(entry.queue)
    job_id = rq_job_id(entry)
    if entry.run_at > now:  # RQ waits in real time: the delay by the service's clock (tests set it)
        queue.enqueue_in(entry.run_at - now, "assist.outbox.run", entry.id, job_id=job_id, retry=retry)
    else:
        queue.enqueue("assist.outbox.run", entry.id, job_id=job_id, retry=retry)


def rq_job_id(entry: OutboxEntry) -> str:
    return entry.job_id or f"outbox-{entry.id}"


def run(entry_id: int):
    """The RQ job of an entry: run its target, then mark it done (an exception leaves it to RQ's retries)."""
    session = db.session()
    entry = session.get(OutboxEntry, entry_id)
    if entry is None or entry.done_at is not None:
        return None
    module, _, name = entry.target.rpartition(".")
    func = getattr(importlib.import_module(module), name)
    args = list(entry.args)
    session.commit()  # end the read: the target works in transactions of its own
    result = func(*args)
    session = db.session()
    session.execute(update(OutboxEntry).where(OutboxEntry.id == entry_id).values(done_at=clock.now()))
    session.commit()
    return result


def beat(connection: redis.Redis, worker_name: str) -> None:
    """Say that a worker is alive (its jobs are not lost), for a few seconds."""
    connection.set(ALIVE_KEY.format(worker_name), 1, ex=ALIVE_FOR)


def _lost(job: Job | None, connection: redis.Redis) -> bool:
    """Whether a relayed job will never finish: Redis forgot it, RQ gave it up, or a worker took it and
    died, before starting it (it is "queued" but in no queue) or while running it (a SIGKILL leaves it
    "started" until RQ's own cleanup, minutes later)."""
    if job is None:
        return True
    status = job.get_status()
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        return True
    if status == JobStatus.QUEUED:
        return Queue(job.origin, connection=connection).get_job_position(job.id) is None
    return status == JobStatus.STARTED and not connection.exists(ALIVE_KEY.format(job.worker_name))


def recover(session: Session) -> int:
    """Relay again the jobs Redis lost (a restart without persistence, a flush), that failed in RQ without
    finishing, or whose worker died running them; return how many."""
    now = clock.now()
    stale = session.scalars(
        select(OutboxEntry).where(OutboxEntry.kind == "job", OutboxEntry.done_at.is_(None),
                                  OutboxEntry.relayed_at < now - LOST_AFTER, OutboxEntry.run_at < now - LOST_AFTER)
        .order_by(OutboxEntry.id).limit(BATCH).with_for_update(skip_locked=True)).all()
    again = 0
    connection = background.connection()
    for entry in stale:
        try:
            job: Job | None = Job.fetch(rq_job_id(entry), connection=connection)
        except NoSuchJobError:
            job = None
        if not _lost(job, connection):
            continue  # queued, scheduled, deferred, or running on a live worker
        if entry.relays >= MAX_RELAYS:
            entry.done_at, entry.error = now, f"given up after {entry.relays} relays"
            log.error("outbox entry %s (%s) given up: %s", entry.id, entry.target, entry.error)
            continue
        entry.relayed_at = None
        again += 1
    session.commit()
    if again:
        log.warning("outbox: %s job(s) lost or failed in Redis are relayed again", again)
    return again


def unrelayed(session: Session) -> int:
    """How many entries wait to be handed to Redis."""
    return session.scalar(select(func.count(OutboxEntry.id)).where(OutboxEntry.done_at.is_(None),
                                                                    OutboxEntry.relayed_at.is_(None))) or 0
