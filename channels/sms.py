"""The SMS channel: Twilio's messaging webhooks in, TwiML and Twilio's REST API out."""

import logging
from collections.abc import Mapping

from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from channels.addresses import normalize_phone
from channels.errors import BadWebhook, InvalidAddress, UnknownStatus
from channels.message import Attachment, Channel, InboundMessage, IngestResult, Keyword, StatusReport

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

MAX_MEDIA = 10  # Twilio attaches at most 10 media to a message
MAX_SID = 64  # Twilio's SIDs are 34 characters; anything much longer is not Twilio's
MAX_ADDRESS = 64  # a phone number, short code or channel address ("whatsapp:+1...")
MAX_ERROR_CODE = 10  # Twilio's error codes are five digits
MAX_ID = 2**31 - 1  # the largest id the service's own status URLs carry


def _bounded(form: Mapping[str, str], name: str, limit: int) -> str:
    value = form.get(name) or ""
    if len(value) > limit:
        raise BadWebhook(f"{name} is longer than {limit} characters")
    return value


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
    sid = _bounded(form, "MessageSid", MAX_SID)
    recipient = _bounded(form, "To", MAX_ADDRESS)
    try:
        sender = normalize_phone(_bounded(form, "From", MAX_ADDRESS))
    except InvalidAddress as exc:
        raise BadWebhook(f"From is {exc}") from None
    body = form.get("Body", "")
    try:
        media_count = int(form.get("NumMedia") or 0)
    except ValueError:
        raise BadWebhook("NumMedia is not a number") from None
    if not 0 <= media_count <= MAX_MEDIA:
        raise BadWebhook(f"NumMedia must be 0 to {MAX_MEDIA}, not {media_count}")
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
        channel_id=sid,
        sender=sender,
        recipient=recipient,
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
    sid = _bounded(form, "MessageSid", MAX_SID)
    error_code = _bounded(form, "ErrorCode", MAX_ERROR_CODE)
    try:
        status = STATUSES[twilio_status]
    except KeyError:
        raise UnknownStatus(f"undeclared MessageStatus {twilio_status!r}") from None
    message_id = args.get("message", "")
    if message_id and not (message_id.isascii() and message_id.isdigit() and len(message_id) <= 10
                           and int(message_id) <= MAX_ID):
        raise BadWebhook(f"message is not one of the service's message ids: {message_id[:20]!r}")
    return StatusReport(
        message_sid=sid,
        status=status,
        error_code=error_code or None,
        message_id=int(message_id) if message_id else None,
    )


def twiml_reply(result: IngestResult, status_url: str | None) -> str:
    """Answer Twilio with the reply as TwiML; its status callbacks go to status_url (the message's own)."""
    response = MessagingResponse()
    if result.reply:
        response.message(result.reply, action=status_url, method="POST")
    return str(response)


def send_sms(client: Client, *, from_: str, to: str, body: str, status_callback: str) -> str:
    """Send one SMS through Twilio's REST API and return its MessageSid."""
    return client.messages.create(from_=from_, to=to, body=body, status_callback=status_callback).sid
