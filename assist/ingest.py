"""Ingest: store an inbound message once and attach it to its contact's case, in one transaction."""

import logging
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from assist import audit, cases, clock, contacts, csat, db, outbound, outbox, reviews, routing, triage
from assist.models import OPEN_STATUSES, Case, Contact, CsatSurvey, DeliveryStatus, Direction, Message
from assist.triage.labels import URGENCY
from channels.addresses import mask
from channels.email_text import new_part
from channels.message import Channel, InboundMessage, IngestResult, Keyword, without_nul
from channels.segments import segment_count

log = logging.getLogger(__name__)

# A possible emergency (triage's uncertain band) gets one question instead of a guess.
DANGER_QUESTION = {
    "en": "Is your pet or anyone in danger right now? Reply YES and we will call you.",
    "es": "¿Su mascota o alguien está en peligro ahora mismo? Responda SI y le llamaremos.",
}
AFFIRMATIVES = frozenset({"yes", "y", "yeah", "yep", "yes please", "yes call me", "call me", "si", "sí",
                          "si por favor", "sí por favor", "si llamen", "sí llámenme", "si llamenme"})
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
# Carrier keywords (STOP, START, HELP) are bookkeeping: they join an open case but never open one,
# and they are never routed (a HELP gets the program's help text, not the emergency queue).
OPENS_NO_CASE = frozenset({Keyword.OPT_OUT, Keyword.OPT_IN, Keyword.HELP})


def ingest(session: Session, inbound: InboundMessage, *, contact: Contact | None = None) -> IngestResult:
    """Store inbound once, triage it, route its case and store the bot's reply, in one transaction; say what
    to answer.

    What only the answer needs happens here, and the consoles' live event goes out right after the commit;
    assigning the case, the SLA check and alerting the lead are owed in the same transaction and run after
    it (jobs.after_inbound, in a worker). A redelivery
    (same channel id or idempotency token) stores nothing and gets the first answer; if triage failed the
    first time, the message was stored anyway and the redelivery finishes it. `contact` files a message
    whose sender has no address (a caller who withheld their number) under a contact the caller resolved.
    """
    inbound = without_nul(inbound)
    lane = f"contact:{inbound.sender}" if inbound.sender or contact is None else f"contact-id:{contact.id}"
    given = contact
    # The contact's lane: concurrent messages and redeliveries of one contact wait their turn, and each
    # finds the case and the replies the one before it stored.
    with db.lane_of_process(session, lane):
        db.lane(session, lane)
        contact = given or _contact_of(session, inbound)
        message = _find_stored(session, inbound, contact)
        if message is None:
            try:
                return _receive(session, inbound, contact)
            except Exception:
                # Nothing a customer sent is lost: unless this very delivery was stored concurrently (another
                # lane: its idempotency token), the message is stored alone, untriaged, before the error is
                # answered; a redelivery finishes it.
                session.rollback()
                db.lane(session, lane)
                contact = given or _contact_of(session, inbound)
                message = _find_stored(session, inbound, contact)
                if message is None:
                    _store(session, inbound, contact, None)
                    session.commit()
                    raise
        log.info("duplicate %s delivery %s ignored", inbound.channel, inbound.channel_id)
        if message.triage is None and not message.is_rating:
            reply = _respond(session, message, triage.classify(message.text, message.channel),
                             answer=_answerable(inbound))
            outbox.commit(session)
            return _result(session, message, duplicate=True, reply=reply)
        session.commit()
        return _result(session, message, duplicate=True)


def _answerable(inbound: InboundMessage) -> bool:
    """Whether the bot may answer inbound: never a machine (no mail loops), never mail whose sender failed
    authentication (the answer would go to whoever was impersonated: backscatter)."""
    return not (inbound.automated or inbound.unauthenticated)


def _contact_of(session: Session, inbound: InboundMessage) -> Contact:
    """The contact behind inbound's sender, created if new. Mail that failed authentication and claims the
    address of a contact or member gets an unverified contact of its own: not theirs, nor their cases."""
    if inbound.channel != Channel.EMAIL:
        return contacts.find_or_create(session, phone=inbound.sender)
    if inbound.unauthenticated and contacts.is_known(session, inbound.sender):
        log.warning("email %s claims to be from %s but failed authentication (%s): filed under an unverified "
                    "contact", inbound.channel_id, mask(inbound.sender), (inbound.meta or {}).get("auth"))
        return contacts.unverified(session, inbound.sender)
    return contacts.find_or_create(session, email=inbound.sender, name=inbound.sender_name)


def _receive(session: Session, inbound: InboundMessage, contact: Contact) -> IngestResult:
    rating = csat.rating_in(_written(inbound)) if inbound.keyword is None else None
    survey = csat.waiting(session, contact, clock.now()) if rating is not None else None
    if rating is not None and survey is not None:
        return _receive_rating(session, inbound, contact, survey, rating)
    result = triage.classify(inbound.text, inbound.channel)
    message = _store(session, inbound, contact, result)
    with session.no_autoflush:  # one flush at the commit: each row is written once
        reply = _respond(session, message, result, answer=_answerable(inbound))
    outbox.commit(session)
    log.info("stored %s message %s from %s on case %s", inbound.channel, message.id, mask(inbound.sender),
             message.case_id)
    return _result(session, message, duplicate=False, reply=reply)


def _written(inbound: InboundMessage) -> str:
    """What the customer wrote just now: an SMS's text, an email's new part (without its subject or quote)."""
    return new_part(inbound.original) if inbound.channel == Channel.EMAIL else inbound.text


def _receive_rating(session: Session, inbound: InboundMessage, contact: Contact, survey: CsatSurvey,
                    rating: csat.Rating) -> IngestResult:
    """File the answer to a case's satisfaction question on that case, which stays resolved: not triaged (nor
    counted in the incident figures), not routed, not answered, no new case."""
    message = _store(session, inbound, contact, None, rated=survey.case)
    message.meta = {**(message.meta or {}), "csat_score": rating.score}
    csat.record_answer(session, survey, message, rating, clock.now())
    outbox.event(session, "message", case_id=survey.case_id, message_id=message.id, queue=survey.case.queue,
                 assignee_id=survey.case.assignee_id)
    outbox.commit(session)
    log.info("stored %s rating %s from %s on case %s", inbound.channel, message.id, mask(inbound.sender),
             message.case_id)
    return _result(session, message, duplicate=False)


def _store(session: Session, inbound: InboundMessage, contact: Contact, result: triage.Triage | None, *,
           rated: Case | None = None) -> Message:
    """Store the message (flushed, not committed), on its case, opened if need be; a rating on the case it
    rates, left resolved."""
    now = clock.now()
    if inbound.keyword:
        KEYWORD_ACTIONS[inbound.keyword](session, contact, now)

    case = rated or _thread_case(session, inbound, contact) or open_case(session, contact)
    if case is not None and rated is None:
        cases.reopen(session, case, reason="the customer wrote on its thread")
    opened = case is None and inbound.keyword not in OPENS_NO_CASE
    if opened:
        case = Case(contact=contact, created_at=now)
        session.add(case)

    message = Message(
        case=case, contact=contact, direction=Direction.INBOUND, channel=inbound.channel,
        channel_id=inbound.channel_id, idempotency_token=inbound.idempotency_token,
        sender=inbound.sender, recipient=inbound.recipient, subject=inbound.subject or None,
        text=inbound.text, original=inbound.original, html=inbound.html, keyword=inbound.keyword,
        meta=inbound.meta or None,
        attachments=[vars(a) for a in inbound.attachments], created_at=inbound.received_at or now,
        **({"triage": result.to_dict(), "language": result.language} if result else {}),
    )
    session.add(message)
    session.flush()
    reviews.flag_inbound(session, message)
    if case is not None and rated is None:  # a rating leaves the case's wait (and its SLA figures) alone
        case.last_inbound_at = now
    if opened:
        audit.record(session, "case.opened", case=case, message=message, channel=inbound.channel)
    audit.record(session, "message.received", case=case, message=message, channel=inbound.channel)
    return message


PRIORITY = {label: rank for rank, label in enumerate(URGENCY, 1)}  # critical is priority 1


def _respond(session: Session, message: Message, result: triage.Triage, *, answer: bool) -> Message | None:
    """Label a stored message, route its case by the playbooks and store the bot's reply (returned, if any,
    and if it may `answer`); owe what follows in a worker (jobs.after_inbound)."""
    case = message.case
    if _answers_danger_question(case, message):
        result = _confirmed_danger(session, case, message, result)
    message.triage = result.to_dict()
    message.language = result.language
    reply, playbook_id, settle = None, None, routing.Settle(False, False, False)
    if case is not None and message.keyword is None:
        reply, playbook_id, settle = _route(session, case, message, result)
        if result.possible_emergency and case.danger_asked_at is None and answer \
                and not message.contact.opted_out and message.channel in (Channel.SMS, Channel.EMAIL):
            reply = _ask_about_danger(session, case, message, result, reply)
    if message.keyword == Keyword.HELP:
        reply, playbook_id = HELP_TEXT, None  # carriers require HELP to be answered with the program's help
    if not answer or (message.contact.opted_out and message.channel != Channel.VOICE):
        # Nothing is sent to an opted-out contact, and automated or unauthenticated mail is never answered; a
        # caller still hears the spoken safety advice (an SMS opt-out is not a voice one).
        reply = None
    audit.record(session, "message.triaged", case=case, message=message, urgency=result.urgency,
                 emotion=result.emotion, category=result.category, model=result.model_version)
    sent = None
    if reply and message.channel == Channel.VOICE:
        # Spoken in the call's TwiML, not sent: kept on the caller's message so a redelivery says it again.
        message.meta = {**(message.meta or {}), "said": reply, "playbook_id": playbook_id}
    elif reply:
        sent = _store_reply(session, message, reply, playbook_id)
        if sent.channel == Channel.EMAIL:
            outbound.queue_send(session, sent)  # SMS and voice are answered in the webhook's TwiML
    if case is not None:
        # Owed in this transaction, so they happen even if Redis is down right now; the consoles hear of
        # the message as soon as it is committed, and of its assignee once the worker has chosen one.
        outbox.event(session, "message", case_id=case.id, message_id=message.id, queue=case.queue,
                     assignee_id=case.assignee_id)
        outbox.job(session, "assist.jobs.after_inbound", case.id, *settle,
                   queue="critical" if case.priority == 1 else "default")
    return sent


def _route(session: Session, case: Case, message: Message,
           result: triage.Triage) -> tuple[str | None, str | None, routing.Settle]:
    """Set the case's urgency (its most urgent message's) and route it by the playbooks: the playbook's reply
    and id, if it answers, and what is left to do after the commit."""
    case.urgency = result.urgency if case.urgency is None else min(case.urgency, result.urgency,
                                                                   key=PRIORITY.__getitem__)
    never_routed = case.playbook_id is None  # so the bot never answered it
    decision, settle = routing.route(session, case, message, result)
    # Spoken advice is said on every call; a written reply goes once per case and playbook, and only from
    # the playbook the case is routed by (a calmer follow-up leaves the case, and its answer, as they are).
    if message.channel == Channel.VOICE or (
            case.playbook_id == decision.playbook.id
            and (never_routed or not routing.auto_replied(session, case, decision.playbook.id))):
        return decision.auto_reply, decision.playbook.id, settle
    return None, None, settle


def _ask_about_danger(session: Session, case: Case, message: Message, result: triage.Triage,
                      reply: str | None) -> str:
    """A possible emergency: the bot asks its one question (by SMS alone, by email before the reply)."""
    question = DANGER_QUESTION.get(result.language, DANGER_QUESTION["en"])
    case.danger_asked_at = clock.now()
    audit.record(session, "case.danger_asked", case=case, message=message, probability=result.critical_probability)
    return question if message.channel == Channel.SMS or not reply else f"{question}\n\n{reply}"


def _answers_danger_question(case: Case | None, message: Message) -> bool:
    """Whether message is a YES to the bot's "is anyone in danger?" on this case."""
    if case is None or case.danger_asked_at is None or message.direction != Direction.INBOUND:
        return False
    words = " ".join("".join(c for c in message.text.lower() if c.isalnum() or c.isspace()).split())
    return words in AFFIRMATIVES


def _confirmed_danger(session: Session, case: Case, message: Message, result: triage.Triage) -> triage.Triage:
    """A YES raises the case to critical at once, on the category of the message that was asked about."""
    asked = next((m for m in reversed(case.messages) if m.direction == Direction.INBOUND and m.triage
                  and m.triage.get("possible_emergency")), None)
    message.keyword = None  # an answer, not the carrier's opt-in keyword (which changes nothing here)
    case.danger_asked_at = None
    audit.record(session, "case.danger_confirmed", case=case, message=message)
    evidence = [{"start": 0, "end": len(message.text), "text": message.text, "source": "answer", "label": "urgency",
                 "value": "critical", "effect": "answered YES: someone or a pet is in danger"}]
    return replace(result, urgency="critical", category=asked.triage["category"] if asked else result.category,
                   possible_emergency=False, critical_probability=1.0, evidence=evidence)


def _thread_case(session: Session, inbound: InboundMessage, contact: Contact) -> Case | None:
    """The case of this contact an email answers: by the Message-IDs it references, else by its "[Case #N]".

    Only the contact's own cases: a forwarded thread or a guessed number joins nobody else's case.
    """
    if inbound.thread_ids:
        found = session.scalars(select(Message).join(Case, Message.case_id == Case.id)
                                .where(Message.channel == Channel.EMAIL, Message.channel_id.in_(inbound.thread_ids),
                                       Case.contact_id == contact.id)
                                .order_by(Message.id.desc())).first()
        if found is not None:
            return found.case
    if inbound.case_token is not None:
        quoted = session.get(Case, inbound.case_token)
        if quoted is not None and quoted.contact_id == contact.id:  # a guessed number opens nobody's case
            return quoted
    return None


def open_case(session: Session, contact: Contact) -> Case | None:
    """The contact's newest open case, if any."""
    return session.scalars(
        select(Case).where(Case.contact_id == contact.id, Case.status.in_(OPEN_STATUSES))
        .order_by(Case.id.desc())
    ).first()


def _store_reply(session: Session, inbound: Message, text: str, playbook_id: str | None) -> Message:
    """Store the reply that goes back in the webhook's answer (TwiML): the carrier sends it."""
    in_answer = inbound.channel != Channel.EMAIL  # TwiML carries SMS and voice replies; email needs a job
    reply = Message(
        case=inbound.case, contact=inbound.contact, direction=Direction.OUTBOUND, channel=inbound.channel,
        sender=inbound.recipient, recipient=inbound.sender, text=text, original=text, in_reply_to_id=inbound.id,
        delivery_status=DeliveryStatus.QUEUED if in_answer else DeliveryStatus.PENDING,
        attempts=1 if in_answer else 0, playbook_id=playbook_id,
        segments=segment_count(text) if inbound.channel == Channel.SMS else None,
        sent_at=clock.now() if in_answer else None, meta={"via": "twiml"} if in_answer else None,
    )
    session.add(reply)
    session.flush()
    return reply


def _find_stored(session: Session, inbound: InboundMessage, contact: Contact) -> Message | None:
    """The stored message inbound is a redelivery of: the carrier's id from the same sender and contact, or
    its idempotency token.

    Never the id alone: anyone can write a Message-ID, and a stranger's mail carrying the next one of a
    customer must not make the customer's mail a duplicate. Mail that failed authentication may be forged:
    it is a redelivery of any stored mail of its From address with its id (it is never the one that is lost).
    """
    same_delivery = ((Message.channel == inbound.channel) & (Message.channel_id == inbound.channel_id)
                     & (Message.sender == inbound.sender))
    if not inbound.unauthenticated:
        same_delivery &= Message.contact_id == contact.id
    if inbound.idempotency_token:
        same_delivery |= Message.idempotency_token == inbound.idempotency_token
    return session.scalars(select(Message).where(same_delivery).order_by(Message.id)).first()


def _result(session: Session, message: Message, *, duplicate: bool, reply: Message | None = None) -> IngestResult:
    """What to answer for message: its reply (found when not given, for a redelivery) or what a call says."""
    if message.channel == Channel.VOICE:
        said = (message.meta or {}).get("said")
        return IngestResult(message_id=message.id, case_id=message.case_id, duplicate=duplicate, reply=said)
    if reply is None and duplicate:
        reply = session.scalars(
            select(Message).where(Message.in_reply_to_id == message.id, Message.author_id.is_(None))
            .order_by(Message.id)
        ).first()
    return IngestResult(message_id=message.id, case_id=message.case_id, duplicate=duplicate,
                        reply=reply.text if reply else None, reply_id=reply.id if reply else None)
