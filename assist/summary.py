"""The leadership summary: one page on a period — volumes against the period before, every critical incident
with its one-line brief and SLA outcome, the SLA misses and their causes, the risks open now.

Days are the business time zone's (BUSINESS_TIMEZONE): a lead reports the team's week, not UTC's. Customers'
names, phone numbers, email and street addresses are left out unless asked for (scrub)."""

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from assist import routing
from assist.errors import BadPeriod
from assist.models import OPEN_STATUSES, Call, Case, DeliveryStatus, Direction, Event, Message, Note, User
from assist.settings import Settings
from assist.triage.labels import CATEGORY, QUEUES

LONGEST_PERIOD = 366  # days
BRIEF_LENGTH = 160  # characters of an incident's one-line brief
RISKS_LISTED = 10  # case numbers named per open risk
FAILED_SENDS = (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)


@dataclass(frozen=True)
class Period:
    """Whole days first..last of the business time zone, and the UTC instants that bound them."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=self.zone).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=self.zone).astimezone(UTC)

    def before(self) -> "Period":
        """The period of the same length that ends the day before this one starts."""
        length = timedelta(days=self.days)
        return Period(self.first - length, self.last - length, self.zone)

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.zone)


def period(first: date, last: date, zone: str) -> Period:
    """The days first..last (both included) in zone.

    Raises:
        BadPeriod: last is before first, or the period is longer than LONGEST_PERIOD days.
    """
    if last < first:
        raise BadPeriod(f"the period ends ({last}) before it starts ({first})")
    if (last - first).days + 1 > LONGEST_PERIOD:
        raise BadPeriod(f"the period is longer than {LONGEST_PERIOD} days")
    return Period(first, last, ZoneInfo(zone))


@dataclass(frozen=True)
class Trend:
    label: str
    now: int  # this period
    before: int  # the period of the same length before it

    @property
    def change(self) -> int:
        return self.now - self.before


@dataclass(frozen=True)
class Incident:
    case_id: int
    opened_at: datetime  # in the business time zone
    queue: str
    category: str | None
    status: str
    handled_by: str | None  # the agent holding it (staff: named)
    sla: str  # its first response against its target
    brief: str  # one line, scrubbed unless names were asked for
    contact: str | None  # the customer's name and address, only when asked for


@dataclass(frozen=True)
class Miss:
    case_id: int
    queue: str
    urgency: str | None
    due_at: datetime  # in the business time zone
    outcome: str
    cause: str


@dataclass(frozen=True)
class Summary:
    period: Period
    previous: Period
    with_names: bool
    cases: Trend
    inbound: Trend  # inbound messages
    by_queue: list[Trend]
    by_category: list[Trend]
    incidents: list[Incident]
    misses: list[Miss]
    risks: list[str]
    made_at: datetime  # in the business time zone


def build(session: Session, settings: Settings, chosen: Period, now: datetime, *, with_names: bool = False) -> Summary:
    """Gather the summary of the chosen period, its risks as they stand at now."""
    previous = chosen.before()
    return Summary(
        period=chosen, previous=previous, with_names=with_names,
        cases=Trend("cases opened", _cases_opened(session, chosen), _cases_opened(session, previous)),
        inbound=Trend("messages received", _inbound(session, chosen), _inbound(session, previous)),
        by_queue=_trends(QUEUES, _cases_by_queue(session, chosen), _cases_by_queue(session, previous)),
        by_category=_trends(CATEGORY, _cases_by_category(session, chosen), _cases_by_category(session, previous)),
        incidents=incidents(session, chosen, now, with_names=with_names),
        misses=misses(session, settings, chosen, now),
        risks=open_risks(session, now),
        made_at=chosen.local(now))


def _opened_in(chosen: Period):
    return (Case.created_at >= chosen.start) & (Case.created_at < chosen.end)


def _cases_opened(session: Session, chosen: Period) -> int:
    return session.scalar(select(func.count(Case.id)).where(_opened_in(chosen))) or 0


def _inbound(session: Session, chosen: Period) -> int:
    return session.scalar(select(func.count(Message.id)).where(
        Message.direction == Direction.INBOUND, Message.created_at >= chosen.start,
        Message.created_at < chosen.end)) or 0


def _cases_by_queue(session: Session, chosen: Period) -> Counter:
    return Counter(dict(session.execute(select(Case.queue, func.count(Case.id)).where(_opened_in(chosen))
                                        .group_by(Case.queue)).all()))


def _first_triaged(since: datetime):
    """Each case's first triaged inbound message since a time: the one whose category the case is counted under
    (a case opened in a period has no message before the period starts)."""
    return (select(Message.case_id, func.min(Message.id).label("message_id"))
            .where(Message.direction == Direction.INBOUND, Message.created_at >= since, Message.category.is_not(None))
            .group_by(Message.case_id).subquery())


def _cases_by_category(session: Session, chosen: Period) -> Counter:
    first = _first_triaged(chosen.start)
    return Counter(dict(session.execute(
        select(Message.category, func.count(Case.id)).join(first, first.c.case_id == Case.id)
        .join(Message, Message.id == first.c.message_id).where(_opened_in(chosen)).group_by(Message.category)).all()))


def _trends(labels: tuple[str, ...], now: Counter, before: Counter) -> list[Trend]:
    """One trend per label, in the taxonomy's order; a queue a playbook added comes after those."""
    others = sorted((now.keys() | before.keys()) - set(labels))
    return [Trend(label, now[label], before[label]) for label in (*labels, *others)]


def incidents(session: Session, chosen: Period, now: datetime, *, with_names: bool) -> list[Incident]:
    """Every case opened in the period that was critical, oldest first."""
    found = session.scalars(select(Case).where(_opened_in(chosen), Case.urgency == "critical")
                            .options(selectinload(Case.messages), selectinload(Case.contact))
                            .order_by(Case.created_at, Case.id))
    return [Incident(case_id=case.id, opened_at=chosen.local(case.created_at), queue=case.queue,
                     category=category_of(case), status=case.status.value,
                     handled_by=case.assignee.name if case.assignee else None, sla=sla_outcome(case, now),
                     brief=one_line_brief(session, case, with_names=with_names),
                     contact=_contact_of(case) if with_names else None)
            for case in found]


def category_of(case: Case) -> str | None:
    return next((m.category for m in case.messages if m.direction == Direction.INBOUND and m.category), None)


def _contact_of(case: Case) -> str:
    contact = case.contact
    return " · ".join(part for part in (contact.name, contact.phone, contact.email) if part)


def sla_outcome(case: Case, now: datetime) -> str:
    """The case's first response against its target, in words."""
    due, answered = case.first_response_due_at, case.first_response_at
    if due is None:
        return "no first-response target"
    if answered is not None:
        minutes = _minutes(answered - case.created_at)
        if answered <= due and case.sla_breached_at is None:
            return f"met: first response in {minutes} min"
        return f"missed: first response in {minutes} min, {_minutes(answered - due)} min late"
    if case.sla_breached_at is not None or (case.is_open and now >= due):
        return "missed: no first response" + ("" if case.is_open else " before it was resolved")
    return "pending: first response due" if case.is_open else "resolved before a first response was due"


def _minutes(span: timedelta) -> int:
    return max(0, round(span.total_seconds() / 60))


def misses(session: Session, settings: Settings, chosen: Period, now: datetime) -> list[Miss]:
    """The cases opened in the period whose first response came late or not at all, with a cause each."""
    late = Case.first_response_at > Case.first_response_due_at
    unanswered = Case.first_response_at.is_(None) & Case.status.in_(OPEN_STATUSES) & \
        (Case.first_response_due_at <= now)
    found = list(session.scalars(
        select(Case).where(_opened_in(chosen), Case.first_response_due_at.is_not(None),
                           Case.sla_breached_at.is_not(None) | late | unanswered)
        .options(selectinload(Case.messages)).order_by(Case.first_response_due_at, Case.id)))
    return [Miss(case_id=case.id, queue=case.queue, urgency=case.urgency,
                 due_at=chosen.local(case.first_response_due_at), outcome=sla_outcome(case, now),
                 cause=miss_cause(session, settings, case, now))
            for case in found if case.first_response_due_at is not None]


def miss_cause(session: Session, settings: Settings, case: Case, now: datetime) -> str:
    """Why the first response came late, from what the records show: a reply that failed to send, a call
    nobody took, the agent who had it, or nobody to give it to."""
    deadline = case.first_response_at or now
    failed = next((m for m in case.messages if m.direction == Direction.OUTBOUND and m.author_id is not None
                   and m.delivery_status in FAILED_SENDS and m.created_at <= deadline), None)
    if failed is not None:
        return f"a reply failed to send ({failed.error or failed.delivery_status})"
    if case.first_response_at is not None:
        answered_by = next((m.author for m in case.messages if m.direction == Direction.OUTBOUND and m.author),
                           None) or case.assignee
        return f"answered late by {answered_by.name}" if answered_by else "answered late"
    holder = _assigned_before(session, case, deadline)
    if holder is not None:
        return f"assigned to {holder.name}, not answered in time"
    missed_call = session.scalars(select(Call.outcome).where(Call.case_id == case.id, Call.answered_at.is_(None),
                                                             Call.outcome.is_not(None))).first()
    if missed_call:
        return f"the customer's call was not answered ({missed_call})"
    if case.urgency == "critical" and not settings.in_business_hours(case.created_at):
        return "after hours and nobody on call took it"
    return f"no agent with room in the {case.queue} queue"


def _assigned_before(session: Session, case: Case, deadline: datetime) -> User | None:
    first = session.scalars(select(Event).where(Event.case_id == case.id, Event.kind == "case.assigned",
                                                Event.at <= deadline).order_by(Event.at, Event.id)).first()
    return session.get(User, first.data.get("assignee_id")) if first else case.assignee


def open_risks(session: Session, now: datetime) -> list[str]:
    """What could go wrong next: urgent cases open, first responses past due, queues nobody covers."""
    risks = []
    for urgency in ("critical", "high"):
        ids = list(session.scalars(select(Case.id).where(Case.status.in_(OPEN_STATUSES), Case.urgency == urgency)
                                   .order_by(Case.id)))
        if ids:
            risks.append(f"{len(ids)} {urgency} case{'s' if len(ids) > 1 else ''} open: {_numbers(ids)}")
    overdue = [case.id for case in session.scalars(routing.overdue_cases(now))]
    overdue += session.scalars(select(Case.id).where(Case.status.in_(OPEN_STATUSES), Case.first_response_at.is_(None),
                                                     Case.sla_breached_at.is_not(None)).order_by(Case.id))
    if overdue:
        risks.append(f"{len(overdue)} open case{'s' if len(overdue) > 1 else ''} past the first-response target "
                     f"and unanswered: {_numbers(sorted(overdue))}")
    active = list(session.scalars(select(User).where(User.active.is_(True))))
    risks += [f"nobody active takes the {queue} queue" for queue in QUEUES
              if not any(queue in (user.queues or []) for user in active)]
    if not any(user.on_call for user in active):
        risks.append("nobody is on call: critical cases after hours wait for the morning")
    return risks


def _numbers(ids: list[int]) -> str:
    shown = ", ".join(f"#{i}" for i in ids[:RISKS_LISTED])
    return shown + (f" and {len(ids) - RISKS_LISTED} more" if len(ids) > RISKS_LISTED else "")


def one_line_brief(session: Session, case: Case, *, with_names: bool) -> str:
    """What happened, in one line: the escalation brief's, else the triage's and the first message's words."""
    line = _brief_note_line(session, case) or _triage_line(case)
    if not with_names:
        line = scrub(line, names=_names_around(session, case))
    return line if len(line) <= BRIEF_LENGTH else line[:BRIEF_LENGTH - 1] + "…"


def _brief_note_line(session: Session, case: Case) -> str | None:
    """The "What happened" line of the case's latest escalation brief (assist.briefs.draft writes it)."""
    text = session.scalars(select(Note.text).where(Note.case_id == case.id, Note.kind == "brief")
                           .order_by(Note.id.desc())).first()
    lines = (text or "").splitlines()
    return next((after.strip() for before, after in zip(lines, lines[1:]) if before.strip() == "What happened:"),
                None) or None


def _triage_line(case: Case) -> str:
    first = next((m for m in case.messages if m.direction == Direction.INBOUND), None)
    if first is None:
        return "no message"
    triage = first.triage or {}
    signals = list(dict.fromkeys(e["text"] for e in triage.get("evidence", []) if e.get("context") == "active"))
    said = " ".join(first.text.split())
    return f"{triage.get('emotion', 'customer')} customer: \"{said}\"" + \
        (f" (danger signals: {', '.join(signals)})" if signals else "")


def _names_around(session: Session, case: Case) -> list[str]:
    """The people a case's words may name: its contact, their member account, the booking's owner and sitter."""
    context = routing.context_of(session, case)
    member = case.contact.member
    return [name for name in (case.contact.name, member.name if member else None, context.get("owner_name"),
                              context.get("sitter_name")) if name]


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Seven or more digits, possibly grouped by spaces, dots, dashes or brackets, with an optional +: phone-like;
# not an ISO date (2026-06-03), which has eight.
PHONE = re.compile(r"(?<!\w)(?!\d{4}-\d{2}-\d{2}\b)\+?\(?\d(?:[\s().-]{0,2}\d){6,14}")
STREET = re.compile(r"\b\d{1,5}\s+(?:[A-Za-z][\w'.-]*\s+){1,3}(?:street|st|avenue|ave|road|rd|boulevard|blvd|"
                    r"lane|ln|drive|dr|court|ct|way|place|pl|terrace|parkway|pkwy|highway|hwy)\b\.?", re.IGNORECASE)
NAME_PART = 3  # characters: shorter parts of a name ("Jo", "Li") match too many ordinary words


def scrub(text: str, *, names: list[str]) -> str:
    """Text without email addresses, phone numbers, street addresses or the given people's names."""
    text = EMAIL.sub("[email]", text)
    text = STREET.sub("[address]", text)
    text = PHONE.sub("[phone]", text)
    parts = {part for name in names for part in [name, *name.split()] if len(part) >= NAME_PART}
    for part in sorted(parts, key=len, reverse=True):  # a full name before its first name
        text = re.sub(rf"\b{re.escape(part)}\b", "[name]", text, flags=re.IGNORECASE)
    return text
