"""Sandbox mode: a local fake of Twilio's Messages and Calls REST API, and the outbox page.

The real twilio SDK talks to it (its api.base_url points here), so everything up to the HTTP
request is the production path. What it receives is recorded in Redis (assist.sandbox), so every
process sees it; status callbacks are posted back, signed, by a job.
"""

import io
import re
import secrets
from email.utils import format_datetime

from flask import Blueprint, jsonify, render_template, request, send_file
from werkzeug.exceptions import Unauthorized

from assist import background, clock, db, runtime, sandbox
from assist.errors import InvalidAddress
from assist.models import UserRole
from assist.web.auth import role_required
from assist.web.urls import public_base_url
from channels.addresses import normalize_phone
from channels.segments import segment_count

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox/twilio")


def _error(status: int, code: int, message: str):
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}
    return jsonify(body), status


def _authenticate(account_sid: str) -> None:
    """Basic auth with the account SID and auth token, as Twilio's REST API checks it."""
    settings = runtime.settings()
    auth = request.authorization
    if not auth or (auth.username, auth.password) != (settings.account_sid, settings.auth_token) \
            or account_sid != auth.username:
        raise Unauthorized()


@bp.post("/2010-04-01/Accounts/<account_sid>/Messages.json")
def create_message(account_sid: str):
    _authenticate(account_sid)
    connection = background.connection()
    if sandbox.failing(connection):
        return _error(500, 20500, "Internal Server Error")
    form = request.form
    if not form.get("Body") and not form.get("MediaUrl"):
        return _error(400, 21602, "Message body is required.")
    try:
        to = normalize_phone(form.get("To", ""))
    except InvalidAddress:
        return _error(400, 21211, f"The 'To' number {form.get('To')} is not a valid phone number.")
    if sandbox.carrier_opted_out(connection, to):
        return _error(400, 21610, "Attempt to send to unsubscribed recipient")
    # Twilio calls any public URL back; this fake calls only the service itself (PUBLIC_BASE_URL, else the
    # host this request came to), so it cannot be used to make the worker post elsewhere.
    callback = form.get("StatusCallback")
    if callback and not sandbox.own_url(callback, public_base_url(), runtime.current().base_url()):
        return _error(400, 21609, "Invalid StatusCallback: the sandbox calls back only the service's own base URL.")
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
    sandbox.record_message(connection, resource)
    if callback:
        params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": account_sid, "From": resource["from"],
                  "To": to, "ApiVersion": "2010-04-01"}
        background.enqueue("assist.jobs.post_status_callbacks", callback, params,
                       ["sent", "delivered"], queue_name="low",
                       description=f"sandbox status callbacks for {sid}")  # RQ logs this, not the numbers
    return jsonify(resource), 201


@bp.get("/")
@role_required(UserRole.AGENT)
def outbox_page():
    return render_template("sandbox.html", **sandbox.outbox(db.session()))


# -- Calls: placed (create), cancelled or redirected (update), listed and fetched; played by `assist simulate call`

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
    connection = background.connection()
    sandbox.save_call(connection, call, new=True)
    return jsonify(call), 201


@bp.post("/2010-04-01/Accounts/<account_sid>/Calls/<sid>.json")
def update_call(account_sid: str, sid: str):
    """Cancel (a queued or ringing call), complete (hang up) or redirect a call, as Twilio's API does."""
    _authenticate(account_sid)
    connection = background.connection()
    call = sandbox.call_resource(connection, account_sid, sid)
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
    sandbox.save_call(connection, call)
    return jsonify(call)


@bp.get("/2010-04-01/Accounts/<account_sid>/Calls/<sid>.json")
def fetch_call(account_sid: str, sid: str):
    _authenticate(account_sid)
    call = sandbox.call_resource(background.connection(), account_sid, sid)
    if call is None:
        return _error(404, 20404, f"The requested resource {request.path} was not found")
    return jsonify(call)


@bp.get("/2010-04-01/Accounts/<account_sid>/Calls.json")
def list_calls(account_sid: str):
    _authenticate(account_sid)
    wanted = {k: request.args.get(k) for k in ("To", "Status") if request.args.get(k)}
    found = [c for c in sandbox.placed_calls(background.connection()) if c["account_sid"] == account_sid
             and c["to"] == wanted.get("To", c["to"]) and c["status"] == wanted.get("Status", c["status"])]
    return jsonify({"calls": found, "page": 0, "page_size": len(found), "start": 0, "end": max(len(found) - 1, 0),
                    "first_page_uri": request.full_path, "next_page_uri": None, "previous_page_uri": None,
                    "uri": request.full_path})


# -- Recordings and MMS media: what Twilio keeps, fetched with the account's credentials -----------------------

RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")


@bp.get("/2010-04-01/Accounts/<account_sid>/Recordings/<sid>.wav")
def fetch_recording(account_sid: str, sid: str):
    return _kept(account_sid, f"/2010-04-01/Accounts/{account_sid}/Recordings/{sid}")


@bp.get("/2010-04-01/Accounts/<account_sid>/Messages/<message_sid>/Media/<media_sid>")
def fetch_media(account_sid: str, message_sid: str, media_sid: str):
    return _kept(account_sid, f"/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}/Media/{media_sid}")


@bp.put("/2010-04-01/Accounts/<account_sid>/Recordings/<sid>.wav")
def keep_recording(account_sid: str, sid: str):
    """Not Twilio's: the phone network (assist.phone_network) leaves here what a caller recorded, as Twilio's
    voice engine keeps it, before it reports the recording."""
    _authenticate(account_sid)
    if not RECORDING_SID.fullmatch(sid):
        return _error(400, 20001, "Invalid RecordingSid.")
    audio = request.get_data()
    if len(audio) > sandbox.MAX_FILE:
        return _error(413, 20001, f"A recording of at most {sandbox.MAX_FILE} bytes.")
    sandbox.keep_file(background.connection(), f"/2010-04-01/Accounts/{account_sid}/Recordings/{sid}",
                      "audio/x-wav", audio)
    return "", 201


def _kept(account_sid: str, path: str):
    """A kept file, as Twilio serves it: a range of it when asked (an audio player seeking)."""
    _authenticate(account_sid)
    found = sandbox.kept_file(background.connection(), path)
    if found is None:
        return _error(404, 20404, f"The requested resource {request.path} was not found")
    content_type, data = found
    return send_file(io.BytesIO(data), mimetype=content_type, conditional=True, etag=False)
