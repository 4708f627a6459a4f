"""The voice channel's carrier format: Twilio's call webhooks in, TwiML (built with VoiceResponse) out.

Nothing here knows the database or Flask: the core decides, these functions say it in TwiML.
Every callback URL comes from a `urls(step, **params)` function the caller gives, so each
answer carries absolute URLs on the service's public base URL.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from twilio.twiml.voice_response import Dial, Enqueue, Gather, VoiceResponse

from channels.message import Attachment, Channel, InboundMessage

Urls = Callable[..., str]

# Twilio's <Say>/<Gather> language codes for the languages the IVR speaks.
LANGUAGES = {"en": "en-US", "es": "es-US"}
WORDS_PER_MINUTE = 150  # how fast Twilio's text-to-speech talks, near enough: prompts are timed by it

PROMPTS: dict[str, dict[str, str]] = {
    "en": {
        "greeting": "You've reached the pet care incident team. Tell me in a few words what is happening, "
                    "or press 0 to talk to a person.",
        "retry": "Sorry, I didn't catch that. Please tell me what is happening, or press 0 for a person.",
        "menu": "Press 1 to leave a message for the team, or 2 and we'll text you back.",
        "voicemail": "Please leave your message after the tone, then hang up.",
        "recorded": "Thank you, your message is with the team. Goodbye.",
        "text_back": "Thank you. We'll text you back shortly. Goodbye.",
        "no_text_back": "We can't text this number, so please leave a message after the tone instead.",
        "after_hours_texted": "The team is closed right now. We've sent you a text, and you can leave a message "
                              "after the tone. If a person or pet is in danger, call 911 or an emergency vet.",
        "after_hours": "The team is closed right now. Please leave a message after the tone and we will call you "
                       "back. If a person or pet is in danger, call 911 or an emergency vet.",
        "connecting": "I'm connecting you to a person now. Please stay on the line.",
        "position": "You are number {position} in line.",
        "still_connecting": "We are still connecting you. Please stay on the line.",
        "bridging": "Connecting you now.",
        "nobody": "Nobody could take your call right now. Leave a message after the tone and we will call you "
                  "back within minutes.",
    },
    "es": {
        "greeting": "Se ha comunicado con el equipo de incidentes de cuidado de mascotas. Cuénteme en pocas "
                    "palabras qué está pasando, u oprima cero para hablar con una persona.",
        "retry": "Perdone, no le entendí. Cuénteme qué está pasando, u oprima cero para hablar con una persona.",
        "menu": "Oprima uno para dejar un mensaje al equipo, o dos y le enviaremos un mensaje de texto.",
        "voicemail": "Deje su mensaje después del tono y luego cuelgue.",
        "recorded": "Gracias, su mensaje ya está con el equipo. Adiós.",
        "text_back": "Gracias. Le enviaremos un mensaje de texto en breve. Adiós.",
        "no_text_back": "No podemos enviar mensajes a este número; por favor deje un mensaje después del tono.",
        "after_hours_texted": "El equipo está cerrado en este momento. Le enviamos un mensaje de texto y puede "
                              "dejar un mensaje después del tono. Si una persona o una mascota está en peligro, "
                              "llame al nueve uno uno o a un veterinario de urgencias.",
        "after_hours": "El equipo está cerrado en este momento. Deje un mensaje después del tono y le llamaremos. "
                       "Si una persona o una mascota está en peligro, llame al nueve uno uno o a un veterinario "
                       "de urgencias.",
        "connecting": "Le estoy comunicando con una persona ahora. Por favor no cuelgue.",
        "position": "Usted es el número {position} en la fila.",
        "still_connecting": "Seguimos comunicándole. Por favor no cuelgue.",
        "bridging": "Le comunico ahora.",
        "nobody": "Nadie pudo atender su llamada en este momento. Deje un mensaje después del tono y le "
                  "llamaremos en pocos minutos.",
    },
}
SPANISH_OPTION = "Para español, oprima dos."  # said in Spanish at the English greeting

MAX_RECORDING = 120  # seconds: Twilio transcribes recordings of 2 to 120 s
RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")
HOLD_PAUSE = 8  # seconds of silence between hold messages
SCREEN_TIMEOUT = 8  # seconds an agent has to press 1 once the screening prompt is said
ATTEMPTS = 2  # how often the caller is asked before voicemail
MAX_TEXT = 600  # characters of a caller's words kept from SpeechResult

# Twilio's CallStatus values that end a call without anyone talking.
MISSED = frozenset({"no-answer", "busy", "failed", "canceled"})
# Enqueue's QueueResult: a person took the call, or the caller left the queue some other way.
BRIDGED = frozenset({"bridged", "bridging-in-process"})
QUEUE_RESULTS = BRIDGED | {"queue-full", "redirected", "hangup", "error", "system-error", "leave"}
# Dial's DialCallStatus values.
DIAL_STATUSES = frozenset({"completed", "answered", "busy", "no-answer", "failed", "canceled"})
EMOTION_WORDS = {"fear": "afraid", "anger": "angry", "sadness": "upset", "joy": "calm", "neutral": "calm"}


def prompt(language: str, name: str, **values) -> str:
    return PROMPTS.get(language, PROMPTS["en"])[name].format(**values)


def seconds_of_speech(text: str) -> float:
    """How long text takes to say, at WORDS_PER_MINUTE."""
    return len(text.split()) * 60 / WORDS_PER_MINUTE


def is_withheld(caller: str) -> bool:
    """Twilio's From for a caller who hides their number ("anonymous", "+266696687", …)."""
    digits = caller.lstrip("+")
    return not caller or caller.lower() in {"anonymous", "unknown", "restricted", "private"} \
        or digits in {"266696687", "86282452253", "7378742833", "2562533"} or not digits.isdigit()


def parse_speech(form: Mapping[str, str], step: str, sender: str) -> InboundMessage:
    """The caller's words at one step of one call, as an InboundMessage (idempotent on CallSid and step)."""
    text = form.get("SpeechResult", "")[:MAX_TEXT]
    return InboundMessage(channel=Channel.VOICE, channel_id=f"{form['CallSid']}:{step}", sender=sender,
                          recipient=form.get("To", ""), text=text, original=text,
                          meta={"call_sid": form["CallSid"], "step": step,
                                "speech_confidence": speech_confidence(form.get("Confidence"))})


def speech_confidence(raw: str | None) -> float | None:
    """Twilio's Confidence (0.0 to 1.0) as a number; anything else is unknown."""
    try:
        value = float(raw) if raw else None
    except ValueError:
        return None
    return value if value is not None and 0.0 <= value <= 1.0 else None


def recording_attachment(form: Mapping[str, str]) -> Attachment:
    return Attachment(name=f"recording {form.get('RecordingSid', '')}".strip(), content_type="audio/x-wav",
                      size=None, ref=form.get("RecordingUrl", ""))


def recording_sid(form: Mapping[str, str]) -> str | None:
    """The RecordingSid of a recording callback if it is one of Twilio's (RE and 32 hex digits): it goes into
    the API URL the recording is fetched from, so nothing else may."""
    sid = form.get("RecordingSid", "")
    return sid if RECORDING_SID.fullmatch(sid) else None


def screening_prompt(urgency: str | None, category: str | None, emotion: str | None, queue: str) -> str:
    """What an agent hears before taking a call: enough to decide, short enough to decide fast."""
    if queue == "emergency" and urgency == "critical":
        topic = (category or "incident").replace("_", " ")
        return f"Emergency call: critical, {topic}, caller {EMOTION_WORDS.get(emotion or '', 'calm')}. " \
               "Press 1 to take it."
    return "A caller asked for a person. Press 1 to take the call."


# -- TwiML ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Voice:
    """How to speak to one caller: their language and the URLs of the call's next steps."""

    language: str
    urls: Urls

    def say(self, response, text: str) -> None:
        response.say(text, language=LANGUAGES[self.language])


def twiml(response: VoiceResponse) -> str:
    return str(response)


def greeting(voice: Voice, attempt: int = 1, *, retry: bool = False) -> str:
    response = VoiceResponse()
    gather = Gather(input="speech dtmf", speech_timeout="auto", num_digits=1, hints=_hints(voice.language),
                    language=LANGUAGES[voice.language], action=voice.urls("gather", attempt=attempt), method="POST")
    voice.say(gather, prompt(voice.language, "retry" if retry else "greeting"))
    if voice.language == "en" and attempt == 1 and not retry:
        gather.say(SPANISH_OPTION, language=LANGUAGES["es"])
    response.append(gather)
    # Gather falls through when nothing was said: the same callback handles the silence.
    response.redirect(voice.urls("gather", attempt=attempt, silent=1), method="POST")
    return twiml(response)


def voicemail(voice: Voice, *before: str) -> str:
    """Say the lines given, then record a message with its transcription."""
    response = VoiceResponse()
    for line in before:
        voice.say(response, line)
    voice.say(response, prompt(voice.language, "voicemail"))
    response.record(max_length=MAX_RECORDING, play_beep=True, action=voice.urls("recorded"),
                    recording_status_callback=voice.urls("recording"), transcribe=True,
                    transcribe_callback=voice.urls("transcription"))
    return twiml(response)


def menu(voice: Voice, reply: str | None) -> str:
    """The playbook's reply, then: 1 voicemail, 2 a text back, 0 a person; silence is voicemail."""
    response = VoiceResponse()
    if reply:
        voice.say(response, reply)
    gather = Gather(input="dtmf", num_digits=1, action=voice.urls("menu"), method="POST")
    voice.say(gather, prompt(voice.language, "menu"))
    response.append(gather)
    voice.say(response, prompt(voice.language, "voicemail"))
    response.record(max_length=MAX_RECORDING, play_beep=True, action=voice.urls("recorded"),
                    recording_status_callback=voice.urls("recording"), transcribe=True,
                    transcribe_callback=voice.urls("transcription"))
    return twiml(response)


def say_and_hang_up(voice: Voice, *lines: str) -> str:
    response = VoiceResponse()
    for line in lines:
        voice.say(response, line)
    response.hangup()
    return twiml(response)


def enqueue(voice: Voice, queue_name: str) -> str:
    """One short line, then the caller waits in their own queue while agents' phones ring."""
    response = VoiceResponse()
    voice.say(response, prompt(voice.language, "connecting"))
    response.append(Enqueue(queue_name, action=voice.urls("queued"), method="POST", wait_url=voice.urls("wait"),
                            wait_url_method="POST"))
    return twiml(response)


def hold(voice: Voice, *lines: str, pause: int = HOLD_PAUSE) -> str:
    """A waitUrl answer: what the caller hears while waiting; Twilio asks again when it ends."""
    response = VoiceResponse()
    for line in lines:
        voice.say(response, line)
    response.pause(length=pause)
    return twiml(response)


def leave_queue() -> str:
    """A waitUrl answer that takes the caller out of the queue: Enqueue's action decides what next."""
    response = VoiceResponse()
    response.leave()
    return twiml(response)


def dial(voice: Voice, number: str, *, timeout: int, caller_id: str | None = None, before: str = "") -> str:
    """Ring one phone; its answer hears the screening prompt (url) before the parties are connected."""
    response = VoiceResponse()
    if before:
        voice.say(response, before)
    call = Dial(action=voice.urls("dialed"), method="POST", timeout=timeout, answer_on_bridge=True,
                caller_id=caller_id)
    call.number(number, url=voice.urls("screen"), method="POST")
    response.append(call)
    return twiml(response)


def screen(prompt_text: str, action: str) -> str:
    """The called party's side before connecting: press 1 to take the call, anything else hangs up.

    A phone's own voicemail never presses 1, so it cannot take an emergency call.
    """
    response = VoiceResponse()
    gather = Gather(input="dtmf", num_digits=1, timeout=SCREEN_TIMEOUT, action=action, method="POST")
    gather.say(prompt_text)
    gather.say(prompt_text)
    response.append(gather)
    response.hangup()
    return twiml(response)


def connect_agent(queue_name: str, *, action: str, announce: str, timeout: int) -> str:
    """The agent who pressed 1 takes the caller out of the caller's own queue."""
    response = VoiceResponse()
    call = Dial(action=action, method="POST", timeout=timeout)
    call.queue(queue_name, url=announce, method="POST")
    response.append(call)
    return twiml(response)


def announce(voice: Voice, text: str) -> str:
    """Only words: a <Queue url> answer, heard by the caller as the agent is connected."""
    response = VoiceResponse()
    voice.say(response, text)
    return twiml(response)


def empty() -> str:
    """An answer with nothing to do: in a screening step, it lets Twilio connect the parties."""
    return twiml(VoiceResponse())


def hang_up() -> str:
    response = VoiceResponse()
    response.hangup()
    return twiml(response)


def call_customer(text: str, number: str, *, caller_id: str, action: str) -> str:
    """An agent's callback leg: tell the agent who is being called, then dial the customer."""
    response = VoiceResponse()
    response.say(text)
    call = Dial(action=action, method="POST", caller_id=caller_id, answer_on_bridge=True)
    call.number(number)
    response.append(call)
    return twiml(response)


def _hints(language: str) -> str:
    if language == "es":
        return ("sangrando, mordió, mordida, veneno, chocolate, uvas, perdido, se escapó, no aparece, cuidador, "
                "paseador, no llegó, lo atropelló, convulsiones, no respira, reembolso, veterinario, amenaza")
    return ("bleeding, bite, bitten, poison, chocolate, grapes, lost, escaped, missing, sitter, walker, no show, "
            "hit by a car, seizure, not breathing, refund, vet bill, claim, threat, unsafe")
