"""The service levels a lead reports upward: per day or week of a date range, filtered by queue, category and
channel; and per agent.

A case counts in the period it was opened (UTC days; weeks start on Monday). Its category and channel are those
of its first inbound message, since triage labels messages, not cases. Time to first response runs from the case's
opening to first_response_at, which only a person sets (an agent's reply going out, a call answered): the bot never
counts. Every figure is computed by the database. Percentiles are PostgreSQL's percentile_cont (production's
database); SQLite has no ordered-set aggregates, so there the same interpolation between the two nearest ranks is
computed with window functions, and both give the same figures.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, Integer, Select, SQLColumnExpression, cast, extract, func, literal, select
from sqlalchemy import case as when_then
from sqlalchemy.orm import Session

from assist.cases import open_load
from assist.models import Case, CaseStatus, Direction, Event, Message, User

PERIODS = ("day", "week")
MAX_PERIODS = 92  # buckets in one range: a quarter by day, or close to two years by week
PERIOD_DAYS = {"day": 1, "week": 7}
FIRST_MESSAGE_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class Filters:
    """What the lead chose: a range of UTC days (both included), a period, and optionally one queue, category or
    channel."""

    start: date
    end: date
    period: str = "day"
    queue: str | None = None
    category: str | None = None
    channel: str | None = None

    def periods(self) -> list[date]:
        """The first day of each period of the range, oldest first (a week starts on its Monday)."""
        first = self.start - timedelta(days=self.start.weekday()) if self.period == "week" else self.start
        step = timedelta(days=PERIOD_DAYS[self.period])
        return [first + step * i for i in range((self.end - first) // step + 1)]


@dataclass(frozen=True)
class Levels:
    """The service levels of a set of cases; durations in seconds (to the millisecond), None when no case had
    one."""

    cases: int = 0
    first_response_median: float | None = None
    first_response_p90: float | None = None
    resolution_median: float | None = None
    sla_met: int = 0  # first human response before first_response_due_at
    sla_due: int = 0  # cases whose first-response SLA has come due (or that were answered)
    escalations: int = 0  # cases escalated at least once
    reopened: int = 0  # resolved cases opened again (the customer wrote, or an agent reopened them)

    @property
    def sla_attainment(self) -> float | None:
        return self.sla_met / self.sla_due if self.sla_due else None


@dataclass(frozen=True)
class AgentLevels:
    user: User
    levels: Levels  # the cases they hold that were opened in the range
    open_cases: int  # their load now


@dataclass(frozen=True)
class Metrics:
    filters: Filters
    periods: list[tuple[date, Levels]]
    total: Levels
    agents: list[AgentLevels] = field(default_factory=list)


def metrics(session: Session, filters: Filters, now: datetime) -> Metrics:
    starts = filters.periods()
    by_period = levels(session, filters, now, _period_index(starts))
    return Metrics(filters, [(start, by_period.get(i, Levels())) for i, start in enumerate(starts)],
                   levels(session, filters, now, literal(0)).get(0, Levels()), agent_levels(session, filters, now))


def agent_levels(session: Session, filters: Filters, now: datetime) -> list[AgentLevels]:
    """Every active user who holds cases of the range or has a queue, with their load now."""
    by_agent = levels(session, filters, now, Case.assignee_id)
    load = open_load(session)
    users = session.scalars(select(User).where(User.active.is_(True)).order_by(User.name, User.id))
    return [AgentLevels(u, by_agent.get(u.id, Levels()), load.get(u.id, 0)) for u in users
            if u.queues or u.id in by_agent or load.get(u.id)]


def levels(session: Session, filters: Filters, now: datetime, key: SQLColumnExpression) -> dict:
    """The service levels of the chosen cases, grouped by key (a column or expression over cases)."""
    dialect = session.get_bind().dialect.name
    facts = _facts(filters, now, key, dialect).subquery()
    counts = select(facts.c.key, func.count(), func.sum(facts.c.met), func.sum(facts.c.due),
                    func.sum(facts.c.escalated), func.sum(facts.c.reopened)).group_by(facts.c.key)
    if dialect == "postgresql":  # percentile_cont is an aggregate like the counts: one pass over the cases
        rows = session.execute(counts.add_columns(*(func.percentile_cont(p).within_group(value) for p, value in (
            (0.5, facts.c.first_response), (0.9, facts.c.first_response), (0.5, facts.c.resolution)))))
        figures: dict = {row[0]: (row[1:6], row[6:]) for row in rows}  # key, five counts, three durations
    else:
        first_response = _ranked_percentiles(session, facts, facts.c.first_response, (0.5, 0.9))
        resolution = _ranked_percentiles(session, facts, facts.c.resolution, (0.5,))
        figures = {k: (counted, [*first_response.get(k, (None, None)), *resolution.get(k, (None,))])
                   for k, *counted in session.execute(counts)}
    return {k: _levels(counted, durations) for k, (counted, durations) in figures.items()
            if k is not None}  # None: the cases nobody holds, grouped by agent


def _levels(counted, durations) -> Levels:
    n, met, due, escalated, reopened = (int(c) for c in counted)
    median, p90, resolution = (None if d is None else _to_millisecond(d) for d in durations)
    return Levels(n, median, p90, resolution, met, due, escalated, reopened)


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _period_index(starts: list[date]) -> ColumnElement:
    """The index of the period a case was opened in (bounds computed here, so no database's idea of a time zone or
    a date function enters)."""
    if len(starts) == 1:
        return literal(0)
    return when_then(*((Case.created_at < _start(start), i - 1) for i, start in enumerate(starts[1:], 1)),
                     else_=len(starts) - 1)


def _seconds(later, earlier, dialect: str) -> ColumnElement:
    if dialect == "postgresql":
        return extract("epoch", later - earlier)
    # SQLite keeps a julian day to the millisecond, and its float shows a few microseconds off: rounded back
    return func.round((func.julianday(later) - func.julianday(earlier)) * 86400, 3)


def _facts(filters: Filters, now: datetime, key: SQLColumnExpression, dialect: str) -> Select:
    """One row per chosen case: its group key and what the figures add up."""
    first_response = Case.first_response_at
    due = Case.first_response_due_at
    came_due = due.is_not(None) & (first_response.is_not(None) | (due <= now))

    def audited(kind: str) -> ColumnElement:
        """1 if the audit trail has kind for the case: one read of ix_events_kind_case, hashed, for all cases."""
        return when_then((Case.id.in_(select(Event.case_id).where(Event.kind == kind)), 1), else_=0)

    query = select(
        key.label("key"),
        _seconds(first_response, Case.created_at, dialect).label("first_response"),
        when_then((Case.status == CaseStatus.RESOLVED, _seconds(Case.resolved_at, Case.created_at, dialect)),
                  else_=None).label("resolution"),
        when_then((came_due & (first_response <= due), 1), else_=0).label("met"),
        when_then((came_due, 1), else_=0).label("due"),
        audited("case.escalated").label("escalated"),
        audited("case.reopened").label("reopened"),
    ).where(Case.created_at >= _start(filters.start), Case.created_at < _start(filters.end + timedelta(days=1)))
    if filters.queue:
        query = query.where(Case.queue == filters.queue)
    if filters.category or filters.channel:
        # A case's first message arrived as it was opened (stored a moment before it, at most): a day's margin
        # lets the index on (direction, created_at) bound the messages read.
        first_inbound = (select(Message.case_id, func.min(Message.id).label("id"))
                         .where(Message.direction == Direction.INBOUND,
                                Message.created_at >= _start(filters.start) - FIRST_MESSAGE_MARGIN)
                         .group_by(Message.case_id).subquery())
        query = (query.join(first_inbound, first_inbound.c.case_id == Case.id)
                 .join(Message, Message.id == first_inbound.c.id))
        if filters.category:
            query = query.where(Message.category == filters.category)
        if filters.channel:
            query = query.where(Message.channel == filters.channel)
    return query


def _ranked_percentiles(session: Session, facts, value, ps: tuple[float, ...]) -> dict:
    """The percentiles ps of value per key, as percentile_cont gives them (interpolated between the two nearest
    ranks), for a database without it."""
    ranked = select(facts.c.key, value.label("value"),
                    (func.row_number().over(partition_by=facts.c.key, order_by=value) - 1).label("rank"),
                    func.count().over(partition_by=facts.c.key).label("n")).where(value.is_not(None)).subquery()
    return {k: tuple(values) for k, *values in session.execute(
        select(ranked.c.key, *(_interpolated(ranked, p) for p in ps)).group_by(ranked.c.key))}


def _to_millisecond(seconds) -> float:
    """Seconds as both databases give them alike (an interpolation's float is off in its last digits)."""
    return round(float(seconds), 3)


def _interpolated(ranked, p: float) -> ColumnElement:
    position = p * (ranked.c.n - 1)
    lower = cast(position, Integer)  # rounds down: the position is never negative
    weight = position - lower
    return func.sum(when_then((ranked.c.rank == lower, ranked.c.value * (1 - weight)),
                              (ranked.c.rank == lower + 1, ranked.c.value * weight), else_=0))
