"""Who opened what: each view of a case page, a claim, a safety review or a restricted note, and each refusal,
for supervisors to read. Apart from the audit trail (assist/audit.py), which records changes: a view changes nothing.

    access_log.record(session, user, "case", case.id, allowed=True)
"""

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from assist.models import AccessEntry, User

KINDS = ("case", "claim", "review", "note")  # note: a restricted note, shown or withheld
PAGE = 100  # entries shown at once


def record(session: Session, user: User, kind: str, object_id: int, *, allowed: bool) -> None:
    """Note that user opened (allowed) or tried to open (refused) the object; committed with the caller's work."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    session.add(AccessEntry(user_id=user.id, kind=kind, object_id=object_id, allowed=allowed))


def entries(session: Session, *, user_id: int | None = None, kind: str | None = None, object_id: int | None = None,
            before: int | None = None, limit: int = PAGE) -> list[AccessEntry]:
    """The newest entries first, filtered; before: an entry id, for the page after one that ended there."""
    query = select(AccessEntry).options(selectinload(AccessEntry.user)).order_by(AccessEntry.id.desc()).limit(limit)
    if user_id is not None:
        query = query.where(AccessEntry.user_id == user_id)
    if kind is not None:
        query = query.where(AccessEntry.kind == kind)
    if object_id is not None:
        query = query.where(AccessEntry.object_id == object_id)
    if before is not None:
        query = query.where(AccessEntry.id < before)
    return list(session.scalars(query))
