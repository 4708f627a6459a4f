"""How a case's timeline reads, whatever the channel: evidence marked in the customer's words, an email thread's
subject once, long messages folded, calls with their outcome and length. Template globals, so one entry renders
the same on the case page and wherever else it is rendered alone (_timeline_item.html)."""

import re
from dataclasses import dataclass

from flask import Flask

from assist import redaction
from assist.models import Call, Case, Direction, Message
from channels.email import CASE_TOKEN
from channels.message import Channel

# "Re:", "Fwd:", "AW:", "RE[2]:" and the like, as mail clients put them before a subject they answer or forward.
REPLY_PREFIXES = re.compile(r"^(\s*(re|fwd?|aw|wg|sv|vs|rv|tr|antw)\s*(\[\d+\]|\(\d+\))?\s*:)+", re.IGNORECASE)
PREVIEW_LINES = 8  # lines of a long message shown before "Show all"
PREVIEW_CHARS = 700  # characters of them, at most
FOLD_AT_LEAST = 240  # characters (or 3 lines) a fold must hide: a shorter rest is shown
CALL_OUTCOMES = {
    "answered by on call": "answered by the on-call phone",
    "voicemail": "went to voicemail",
    "callback": "missed: call back",
    "ended in the IVR": "ended at the menu",
}
CALL_STATES = {"ivr": "in the menu", "waiting": "waiting for a person", "connecting": "connecting to an agent",
               "dialing": "ringing the on-call phone", "voicemail": "leaving a voicemail"}
VOICE_STEPS = {"gather1": "said at the greeting", "gather2": "said when asked again",
               "transcription": "voicemail transcript"}


def highlighted(text: str, evidence: list[dict], start: int = 0, end: int | None = None
                ) -> list[tuple[str, dict | None]]:
    """Split text[start:end] into (piece, evidence or None) so the template can mark the evidence (escaped);
    evidence crossing the slice's edges is marked as far as it reaches into it."""
    end = len(text) if end is None else end
    marks = sorted((e for e in evidence if 0 <= e["start"] < e["end"] <= len(text)), key=lambda e: e["start"])
    pieces: list[tuple[str, dict | None]] = []
    at = start
    for e in marks:
        first, last = max(e["start"], start), min(e["end"], end)
        if first < at or first >= last:
            continue  # overlapping evidence (the first one is marked), or evidence outside the slice
        pieces.append((text[at:first], None))
        pieces.append((text[first:last], e))
        at = last
    pieces.append((text[at:end], None))
    return [p for p in pieces if p[0]]


def thread_subject(subject: str) -> str:
    """A subject as its thread knows it: without reply and forward prefixes, the case token, case or spacing."""
    return " ".join(REPLY_PREFIXES.sub("", CASE_TOKEN.sub("", subject)).split()).casefold()


def subject_shown(message: Message) -> str | None:
    """The subject to print on an email: the thread's first, and then only one that changes it."""
    if message.channel != Channel.EMAIL or not message.subject:
        return None
    earlier = [m.subject for m in (message.case.messages if message.case else [])
               if m.id < message.id and m.channel == Channel.EMAIL and m.subject]
    if earlier and thread_subject(earlier[-1]) == thread_subject(message.subject):
        return None
    return message.subject


def body_start(message: Message) -> int:
    """Where an email's body starts in its text: triage reads the subject, then the body
    (channels.email_text.triage_text); the page prints the subject apart, at most once."""
    subject = message.subject
    if message.channel != Channel.EMAIL or not subject or not message.text.startswith(subject):
        return 0
    blank = message.text.find("\n\n", len(subject))
    return blank + 2 if blank != -1 else 0


@dataclass(frozen=True)
class Fold:
    """A long message: the preview is text[:cut], the rest text[rest:] (shown on "Show all")."""

    cut: int
    rest: int


def fold(text: str, start: int = 0) -> Fold | None:
    """Where the preview of text[start:] ends, if it is long enough to fold: after PREVIEW_LINES lines or
    PREVIEW_CHARS characters (at a space), whichever comes first."""
    cut = start - 1
    for _ in range(PREVIEW_LINES):
        cut = text.find("\n", cut + 1)
        if cut == -1:
            cut = len(text)
            break
    if cut - start > PREVIEW_CHARS:
        space = text.rfind(" ", start, start + PREVIEW_CHARS)
        cut = space if space > start + PREVIEW_CHARS // 2 else start + PREVIEW_CHARS
    hidden = text[cut:]
    if len(hidden) < FOLD_AT_LEAST and hidden.count("\n") < 3:
        return None
    rest = cut + 1 if text[cut] in " \n" else cut  # the break itself is where the preview ends
    return Fold(cut=cut, rest=rest)


def call_outcome(call: Call) -> str:
    """How a call ended, in words: who answered, voicemail, missed (a callback task), or where it is now."""
    if call.outcome == "answered":
        return f"answered by {call.answered_by.name}" if call.answered_by else "answered"
    if call.outcome is not None:
        return CALL_OUTCOMES.get(call.outcome, call.outcome)
    return CALL_STATES.get(call.state.value, "ended")


def clock_duration(seconds: int | None) -> str:
    """Seconds as m:ss (h:mm:ss from an hour on)."""
    minutes, second = divmod(max(seconds or 0, 0), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"


def voice_step(message: Message) -> str | None:
    """What a caller's message is: their words at the greeting, or their voicemail's transcript."""
    return VOICE_STEPS.get((message.meta or {}).get("step", "")) if message.channel == Channel.VOICE else None


def urgency_source(case: Case) -> Message | None:
    """The inbound message the case's urgency came from, when the latest message reads otherwise: the case keeps
    its most urgent message's (assist.ingest), so a calmer follow-up never lowers it."""
    latest = case.latest_inbound
    if case.urgency is None or latest is None or (latest.triage or {}).get("urgency") == case.urgency:
        return None
    return next((m for m in case.messages if m.direction == Direction.INBOUND
                 and (m.triage or {}).get("urgency") == case.urgency), None)


def init_app(app: Flask) -> None:
    for helper in (highlighted, subject_shown, body_start, fold, call_outcome, clock_duration, voice_step,
                   urgency_source):
        app.add_template_global(helper)
    app.jinja_env.globals["redaction_reasons"] = redaction.REASONS
