"""The SMS channel: Twilio's messaging webhooks in, TwiML and Twilio's REST API out."""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flask import Blueprint, Response, abort, request
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from assist.errors import BadWebhook, InvalidAddress, UnknownStatus
from assist.urls import external_url
from channels.addresses import normalize_phone
from channels.message import Attachment, Channel, IngestResult, InboundMessage, Keyword
from channels.twilio_webhook import verify_twilio_signature

log = logging.getLogger(__name__)

# Carrier and CTIA keywords, matched against the whole message as Twilio does.
KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"], Keyword.OPT_OUT),
    **dict.fromkeys(["START", "YES", "UNSTOP"], Keyword.OPT_IN),
    **dict.fromkeys(["HELP", "INFO"], Keyword.HELP),
}

# Twilio's MessageStatus values -> the delivery status the service records.
# "receiving"/"received" belong to inbound messages and are not declared here.
STATUSES: dict[str, str] = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "partially_delivered": "sent",  # some segments arrived, not all: accepted, never confirmed delivered
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}

# GSM 03.38: the basic set costs one septet, the extension set two (escape + char).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7_SINGLE, GSM7_MULTI = 160, 153  # septets per segment (a multipart header takes 7)
UCS2_SINGLE, UCS2_MULTI = 70, 67  # UTF-16 code units per segment


@dataclass(frozen=True)
class StatusReport:
    """A delivery status callback for an outbound message."""

    message_sid: str
    status: str  # one of STATUSES' values
    error_code: str | None
    message_id: int | None  # the service's own id, carried in the callback URL


def encoding(text: str) -> str:
    """Return "GSM-7" when every character fits the GSM 03.38 alphabet, else "UCS-2"."""
    return "GSM-7" if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else "UCS-2"


def segment_count(text: str) -> int:
    """Count the SMS segments text is split into, as the carrier network does."""
    if not text:
        return 1
    if encoding(text) == "GSM-7":
        units = [2 if c in GSM7_EXTENSION else 1 for c in text]
        single, multi = GSM7_SINGLE, GSM7_MULTI
    else:
        units = [2 if ord(c) > 0xFFFF else 1 for c in text]  # astral characters are surrogate pairs
        single, multi = UCS2_SINGLE, UCS2_MULTI
    if sum(units) <= single:
        return 1
    # An escape pair or a surrogate pair is never split across two segments.
    segments, used = 1, 0
    for size in units:
        if used + size > multi:
            segments, used = segments + 1, 0
        used += size
    return segments


def keyword_of(body: str) -> Keyword | None:
    """Return the carrier keyword body consists of, if any."""
    return KEYWORDS.get(body.strip().rstrip(".!").strip().upper())


def parse_sms(form: Mapping[str, str], headers: Mapping[str, str] | None = None) -> InboundMessage:
    """Turn Twilio's incoming-message webhook parameters into an InboundMessage.

    Raises:
        BadWebhook: a parameter the service needs is missing or malformed.
    """
    missing = [name for name in ("MessageSid", "From") if not form.get(name)]
    if missing:
        raise BadWebhook(f"missing required parameter(s): {', '.join(missing)}")
    try:
        sender = normalize_phone(form["From"])
    except InvalidAddress as exc:
        raise BadWebhook(f"From is {exc}") from None
    body = form.get("Body", "")
    try:
        media_count = int(form.get("NumMedia") or 0)
    except ValueError:
        raise BadWebhook("NumMedia is not a number") from None
    media = tuple(
        Attachment(
            name=f"media-{i}",
            content_type=form.get(f"MediaContentType{i}", "application/octet-stream"),
            ref=form[f"MediaUrl{i}"],
        )
        for i in range(media_count)
        if form.get(f"MediaUrl{i}")
    )
    return InboundMessage(
        channel=Channel.SMS,
        channel_id=form["MessageSid"],
        sender=sender,
        recipient=form.get("To", ""),
        text=body,
        original=body,
        attachments=media,
        keyword=keyword_of(body),
        idempotency_token=(headers or {}).get("I-Twilio-Idempotency-Token"),
        raw=dict(form),
    )


def parse_status(form: Mapping[str, str], args: Mapping[str, str]) -> StatusReport:
    """Turn a messaging status callback into a StatusReport.

    Raises:
        BadWebhook: MessageSid or MessageStatus is missing.
        UnknownStatus: Twilio reported a status this module does not declare.
    """
    sid, twilio_status = form.get("MessageSid"), form.get("MessageStatus") or form.get("SmsStatus")
    if not sid or not twilio_status:
        raise BadWebhook("missing required parameter(s): MessageSid, MessageStatus")
    try:
        status = STATUSES[twilio_status]
    except KeyError:
        raise UnknownStatus(f"undeclared MessageStatus {twilio_status!r}") from None
    message_id = args.get("message", "")
    return StatusReport(
        message_sid=sid,
        status=status,
        error_code=form.get("ErrorCode") or None,
        message_id=int(message_id) if message_id.isdigit() else None,
    )


def twiml_reply(result: IngestResult) -> str:
    """Answer Twilio with the reply as TwiML; its status callbacks come back to /twilio/sms/status."""
    response = MessagingResponse()
    if result.reply:
        response.message(result.reply, action=external_url("sms.status", message=result.reply_id), method="POST")
    return str(response)


def send_sms(client: Client, *, from_: str, to: str, body: str, status_callback: str) -> str:
    """Send one SMS through Twilio's REST API and return its MessageSid."""
    return client.messages.create(from_=from_, to=to, body=body, status_callback=status_callback).sid


def create_blueprint(
    ingest: Callable[[InboundMessage], IngestResult],
    record_status: Callable[[StatusReport], None],
) -> Blueprint:
    """Return the webhook blueprint, wired to the core's ingest and status recorder."""
    bp = Blueprint("sms", __name__)

    @bp.post("/twilio/sms")
    @verify_twilio_signature
    def inbound():
        try:
            message = parse_sms(request.form, request.headers)
        except BadWebhook as exc:
            abort(400, str(exc))
        return Response(twiml_reply(ingest(message)), mimetype="text/xml")

    @bp.post("/twilio/sms/status")
    @verify_twilio_signature
    def status():
        try:
            report = parse_status(request.form, request.args)
        except (BadWebhook, UnknownStatus) as exc:
            abort(400, str(exc))
        record_status(report)
        return "", 204

    return bp
