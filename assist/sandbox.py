"""Sandbox mode's records: what the fake of Twilio's REST API (assist/web/sandbox.py) and the local mail
relay received, kept in Redis so every process sees them, and the outbox that lists what the service sent.
"""

import json
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from assist import background
from assist.models import Direction, Message
from channels.message import Channel

SENT_KEY = "sandbox:twilio:messages"
FAIL_KEY = "sandbox:twilio:fail_next"  # how many coming requests answer 500 (outage drill)
OPTED_OUT_KEY = "sandbox:twilio:opted_out"  # numbers that texted STOP to Twilio itself
CALLS_KEY = "sandbox:twilio:calls"  # sids, newest first
CALL_KEY = "sandbox:twilio:call:{sid}"  # the resource, as JSON
CALL_STATUSES = {"queued", "ringing", "in-progress", "canceled", "completed", "failed", "busy", "no-answer"}
EMAIL_KEY = "sandbox:email:messages"
FILE_KEY = "sandbox:twilio:file:{path}"  # a recording or an MMS medium, by its API path
KEEP = 1000  # messages (and calls, and emails) kept
FILE_SECONDS = 7 * 24 * 3600  # how long a recording or medium is kept
MAX_FILE = 5 * 1024 * 1024  # bytes: Twilio's limit for an MMS medium


def _origin(url: str) -> tuple[str, str, int] | None:
    """The scheme, host and port of url (the port the scheme implies if none is given), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a port that is not a number, or out of range
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        return None
    return parts.scheme, parts.hostname.lower(), port


def own_url(url: str, *bases: str) -> bool:
    """Whether url is on one of the service's own base URLs (same scheme, host and port).

    The fake Twilio posts status callbacks where it is told: only to the service itself, so it
    cannot be made to send requests anywhere else from the worker.
    """
    origin = _origin(url)
    return origin is not None and any(origin == _origin(base) for base in bases)


def sent_messages(connection) -> list[dict]:
    """Return the recorded messages, newest first."""
    return [json.loads(raw) for raw in connection.lrange(SENT_KEY, 0, -1)]


def record_message(connection, resource: dict) -> None:
    with connection.pipeline() as pipe:
        pipe.lpush(SENT_KEY, json.dumps(resource))
        pipe.ltrim(SENT_KEY, 0, KEEP - 1)
        pipe.execute()


def carrier_opt_out(connection, number: str) -> None:
    """Make the fake answer error 21610 for number, as Twilio does once its owner texted STOP."""
    connection.sadd(OPTED_OUT_KEY, number)


def carrier_opted_out(connection, number: str) -> bool:
    return bool(connection.sismember(OPTED_OUT_KEY, number))


def fail_next(connection, count: int) -> None:
    """Make the next count API requests answer 500, as during a Twilio outage."""
    connection.set(FAIL_KEY, count)


def failing(connection) -> bool:
    """Whether this request is one fail_next asked to fail (it counts down)."""
    if connection.decr(FAIL_KEY) >= 0:
        return True
    connection.delete(FAIL_KEY)
    return False


OUTBOX_LIMIT = 200  # newest outbound messages listed


def outbox(session: Session) -> dict[str, list[dict]]:
    """Every outbound message the service produced, newest first, with how it left and its delivery status,
    and the calls it placed (agents' phones, callbacks) with their TwiML or URL and status."""
    rows = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)
                           .order_by(Message.id.desc()).limit(OUTBOX_LIMIT))
    listed: dict[str, list[dict]] = {"messages": [], "emails": []}
    for m in rows:
        via = "smtp" if m.channel == Channel.EMAIL else (m.meta or {}).get("via", "rest")
        listed["emails" if m.channel == Channel.EMAIL else "messages"].append({
            "id": m.id, "case_id": m.case_id, "channel": m.channel, "via": via, "to": m.recipient,
            "from": m.sender, "body": m.text, "status": m.delivery_status.value if m.delivery_status else None,
            "carrier_id": m.channel_id, "attempts": m.attempts, "error": m.error,
            "created_at": m.created_at.isoformat(), "bot": m.author_id is None})
    listed["calls"] = [{"sid": c["sid"], "to": c["to"], "from": c["from"], "status": c["status"], "url": c["url"],
                        "twiml": c["twiml"], "created_at": c["date_created"]}
                       for c in placed_calls(background.connection())[:OUTBOX_LIMIT]]
    return listed


def call_resource(connection, account_sid: str, sid: str) -> dict | None:
    raw = connection.get(CALL_KEY.format(sid=sid))
    call = json.loads(raw) if raw else None
    return call if call is not None and call["account_sid"] == account_sid else None


def save_call(connection, call: dict, *, new: bool = False) -> None:
    with connection.pipeline() as pipe:
        pipe.set(CALL_KEY.format(sid=call["sid"]), json.dumps(call))
        if new:
            pipe.lpush(CALLS_KEY, call["sid"])
            pipe.ltrim(CALLS_KEY, 0, KEEP - 1)
        pipe.execute()


def placed_calls(connection) -> list[dict]:
    """The calls the service placed through the fake API, newest first."""
    calls = []
    for sid in connection.lrange(CALLS_KEY, 0, -1):
        raw = connection.get(CALL_KEY.format(sid=sid.decode()))
        if raw:
            calls.append(json.loads(raw))
    return calls


def set_call_status(connection, sid: str, status: str) -> None:
    """What the phone network did with a placed call (the player reports it)."""
    if status not in CALL_STATUSES:
        raise ValueError(f"unknown call status {status!r}")
    raw = connection.get(CALL_KEY.format(sid=sid))
    if raw:
        call = json.loads(raw)
        call["status"] = status
        save_call(connection, call)


def keep_file(connection, path: str, content_type: str, data: bytes) -> None:
    """Keep a file as Twilio keeps recordings and MMS media, for the fake API to serve at path."""
    if len(data) > MAX_FILE:
        raise ValueError(f"the sandbox keeps files of at most {MAX_FILE} bytes")
    key = FILE_KEY.format(path=path)
    with connection.pipeline() as pipe:
        pipe.hset(key, mapping={"content_type": content_type, "data": data})
        pipe.expire(key, FILE_SECONDS)
        pipe.execute()


def kept_file(connection, path: str) -> tuple[str, bytes] | None:
    """The content type and bytes of the file kept at path, if any."""
    content_type, data = connection.hmget(FILE_KEY.format(path=path), "content_type", "data")
    return (content_type.decode(), data) if data is not None else None


class MailSink:
    """Sandbox relay: an aiosmtpd handler that records the replies the service sends, in Redis."""

    def __init__(self, connection):
        self.connection = connection

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes, policy

        parsed = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        record = {header.lower(): str(parsed.get(header, "")) for header in
                  ("From", "To", "Subject", "Message-ID", "In-Reply-To", "References", "Reply-To", "Auto-Submitted")}
        record["body"] = parsed.get_body(preferencelist=("plain",)).get_content()
        with self.connection.pipeline() as pipe:
            pipe.lpush(EMAIL_KEY, json.dumps(record))
            pipe.ltrim(EMAIL_KEY, 0, KEEP - 1)
            pipe.execute()
        return "250 2.0.0 Recorded by the sandbox"


def sent_emails(connection) -> list[dict]:
    """The emails the sandbox relay received, newest first."""
    return [json.loads(raw) for raw in connection.lrange(EMAIL_KEY, 0, -1)]
