"""The database tables, as SQLAlchemy 2 declarative models."""

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from assist import clock


def utcnow() -> datetime:
    return clock.now()


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime}


def _enum(cls: type[StrEnum], name: str) -> Enum:
    # Stored as strings with a CHECK constraint: portable and readable in SQL.
    return Enum(cls, name=name, native_enum=False, create_constraint=True, length=16,
                values_callable=lambda e: [m.value for m in e], validate_strings=True)


class MemberRole(StrEnum):
    OWNER = "owner"
    SITTER = "sitter"


class CaseStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


OPEN_STATUSES = (CaseStatus.NEW, CaseStatus.OPEN, CaseStatus.PENDING, CaseStatus.ESCALATED)


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class DeliveryStatus(StrEnum):
    """Where an outbound message is; inbound messages have none."""

    PENDING = "pending"  # stored, waiting for the send job
    SENDING = "sending"  # handed to the carrier or relay; what it answered is not recorded yet
    RETRYING = "retrying"  # a send attempt failed; another is scheduled
    UNCONFIRMED = "unconfirmed"  # a send was cut off after it was handed over: it may have gone out
    QUEUED = "queued"  # the carrier accepted it
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"  # not sent: the contact opted out


class UserRole(StrEnum):
    AGENT = "agent"
    LEAD = "lead"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Presence(StrEnum):
    """Whether an agent takes calls now."""

    AVAILABLE = "available"
    BUSY = "busy"  # on a call, or away for a moment
    OFFLINE = "offline"


ROLE_RANK = {UserRole.AGENT: 0, UserRole.LEAD: 1, UserRole.SUPERVISOR: 2, UserRole.ADMIN: 3}


class Member(Base):
    """A marketplace account: a pet owner or a sitter."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[MemberRole] = mapped_column(_enum(MemberRole, "member_role"))
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    pets: Mapped[list["Pet"]] = relationship(back_populates="owner", order_by="Pet.id")


booking_pets = Table(
    "booking_pets",
    Base.metadata,
    Column("booking_id", ForeignKey("bookings.id", ondelete="CASCADE"), primary_key=True),
    Column("pet_id", ForeignKey("pets.id", ondelete="CASCADE"), primary_key=True),
)


class Pet(Base):
    __tablename__ = "pets"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    species: Mapped[str] = mapped_column(String(40))
    breed: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(Text)

    owner: Mapped[Member] = relationship(back_populates="pets")
    __table_args__ = (UniqueConstraint("owner_id", "name"),)


class Booking(Base):
    __tablename__ = "bookings"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    sitter_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    service: Mapped[str] = mapped_column(String(40))  # boarding, house sitting, walk, drop-in
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    location: Mapped[str | None] = mapped_column(String(200))

    owner: Mapped[Member] = relationship(foreign_keys=[owner_id])
    sitter: Mapped[Member] = relationship(foreign_keys=[sitter_id])
    pets: Mapped[list[Pet]] = relationship(secondary=booking_pets, order_by="Pet.id")


class Contact(Base):
    """Someone who reached the team, by the address they used."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    # The address that mail failing authentication claimed (email is then empty): possibly forged, so the
    # contact is not the address's owner until an agent merges it.
    claimed_email: Mapped[str | None] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    member: Mapped[Member | None] = relationship()
    cases: Mapped[list["Case"]] = relationship(back_populates="contact", order_by="Case.id")

    @property
    def address(self) -> str:
        return self.phone or self.email or ""


class User(Base):
    """A person of the incident team who logs in to the console."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[UserRole] = mapped_column(_enum(UserRole, "user_role"))
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    queues: Mapped[list] = mapped_column(JSON, default=list)  # the queues whose cases they take
    capacity: Mapped[int] = mapped_column(Integer, default=5)  # open cases they can hold at once
    on_call: Mapped[bool] = mapped_column(Boolean, default=False)  # takes critical cases after hours
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164: calls waiting in their queues ring it
    presence: Mapped[Presence] = mapped_column(_enum(Presence, "presence"), default=Presence.OFFLINE)
    skip_calls_until: Mapped[datetime | None]  # left a call offer unanswered: not offered calls until then
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def has_role(self, role: UserRole) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    # Flask-Login's user protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


class TokenScope(StrEnum):
    """What an API token may do: read cases, or read them and write to them (notes)."""

    READ = "read"
    WRITE = "write"


class ApiToken(Base):
    """A bearer token of the JSON API: its owner's visibility, limited by its scope, until it expires or is
    revoked. Only the SHA-256 of the token is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[TokenScope] = mapped_column(_enum(TokenScope, "token_scope"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at and self.user.active


class LoginSession(Base):
    """One login to the console: the browser keeps a random token in its session cookie, the server only its
    hash. Logging out, idling too long or the user's deactivation ends it, whatever copies of the cookie exist."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)  # written at most once a minute
    ended_at: Mapped[datetime | None]

    user: Mapped["User"] = relationship()


class PasswordReset(Base):
    """A one-time link to set a new password, made by an admin or supervisor for a user: only the SHA-256 of its
    token is kept; it works once, until it expires."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus, "case_status"), default=CaseStatus.NEW)
    queue: Mapped[str] = mapped_column(String(40), default="support")
    priority: Mapped[int] = mapped_column(Integer, default=3)  # 1 is most urgent
    urgency: Mapped[str | None] = mapped_column(String(16))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # the service levels' date ranges
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_inbound_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    first_response_due_at: Mapped[datetime | None] = mapped_column(index=True)  # the playbook's first-response SLA
    sla_breached_at: Mapped[datetime | None]  # when the SLA check found no first response in time
    resolved_at: Mapped[datetime | None]
    playbook_id: Mapped[str | None] = mapped_column(String(64))  # the playbook that routed the case
    checklist_done: Mapped[list] = mapped_column(JSON, default=list)  # the checklist items ticked
    danger_asked_at: Mapped[datetime | None]  # the bot asked a possible emergency "is anyone in danger?"
    bodies_removed_at: Mapped[datetime | None]  # retention removed its message bodies, recordings and mail

    contact: Mapped[Contact] = relationship(back_populates="cases")
    assignee: Mapped[User | None] = relationship()
    messages: Mapped[list["Message"]] = relationship(back_populates="case", order_by="Message.id")

    __table_args__ = (Index("ix_cases_open_by_contact", "contact_id", "status"),)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def latest_inbound(self) -> "Message | None":
        """The customer's latest message, but a rating of the case (it says nothing of the incident)."""
        return next((m for m in reversed(self.messages) if m.direction == Direction.INBOUND and not m.is_rating),
                    None)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "direction"))
    channel: Mapped[str] = mapped_column(String(8))
    # The carrier's own id (MessageSid, CallSid, Message-ID): one row per delivery, per sender and contact
    # (anyone can write any Message-ID: one sender's never makes another's mail a duplicate).
    channel_id: Mapped[str | None] = mapped_column(String(255))
    idempotency_token: Mapped[str | None] = mapped_column(String(255), unique=True)
    sender: Mapped[str] = mapped_column(String(320))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(998))
    text: Mapped[str] = mapped_column(Text)
    original: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)  # an email's HTML part as received (shown sanitized)
    meta: Mapped[dict | None] = mapped_column(JSON)  # what the carrier said besides the text (speech confidence…)
    attachments: Mapped[list] = mapped_column(JSON, default=list)
    keyword: Mapped[str | None] = mapped_column(String(16))
    in_reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the bot
    playbook_id: Mapped[str | None] = mapped_column(String(64))  # the playbook a bot reply came from
    delivery_status: Mapped[DeliveryStatus | None] = mapped_column(_enum(DeliveryStatus, "delivery_status"))
    error: Mapped[str | None] = mapped_column(String(500))
    segments: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    triage: Mapped[dict | None] = mapped_column(JSON)
    # The triage's labels as columns (set with it), so the dashboard counts them from an index.
    urgency: Mapped[str | None] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]

    case: Mapped[Case | None] = relationship(back_populates="messages")
    contact: Mapped[Contact] = relationship()
    author: Mapped[User | None] = relationship()

    __table_args__ = (UniqueConstraint("channel", "channel_id", "sender", "contact_id",
                                       name="uq_messages_channel_id_sender"),
                      Index("ix_messages_volume", "direction", "created_at", "urgency", "category"))

    @property
    def is_rating(self) -> bool:
        """Whether this is a customer's answer to the satisfaction question (assist.csat), not triaged."""
        return (self.meta or {}).get("csat_score") is not None

    @validates("triage")
    def _labels(self, _key: str, triage: dict | None) -> dict | None:
        self.urgency = triage.get("urgency") if triage else None
        self.category = triage.get("category") if triage else None
        return triage


class Event(Base):
    """The audit trail: who did what, when."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    data: Mapped[dict] = mapped_column(JSON, default=dict)

    actor: Mapped[User | None] = relationship()

    __table_args__ = (Index("ix_events_kind_case", "kind", "case_id"),)  # which cases were escalated, reopened…


class AccessEntry(Base):
    """Who opened what of a case's confidential record (a case page, a claim, a review), or was refused it, and
    when: kept apart from the audit trail of changes, read by supervisors (assist/access_log.py)."""

    __tablename__ = "access_log"
    __table_args__ = (Index("ix_access_log_object", "kind", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # case, claim, review
    object_id: Mapped[int] = mapped_column(Integer)
    allowed: Mapped[bool] = mapped_column(Boolean)

    user: Mapped[User] = relationship()


class Redaction(Base):
    """A span of a stored message replaced by "[redacted: reason]": who did it, why, and the original only as
    ciphertext (Fernet, REDACTION_KEY) or not at all, per REDACTION_KEEP_ORIGINAL (assist/redaction.py)."""

    __tablename__ = "redactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    start: Mapped[int] = mapped_column(Integer)  # where the marker begins in the message's text
    length: Mapped[int] = mapped_column(Integer)  # characters of the span it replaced
    reason: Mapped[str] = mapped_column(String(16))  # card_number, address, other
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    original: Mapped[bytes | None] = mapped_column(LargeBinary)  # the span, encrypted; None: removed

    actor: Mapped[User] = relationship()


class PlaybookVersion(Base):
    """One saved text of a playbook; the newest published one is in force. Rows are never changed
    but to publish them: a rollback publishes a new copy of an old text."""

    __tablename__ = "playbook_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    playbook_id: Mapped[str] = mapped_column(String(64), index=True)
    number: Mapped[int] = mapped_column(Integer)
    yaml: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(String(200))
    # A published version that retires its playbook: in force, it takes the playbook (and its tests) out of the
    # set; publishing a later version restores it.
    retired: Mapped[bool] = mapped_column(Boolean, default=False)

    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    published_by: Mapped[User | None] = relationship(foreign_keys=[published_by_id])

    __table_args__ = (UniqueConstraint("playbook_id", "number", name="uq_playbook_versions_number"),)


class Note(Base):
    """An internal note on a case, never sent to the customer; an escalation brief is one too."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16), default="note")  # note, brief
    text: Mapped[str] = mapped_column(Text)
    # Restricted: read only by whom assist.access.may_read_restricted allows; everyone else sees nothing of it.
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User | None] = relationship()


class RawEmail(Base):
    """An email exactly as received over SMTP, stored before the sender is told 250."""

    __tablename__ = "raw_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of the envelope sender and the bytes (mail.digest): a resend is stored once, another sender's copy
    # of the same bytes is not that resend.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    mail_from: Mapped[str] = mapped_column(String(320))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))  # once ingested
    error: Mapped[str | None] = mapped_column(String(500))  # why ingesting it failed, if it did


class CallState(StrEnum):
    IVR = "ivr"  # greeting, the caller's words, the menu
    WAITING = "waiting"  # in a queue, offered to agents
    CONNECTING = "connecting"  # an agent took it and is being bridged
    DIALING = "dialing"  # dialled to the on-call phone
    VOICEMAIL = "voicemail"
    ENDED = "ended"


class Call(Base):
    """One inbound phone call: where it is in the IVR and the queues, and how it ended."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    caller: Mapped[str] = mapped_column(String(64))  # From as Twilio sent it ("+1555…", "anonymous", …)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    state: Mapped[CallState] = mapped_column(_enum(CallState, "call_state"), default=CallState.IVR)
    queue: Mapped[str | None] = mapped_column(String(40))  # emergency or support, once it asked for a person
    urgency: Mapped[str | None] = mapped_column(String(16))
    emotion: Mapped[str | None] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(32))
    waiting_since: Mapped[datetime | None]
    wait_prompts: Mapped[int] = mapped_column(Integer, default=0)  # hold messages played so far
    on_call_tried: Mapped[bool] = mapped_column(Boolean, default=False)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    answered_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))  # answered, voicemail, abandoned, …
    duration: Mapped[int | None] = mapped_column(Integer)  # seconds, from Twilio's status callback
    # The caller's voicemail, kept by Twilio: the console plays it through its own authenticated route.
    recording_sid: Mapped[str | None] = mapped_column(String(64))
    recording_duration: Mapped[int | None] = mapped_column(Integer)  # seconds
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    case: Mapped[Case | None] = relationship()
    contact: Mapped[Contact | None] = relationship()
    answered_by: Mapped[User | None] = relationship()
    legs: Mapped[list["CallLeg"]] = relationship(back_populates="call", order_by="CallLeg.id")

    @property
    def critical(self) -> bool:
        return self.urgency == "critical"


class LegStatus(StrEnum):
    PLACING = "placing"  # stored; the call to the phone is being placed
    RINGING = "ringing"  # Twilio accepted the call; the phone rings
    ANSWERED = "answered"  # picked up, hearing the screening prompt
    ACCEPTED = "accepted"  # pressed 1: takes the call
    DECLINED = "declined"  # picked up and did not press 1 (or voicemail answered)
    MISSED = "missed"  # no answer, busy, failed
    CANCELED = "canceled"  # someone else took the call, or the caller left
    ENDED = "ended"


class CallLeg(Base):
    """A call the service places to a person's phone for an inbound call (an offer, the on-call dial)
    or for a case (a callback)."""

    __tablename__ = "call_legs"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))  # offer, on_call, callback
    number: Mapped[str] = mapped_column(String(20))
    leg_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[LegStatus] = mapped_column(_enum(LegStatus, "leg_status"), default=LegStatus.PLACING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    call: Mapped[Call | None] = relationship(back_populates="legs")
    user: Mapped[User | None] = relationship()


class CallCallback(Base):
    """A Twilio callback already applied: a retry of the same one changes nothing.

    Written in the transaction of the callback's own changes, so a failed one is applied again."""

    __tablename__ = "call_callbacks"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # CallSid, event and step
    at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxEntry(Base):
    """Work a commit owes (a job to run, a live event to publish), written in the same transaction and
    handed to Redis after it by assist/outbox.py: Redis being down delays it, never loses it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_waiting", "done_at", "relayed_at", "run_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "job" or "event"
    target: Mapped[str] = mapped_column(String(120))  # a job's function, or an event's kind
    args: Mapped[Any] = mapped_column(JSON)  # a job's positional arguments, or an event's data
    queue: Mapped[str] = mapped_column(String(16), default="default")
    job_id: Mapped[str | None] = mapped_column(String(80))  # RQ's job id (default: outbox-<id>)
    retry: Mapped[bool] = mapped_column(Boolean, default=False)  # the carrier retry policy (sends)
    run_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    relayed_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    relays: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500))


class ReviewStatus(StrEnum):
    REQUESTED = "requested"  # an agent asked for one; a lead or supervisor opens it
    OPEN = "open"  # a reviewer gathers and adds findings
    PENDING = "pending"  # a removal waits for a second reviewer's approval
    DECIDED = "decided"  # the decision is in force


class ReviewDecision(StrEnum):
    NO_ACTION = "no_action"
    WARNING = "warning"
    SUSPENSION = "suspension"  # until suspended_until
    REMOVAL = "removal"  # only with a second reviewer's approval


class SafetyReview(Base):
    """A confidential review of a member's conduct, opened from a case of theirs (assist/reviews.py): its findings
    and decision are seen by leads, supervisors and its reviewer only."""

    __tablename__ = "safety_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)  # the case it was opened from
    status: Mapped[ReviewStatus] = mapped_column(_enum(ReviewStatus, "review_status"))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[ReviewDecision | None] = mapped_column(_enum(ReviewDecision, "review_decision"))
    reasons: Mapped[str | None] = mapped_column(Text)
    suspended_until: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # a removal's second reviewer
    in_force_at: Mapped[datetime | None]  # decided, or approved for a removal
    outcome_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))  # the member was told
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    member: Mapped[Member] = relationship()
    case: Mapped[Case] = relationship()
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id])
    reviewer: Mapped[User | None] = relationship(foreign_keys=[reviewer_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id])
    findings: Mapped[list["ReviewFinding"]] = relationship(back_populates="review", order_by="ReviewFinding.id")


class ReviewFinding(Base):
    """A reviewer's internal finding, citing a guideline (assist/guidelines.yaml): never sent to the member."""

    __tablename__ = "review_findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("safety_reviews.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    guideline: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    review: Mapped[SafetyReview] = relationship(back_populates="findings")
    author: Mapped[User] = relationship()


class ClaimStatus(StrEnum):
    OPEN = "open"  # being checked
    AWAITING_LEAD = "awaiting_lead"  # decided by an agent above the lead's threshold: a lead approves it
    DECIDED = "decided"  # the decision stands and its letter is sent


class Claim(Base):
    """A vet bill a member asks the marketplace to reimburse, worked on a case (assist/claims.py).

    Amounts are integers of the currency's minor unit (cents). One claim per incident: the same booking, pet and
    day of the incident are refused a second time, by the database too."""

    __tablename__ = "claims"
    __table_args__ = (UniqueConstraint("booking_id", "pet_id", "incident_day", name="uq_claims_incident"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    claimant_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"))
    pet_id: Mapped[int] = mapped_column(ForeignKey("pets.id"))
    incident_at: Mapped[datetime]
    incident_day: Mapped[date] = mapped_column(Date)  # in the team's time zone: what "the same incident" compares
    clinic: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    amount_claimed: Mapped[int] = mapped_column(Integer)  # minor units
    documents: Mapped[list] = mapped_column(JSON, default=list)  # [{"message_id", "index"}]: the case's attachments
    reviews: Mapped[dict] = mapped_column(JSON, default=dict)  # check key -> {"verdict", "note", "by", "at"}
    status: Mapped[ClaimStatus] = mapped_column(_enum(ClaimStatus, "claim_status"), default=ClaimStatus.OPEN)
    outcome: Mapped[str | None] = mapped_column(String(16))  # approved, partial, denied, needs_info
    reason_code: Mapped[str | None] = mapped_column(String(32))
    amount_approved: Mapped[int | None] = mapped_column(Integer)  # minor units
    letter: Mapped[str | None] = mapped_column(Text)
    letter_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[Case] = relationship()
    claimant: Mapped[Member] = relationship()
    booking: Mapped[Booking] = relationship()
    pet: Mapped[Pet] = relationship()
    lines: Mapped[list["ClaimLine"]] = relationship(back_populates="claim", order_by="ClaimLine.id",
                                                    cascade="all, delete-orphan")
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id])


class ClaimLine(Base):
    """One line of a claim's invoice, as the customer or agent typed it."""

    __tablename__ = "claim_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"), index=True)
    description: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(Integer)  # minor units
    currency: Mapped[str] = mapped_column(String(3))

    claim: Mapped[Claim] = relationship(back_populates="lines")


class CsatSurvey(Base):
    """The one satisfaction question (1–5) a resolved case's customer is asked, and their answer: the unique
    case_id makes a second question for a case fail in the database, whatever runs twice."""

    __tablename__ = "csat_surveys"
    __table_args__ = (Index("ix_csat_surveys_waiting", "contact_id", "answered_at", "asked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    question_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    language: Mapped[str] = mapped_column(String(8))
    asked_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    score: Mapped[int | None] = mapped_column(Integer)  # 1 (poor) to 5 (great)
    comment: Mapped[str | None] = mapped_column(Text)  # what the customer wrote after the digit
    answer_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    answered_at: Mapped[datetime | None]

    case: Mapped[Case] = relationship()
    question: Mapped[Message] = relationship(foreign_keys=[question_id])
