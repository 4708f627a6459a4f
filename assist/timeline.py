"""A case's timeline as its page shows it: the messages, the calls, the internal notes and the activity trail (who took,
assigned, ticked, moved or merged it, from the audit trail) in time order; all of it, or what a page that has
shown up to a cursor has not seen yet.

    entries, cursor = timeline.of(session, case, checklist)
    ...
    new, changed, cursor = timeline.since(session, case, cursor, checklist)
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from assist.models import Call, Case, Event, Message, Note, User

# Audit events that change a message a page shows (its delivery status): the page renders it again.
MESSAGE_CHANGES = frozenset({"message.sent", "message.status", "message.send_failed", "message.send_unconfirmed",
                             "message.suppressed", "message.redacted"})


class Entry(NamedTuple):
    kind: str  # "message", "call", "note" or "activity"
    at: datetime
    item: Any  # a Message, a Call, a Note or an Activity


@dataclass(frozen=True)
class Activity:
    """One line of the activity trail: who (None: the service itself) did what to the case."""

    id: int  # the audit event's
    kind: str
    actor: str | None
    text: str


@dataclass(frozen=True)
class Cursor:
    """How far a page has shown its case: the ids of the newest message, note, audit event and call it has seen."""

    message: int = 0
    note: int = 0
    event: int = 0
    call: int = 0

    def __str__(self) -> str:
        return f"{self.message}.{self.note}.{self.event}.{self.call}"

    @classmethod
    def parse(cls, text: str) -> "Cursor":
        """The cursor str() wrote.

        Raises:
            ValueError: text is not one.
        """
        parts = text.split(".")
        if len(parts) != 4 or not all(p.isascii() and p.isdigit() and len(p) <= 10 for p in parts):
            raise ValueError(f"{text[:40]!r} is not a timeline cursor")
        return cls(*map(int, parts))


Name = Callable[[Any], str]  # a user's id (or None) -> their name
PEOPLE = ("assignee_id", "lead_id", "took_over_from")  # the fields of audit events that name a user


def _item(checklist: list[str], index: Any) -> str:
    return f"“{checklist[index]}”" if isinstance(index, int) and 0 <= index < len(checklist) else f"item {index}"


def _claimed(data: dict, name: Name, checklist: list[str]) -> str:
    return f"took the case over from {name(data['took_over_from'])}" if data.get("took_over_from") else "took the case"


def _assigned(data: dict, name: Name, checklist: list[str]) -> str:
    reason = data.get("reason")
    return f"assigned the case to {name(data.get('assignee_id'))}" + (f" ({reason})" if reason != "lead" else "")


def _unassigned(data: dict, name: Name, checklist: list[str]) -> str:
    return f"put the case back in the {data.get('queue')} queue ({data.get('reason')})"


def _status(data: dict, name: Name, checklist: list[str]) -> str:
    return f"set the status to {data.get('status')}"


def _reopened(data: dict, name: Name, checklist: list[str]) -> str:
    return f"reopened the case ({data.get('reason')})"


def _escalated(data: dict, name: Name, checklist: list[str]) -> str:
    lead = f"to {name(data['lead_id'])}" if data.get("lead_id") else "to the leads"
    return f"escalated the case {lead}" + (" (first response overdue)" if data.get("reason") == "sla" else "")


def _ticked(data: dict, name: Name, checklist: list[str]) -> str:
    return ("ticked " if data.get("done") else "unticked ") + _item(checklist, data.get("item"))


def _redacted(data: dict, name: Name, checklist: list[str]) -> str:
    reason = str(data.get("reason", "other")).replace("_", " ")
    kept = "kept encrypted" if data.get("kept") else "removed"
    return f"redacted part of a message ({reason}; the original is {kept})"


def _merged(data: dict, name: Name, checklist: list[str]) -> str:
    return "confirmed who the sender is: their messages joined the contact of the address they gave"


def _rated(data: dict, name: Name, checklist: list[str]) -> str:
    comment = f": “{data['comment']}”" if data.get("comment") else ""
    return f"rated the case {data.get('score')} out of 5{comment}"


# What each kind of audit event on a case says in its activity trail; the other kinds are not shown there (a
# message or a note shows itself).
PHRASES: dict[str, Callable[[dict, Name, list[str]], str]] = {
    "case.claimed": _claimed,
    "case.assigned": _assigned,
    "case.unassigned": _unassigned,
    "case.status": _status,
    "case.reopened": _reopened,
    "case.escalated": _escalated,
    "case.checklist": _ticked,
    "contact.merged": _merged,
    "message.redacted": _redacted,
    "case.csat_answered": _rated,
}


def of(session: Session, case: Case, checklist: list[str], *,
       restricted: bool = False) -> tuple[list[Entry], Cursor]:
    """The whole timeline of case, and the cursor of a page that shows it (checklist: the items a tick names;
    restricted: whether its restricted notes are in it, as assist.access.may_read_restricted says)."""
    new, _, cursor = since(session, case, Cursor(), checklist, restricted=restricted)
    return new, cursor


def since(session: Session, case: Case, cursor: Cursor, checklist: list[str], *,
          restricted: bool = False) -> tuple[list[Entry], list[Entry], Cursor]:
    """What a page that has shown case up to cursor lacks: the entries added since (in time order), the messages
    it shows that changed since (their delivery status), and the cursor once it shows them. Restricted notes are
    left out unless restricted is true."""
    # The audit events first: any change they tell of was committed before the rows are read below, so a
    # message is never shown older than the event that moves the cursor past it.
    events = session.scalars(select(Event).where(Event.case_id == case.id, Event.id > cursor.event)
                             .options(selectinload(Event.actor)).order_by(Event.id)).all()
    messages = session.scalars(select(Message).where(Message.case_id == case.id, Message.id > cursor.message)
                               .order_by(Message.id)).all()
    shown_notes = [Note.case_id == case.id, Note.id > cursor.note]
    if not restricted:
        shown_notes.append(Note.restricted.is_(False))
    notes = session.scalars(select(Note).where(*shown_notes).order_by(Note.id)).all()
    calls = session.scalars(select(Call).where(Call.case_id == case.id, Call.id > cursor.call)
                            .order_by(Call.id)).all()
    changed_ids = {e.message_id for e in events if e.kind in MESSAGE_CHANGES and e.message_id is not None
                   and e.message_id <= cursor.message}
    changed = session.scalars(select(Message).where(Message.case_id == case.id, Message.id.in_(changed_ids))
                              .order_by(Message.id)).all() if changed_ids else []
    activity = [e for e in events if e.kind in PHRASES]
    name = _names(session, activity)
    new = sorted([Entry("message", m.created_at, m) for m in messages]
                 + [Entry("note", n.created_at, n) for n in notes]
                 + [Entry("call", c.created_at, c) for c in calls]
                 + [Entry("activity", e.at, _activity(e, name, checklist)) for e in activity],
                 key=lambda entry: entry.at)
    moved = Cursor(max((m.id for m in messages), default=cursor.message),
                   max((n.id for n in notes), default=cursor.note),
                   max((e.id for e in events), default=cursor.event),
                   max((c.id for c in calls), default=cursor.call))
    return new, [Entry("message", m.created_at, m) for m in changed], moved


def _names(session: Session, activity: list[Event]) -> Name:
    """Who is who among the people the activity names (assignees, leads, whom a claim took the case from)."""
    ids = {e.data[key] for e in activity for key in PEOPLE if (e.data or {}).get(key) is not None}
    people = {u.id: u.name for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return lambda user_id: people.get(user_id, "someone no longer here")


# Audit events the customer's own message caused: the trail names them, not the service.
BY_THE_CUSTOMER = frozenset({"case.csat_answered"})


def _activity(event: Event, name: Name, checklist: list[str]) -> Activity:
    actor = event.actor.name if event.actor else "The customer" if event.kind in BY_THE_CUSTOMER else None
    return Activity(event.id, event.kind, actor, PHRASES[event.kind](event.data or {}, name, checklist))
