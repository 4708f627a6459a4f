"""Calls: the IVR's decisions, the queues a caller waits in, the agents' phones it rings, and the chain of
fallbacks that gets every critical caller to a person or a callback.

A caller who asks for a person (critical words, or 0) waits in a queue of their own while the
service rings the available agents of the queue (all at once for an emergency) through Twilio's
Calls API. Each agent hears a screening prompt; the first to press 1 takes the caller out of the
queue with <Dial><Queue>; the other offers are cancelled. When nobody takes it within the queue's
wait limit, the call leaves the queue for the on-call phone (screened the same way, so a phone's
voicemail cannot take it), then for voicemail, and the case gets a callback task at the top of the
queue. Every step answers TwiML built by channels.voice; every callback is applied once.
"""

import logging
import re
from collections.abc import Mapping, Set
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assist import audit, cases, clock, contacts, ingest, outbound, outbox
from assist.errors import BadWebhook, InvalidAddress
from assist.models import (
    Call,
    CallCallback,
    CallLeg,
    CallState,
    Case,
    Contact,
    LegStatus,
    Message,
    Note,
    Presence,
    User,
)
from assist.settings import Settings
from channels import voice
from channels.addresses import normalize_phone
from channels.message import Channel, InboundMessage

log = logging.getLogger(__name__)

TEXT_BACK = "Hi, this is the incident team following up on your call. Reply here with what happened and we'll help."
TEXT_BACK_ES = ("Hola, le escribe el equipo de incidentes sobre su llamada. Responda aquí qué pasó y le ayudaremos.")
ANSWERING_STATES = (LegStatus.PLACING, LegStatus.RINGING, LegStatus.ANSWERED)
CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")  # Twilio's call SIDs: CA and 32 hex digits


def call_sid(form: Mapping[str, str], name: str = "CallSid") -> str:
    """The call SID in form[name]; it keys the call, its queue and its callbacks, and goes into API URLs.

    Raises:
        BadWebhook: it is missing or not a Twilio call SID.
    """
    sid = form.get(name, "")
    if not CALL_SID.fullmatch(sid):
        raise BadWebhook(f"{name} is missing or not a Twilio call SID (CA and 32 hex digits)")
    return sid


# -- the caller's side ---------------------------------------------------------------------------------------

def call_for(session: Session, form: Mapping[str, str]) -> Call:
    """The call a webhook is about, stored on its first request (Twilio may send only CallSid later)."""
    sid = call_sid(form)
    call = session.scalar(select(Call).where(Call.call_sid == sid))
    if call is not None:
        return call
    call = Call(call_sid=sid, caller=form.get("From", "")[:64], language="en", state=CallState.IVR)
    session.add(call)
    try:
        session.commit()
    except IntegrityError:  # the same call's first request, twice at once
        session.rollback()
        call = session.scalar(select(Call).where(Call.call_sid == sid))
    return call


def voice_of(call: Call, urls: voice.Urls, leg: CallLeg | None = None) -> voice.Voice:
    """How to speak to this caller: their language, and step URLs that carry the call (and the leg)."""
    bound = {"call": call.id, **({"leg": leg.id} if leg is not None else {})}
    return voice.Voice(call.language, lambda step, **params: urls(step, **bound, **params))


def greet(session: Session, form: Mapping[str, str], urls: voice.Urls) -> str:
    call = call_for(session, form)
    return voice.greeting(voice_of(call, urls))


def gather(session: Session, form: Mapping[str, str], *, attempt: int, silent: bool, settings: Settings,
           urls: voice.Urls) -> str:
    """What the caller said or pressed at the greeting (attempt 1) or when asked again."""
    call = call_for(session, form)
    speech, digits = form.get("SpeechResult", "").strip(), form.get("Digits", "")
    say = voice_of(call, urls)
    if digits == "0":
        return to_person(session, call, "support", settings, urls)
    if digits == "2" and attempt == 1 and call.language == "en" and not speech:
        call.language = "es"  # "Para español, oprima dos"
        session.commit()
        return voice.greeting(voice_of(call, urls))
    if silent or not speech:
        if attempt < voice.ATTEMPTS:
            return voice.greeting(say, attempt + 1, retry=True)
        call.state = CallState.VOICEMAIL
        session.commit()
        return voice.voicemail(say)

    result = ingest.ingest(session, voice.parse_speech(form, f"gather{attempt}", sender_of(call)),
                           contact=_contact_of(session, call))
    message = session.get(Message, result.message_id)
    triage = message.triage
    call.case_id = message.case_id
    call.urgency, call.emotion, call.category = triage["urgency"], triage["emotion"], triage["category"]
    if message.language == "es" and call.language != "es":
        call.language = "es"  # speech recognised as Spanish: answer in Spanish from here on
    session.commit()
    say = voice_of(call, urls)
    if call.critical:
        return to_person(session, call, "emergency", settings, urls)
    if triage.get("possible_emergency"):  # not sure it is not one: the caller is on the line, so a person takes it
        return to_person(session, call, "support", settings, urls)
    if not settings.in_business_hours(clock.now()):
        texted = text_back(session, call)
        return voice.voicemail(say, *filter(None, [result.reply]),
                               voice.prompt(call.language, "after_hours_texted" if texted else "after_hours"))
    return voice.menu(say, result.reply)


def menu(session: Session, form: Mapping[str, str], settings: Settings, urls: voice.Urls) -> str:
    call = call_for(session, form)
    say = voice_of(call, urls)
    digit = form.get("Digits", "")
    if digit == "0":
        return to_person(session, call, "support", settings, urls)
    if digit == "2":
        if text_back(session, call):
            return voice.say_and_hang_up(say, voice.prompt(call.language, "text_back"))
        return voice.voicemail(say, voice.prompt(call.language, "no_text_back"))
    return voice.voicemail(say)


def recorded(session: Session, form: Mapping[str, str], urls: voice.Urls) -> str:
    call = call_for(session, form)
    call.state = CallState.VOICEMAIL
    session.commit()
    return voice.say_and_hang_up(voice_of(call, urls), voice.prompt(call.language, "recorded"))


def to_person(session: Session, call: Call, queue: str, settings: Settings, urls: voice.Urls) -> str:
    """Put the caller in their own queue and ring the agents who can take it, one short line first;
    with no agent to ring, an emergency goes straight to the on-call phone."""
    now = clock.now()
    call.queue, call.state, call.waiting_since = queue, CallState.WAITING, now
    case = case_of(session, call)
    if queue == "emergency":
        case.queue, case.priority = "emergency", 1
    audit.record(session, "call.queued", case=case, queue=queue, call_sid=call.call_sid)
    legs = _offer(session, call, settings, now)
    if not legs and queue == "emergency" and on_call_number(session, settings):
        return next_step(session, call, settings, urls, before=voice.prompt(call.language, "connecting"))
    _place(session, legs)
    outbox.commit(session)
    return voice.enqueue(voice_of(call, urls), queue_name(call))


def queue_name(call: Call) -> str:
    """Each caller waits in a Twilio queue of their own, so the agent who accepts gets that caller."""
    return f"{call.queue}-{call.call_sid}"[:64]


def hold(session: Session, call_id: int, form: Mapping[str, str], settings: Settings, urls: voice.Urls) -> str:
    """The Enqueue's waitUrl, asked again whenever its last answer has been played."""
    call = _call(session, call_id)
    say = voice_of(call, urls)
    if call.state != CallState.WAITING:
        return voice.hold(say, voice.prompt(call.language, "bridging"), pause=3)
    waited = _seconds(form.get("QueueTime"))
    ringing = any(leg.status in ANSWERING_STATES for leg in call.legs)
    if waited >= max_wait(call, settings) or (call.wait_prompts and not ringing):
        return voice.leave_queue()  # the wait limit, or every agent's phone rang out: the next step
    call.wait_prompts += 1
    first = call.wait_prompts == 1
    session.commit()
    if first:  # the position, then the full safety advice once, while the agents' phones ring
        return voice.hold(say, voice.prompt(call.language, "position", position=_position(session, call)),
                          *filter(None, [_advice(session, call)]), pause=2)
    return voice.hold(say, voice.prompt(call.language, "still_connecting"))


def max_wait(call: Call, settings: Settings) -> int:
    return settings.emergency_max_wait if call.queue == "emergency" else settings.support_max_wait


def queued(session: Session, call_id: int, form: Mapping[str, str], settings: Settings, urls: voice.Urls) -> str:
    """Enqueue's action: the caller left the queue (bridged, hung up, or sent on by the wait limit)."""
    result = form.get("QueueResult", "")
    if result not in voice.QUEUE_RESULTS:
        raise BadWebhook(f"unknown QueueResult {result[:40]!r}")
    call = _call(session, call_id)
    if result in voice.BRIDGED or (call.state == CallState.CONNECTING and result == "hangup"):
        call.state, call.outcome = CallState.ENDED, call.outcome or "answered"
        session.commit()
        return voice.hang_up()
    _cancel_offers(session, call)
    if result == "hangup":
        abandon(session, call, "hung up while waiting for a person")
        call.state = CallState.ENDED
        session.commit()
        return voice.hang_up()
    return next_step(session, call, settings, urls)


def next_step(session: Session, call: Call, settings: Settings, urls: voice.Urls, *, before: str = "") -> str:
    """After the queue: the on-call phone (once, screened), then voicemail with a callback task."""
    say = voice_of(call, urls)
    number = on_call_number(session, settings)
    if call.queue == "emergency" and number and not call.on_call_tried:
        call.on_call_tried, call.state = True, CallState.DIALING
        leg = CallLeg(call_id=call.id, kind="on_call", number=number, status=LegStatus.RINGING)
        session.add(leg)
        session.flush()
        audit.record(session, "call.offered", case=call.case, call_sid=call.call_sid, leg=leg.id, leg_kind=leg.kind)
        session.commit()
        return voice.dial(voice_of(call, urls, leg), number, timeout=settings.call_ring_seconds,
                          caller_id=settings.twilio_from_number, before=before)
    call.state = CallState.VOICEMAIL
    abandon(session, call, "nobody took the call; sent to voicemail")
    session.commit()
    return voice.voicemail(say, voice.prompt(call.language, "nobody"))


def dialed(session: Session, call_id: int, leg_id: int, form: Mapping[str, str], settings: Settings,
           urls: voice.Urls) -> str:
    """<Dial>'s action for the on-call phone: connected only if the person there pressed 1."""
    status = form.get("DialCallStatus", "")
    if status not in voice.DIAL_STATUSES:
        raise BadWebhook(f"unknown DialCallStatus {status[:40]!r}")
    call, leg = _call(session, call_id), _leg(session, leg_id)
    leg.leg_sid = leg.leg_sid or (call_sid(form, "DialCallSid") if form.get("DialCallSid") else None)
    if leg.status == LegStatus.ACCEPTED and status in ("completed", "answered"):
        leg.status, call.state, call.outcome = LegStatus.ENDED, CallState.ENDED, "answered by on call"
        session.commit()
        return voice.hang_up()
    if leg.status in ANSWERING_STATES:
        leg.status = LegStatus.MISSED if status in ("no-answer", "busy", "failed", "canceled") else LegStatus.DECLINED
    return next_step(session, call, settings, urls)


def abandon(session: Session, call: Call, why: str) -> None:
    """A caller who asked for a person and did not reach one: a callback task at the top of the queue."""
    if call.outcome is not None:
        return
    call.outcome = "callback"
    case = case_of(session, call)
    cases.reopen(session, case, reason="a caller to call back")
    now = clock.now()
    case.first_response_due_at = min(filter(None, [case.first_response_due_at, now]))  # due now
    if call.critical:
        case.urgency, case.priority = "critical", 1
    who = call.caller if not voice.is_withheld(call.caller) else "the caller (number withheld: no callback possible)"
    session.add(Note(case_id=case.id, kind="callback",
                     text=f"Call back {who}: {'critical call, ' if call.critical else ''}{why}."))
    audit.record(session, "call.callback_needed", case=case, call_sid=call.call_sid, reason=why)


def text_back(session: Session, call: Call) -> bool:
    """Text the caller (menu 2, or after hours); False when their number cannot get texts."""
    case = case_of(session, call)
    contact = case.contact
    if contact.phone is None or contact.opted_out:
        return False
    reply = outbound.create_reply(session, case, TEXT_BACK_ES if call.language == "es" else TEXT_BACK,
                                  channel=Channel.SMS)
    outbound.queue_send(session, reply)
    outbox.commit(session)
    return True


# -- the agents' side ----------------------------------------------------------------------------------------

def available_agents(session: Session, queue: str, now: datetime, *, exclude: Set[int] = frozenset()) -> list[User]:
    """Active members of queue with a phone who are available and not skipped for a missed offer."""
    users = session.scalars(select(User).where(User.active.is_(True), User.presence == Presence.AVAILABLE,
                                               User.phone.is_not(None)).order_by(User.id))
    return [u for u in users if queue in (u.queues or []) and u.id not in exclude
            and (u.skip_calls_until is None or u.skip_calls_until <= now)]


def on_call_number(session: Session, settings: Settings) -> str | None:
    if settings.on_call_number:
        return settings.on_call_number
    on_call = session.scalar(select(User).where(User.on_call.is_(True), User.active.is_(True),
                                                User.phone.is_not(None)).order_by(User.id))
    return on_call.phone if on_call else None


def _offer(session: Session, call: Call, settings: Settings, now: datetime) -> list[CallLeg]:
    """Offer a waiting call to the agents not yet offered it: everyone available for an emergency, the
    next one for support. Returns the legs to place (none: the caller moves on at the next hold)."""
    offered = {leg.user_id for leg in call.legs if leg.user_id is not None}
    agents = available_agents(session, call.queue, now, exclude=offered)
    if call.queue != "emergency":
        agents = agents[:1]
    legs = [CallLeg(call_id=call.id, user_id=u.id, kind="offer", number=u.phone) for u in agents]
    session.add_all(legs)
    session.flush()
    for leg in legs:
        audit.record(session, "call.offered", case=call.case, call_sid=call.call_sid, leg=leg.id, user_id=leg.user_id,
                     leg_kind=leg.kind)
    return legs


def _place(session: Session, legs: list[CallLeg]) -> None:
    """Owe the ringing of the legs' phones (a job after the commit): Twilio's Calls API is too slow for a
    webhook."""
    if legs:
        outbox.job(session, "assist.jobs.place_call_legs", [leg.id for leg in legs], queue="critical")


def take(session: Session, call_id: int, user: User) -> CallLeg:
    """An agent asks, from the console, to take a waiting call: their phone rings with the same prompt.

    Raises:
        LookupError: the call is no longer waiting.
        ValueError: the agent has no phone number.
    """
    call = _call(session, call_id)
    if call.state != CallState.WAITING:
        raise LookupError("this call is no longer waiting")
    if not user.phone:
        raise ValueError("add your phone number first (your profile, or assist users set --phone)")
    leg = CallLeg(call_id=call.id, user_id=user.id, kind="offer", number=user.phone)
    session.add(leg)
    session.flush()
    audit.record(session, "call.take", actor=user, case=call.case, call_sid=call.call_sid, leg=leg.id)
    _place(session, [leg])
    outbox.commit(session)
    return leg


def call_back(session: Session, case: Case, user: User) -> CallLeg:
    """An agent's **Call back**: ring the agent's phone, then dial the customer from the team's number.

    Raises:
        ValueError: the agent has no phone, or the customer has no number to call.
    """
    if not user.phone:
        raise ValueError("add your phone number first (your profile, or assist users set --phone)")
    if not case.contact.phone:
        raise ValueError("this customer has no phone number to call back")
    leg = CallLeg(case_id=case.id, user_id=user.id, kind="callback", number=user.phone)
    session.add(leg)
    session.flush()
    audit.record(session, "call.call_back", actor=user, case=case, leg=leg.id)
    _place(session, [leg])
    outbox.commit(session)
    return leg


def screen(session: Session, leg_id: int, settings: Settings, urls: voice.Urls) -> str:
    """The agent (or on-call person) picked up: the screening prompt; pressing 1 takes the call."""
    leg = _leg(session, leg_id)
    if leg.status in (LegStatus.PLACING, LegStatus.RINGING):
        leg.status = LegStatus.ANSWERED
        session.commit()
    call = leg.call
    if leg.kind == "callback":
        case = session.get(Case, leg.case_id)
        return voice.call_customer(f"Calling the customer back for case {case.id}.", case.contact.phone,
                                   caller_id=settings.twilio_from_number, action=urls("leg_ended", leg=leg.id))
    if call is None or call.state not in (CallState.WAITING, CallState.DIALING) or leg.status == LegStatus.CANCELED:
        return voice.say_and_hang_up(voice.Voice("en", urls), "This call has already been taken or has ended. "
                                                              "Thank you.")
    action = urls("screened", leg=leg.id)
    return voice.screen(voice.screening_prompt(call.urgency, call.category, call.emotion, call.queue or ""), action)


def screened(session: Session, leg_id: int, form: Mapping[str, str], urls: voice.Urls) -> str:
    """The key the called person pressed at the screening prompt."""
    leg = _leg(session, leg_id)
    call = leg.call
    if form.get("Digits") != "1":
        leg.status = LegStatus.DECLINED
        session.commit()
        return voice.hang_up()
    if leg.kind == "on_call":  # a <Dial><Number url>: an empty answer connects the parties
        if call.state != CallState.DIALING:
            return voice.hang_up()
        leg.status, call.state, call.answered_at = LegStatus.ACCEPTED, CallState.CONNECTING, clock.now()
        audit.record(session, "call.answered", case=call.case, call_sid=call.call_sid, leg=leg.id, leg_kind=leg.kind)
        session.commit()
        return voice.empty()
    # An offer: the first to press 1 wins, in one conditional UPDATE.
    won = cast(CursorResult, session.execute(update(Call).where(Call.id == call.id, Call.state == CallState.WAITING)
                          .values(state=CallState.CONNECTING, answered_by_id=leg.user_id,
                                  answered_at=clock.now()))).rowcount == 1
    if not won:
        leg.status = LegStatus.CANCELED
        session.commit()
        return voice.say_and_hang_up(voice.Voice("en", urls), "Someone else took this call, or the caller has "
                                                              "hung up. Thank you.")
    leg.status = LegStatus.ACCEPTED
    if leg.user is not None:
        leg.user.presence = Presence.BUSY
        _first_response(session, call, leg.user)
    audit.record(session, "call.answered", actor=leg.user, case=call.case, call_sid=call.call_sid, leg=leg.id)
    _cancel_offers(session, call, keep=leg.id)
    outbox.commit(session)
    return voice.connect_agent(queue_name(call), action=urls("leg_ended", leg=leg.id),
                               announce=urls("bridging", call=call.id), timeout=10)


def bridging(session: Session, call_id: int, urls: voice.Urls) -> str:
    """<Queue url>: what the caller hears as the agent is connected."""
    call = _call(session, call_id)
    return voice.announce(voice_of(call, urls), voice.prompt(call.language, "bridging"))


def leg_ended(session: Session, leg_id: int, form: Mapping[str, str]) -> str:
    """The agent's <Dial> ended (the bridge, or a callback call): the agent is available again."""
    leg = _leg(session, leg_id)
    if leg.status in (LegStatus.ACCEPTED, LegStatus.ANSWERED):
        leg.status = LegStatus.ENDED
    if leg.user is not None and leg.user.presence == Presence.BUSY:
        leg.user.presence = Presence.AVAILABLE
    audit.record(session, "call.leg_ended", case=leg.call.case if leg.call else None, leg=leg.id,
                 status=form.get("DialCallStatus", "")[:40], duration=_seconds(form.get("DialCallDuration")))
    session.commit()
    return voice.hang_up()


LEG_STATUSES = {"queued": LegStatus.RINGING, "initiated": LegStatus.RINGING, "ringing": LegStatus.RINGING,
                "in-progress": LegStatus.ANSWERED, "answered": LegStatus.ANSWERED, "completed": LegStatus.ENDED,
                "busy": LegStatus.MISSED, "no-answer": LegStatus.MISSED, "failed": LegStatus.MISSED,
                "canceled": LegStatus.CANCELED}


def leg_status(session: Session, leg_id: int, form: Mapping[str, str], settings: Settings) -> None:
    """Status callbacks of a placed leg: an agent who let it ring out is skipped for a while, and a
    waiting caller whose offers all ended is offered on (next agents, then the on-call phone)."""
    status = form.get("CallStatus", "")
    if status not in LEG_STATUSES:
        raise BadWebhook(f"unknown CallStatus {status[:40]!r}")
    leg = _leg(session, leg_id)
    new = LEG_STATUSES[status]
    if new == LegStatus.ENDED and leg.status == LegStatus.ANSWERED:
        new = LegStatus.DECLINED  # picked up, never pressed 1 (a person who hung up, or a voicemail)
    final = (LegStatus.ACCEPTED, LegStatus.DECLINED, LegStatus.MISSED, LegStatus.CANCELED, LegStatus.ENDED)
    if leg.status in final and not (leg.status == LegStatus.ACCEPTED and new == LegStatus.ENDED):
        session.commit()
        return
    leg.status = new
    now = clock.now()
    if new == LegStatus.MISSED and leg.user is not None and leg.kind == "offer":
        leg.user.skip_calls_until = now + timedelta(seconds=settings.agent_skip_seconds)
        audit.record(session, "call.offer_missed", case=leg.call.case if leg.call else None, leg=leg.id,
                     user_id=leg.user_id, status=status)
    legs = []
    call = leg.call
    if call is not None and call.state == CallState.WAITING and new in (LegStatus.MISSED, LegStatus.DECLINED) \
            and not any(other.status in ANSWERING_STATES for other in call.legs if other.id != leg.id):
        legs = _offer(session, call, settings, now)
    _place(session, legs)
    outbox.commit(session)


def place_legs(session: Session, leg_ids: list[int], client, urls: voice.Urls, settings: Settings) -> None:
    """Ring each leg's phone with Twilio's Calls API; what Twilio answers is the screening step."""
    for leg_id in leg_ids:
        leg = session.get(CallLeg, leg_id, with_for_update=True)
        if leg is None or leg.status != LegStatus.PLACING:
            continue
        if leg.call is not None and leg.call.state != CallState.WAITING:
            leg.status = LegStatus.CANCELED
            session.commit()
            continue
        created = client.calls.create(to=leg.number, from_=settings.twilio_from_number, url=urls("screen", leg=leg.id),
                                      method="POST", status_callback=urls("leg_status", leg=leg.id),
                                      status_callback_event=["initiated", "ringing", "answered", "completed"],
                                      status_callback_method="POST", timeout=settings.call_ring_seconds)
        leg.leg_sid, leg.status = created.sid, LegStatus.RINGING
        session.commit()


def cancel_legs(session: Session, call_id: int, keep: int | None, client) -> None:
    """Hang up the offers of a call that someone took or that left the queue (a job)."""
    legs = session.scalars(select(CallLeg).where(CallLeg.call_id == call_id, CallLeg.kind != "callback",
                                                 CallLeg.status.in_(ANSWERING_STATES))).all()
    for leg in legs:
        if leg.id == keep:
            continue
        if leg.leg_sid:
            # Twilio cancels a call that still rings; one picked up is hung up by completing it.
            client.calls(leg.leg_sid).update(status="completed" if leg.status == LegStatus.ANSWERED else "canceled")
        leg.status = LegStatus.CANCELED
        session.commit()


def _cancel_offers(session: Session, call: Call, keep: int | None = None) -> None:
    if any(leg.status in ANSWERING_STATES and leg.id != keep for leg in call.legs):
        outbox.job(session, "assist.jobs.cancel_call_legs", call.id, keep, queue="critical")


def _first_response(session: Session, call: Call, user: User) -> None:
    """A person answering the call is the case's first response."""
    cases.answered(session, case_of(session, call), user)


# -- Twilio's reports after the fact -------------------------------------------------------------------------

def callback_once(session: Session, key: str, apply) -> bool:
    """Apply a callback once: its key is written in the same transaction as its changes.

    A retry of a callback that succeeded finds the key and changes nothing; one that failed
    (its transaction rolled back) is applied again. Returns whether it was applied now.
    """
    if session.scalar(select(CallCallback.id).where(CallCallback.key == key)) is not None:
        return False
    apply()
    session.add(CallCallback(key=key[:200]))
    try:
        session.commit()
    except IntegrityError:  # the same callback applied concurrently
        session.rollback()
        return False
    return True


def recording(session: Session, form: Mapping[str, str]) -> None:
    """Twilio's recording status callback (CallSid and RecordingSid, no From)."""
    call = call_for(session, form)
    key = f"{call.call_sid}:recording:{form.get('RecordingSid', '')}"

    def apply():
        case = case_of(session, call)
        duration = _seconds(form.get("RecordingDuration"))
        sid = voice.recording_sid(form)
        if form.get("RecordingStatus") == "absent" or duration == 0 or sid is None:
            session.add(Note(case_id=case.id, kind="voicemail", text="The caller left no message (no recording)."))
            audit.record(session, "call.recording_absent", case=case, call_sid=call.call_sid)
            return
        # Kept on the call, which the case page shows with a player; not on the caller's latest message (their
        # words at the greeting), where it read as a second copy of the voicemail's transcript.
        call.recording_sid, call.recording_duration = sid, duration
        session.add(Note(case_id=case.id, kind="voicemail", text=f"Voicemail, {duration} s."))
        audit.record(session, "call.recording", case=case, call_sid=call.call_sid, duration=duration)

    callback_once(session, key, apply)


def transcription(session: Session, form: Mapping[str, str]) -> None:
    """The transcript of a voicemail: ingested on the call's case, like the caller's words."""
    call = call_for(session, form)
    key = f"{call.call_sid}:transcription:{form.get('TranscriptionSid') or form.get('RecordingSid', '')}"
    text = (form.get("TranscriptionText") or "").strip()[:voice.MAX_TEXT * 4]

    def apply():
        case = case_of(session, call)
        if form.get("TranscriptionStatus") != "completed" or not text:
            session.add(Note(case_id=case.id, kind="voicemail",
                             text="The voicemail could not be transcribed: listen to the recording."))
            audit.record(session, "call.transcription_failed", case=case, call_sid=call.call_sid)
            return
        inbound = InboundMessage(channel=Channel.VOICE, channel_id=f"{call.call_sid}:transcription",
                                 sender=sender_of(call), recipient=form.get("To", ""), text=text, original=text,
                                 meta={"call_sid": call.call_sid, "step": "transcription"},
                                 attachments=(voice.recording_attachment(form),) if form.get("RecordingUrl") else ())
        ingest.ingest(session, inbound, contact=case.contact)

    callback_once(session, key, apply)


def status(session: Session, form: Mapping[str, str]) -> None:
    """The call's status callback: its outcome and duration; a caller who asked for a person and hung up
    before reaching one gets a callback task."""
    call = call_for(session, form)
    call_status = form.get("CallStatus", "")
    if call_status not in LEG_STATUSES:
        raise BadWebhook(f"unknown CallStatus {call_status[:40]!r}")
    key = f"{call.call_sid}:status:{call_status}"

    def apply():
        if call_status not in ("completed", *voice.MISSED):
            return
        call.duration = _seconds(form.get("CallDuration") or form.get("Duration"))
        if call.state in (CallState.WAITING, CallState.DIALING) or (call.critical and call.state == CallState.IVR):
            abandon(session, call, f"the call ended ({call_status}) before anyone answered")
        elif call_status in voice.MISSED:
            abandon(session, call, f"the call ended as {call_status}")
        if call.state != CallState.ENDED:
            call.outcome = call.outcome or ("voicemail" if call.state == CallState.VOICEMAIL else "ended in the IVR")
            call.state = CallState.ENDED
        if call.case_id is not None:
            audit.record(session, "call.ended", case=call.case, call_sid=call.call_sid, status=call_status,
                         duration=call.duration, outcome=call.outcome)
        _cancel_offers(session, call)

    callback_once(session, key, apply)


# -- helpers -------------------------------------------------------------------------------------------------

def sender_of(call: Call) -> str:
    """The caller's number in E.164, or "" when it is withheld."""
    if voice.is_withheld(call.caller):
        return ""
    try:
        return normalize_phone(call.caller)
    except InvalidAddress:
        return ""


def _contact_of(session: Session, call: Call) -> Contact:
    """The caller's contact: by their number, or one of its own for a withheld number (an unknown caller)."""
    if call.contact_id is not None:
        return session.get(Contact, call.contact_id)
    number = sender_of(call)
    contact = contacts.find_or_create(session, phone=number) if number else \
        Contact(name=f"Unknown caller (call {call.call_sid[-6:]})")
    session.add(contact)
    session.flush()
    call.contact_id = contact.id
    return contact


def case_of(session: Session, call: Call) -> Case:
    """The call's case; a call with no words yet gets one (a missed call is an event, not a message)."""
    if call.case_id is not None:
        return session.get(Case, call.case_id)
    contact = _contact_of(session, call)
    case = ingest.open_case(session, contact) if contact.phone else None
    if case is None:
        case = Case(contact=contact, created_at=clock.now(), last_inbound_at=clock.now())
        session.add(case)
        session.flush()
        audit.record(session, "case.opened", case=case, channel=Channel.VOICE)
    call.case_id = case.id
    return case


def _latest_message(session: Session, call: Call) -> Message | None:
    return session.scalar(select(Message).where(Message.channel == Channel.VOICE, Message.meta.is_not(None),
                                                Message.case_id == call.case_id)
                          .order_by(Message.id.desc()).limit(1))


def _advice(session: Session, call: Call) -> str | None:
    """The playbook's spoken safety advice for the caller's words (said while they wait)."""
    message = _latest_message(session, call)
    return (message.meta or {}).get("said") if message is not None else None


def _position(session: Session, call: Call) -> int:
    """1 + the callers of the same queue who have waited longer."""
    return 1 + session.scalar(select(func.count(Call.id)).where(
        Call.state == CallState.WAITING, Call.queue == call.queue, Call.waiting_since < call.waiting_since))


def _call(session: Session, call_id: int) -> Call:
    call = session.get(Call, call_id)
    if call is None:
        raise BadWebhook(f"no call {call_id}")
    return call


def _leg(session: Session, leg_id: int) -> CallLeg:
    leg = session.get(CallLeg, leg_id)
    if leg is None:
        raise BadWebhook(f"no call leg {leg_id}")
    return leg


def _seconds(raw: str | None) -> int:
    """A duration Twilio sent (whole seconds); anything else is 0."""
    return int(raw) if raw and raw.isascii() and raw.isdigit() and len(raw) < 7 else 0
