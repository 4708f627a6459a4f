"""The incident brief an agent sends the lead when escalating: short enough for senior leadership."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from assist import routing
from assist.models import Case, Direction, Note

MAX_TIMELINE = 8  # entries
SNIPPET = 160  # characters of a message in the brief


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[:SNIPPET - 1] + "…"


def draft(session: Session, case: Case, checklist: list[str]) -> str:
    """Draft the brief: what happened, timeline, triage, actions taken, open questions."""
    context = routing.context_of(session, case)
    contact = case.contact
    who = contact.name or contact.address
    role = f" ({contact.member.role.value})" if contact.member else ""
    first = next((m for m in case.messages if m.direction == Direction.INBOUND), None)
    latest = case.latest_inbound
    triage = (latest.triage or {}) if latest else {}
    pet = context.get("pet_name", "the pet (name not known)")
    lines = [f"Incident brief: case {case.id} · {case.queue} queue · {case.status.value}", "",
             "What happened:",
             f"{who}{role} contacted us about {pet}: \"{_snippet(first.text) if first else 'no message'}\"",
             ""]
    if "sitter_name" in context:
        lines[-2] += f" Booking: {context.get('booking_service', 'booking')} with sitter {context['sitter_name']}" \
                     f" (owner {context.get('owner_name', 'unknown')})."
    lines += ["Timeline:"]
    events = sorted([(m.created_at, f"{m.direction.value} {m.channel}: {_snippet(m.text)}") for m in case.messages]
                    + [(n.created_at, f"note by {n.author.name if n.author else 'system'}: {_snippet(n.text)}")
                       for n in notes_of(session, case)])
    for at, text in events[-MAX_TIMELINE:]:
        lines.append(f"- {at.strftime('%H:%M')} {text}")
    lines += ["", f"Triage: {triage.get('urgency', 'not triaged')}, {triage.get('category', '-')}, "
                  f"customer {triage.get('emotion', '-')}"]
    signals = [e["text"] for e in triage.get("evidence", []) if e.get("context") == "active"]
    if signals:
        lines[-1] += f"; danger signals: {', '.join(dict.fromkeys(signals))}"
    replies = [m for m in case.messages if m.direction == Direction.OUTBOUND]
    lines += ["", "Actions taken:"]
    lines += [f"- {len(replies)} repl{'y' if len(replies) == 1 else 'ies'} sent"
              + (f", last: \"{_snippet(replies[-1].text)}\"" if replies else "")]
    done = [item for i, item in enumerate(checklist) if i in (case.checklist_done or [])]
    lines += [f"- done: {item}" for item in done]
    open_items = [item for i, item in enumerate(checklist) if i not in (case.checklist_done or [])]
    lines += ["", "Open questions:"] + ([f"- {item}" for item in open_items] or ["- none"])
    return "\n".join(lines)


def notes_of(session: Session, case: Case) -> list[Note]:
    """The notes a brief may quote: never a restricted one, since the brief is itself a note anyone on the case
    reads."""
    return list(session.scalars(select(Note).where(Note.case_id == case.id, Note.restricted.is_(False))
                                .order_by(Note.id)))
