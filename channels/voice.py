"""The voice channel: an IVR on Twilio's voice webhooks, answered with TwiML built by VoiceResponse."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, request
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from assist.errors import InvalidAddress
from assist.urls import external_url
from channels.addresses import normalize_phone
from channels.message import Attachment, Channel, IngestResult, InboundMessage
from channels.twilio_webhook import verify_twilio_signature

log = logging.getLogger(__name__)

GREETING = ("You've reached the pet care incident team. Tell me in a few words what is happening, "
            "or press 0 to talk to a person.")
RETRY = "Sorry, I didn't catch that. Please tell me what is happening, or press 0 for a person."
HINTS = ("bleeding, bite, bitten, poison, chocolate, grapes, lost, escaped, missing, sitter, walker, no show, "
         "hit by a car, seizure, not breathing, refund, vet bill, claim, threat, unsafe")
MENU = "Press 1 to leave a message for the team, or 2 and we'll text you back."
VOICEMAIL = "Please leave your message after the tone, then hang up."
TEXT_BACK = "Thank you. We'll text you back shortly. Goodbye."
AFTER_HOURS = ("The team is closed right now. We've sent you a text, and you can leave a message after the tone. "
               "If a person or pet is in danger, call 911 or an emergency vet.")
MAX_RECORDING = 120  # seconds: Twilio transcribes recordings of 2 to 120 s
ATTEMPTS = 2  # how often the caller is asked before voicemail
MISSED = {"no-answer", "busy", "failed", "canceled"}  # call statuses that leave a callback to make


@dataclass(frozen=True)
class CallTriage:
    """What the core tells the IVR about a caller's words."""

    ingest: IngestResult
    urgency: str
    emotion: str
    category: str
    after_hours: bool = False  # outside the team's hours: voicemail and a text follow-up instead of the menu


def parse_speech(form, step: str) -> InboundMessage:
    """The caller's words at one step of one call, as an InboundMessage (idempotent on CallSid and step)."""
    sender = normalize_phone(form.get("From", ""))
    text = form.get("SpeechResult", "")
    confidence = form.get("Confidence")
    return InboundMessage(channel=Channel.VOICE, channel_id=f"{form['CallSid']}:{step}", sender=sender,
                          recipient=form.get("To", ""), text=text, original=text, raw=dict(form),
                          meta={"call_sid": form["CallSid"], "step": step,
                                "speech_confidence": float(confidence) if confidence else None})


def _twiml(response: VoiceResponse) -> Response:
    return Response(str(response), mimetype="text/xml")


def _gather(response: VoiceResponse, prompt: str, attempt: int) -> VoiceResponse:
    gather = Gather(input="speech dtmf", speech_timeout="auto", num_digits=1, hints=HINTS,
                    action=external_url("voice.gather", attempt=attempt), method="POST")
    gather.say(prompt)
    response.append(gather)
    # Gather falls through when nothing was said: the same callback handles the silence.
    response.redirect(external_url("voice.gather", attempt=attempt, silent=1), method="POST")
    return response


def _to_person(response: VoiceResponse, whisper: str, queue: str = "emergency") -> VoiceResponse:
    """Connect the caller: the on-call number with a whisper naming the triage, else the queue."""
    number = current_app.config.get("ON_CALL_NUMBER")
    if number:
        dial = Dial(action=external_url("voice.status"), timeout=20)
        dial.number(number, url=external_url("voice.whisper", text=whisper))
        response.append(dial)
    else:
        response.enqueue(queue, wait_url=external_url("voice.hold"))
    return response


def create_blueprint(triage_call: Callable[[InboundMessage], CallTriage],
                     call_event: Callable[[dict], None]) -> Blueprint:
    """The voice webhooks, wired to the core's call triage and call-event recorder."""
    bp = Blueprint("voice", __name__, url_prefix="/twilio/voice")

    @bp.post("")
    @verify_twilio_signature
    def incoming():
        return _twiml(_gather(VoiceResponse(), GREETING, attempt=1))

    @bp.post("/gather")
    @verify_twilio_signature
    def gather():
        attempt = int(request.args.get("attempt", 1))
        response = VoiceResponse()
        if request.form.get("Digits") == "0":
            return _twiml(_to_person(response, "caller asked for a person", queue="support"))
        if not request.form.get("SpeechResult"):
            if attempt < ATTEMPTS:
                return _twiml(_gather(response, RETRY, attempt=attempt + 1))
            response.say(VOICEMAIL)
            return _twiml(_record(response))
        try:
            call = triage_call(parse_speech(request.form, f"gather{attempt}"))
        except InvalidAddress:  # a withheld number: no contact to file it under, so a person takes it
            return _twiml(_to_person(response, "caller's number withheld", queue="support"))
        if call.ingest.reply:
            response.say(call.ingest.reply)
        if call.urgency == "critical":
            whisper = f"{call.urgency}, {call.category.replace('_', ' ')}, caller {call.emotion}"
            return _twiml(_to_person(response, whisper))
        if call.after_hours:
            call_event({**request.form, "event": "text_back"})
            response.say(AFTER_HOURS)
            return _twiml(_record(response))
        menu = Gather(input="dtmf", num_digits=1, action=external_url("voice.menu"), method="POST")
        menu.say(MENU)
        response.append(menu)
        response.say(VOICEMAIL)
        return _twiml(_record(response))

    @bp.post("/menu")
    @verify_twilio_signature
    def menu():
        response = VoiceResponse()
        digit = request.form.get("Digits", "")
        if digit == "0":
            return _twiml(_to_person(response, "caller asked for a person", queue="support"))
        if digit == "2":
            call_event({**request.form, "event": "text_back"})
            response.say(TEXT_BACK)
            response.hangup()
            return _twiml(response)
        response.say(VOICEMAIL)
        return _twiml(_record(response))

    @bp.post("/recorded")
    @verify_twilio_signature
    def recorded():
        response = VoiceResponse()
        response.say("Thank you, your message is with the team. Goodbye.")
        response.hangup()
        return _twiml(response)

    def callback(event: str):
        """Twilio's reports after the fact (recording, transcription, call status): recorded, no TwiML."""
        call_event({**request.form, "event": event})
        return "", 204

    for event in ("recording", "transcription", "status"):
        bp.add_url_rule(f"/{event}", endpoint=event, view_func=verify_twilio_signature(callback),
                        methods=["POST"], defaults={"event": event})

    @bp.post("/whisper")
    @verify_twilio_signature
    def whisper():
        response = VoiceResponse()
        response.say(request.args.get("text", "incoming incident call")[:200])
        return _twiml(response)

    @bp.post("/hold")
    @verify_twilio_signature
    def hold():
        response = VoiceResponse()
        response.say("Please stay on the line. A member of the team will be with you in a moment.")
        response.pause(length=10)
        return _twiml(response)

    return bp


def _record(response: VoiceResponse) -> VoiceResponse:
    response.record(max_length=MAX_RECORDING, play_beep=True, action=external_url("voice.recorded"),
                    recording_status_callback=external_url("voice.recording"), transcribe=True,
                    transcribe_callback=external_url("voice.transcription"))
    return response


def recording_attachment(form) -> Attachment:
    return Attachment(name=f"recording {form.get('RecordingSid', '')}".strip(), content_type="audio/x-wav",
                      ref=form.get("RecordingUrl", ""))
