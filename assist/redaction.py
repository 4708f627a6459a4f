"""Redaction: a span of a stored message (a card number, an address) replaced by "[redacted: reason]" in every
copy the service keeps of it, so no page, API answer, brief, search, export or triage evidence can show it.

The message's text, original, HTML, subject, triage and carrier metadata, the case's notes (a brief quotes the
customer) and the raw mail stored for threading and attachments are all rewritten. The span itself is kept only
encrypted (Fernet, REDACTION_KEY) when REDACTION_KEEP_ORIGINAL is set, else nowhere.

    redaction.redact(session, message, start, end, reason="card_number", actor=agent, settings=settings)
"""

import html
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assist import audit
from assist.models import Message, Note, RawEmail, Redaction, User
from assist.settings import Settings
from channels import email as email_channel

REASONS = {"card_number": "card number", "address": "address", "other": "other"}  # code: what the marker says


def marker(reason: str) -> str:
    return f"[redacted: {REASONS[reason]}]"


def redact(session: Session, message: Message, start: int, end: int, *, reason: str, actor: User,
           settings: Settings) -> Redaction:
    """Replace message.text[start:end] by its marker everywhere the service keeps the message; not committed.

    Raises:
        ValueError: the span is empty or outside the text, or the reason is not one of REASONS.
    """
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {', '.join(REASONS)}")
    if not 0 <= start < end <= len(message.text):
        raise ValueError(f"the span must lie within the message's {len(message.text)} characters")
    span, shown = message.text[start:end], marker(reason)
    message.text = message.text[:start] + shown + message.text[end:]
    message.original = message.original.replace(span, shown)
    if message.html:
        message.html = message.html.replace(span, shown).replace(html.escape(span, quote=False), shown)
    if message.subject:
        message.subject = message.subject.replace(span, shown)
    if message.triage:
        message.triage = _scrubbed(_shifted(message.triage, start, end, len(shown)), span, shown)
    if message.meta:
        message.meta = _scrubbed(message.meta, span, shown)
    for note in session.scalars(select(Note).where(Note.case_id == message.case_id)):
        note.text = note.text.replace(span, shown)
    for raw in session.scalars(select(RawEmail).where(RawEmail.message_id == message.id)):
        raw.data = email_channel.redact_mail(raw.data, span, shown)
    kept = _encrypted(span, settings) if settings.redaction_keep_original else None
    row = Redaction(message_id=message.id, start=start, length=end - start, reason=reason, actor=actor, original=kept)
    session.add(row)
    audit.record(session, "message.redacted", actor=actor, case=message.case, message=message, reason=reason,
                 kept=kept is not None)
    return row


def redact_text(session: Session, message: Message, words: str, *, reason: str, actor: User,
                settings: Settings) -> list[Redaction]:
    """Redact every occurrence of words in message's text (a card number given twice goes twice).

    Raises:
        ValueError: words do not occur in the text, or the reason is not one of REASONS.
    """
    if not words.strip() or words not in message.text:
        raise ValueError("the words to redact are not in the message")
    done, shown = [], marker(reason)
    start = message.text.find(words)
    while start != -1:
        done.append(redact(session, message, start, start + len(words), reason=reason, actor=actor,
                           settings=settings))
        # Search on after the marker: words may be part of it ("address").
        start = message.text.find(words, start + len(shown))
    return done


def original(redaction: Redaction, settings: Settings) -> str | None:
    """The redacted span, decrypted; None when it was removed."""
    if redaction.original is None:
        return None
    from cryptography.fernet import Fernet

    return Fernet(settings.redaction_key).decrypt(redaction.original).decode()


def _encrypted(span: str, settings: Settings) -> bytes:
    from cryptography.fernet import Fernet  # only a deployment that keeps originals loads it

    return Fernet(settings.redaction_key).encrypt(span.encode())


def _shifted(triage: dict, start: int, end: int, length: int) -> dict:
    """triage with its evidence moved to the text after redaction: evidence touching the span goes (it would
    show or point at what was removed), evidence after it moves by the change in length."""
    delta = length - (end - start)
    evidence = []
    for e in triage.get("evidence", []):
        if e.get("end", 0) <= start:
            evidence.append(e)
        elif e.get("start", 0) >= end:
            evidence.append({**e, "start": e["start"] + delta, "end": e["end"] + delta})
    return {**triage, "evidence": evidence}


def _scrubbed(value: Any, span: str, shown: str) -> Any:
    """value (JSON: dicts, lists, strings) with span replaced by shown in every string of it."""
    if isinstance(value, str):
        return value.replace(span, shown)
    if isinstance(value, list):
        return [_scrubbed(v, span, shown) for v in value]
    if isinstance(value, dict):
        return {k: _scrubbed(v, span, shown) for k, v in value.items()}
    return value
