"""The audit trail."""

from sqlalchemy.orm import Session

from assist.models import Event


def record(session: Session, kind: str, *, actor=None, case=None, message=None, **data) -> Event:
    """Add an audit event to the session's transaction."""
    event = Event(kind=kind, actor=actor, case_id=case.id if case else None,
                  message_id=message.id if message else None, data=data)
    session.add(event)
    return event
