"""Routing: put a case in the queue its playbook names, with that priority and first-response SLA."""

from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from assist import audit, cases, clock, outbox, playbook_versions, playbooks, runtime
from assist.models import OPEN_STATUSES, Booking, Case, DeliveryStatus, Direction, Message, User
from assist.triage import Triage

TEAM_NAME = "the incident team"
POSSIBLE_EMERGENCY_SLA = 30  # minutes: a possible emergency's first response, as for high urgency


class Settle(NamedTuple):
    """What routing leaves to after the commit (jobs.after_inbound)."""

    routed: bool  # the case took this route (a first one, or a more urgent one)
    requeued: bool  # ... and with it a new queue: whoever has it is asked again
    alert_lead: bool  # the playbook escalates: the queue's lead is alerted


def route(session: Session, case: Case, message: Message, triage: Triage) -> tuple[playbooks.Decision, Settle]:
    """Decide by the playbooks for message; the case keeps the most urgent route it has had. Assigning the
    case and alerting the lead are left to after the commit (the Settle returned)."""
    contact = case.contact
    role = contact.member.role.value if contact.member else None
    decision = playbooks.decide(list(playbook_versions.published(session)), urgency=triage.urgency,
                                emotion=triage.emotion, category=triage.category, channel=message.channel,
                                text=message.text, role=role, context=context_of(session, case),
                                language=triage.language)
    settle = Settle(False, False, False)
    if case.playbook_id is None or decision.priority < case.priority:
        requeued = case.queue != decision.queue or case.playbook_id is None
        case.queue, case.priority, case.playbook_id = decision.queue, decision.priority, decision.playbook.id
        settle = Settle(True, requeued, decision.escalate)
        due = case.created_at + timedelta(minutes=decision.first_response_minutes)
        if case.first_response_due_at is None or due < case.first_response_due_at:
            case.first_response_due_at = due
        audit.record(session, "case.routed", case=case, message=message, playbook=decision.playbook.id,
                     queue=decision.queue, priority=decision.priority, escalate=decision.escalate)
    if triage.possible_emergency and case.first_response_at is None:
        # Not critical, but too likely to be one to wait: a first response as fast as for high urgency.
        due = clock.now() + timedelta(minutes=POSSIBLE_EMERGENCY_SLA)
        if case.first_response_due_at is None or due < case.first_response_due_at:
            case.first_response_due_at = due
    return decision, settle


def auto_replied(session: Session, case: Case, playbook_id: str) -> bool:
    """Whether the bot already answered this case from this playbook (it answers once per case and playbook)."""
    return session.scalar(select(Message.id).where(
        Message.case_id == case.id, Message.direction == Direction.OUTBOUND, Message.playbook_id == playbook_id
    ).limit(1)) is not None


def context_of(session: Session, case: Case) -> dict:
    """The values playbook templates may use; unknown ones stay out (they render as neutral words)."""
    contact = case.contact
    values = {"case_id": case.id, "team_name": TEAM_NAME}
    if contact.name:
        values["first_name"] = contact.name.split()[0]
    member = contact.member
    if member is None:
        return values
    booking = current_booking(session, member.id)
    if booking is not None:
        values.update(sitter_name=booking.sitter.name, owner_name=booking.owner.name,
                      booking_service=booking.service)
        if booking.pets:
            values["pet_name"] = booking.pets[0].name
    if "pet_name" not in values and member.pets:
        values["pet_name"] = member.pets[0].name
    return values


def current_booking(session: Session, member_id: int) -> Booking | None:
    """The member's booking going on now, else the one that ended last."""
    now = clock.now()
    mine = or_(Booking.owner_id == member_id, Booking.sitter_id == member_id)
    current = session.scalars(select(Booking).where(mine, Booking.starts_at <= now, Booking.ends_at >= now)
                              .order_by(Booking.starts_at.desc())).first()
    return current or session.scalars(select(Booking).where(mine, Booking.ends_at < now)
                                      .order_by(Booking.ends_at.desc())).first()


SLA_SLACK = timedelta(seconds=1)  # RQ's scheduler runs jobs in whole seconds: never before the due time


def sla_running(case: Case) -> bool:
    """Whether the case's first-response clock still runs: open, due, not answered, not yet breached."""
    return (case.is_open and case.first_response_due_at is not None and case.first_response_at is None
            and case.sla_breached_at is None)


class SlaState(StrEnum):
    """Where a case's first response stands, as the console shows it."""

    DUE = "due"  # the clock runs: a reply is due by first_response_due_at
    OVERDUE = "overdue"  # past due and unanswered; the check has not escalated it yet
    BREACHED = "breached"  # the check found it unanswered at its due time and escalated it
    ANSWERED = "answered"


def sla_state(case: Case, now: datetime) -> SlaState | None:
    """Where the case's first response stands at now; None when it has no first-response SLA running (none
    was set, or it was closed before anyone answered)."""
    if case.sla_breached_at is not None:
        return SlaState.BREACHED
    if case.first_response_at is not None:
        return SlaState.ANSWERED
    if not sla_running(case):
        return None
    return SlaState.OVERDUE if now >= case.first_response_due_at else SlaState.DUE


def schedule_sla_check(session: Session, case: Case, *, now: datetime | None = None, again: bool = False) -> None:
    """Owe the first-response check of a case at its due time, in the transaction that routes it (RQ
    schedules it once it is committed; the sweep escalates it if even that is lost).

    The time is the service's clock's; `again` schedules a further check (a check that ran early),
    which gets a job id of its own.
    """
    if not sla_running(case):
        return
    now = now or clock.now()
    at = max(case.first_response_due_at, now) + SLA_SLACK
    queue_name = "critical" if case.priority == 1 else "default"
    job_id = None if again else f"sla-{case.id}-{int(case.first_response_due_at.timestamp())}"
    outbox.job(session, "assist.jobs.check_first_response", case.id, queue=queue_name, at=at, job_id=job_id)


def overdue_cases(now: datetime):
    """A query of the open cases past their first-response due time that nobody answered, oldest due first."""
    return (select(Case).where(Case.status.in_(OPEN_STATUSES), Case.first_response_at.is_(None),
                               Case.sla_breached_at.is_(None), Case.first_response_due_at <= now)
            .order_by(Case.first_response_due_at))


def reply_in_flight(session: Session, case: Case) -> bool:
    """Whether an agent's reply to the case is on its way (stored, not yet accepted or failed)."""
    return session.scalar(select(Message.id).where(
        Message.case_id == case.id, Message.author_id.is_not(None),
        Message.delivery_status.in_((DeliveryStatus.PENDING, DeliveryStatus.RETRYING))).limit(1)) is not None


def check_first_response(session: Session, case: Case, now: datetime) -> bool:
    """Escalate an open case nobody answered by its due time; return whether it breached.

    An agent's reply answers the case once the carrier accepts it (jobs.send_message sets
    first_response_at); one still being sent holds the escalation, a failed one does not.
    """
    due = case.first_response_due_at
    if not sla_running(case) or now < due or reply_in_flight(session, case):
        return False
    case.sla_breached_at = now
    lead = cases.escalate(session, case, reason="sla")
    audit.record(session, "case.sla_breached", case=case, due=due.isoformat(), queue=case.queue,
                 minutes_late=round((now - due).total_seconds() / 60, 1), lead_id=lead.id if lead else None)
    return True


def after_hours(now: datetime) -> bool:
    """Whether now is outside BUSINESS_HOURS in BUSINESS_TIMEZONE."""
    return not runtime.settings().in_business_hours(now)


def assign(session: Session, case: Case, now: datetime) -> User | None:
    """Give the case to someone: after hours a critical case goes to the on-call person; otherwise the
    least-loaded active member of the case's queue with room left. None leaves it waiting in the queue."""
    if case.urgency == "critical" and after_hours(now):
        on_call = session.scalars(select(User).where(User.on_call.is_(True), User.active.is_(True))
                                  .order_by(User.id)).first()
        if on_call is not None:
            cases.assign(session, case, on_call, reason="after hours: on call")
            return on_call
    load = cases.open_load(session)
    members = [u for u in session.scalars(select(User).where(User.active.is_(True)).order_by(User.id))
               if case.queue in (u.queues or []) and load.get(u.id, 0) < u.capacity]
    if not members:
        return None
    chosen = min(members, key=lambda u: (load.get(u.id, 0), u.id))
    cases.assign(session, case, chosen, reason="queue")
    return chosen
