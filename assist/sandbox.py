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


OPTED_OUT_KEY = "sandbox:twilio:opted_out"  # numbers that texted STOP to Twilio itself


def carrier_opt_out(connection, number: str) -> None:
    """Make the fake answer error 21610 for number, as Twilio does once its owner texted STOP."""
    connection.sadd(OPTED_OUT_KEY, number)


def fail_next(connection, count: int) -> None:
    """Make the next count API requests answer 500, as during a Twilio outage."""
    connection.set(FAIL_KEY, count)


def _error(status: int, code: int, message: str):
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}
    return jsonify(body), status


def _authenticate(account_sid: str) -> None:
    """Basic auth with the account SID and auth token, as Twilio's REST API checks it."""
    config = current_app.config
    auth = request.authorization
    if not auth or (auth.username, auth.password) != (config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"]) \
            or account_sid != auth.username:
        raise Unauthorized()


@bp.post("/2010-04-01/Accounts/<account_sid>/Messages.json")
def create_message(account_sid: str):
    _authenticate(account_sid)
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
    if connection.sismember(OPTED_OUT_KEY, to):
        return _error(400, 21610, "Attempt to send to unsubscribed recipient")
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
                       for c in placed_calls(queues.connection())[:OUTBOX_LIMIT]]
    return listed


@bp.get("/")
@role_required(UserRole.AGENT)
def outbox_page():
    return render_template("sandbox.html", **outbox(db.session()))


# -- Calls: placed (create), cancelled or redirected (update), listed and fetched; played by `assist simulate call`

CALLS_KEY = "sandbox:twilio:calls"  # sids, newest first
CALL_KEY = "sandbox:twilio:call:{sid}"  # the resource, as JSON
CALL_STATUSES = {"queued", "ringing", "in-progress", "canceled", "completed", "failed", "busy", "no-answer"}


def _call_resource(connection, account_sid: str, sid: str) -> dict | None:
    raw = connection.get(CALL_KEY.format(sid=sid))
    call = json.loads(raw) if raw else None
    return call if call is not None and call["account_sid"] == account_sid else None


def _save_call(connection, call: dict) -> None:
    connection.set(CALL_KEY.format(sid=call["sid"]), json.dumps(call))


@bp.post("/2010-04-01/Accounts/<account_sid>/Calls.json")
def create_call(account_sid: str):
    _authenticate(account_sid)
    form = request.form
    try:
        to, from_ = normalize_phone(form.get("To", "")), normalize_phone(form.get("From", ""))
    except InvalidAddress:
        return _error(400, 21211, "The 'To' or 'From' number is not a valid phone number.")
    if not form.get("Url") and not form.get("Twiml"):
        return _error(400, 21205, "Url parameter is required.")
    now = format_datetime(clock.now(), usegmt=True)
    sid = "CA" + secrets.token_hex(16)
    call = {
        "sid": sid, "account_sid": account_sid, "to": to, "from": from_, "status": "queued",
        "direction": "outbound-api", "api_version": "2010-04-01", "date_created": now, "date_updated": now,
        "start_time": None, "end_time": None, "duration": None, "parent_call_sid": None, "answered_by": None,
        "uri": f"/2010-04-01/Accounts/{account_sid}/Calls/{sid}.json",
        # What the service asked for (not part of Twilio's resource): the player and the outbox show it.
        "url": form.get("Url"), "twiml": form.get("Twiml"), "method": form.get("Method", "POST"),
        "status_callback": form.get("StatusCallback"), "status_callback_event": form.getlist("StatusCallbackEvent"),
        "timeout": form.get("Timeout"),
    }
    connection = queues.connection()
    with connection.pipeline() as pipe:
        pipe.set(CALL_KEY.format(sid=sid), json.dumps(call))
        pipe.lpush(CALLS_KEY, sid)
        pipe.ltrim(CALLS_KEY, 0, KEEP - 1)
        pipe.execute()
    return jsonify(call), 201


@bp.post("/2010-04-01/Accounts/<account_sid>/Calls/<sid>.json")
def update_call(account_sid: str, sid: str):
    """Cancel (a queued or ringing call), complete (hang up) or redirect a call, as Twilio's API does."""
    _authenticate(account_sid)
    connection = queues.connection()
    call = _call_resource(connection, account_sid, sid)
    if call is None:
        return _error(404, 20404, f"The requested resource {request.path} was not found")
    status = request.form.get("Status")
    if status is not None and status not in ("canceled", "completed"):
        return _error(400, 21218, f"Invalid Status {status!r}: canceled or completed.")
    if call["status"] in ("canceled", "completed", "failed", "busy", "no-answer"):
        return jsonify(call)  # already over: Twilio leaves it as it is
    if status == "canceled" and call["status"] in ("queued", "ringing"):
        call["status"] = "canceled"
    elif status is not None:
        call["status"] = "completed"
    if request.form.get("Url") or request.form.get("Twiml"):
        call["url"], call["twiml"] = request.form.get("Url"), request.form.get("Twiml")
    call["date_updated"] = format_datetime(clock.now(), usegmt=True)
    _save_call(connection, call)
    return jsonify(call)


@bp.get("/2010-04-01/Accounts/<account_sid>/Calls/<sid>.json")
def fetch_call(account_sid: str, sid: str):
    _authenticate(account_sid)
    call = _call_resource(queues.connection(), account_sid, sid)
    if call is None:
        return _error(404, 20404, f"The requested resource {request.path} was not found")
    return jsonify(call)


@bp.get("/2010-04-01/Accounts/<account_sid>/Calls.json")
def list_calls(account_sid: str):
    _authenticate(account_sid)
    wanted = {k: request.args.get(k) for k in ("To", "Status") if request.args.get(k)}
    found = [c for c in placed_calls(queues.connection()) if c["account_sid"] == account_sid
             and c["to"] == wanted.get("To", c["to"]) and c["status"] == wanted.get("Status", c["status"])]
    return jsonify({"calls": found, "page": 0, "page_size": len(found), "start": 0, "end": max(len(found) - 1, 0),
                    "first_page_uri": request.full_path, "next_page_uri": None, "previous_page_uri": None,
                    "uri": request.full_path})


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
        _save_call(connection, call)


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
