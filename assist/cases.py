"""Case queries and the one JSON shape of cases and messages (API and CLI)."""

from sqlalchemy import case as when_then, select
from sqlalchemy.orm import Session, selectinload

from assist.models import OPEN_STATUSES, Case, CaseStatus, Message
from assist.triage.labels import URGENCY


def list_cases(session: Session, *, status: str | None = None, queue: str | None = None,
               open_only: bool = False, limit: int = 200) -> list[Case]:
    """Return cases, most urgent first, then the longest waiting."""
    urgency_rank = when_then(*((Case.urgency == label, rank) for rank, label in enumerate(URGENCY)),
                             else_=len(URGENCY))
    query = (select(Case).options(selectinload(Case.contact), selectinload(Case.messages),
                                  selectinload(Case.assignee))
             .order_by(urgency_rank, Case.last_inbound_at.asc(), Case.id).limit(limit))
    if status:
        query = query.where(Case.status == CaseStatus(status))
    elif open_only:
        query = query.where(Case.status.in_(OPEN_STATUSES))
    if queue:
        query = query.where(Case.queue == queue)
    return list(session.scalars(query))


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
    data = {
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
