"""The supervisors' figures: queue depth, waits, SLA breaches, volume by day and category, agents' load.

Every figure is an SQL aggregate, and days are UTC days: the database counts, Python only lays out.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import case as when_then
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assist.cases import open_load
from assist.models import OPEN_STATUSES, Case, CsatSurvey, Direction, Message, User
from assist.triage.labels import CATEGORY, QUEUES, URGENCY

DAYS = 7  # the volume charts' window


@dataclass(frozen=True)
class QueueFigures:
    name: str
    depth: int  # open cases
    breached: int  # open cases whose first-response SLA was missed
    oldest_id: int | None  # the open case waiting longest for a first response
    oldest_minutes: int | None


@dataclass(frozen=True)
class Figures:
    queues: list[QueueFigures]
    days: list[date]  # UTC days, oldest first
    by_day: dict[date, dict[str, int]]  # inbound messages per day and urgency
    by_category: list[tuple[str, int]]  # inbound messages per category over the days, in the taxonomy's order
    agents: list[tuple[User, int]]  # active users in a queue or holding cases, with their open cases
    breaches: list[Case]  # open cases that breached their SLA, latest first


def figures(session: Session, now: datetime) -> Figures:
    return Figures(queues=queue_figures(session, now), days=(days := window(now)),
                   by_day=volume_by_day(session, days), by_category=volume_by_category(session, days[0]),
                   agents=agents_load(session), breaches=open_breaches(session))


def window(now: datetime) -> list[date]:
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def queue_figures(session: Session, now: datetime) -> list[QueueFigures]:
    is_open = Case.status.in_(OPEN_STATUSES)
    waiting = is_open & Case.first_response_at.is_(None) & Case.last_inbound_at.is_not(None)
    counts = {queue: (depth, breached or 0) for queue, depth, breached in session.execute(
        select(Case.queue, func.count(Case.id), func.sum(when_then((Case.sla_breached_at.is_not(None), 1), else_=0)))
        .where(is_open).group_by(Case.queue))}
    first = func.row_number().over(partition_by=Case.queue, order_by=(Case.last_inbound_at, Case.id))
    ranked = select(Case.queue, Case.id, Case.last_inbound_at, first.label("n")).where(waiting).subquery()
    oldest = {queue: (case_id, at) for queue, case_id, at in session.execute(
        select(ranked.c.queue, ranked.c.id, ranked.c.last_inbound_at).where(ranked.c.n == 1))}
    result = []
    for queue in QUEUES:
        depth, breached = counts.get(queue, (0, 0))
        case_id, at = oldest.get(queue, (None, None))
        minutes = int((now - at).total_seconds() // 60) if at is not None else None
        result.append(QueueFigures(queue, depth, breached, case_id, minutes))
    return result


def triaged_inbound(since: datetime):
    """Inbound messages triaged since a time: read from ix_messages_volume alone."""
    return (Message.direction == Direction.INBOUND) & (Message.created_at >= since) & Message.urgency.is_not(None)


def volume_by_day(session: Session, days: list[date]) -> dict[date, dict[str, int]]:
    """Inbound messages per UTC day and urgency (day buckets are bounds computed here, so no database's
    own idea of a time zone or a date function enters)."""
    bucket = when_then(*((Message.created_at < _start(day + timedelta(days=1)), i) for i, day in enumerate(days)),
                       else_=None)
    counted = session.execute(select(bucket, Message.urgency, func.count())
                              .where(triaged_inbound(_start(days[0]))).group_by(bucket, Message.urgency))
    by_day = {day: dict.fromkeys(URGENCY, 0) for day in days}
    for index, label, n in counted:
        if index is not None and label in URGENCY:
            by_day[days[index]][label] = n
    return by_day


def volume_by_category(session: Session, first_day: date) -> list[tuple[str, int]]:
    counted = {label: n for label, n in session.execute(
        select(Message.category, func.count()).where(triaged_inbound(_start(first_day))).group_by(Message.category))}
    return [(label, counted.get(label, 0)) for label in CATEGORY]


def agents_load(session: Session) -> list[tuple[User, int]]:
    load = open_load(session)
    return [(u, load.get(u.id, 0)) for u in session.scalars(select(User).where(User.active.is_(True))
                                                                .order_by(User.name))
            if u.queues or load.get(u.id)]


BREACHES_SHOWN = 50


def open_breaches(session: Session) -> list[Case]:
    return list(session.scalars(select(Case).where(Case.status.in_(OPEN_STATUSES), Case.sla_breached_at.is_not(None))
                                .order_by(Case.sla_breached_at.desc()).limit(BREACHES_SHOWN)))


@dataclass(frozen=True)
class Satisfaction:
    """Customer satisfaction of the questions asked over some days, for a queue (None: every queue)."""

    queue: str | None
    asked: int
    answered: int
    average: float | None  # of the scores 1–5; None when nobody answered

    @property
    def response_rate(self) -> float | None:
        """The share of questions answered, 0 to 1; None when none was asked."""
        return self.answered / self.asked if self.asked else None


def satisfaction(session: Session, first: date, last: date) -> list[Satisfaction]:
    """CSAT of the questions asked from UTC day first to last (both included): per queue of their case, in the
    taxonomy's order, then over every queue (the average of all scores, not of the queues' averages)."""
    asked = (CsatSurvey.asked_at >= _start(first)) & (CsatSurvey.asked_at < _start(last + timedelta(days=1)))
    figures = (func.count(CsatSurvey.id), func.count(CsatSurvey.score), func.avg(CsatSurvey.score))
    by_queue = {queue: (n, answered, average) for queue, n, answered, average in session.execute(
        select(Case.queue, *figures).join(Case, CsatSurvey.case_id == Case.id).where(asked).group_by(Case.queue))}
    n, answered, average = session.execute(select(*figures).where(asked)).one()
    queues = [Satisfaction(queue, *_counted(*by_queue.get(queue, (0, 0, None)))) for queue in QUEUES]
    return queues + [Satisfaction(None, *_counted(n, answered, average))]


def _counted(asked: int, answered: int, average) -> tuple[int, int, float | None]:
    return asked, answered, round(float(average), 2) if average is not None else None
