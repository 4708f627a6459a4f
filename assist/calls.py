"""Calls: triage what a caller says, and record what Twilio reports about the call afterwards."""

import logging
from sqlalchemy import select

from assist import audit, clock, db, ingest, outbound, queues, routing
from assist.models import Case, Message, Note
from channels.addresses import normalize_phone
from channels.message import Channel, InboundMessage
from channels.voice import MISSED, CallTriage, recording_attachment

log = logging.getLogger(__name__)

TEXT_BACK = "Hi, this is the incident team following up on your call. Reply here with what happened and we'll help."
REPEAT_WINDOW = 86400  # seconds a callback is remembered, so Twilio's retries change nothing


def triage_call(inbound: InboundMessage) -> CallTriage:
    session = db.session()
    result = ingest.ingest(session, inbound)
    triage = session.get(Message, result.message_id).triage
    closed = routing.after_hours(clock.now())
    return CallTriage(result, triage["urgency"], triage["emotion"], triage["category"], after_hours=closed)


def call_event(form: dict) -> None:
    """Record one call callback (recording, transcription, status, text-back) exactly once."""
    step = form.get("RecordingSid") or form.get("TranscriptionSid") or form.get("CallStatus") or ""
    first = queues.connection().set(f"call:{form.get('CallSid')}:{form['event']}:{step}", 1, nx=True,
                                    ex=REPEAT_WINDOW)
    if not first:
        return  # a retried callback
    HANDLERS[form["event"]](db.session(), form)


def _call_messages(session, call_sid: str) -> list[Message]:
    return list(session.scalars(select(Message).where(Message.channel == Channel.VOICE,
                                                      Message.channel_id.like(f"{call_sid}:%"))
                                .order_by(Message.id)))


def _call_case(session, form: dict, text: str) -> Message:
    """The call's latest message, or one stored for it now (a voicemail without words yet)."""
    messages = _call_messages(session, form["CallSid"])
    if messages:
        return messages[-1]
    inbound = InboundMessage(channel=Channel.VOICE, channel_id=f"{form['CallSid']}:call",
                             sender=normalize_phone(form.get("From", "")), recipient=form.get("To", ""),
                             text=text, original=text)
    return session.get(Message, ingest.ingest(session, inbound).message_id)


def _recording(session, form: dict) -> None:
    message = _call_case(session, form, "(voicemail)")
    message.attachments = [*message.attachments, vars(recording_attachment(form))]
    audit.record(session, "call.recording", case=message.case, message=message,
                 duration=form.get("RecordingDuration"))
    session.commit()


def _transcription(session, form: dict) -> None:
    if form.get("TranscriptionStatus") != "completed" or not form.get("TranscriptionText"):
        return
    text = form["TranscriptionText"]
    ingest.ingest(session, InboundMessage(channel=Channel.VOICE, channel_id=f"{form['CallSid']}:transcription",
                                          sender=normalize_phone(form.get("From", "")),
                                          recipient=form.get("To", ""), text=text, original=text))


def _status(session, form: dict) -> None:
    status = form.get("CallStatus", "")
    messages = _call_messages(session, form["CallSid"])
    abandoned = status == "completed" and not messages and not form.get("RecordingUrl")
    if status in MISSED or abandoned:
        message = _call_case(session, form, f"(missed call: {status})")
        session.add(Note(case_id=message.case_id, kind="callback",
                         text=f"Call back {message.sender}: the call ended as {status} without reaching anyone."))
        audit.record(session, "call.missed", case=message.case, message=message, status=status)
    elif messages:
        audit.record(session, "call.ended", case=messages[-1].case, message=messages[-1], status=status,
                     duration=form.get("CallDuration") or form.get("Duration"))
    session.commit()


def _text_back(session, form: dict) -> None:
    message = _call_case(session, form, "(asked for a text back)")
    case = session.get(Case, message.case_id)
    reply = outbound.create_reply(session, case, TEXT_BACK)
    reply.channel, reply.segments = Channel.SMS, 1
    session.commit()
    outbound.enqueue_send(reply)


HANDLERS = {"recording": _recording, "transcription": _transcription, "status": _status, "text_back": _text_back}
