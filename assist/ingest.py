"""Ingest: store an inbound message once and attach it to its contact's case, in one transaction."""

import logging
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assist import audit, contacts, triage
from assist.triage.labels import URGENCY
from assist.models import OPEN_STATUSES, Case, Contact, DeliveryStatus, Direction, Message
from channels.addresses import mask
from channels.message import Channel, IngestResult, InboundMessage, Keyword
from channels.sms import segment_count

log = logging.getLogger(__name__)

# The acknowledgement for a new case (a later playbook issue makes it configurable).
# Kept in GSM-7 and within two SMS segments.
ACKNOWLEDGEMENT = (
    "Thanks, the incident team has your message (case #{case_id}). A person will reply soon. "
    "If a pet or person is in danger now, call 911 or your nearest emergency vet."
)
HELP_TEXT = (
    "Incident team: text us what happened and a person will reply. "
    "Emergencies: call 911 or your nearest emergency vet. Reply STOP to opt out, START to opt back in."
)


def _opt_out(session: Session, contact: Contact, now: datetime) -> None:
    contact.opted_out, contact.opted_out_at = True, now
    audit.record(session, "contact.opted_out", contact_id=contact.id)


def _opt_in(session: Session, contact: Contact, now: datetime) -> None:
    contact.opted_out, contact.opted_out_at = False, None
    audit.record(session, "contact.opted_in", contact_id=contact.id)


def _help(session: Session, contact: Contact, now: datetime) -> None:
    pass


KEYWORD_ACTIONS = {Keyword.OPT_OUT: _opt_out, Keyword.OPT_IN: _opt_in, Keyword.HELP: _help}
# Opting out or in is carrier bookkeeping: it joins an open case but never opens one.
OPENS_NO_CASE = frozenset({Keyword.OPT_OUT, Keyword.OPT_IN})


def ingest(session: Session, inbound: InboundMessage) -> IngestResult:
    """Store inbound once, resolve its contact and case, and say what to answer on the channel.

    A redelivery (same channel id or idempotency token) stores nothing and gets the first answer.
    """
    try:
        result = _ingest_once(session, inbound)
    except IntegrityError:
        # The same delivery, or the same new contact, was stored concurrently: read it back.
        session.rollback()
        result = _ingest_once(session, inbound)
    # Triage runs once the message is safely stored; a redelivery finishes it if it failed before.
    # Locking the message first (then its case) keeps concurrent redeliveries from deadlocking.
    message = session.scalars(select(Message).where(Message.id == result.message_id).with_for_update()
                              .execution_options(populate_existing=True)).one()
    if message.triage is None:
        apply_triage(session, message)
    else:
        session.commit()
    return result


def _ingest_once(session: Session, inbound: InboundMessage) -> IngestResult:
    stored = _find_stored(session, inbound)
    if stored is not None:
        log.info("duplicate %s delivery %s ignored", inbound.channel, inbound.channel_id)
        return _result(session, stored, duplicate=True)

    address = {"email": inbound.sender} if inbound.channel == Channel.EMAIL else {"phone": inbound.sender}
    contact = contacts.find_or_create(session, **address)
    now = datetime.now(timezone.utc)
    if inbound.keyword:
        KEYWORD_ACTIONS[inbound.keyword](session, contact, now)

    case = _open_case(session, contact)
    opened = case is None and inbound.keyword not in OPENS_NO_CASE
    if opened:
        case = Case(contact=contact)
        session.add(case)
    if case is not None:
        case.last_inbound_at = now

    message = Message(
        case=case, contact=contact, direction=Direction.INBOUND, channel=inbound.channel,
        channel_id=inbound.channel_id, idempotency_token=inbound.idempotency_token,
        sender=inbound.sender, recipient=inbound.recipient, subject=inbound.subject or None,
        text=inbound.text, original=inbound.original, keyword=inbound.keyword,
        attachments=[vars(a) for a in inbound.attachments], created_at=inbound.received_at,
    )
    session.add(message)
    session.flush()
    if opened:
        audit.record(session, "case.opened", case=case, message=message, channel=inbound.channel)
    audit.record(session, "message.received", case=case, message=message, channel=inbound.channel)

    reply_text = _reply_text(contact, case, inbound.keyword, opened)
    if reply_text:
        _store_reply(session, message, reply_text)
    session.commit()
    log.info("stored %s message %s from %s on case %s", inbound.channel, message.id, mask(inbound.sender),
             case.id if case else None)
    return _result(session, message, duplicate=False)


PRIORITY = {label: rank for rank, label in enumerate(URGENCY, 1)}  # critical is priority 1


def apply_triage(session: Session, message: Message) -> None:
    """Triage a stored inbound message; its case takes the highest urgency of its inbound messages."""
    result = triage.classify(message.text, message.channel)
    message.triage = result.to_dict()
    message.language = result.language
    case = message.case
    if case is not None:
        urgencies = [m.triage["urgency"] for m in case.messages
                     if m.direction == Direction.INBOUND and m.triage is not None]
        case.urgency = min(urgencies, key=PRIORITY.__getitem__)
        case.priority = PRIORITY[case.urgency]
    audit.record(session, "message.triaged", case=case, message=message, urgency=result.urgency,
                 emotion=result.emotion, category=result.category, model=result.model_version)
    session.commit()


def _find_stored(session: Session, inbound: InboundMessage) -> Message | None:
    same_delivery = (Message.channel == inbound.channel) & (Message.channel_id == inbound.channel_id)
    if inbound.idempotency_token:
        same_delivery |= Message.idempotency_token == inbound.idempotency_token
    return session.scalars(select(Message).where(same_delivery).order_by(Message.id)).first()


def _open_case(session: Session, contact: Contact) -> Case | None:
    return session.scalars(
        select(Case).where(Case.contact_id == contact.id, Case.status.in_(OPEN_STATUSES))
        .order_by(Case.id.desc())
    ).first()


def _reply_text(contact: Contact, case: Case | None, keyword: Keyword | None, opened: bool) -> str | None:
    if contact.opted_out:
        return None  # nothing is sent to an opted-out contact, not even help
    if keyword == Keyword.HELP:
        return HELP_TEXT
    if opened and keyword is None:
        return ACKNOWLEDGEMENT.format(case_id=case.id)
    return None


def _store_reply(session: Session, inbound: Message, text: str) -> Message:
    """Store the reply that goes back in the webhook's answer (TwiML): the carrier sends it."""
    reply = Message(
        case=inbound.case, contact=inbound.contact, direction=Direction.OUTBOUND, channel=inbound.channel,
        sender=inbound.recipient, recipient=inbound.sender, text=text, original=text,
        in_reply_to_id=inbound.id, delivery_status=DeliveryStatus.QUEUED, attempts=1,
        segments=segment_count(text) if inbound.channel == Channel.SMS else None,
        sent_at=datetime.now(timezone.utc),
    )
    session.add(reply)
    session.flush()
    return reply


def _result(session: Session, message: Message, *, duplicate: bool) -> IngestResult:
    reply = session.scalars(
        select(Message).where(Message.in_reply_to_id == message.id, Message.author_id.is_(None))
        .order_by(Message.id)
    ).first()
    return IngestResult(message_id=message.id, case_id=message.case_id, duplicate=duplicate,
                        reply=reply.text if reply else None, reply_id=reply.id if reply else None)
