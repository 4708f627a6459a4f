"""Sandbox mode: a local fake of Twilio's Messages REST API that records what would be sent.

The real twilio SDK talks to it (its api.base_url points here), so everything up to
the HTTP request is the production path. Messages are recorded in Redis, so every
process sees them, and status callbacks are posted back, signed, by a job.
"""

import json
import secrets
from email.utils import format_datetime

from flask import Blueprint, current_app, jsonify, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import Unauthorized

from assist import clock, db, queues
from assist.auth import role_required
from assist.models import Direction, Message, UserRole
from channels.addresses import normalize_phone
from channels.message import Channel
from channels.sms import segment_count
from assist.errors import InvalidAddress

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox/twilio")

SENT_KEY = "sandbox:twilio:messages"
FAIL_KEY = "sandbox:twilio:fail_next"  # how many coming requests answer 500 (outage drill)
KEEP = 1000  # messages kept in the outbox


def sent_messages(connection) -> list[dict]:
    """Return the recorded messages, newest first."""
    return [json.loads(raw) for raw in connection.lrange(SENT_KEY, 0, -1)]


def fail_next(connection, count: int) -> None:
    """Make the next count API requests answer 500, as during a Twilio outage."""
    connection.set(FAIL_KEY, count)


def _error(status: int, code: int, message: str):
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}
    return jsonify(body), status


@bp.post("/2010-04-01/Accounts/<account_sid>/Messages.json")
def create_message(account_sid: str):
    config = current_app.config
    auth = request.authorization
    if not auth or (auth.username, auth.password) != (config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"]) \
            or account_sid != auth.username:
        raise Unauthorized()
    connection = queues.connection()
    if connection.decr(FAIL_KEY) >= 0:
        return _error(500, 20500, "Internal Server Error")
    connection.delete(FAIL_KEY)
    form = request.form
    if not form.get("Body") and not form.get("MediaUrl"):
        return _error(400, 21602, "Message body is required.")
    try:
        to = normalize_phone(form.get("To", ""))
    except InvalidAddress:
        return _error(400, 21211, f"The 'To' number {form.get('To')} is not a valid phone number.")
    now = format_datetime(clock.now(), usegmt=True)
    sid = "SM" + secrets.token_hex(16)
    resource = {
        "sid": sid, "account_sid": account_sid, "to": to, "from": form.get("From"), "body": form.get("Body", ""),
        "status": "queued", "num_segments": str(segment_count(form.get("Body", ""))), "num_media": "0",
        "direction": "outbound-api", "api_version": "2010-04-01", "date_created": now, "date_updated": now,
        "date_sent": None, "error_code": None, "error_message": None, "price": None, "price_unit": "USD",
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
        "status_callback": form.get("StatusCallback"),
    }
    with connection.pipeline() as pipe:
        pipe.lpush(SENT_KEY, json.dumps(resource))
        pipe.ltrim(SENT_KEY, 0, KEEP - 1)
        pipe.execute()
    if form.get("StatusCallback"):
        params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": account_sid, "From": resource["from"],
                  "To": to, "ApiVersion": "2010-04-01"}
        queues.enqueue("assist.jobs.post_status_callbacks", form["StatusCallback"], params,
                       ["sent", "delivered"], queue_name="low",
                       description=f"sandbox status callbacks for {sid}")  # RQ logs this, not the numbers
    return jsonify(resource), 201


OUTBOX_LIMIT = 200  # newest outbound messages listed


def outbox(session: Session) -> dict[str, list[dict]]:
    """Every outbound message the service produced, newest first, with how it left and its delivery status."""
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
    return listed


@bp.get("/")
@role_required(UserRole.AGENT)
def outbox_page():
    return render_template("sandbox.html", **outbox(db.session()))


EMAIL_KEY = "sandbox:email:messages"


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
