"""The one message shape every channel produces and the core consumes."""

from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"
    VOICE = "voice"
    EMAIL = "email"


class Keyword(StrEnum):
    """Carrier-level commands a customer can send instead of a message."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    size: int | None = None
    ref: str = ""  # where the content is: a carrier media URL or a stored file


@dataclass(frozen=True)
class InboundMessage:
    channel: Channel
    channel_id: str  # Twilio MessageSid / CallSid, email Message-ID
    sender: str  # E.164 phone or lower-cased email
    recipient: str
    text: str  # what triage reads: quoted history and signatures stripped
    original: str  # the full text as received
    subject: str = ""
    html: str | None = None  # an email's HTML part as received; the console shows it sanitized
    attachments: tuple[Attachment, ...] = ()
    received_at: datetime | None = None  # when the carrier received it, if it says; else when it was stored
    keyword: Keyword | None = None
    idempotency_token: str | None = None  # a carrier's redelivery token, when it sends one
    automated: bool = False  # sent by a machine (auto-reply, bounce, list): never answered
    # The sender's address failed authentication (email: the trusted MTA's SPF/DKIM/DMARC): it may be forged,
    # so it is never answered and never filed under the contact it claims to be.
    unauthenticated: bool = False
    thread_ids: tuple[str, ...] = ()  # Message-IDs this one answers (email In-Reply-To / References)
    sender_name: str = ""  # the name the sender gives (an email's From display name), "" when none
    case_token: int | None = None  # a case number the customer quoted ("[Case #123]" in a subject)
    raw: dict = field(default_factory=dict)  # the carrier's payload, for the record
    meta: dict = field(default_factory=dict)  # what is kept with the message besides its text (speech confidence)


def without_nul(inbound: InboundMessage) -> InboundMessage:
    """inbound without NUL characters, which no text column stores (PostgreSQL refuses them): a message
    that holds one is cleaned, not refused forever."""
    def clean(value):
        return value.replace("\x00", "") if isinstance(value, str) else value

    changes = {f.name: clean(getattr(inbound, f.name)) for f in fields(inbound)}
    changes["meta"] = {key: clean(value) for key, value in inbound.meta.items()}
    changed = {name: value for name, value in changes.items() if value != getattr(inbound, name)}
    return replace(inbound, **changed) if changed else inbound


@dataclass(frozen=True)
class IngestResult:
    """What the core tells a channel after storing an inbound message."""

    message_id: int
    case_id: int | None
    duplicate: bool
    reply: str | None  # text to answer on the channel at once, if any
    reply_id: int | None = None  # the stored outbound message holding that reply


@dataclass(frozen=True)
class StatusReport:
    """A delivery status callback for an outbound message."""

    message_sid: str
    status: str  # queued, sent, delivered, undelivered or failed (channels.sms.STATUSES)
    error_code: str | None
    message_id: int | None  # the service's own id, carried in the callback URL
