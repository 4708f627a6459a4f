"""The case service: what people and the service do to a case, and the queue's pages.

Every action changes the case and records it in the audit trail; none commits. The caller ends the
unit of work with done(), which commits, tells the consoles and queues the send of a reply:

    message = cases.reply(session, case, "We're on it.", author=agent)
    cases.done(session, case, send=message)

The console, the API, the jobs and the call flow all act through here, so a rule about a case is
written once.
"""

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy import case as when_then
from sqlalchemy.orm import Session, selectinload

from assist import access, audit, clock, csat, outbound, outbox
from assist.errors import StaleReply, Taken
from assist.models import OPEN_STATUSES, Case, CaseStatus, Direction, Message, Note, User, UserRole
from assist.triage.labels import URGENCY

PAGE_SIZE = 50  # cases per page of the queue
MAX_NOTE_LENGTH = 5000  # characters


class NotFound(LookupError):
    """No case has this id."""


def get(session: Session, case_id: int) -> Case:
    """The case with this id.

    Raises:
        NotFound: there is none.
    """
    found = session.get(Case, case_id)
    if found is None:
        raise NotFound(f"no case {case_id}")
    return found


# -- actions --------------------------------------------------------------------------------------------------

def _opened(case: Case) -> None:
    if case.status == CaseStatus.NEW:
        case.status = CaseStatus.OPEN


def claim(session: Session, case: Case, user: User, *, take_over: bool = False) -> None:
    """An agent takes the case: theirs, and open; a colleague's only when they say they take it over.

    Raises:
        Taken: the case is someone else's and take_over is false.
    """
    session.refresh(case, with_for_update=True)  # two agents claiming at once: the second sees the first
    previous = case.assignee
    if previous is not None and previous.id != user.id and not take_over:
        raise Taken(previous.name)
    case.assignee = user
    _opened(case)
    audit.record(session, "case.claimed", actor=user, case=case,
                 **({"took_over_from": previous.id} if previous is not None and previous.id != user.id else {}))


def assign(session: Session, case: Case, user: User, *, reason: str, actor: User | None = None,
           take_over: bool = True) -> None:
    """Give the case to user (routing does, by the queue's load; a lead may). Without take_over, a case a
    colleague (neither user nor actor) has stays theirs: the lead is asked first.

    Raises:
        Taken: the case is a colleague's and take_over is false.
    """
    if not take_over:
        session.refresh(case, with_for_update=True)  # a claim at the same moment: this sees it
        holder = case.assignee
        if holder is not None and holder.id != user.id and (actor is None or holder.id != actor.id):
            raise Taken(holder.name)
    case.assignee = user
    audit.record(session, "case.assigned", actor=actor, case=case, assignee_id=user.id, queue=case.queue,
                 reason=reason)


def teammates(session: Session, queue: str) -> list[User]:
    """The active people of a queue, by name: whom a lead may give its cases to."""
    return sorted((u for u in session.scalars(select(User).where(User.active.is_(True)))
                   if queue in (u.queues or [])), key=lambda u: (u.name, u.id))


def unassign(session: Session, case: Case, *, reason: str, actor: User | None = None) -> None:
    """The case goes back to its queue, nobody's."""
    previous, case.assignee = case.assignee_id, None
    audit.record(session, "case.unassigned", actor=actor, case=case, previous_assignee_id=previous, queue=case.queue,
                 reason=reason)


def answered(session: Session, case: Case, user: User) -> None:
    """A person took the customer's call: the case's first response, theirs unless someone has it."""
    if case.first_response_at is None:
        case.first_response_at = clock.now()
    if case.assignee_id is None:
        case.assignee = user
    _opened(case)


def reply(session: Session, case: Case, text: str, *, author: User | None, channel: str | None = None,
          seen: int | None = None) -> Message:
    """Store a reply to the customer on channel (default: the one they last used); done(send=) sends it.

    seen is the id of the newest message the author's page showed (newest_message_id), 0 for none: the
    reply is refused if another reply went out since, so two people never answer one customer at once.

    Raises:
        NotSendable: the contact has no address on that channel.
        StaleReply: someone else or the bot replied on the case after the message seen.
    """
    if seen is not None:
        check_fresh(session, case, seen, author=author)
    message = outbound.create_reply(session, case, text, author=author, channel=channel)
    if author is not None:
        _opened(case)
    return message


def newest_message_id(case: Case) -> int:
    """The id of the case's newest message (0 if it has none): what a page showing the case has seen."""
    return max((m.id for m in case.messages), default=0)


def check_fresh(session: Session, case: Case, seen: int, *, author: User | None) -> None:
    """Lock the case until the transaction ends and check nobody else replied after message seen.

    The lock makes two replies sent at once queue up here: the second sees the first once it commits.

    Raises:
        StaleReply: an outbound message newer than seen, by someone other than author (or the bot).
    """
    session.refresh(case, with_for_update=True)
    others = Message.author_id.is_(None) if author is None else or_(Message.author_id.is_(None),
                                                                    Message.author_id != author.id)
    newer = session.scalars(select(Message).where(Message.case_id == case.id, Message.id > seen,
                                                  Message.direction == Direction.OUTBOUND, others)
                            .order_by(Message.id.desc()).limit(1)).first()
    if newer is not None:
        raise StaleReply(newer.author.name if newer.author else None, newer.created_at)


def note(session: Session, case: Case, text: str, *, author: User | None, kind: str = "note",
         restricted: bool = False) -> Note:
    """An internal note (never sent to the customer): an agent's, an escalation brief, a voicemail; a restricted
    one is read only by those assist.access.may_read_restricted allows."""
    added = Note(case_id=case.id, author=author, kind=kind, text=text, restricted=restricted)
    session.add(added)
    audit.record(session, "case.note", actor=author, case=case, note_kind=kind,
                 **({"restricted": True} if restricted else {}))
    return added


def restricted_note_ids(session: Session, case: Case) -> list[int]:
    return list(session.scalars(select(Note.id).where(Note.case_id == case.id, Note.restricted.is_(True))
                                .order_by(Note.id)))


def tick(session: Session, case: Case, item: int, *, done: bool, actor: User) -> bool:
    """Set an item of the playbook's checklist ticked (done) or not, as the agent saw it; return whether that
    changed it. Never a toggle: a colleague ticking an item someone already ticked leaves it ticked.
    """
    session.refresh(case, with_for_update=True)  # two items ticked at once: neither write loses the other
    ticked = set(case.checklist_done or [])
    if (item in ticked) == done:
        return False
    case.checklist_done = sorted(ticked | {item} if done else ticked - {item})
    audit.record(session, "case.checklist", actor=actor, case=case, item=item, done=done)
    return True


def set_status(session: Session, case: Case, status: CaseStatus, *, actor: User) -> None:
    """Move the case to status (resolving and reopening as resolve() and reopen() do)."""
    if status == CaseStatus.RESOLVED:
        resolve(session, case, actor=actor)
    elif status == CaseStatus.ESCALATED:
        escalate(session, case, reason="status", actor=actor)
    elif case.status == CaseStatus.RESOLVED:
        reopen(session, case, reason="status", actor=actor, status=status)
    else:
        case.status = status
        audit.record(session, "case.status", actor=actor, case=case, status=status.value)


def resolve(session: Session, case: Case, *, actor: User | None) -> None:
    """The case is resolved: its customer is asked how it went, if it still is after a while (assist.csat)."""
    now = clock.now()
    case.status, case.resolved_at = CaseStatus.RESOLVED, now
    audit.record(session, "case.status", actor=actor, case=case, status=CaseStatus.RESOLVED.value)
    csat.owe_question(session, case, resolved_at=now)


def reopen(session: Session, case: Case, *, reason: str, actor: User | None = None,
           status: CaseStatus = CaseStatus.OPEN) -> None:
    """A resolved case is open again: the customer wrote on its thread, called, or an agent reopened it."""
    if case.status != CaseStatus.RESOLVED:
        return
    case.status, case.resolved_at = status, None
    audit.record(session, "case.reopened", actor=actor, case=case, reason=reason)


def escalate(session: Session, case: Case, *, reason: str, actor: User | None = None,
             brief: str | None = None) -> User | None:
    """Hand the case to the lead of its queue (any lead when the queue has none), with the agent's brief.

    The console escalates (reason "agent"), and so does a first-response SLA nobody met ("sla").
    Returns the lead, or None when there is no active lead (the case stays escalated, in its queue).
    """
    lead = lead_for(session, case.queue)
    if brief:
        note(session, case, brief, author=actor, kind="brief")
    case.status = CaseStatus.ESCALATED
    if lead is not None:
        case.assignee = lead
    audit.record(session, "case.escalated", actor=actor, case=case, reason=reason, lead_id=lead.id if lead else None)
    return lead


def lead_for(session: Session, queue: str) -> User | None:
    """The lead who answers for a queue: an active lead of that queue, else any active lead."""
    leads = session.scalars(select(User).where(User.role == UserRole.LEAD, User.active.is_(True))
                            .order_by(User.id)).all()
    return next((u for u in leads if queue in (u.queues or [])), leads[0] if leads else None)


def done(session: Session, *changed: Case, send: Message | None = None) -> None:
    """End an action: commit it with what it owes (telling every console the cases changed, sending a
    stored reply), then hand that to Redis."""
    for case in changed:
        outbox.event(session, "case", case_id=case.id, queue=case.queue, assignee_id=case.assignee_id)
    if send is not None:
        outbound.queue_send(session, send)
    outbox.commit(session)


# -- the queue ------------------------------------------------------------------------------------------------

def open_load(session: Session) -> dict[int, int]:
    """How many open cases each assignee holds (user id -> count)."""
    return dict(session.execute(select(Case.assignee_id, func.count(Case.id))
                                .where(Case.assignee_id.is_not(None), Case.status.in_(OPEN_STATUSES))
                                .group_by(Case.assignee_id)).all())


def _urgency_rank():
    return when_then(*((Case.urgency == label, rank) for rank, label in enumerate(URGENCY)), else_=len(URGENCY))


def _waiting_since():
    return func.coalesce(Case.last_inbound_at, Case.created_at)


@dataclass(frozen=True)
class Page:
    cases: list[Case]
    next: str | None  # the cursor of the next page; None on the last


def cursor_of(case: Case) -> str:
    rank = URGENCY.index(case.urgency) if case.urgency in URGENCY else len(URGENCY)
    since = case.last_inbound_at or case.created_at
    return f"{rank}_{since.isoformat()}_{case.id}"


def _after(cursor: str):
    """The cases after cursor in the queue's order (most urgent, then the longest waiting, then by id).

    Raises:
        ValueError: the cursor is not one cursor_of() made.
    """
    try:
        rank_text, since_text, id_text = cursor.split("_")
        rank, since, case_id = int(rank_text), datetime.fromisoformat(since_text), int(id_text)
    except ValueError:
        raise ValueError(f"{cursor[:80]!r} is not a page cursor") from None
    if since.tzinfo is None or not 0 <= rank <= len(URGENCY) or not 0 < case_id < 2**31:
        raise ValueError(f"{cursor[:80]!r} is not a page cursor")
    rank_sql, since_sql = _urgency_rank(), _waiting_since()
    at = literal(since, Case.last_inbound_at.type)
    return or_(rank_sql > rank,
               and_(rank_sql == rank, since_sql > at),
               and_(rank_sql == rank, since_sql == at, Case.id > case_id))


def queue_page(session: Session, *, statuses: Collection[CaseStatus] = OPEN_STATUSES,
               queues: Collection[str] | None = None, assignee_id: int | None = None, unassigned: bool = False,
               seen_by: User | None = None, after: str | None = None, limit: int = PAGE_SIZE) -> Page:
    """One page of cases, most urgent first, then the longest waiting: those in statuses (default: open)
    and queues (None: every queue), assigned to assignee_id or unassigned if given, that seen_by may see
    (assist.access) if given, after the cursor.

    The filters and the page are SQL, so a page holds what it says however many other cases are open.

    Raises:
        ValueError: after is not a page cursor.
    """
    query = (select(Case).options(selectinload(Case.contact), selectinload(Case.messages),
                                  selectinload(Case.assignee))
             .where(Case.status.in_(list(statuses)))
             .order_by(_urgency_rank(), _waiting_since(), Case.id).limit(limit + 1))
    if queues is not None:
        query = query.where(Case.queue.in_(list(queues)))
    if assignee_id is not None:
        query = query.where(Case.assignee_id == assignee_id)
    if unassigned:
        query = query.where(Case.assignee_id.is_(None))
    if seen_by is not None:
        query = query.where(access.visible_cases(seen_by))
    if after:
        query = query.where(_after(after))
    found = list(session.scalars(query))
    return Page(found[:limit], cursor_of(found[limit - 1]) if len(found) > limit else None)


def every(session: Session, **filters) -> Iterator[Case]:
    """Every case queue_page(**filters) would list, page by page."""
    after = None
    while True:
        page = queue_page(session, after=after, limit=500, **filters)
        yield from page.cases
        if page.next is None:
            return
        after = page.next


# -- the one JSON shape of cases and messages (API and CLI) ---------------------------------------------------

def message_to_dict(message: Message) -> dict:
    return {
        "id": message.id,
        "channel": message.channel,
        "direction": message.direction.value,
        "channel_id": message.channel_id,
        "sender": message.sender,
        "recipient": message.recipient,
        "subject": message.subject,
        "text": message.text,
        "attachments": message.attachments,
        "keyword": message.keyword,
        "triage": message.triage,
        "delivery_status": message.delivery_status.value if message.delivery_status else None,
        "segments": message.segments,
        "attempts": message.attempts,
        "error": message.error,
        "created_at": message.created_at.isoformat(),
    }


def case_to_dict(case: Case, *, with_messages: bool = True) -> dict:
    contact = case.contact
    data: dict[str, Any] = {
        "id": case.id,
        "status": case.status.value,
        "queue": case.queue,
        "priority": case.priority,
        "urgency": case.urgency,
        "assignee_id": case.assignee_id,
        "playbook_id": case.playbook_id,
        "first_response_due_at": case.first_response_due_at.isoformat() if case.first_response_due_at else None,
        "sla_breached_at": case.sla_breached_at.isoformat() if case.sla_breached_at else None,
        "contact": {"id": contact.id, "name": contact.name, "phone": contact.phone, "email": contact.email,
                    "opted_out": contact.opted_out, "member_id": contact.member_id},
        "created_at": case.created_at.isoformat(),
        "last_inbound_at": case.last_inbound_at.isoformat() if case.last_inbound_at else None,
    }
    if with_messages:
        data["messages"] = [message_to_dict(m) for m in case.messages]
    return data
