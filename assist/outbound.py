"""Outbound messages: store a reply, then hand it to a send job on the customer's channel."""

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from assist import audit, clock, outbox, runtime
from assist.errors import NotSendable
from assist.models import Case, DeliveryStatus, Direction, Message, User
from channels.message import Channel, StatusReport
from channels.segments import segment_count

if TYPE_CHECKING:
    from twilio.rest import Client

log = logging.getLogger(__name__)

OPTED_OUT_ERROR = 21610  # Twilio: the recipient replied STOP to this number


def reply_channel(case: Case) -> str:
    """The channel a written reply to case goes out on: the customer's last one; a caller gets an SMS."""
    last_inbound = case.latest_inbound
    channel = last_inbound.channel if last_inbound else Channel.SMS
    return Channel.SMS if channel == Channel.VOICE else channel


def create_reply(session: Session, case: Case, text: str, *, author: User | None = None,
                 channel: str | None = None) -> Message:
    """Store a reply to case on the channel the customer last used (an SMS for a caller); the caller
    owes its send in the same transaction (queue_send, or cases.done(send=)).

    Raises:
        NotSendable: the contact has no address on that channel (a caller who withheld their number).
    """
    last_inbound = case.latest_inbound
    channel = channel or reply_channel(case)
    contact = case.contact
    recipient = contact.email if channel == Channel.EMAIL else contact.phone
    if not recipient:
        raise NotSendable(f"this contact has no {'email address' if channel == Channel.EMAIL else 'phone number'}")
    same_channel = last_inbound is not None and last_inbound.channel == channel
    message = Message(
        case=case, contact=contact, direction=Direction.OUTBOUND, channel=channel, author=author,
        sender=last_inbound.recipient if same_channel else runtime.settings().twilio_from_number,
        recipient=recipient, text=text, original=text,
        in_reply_to_id=last_inbound.id if same_channel else None,
        segments=segment_count(text) if channel == Channel.SMS else None,
        delivery_status=DeliveryStatus.SUPPRESSED if contact.opted_out else DeliveryStatus.PENDING,
    )
    session.add(message)
    session.flush()
    audit.record(session, "message.reply", actor=author, case=case, message=message,
                 suppressed=contact.opted_out)
    return message


def queue_send(session: Session, message: Message) -> None:
    """Owe the send of a stored outbound message, in the transaction that stores it (nothing for a
    suppressed one): its send job runs after the commit, even if Redis is down at that moment."""
    if message.delivery_status != DeliveryStatus.PENDING:
        return
    session.flush()
    urgent = message.case is not None and message.case.urgency == "critical"
    outbox.job(session, "assist.jobs.send_message", message.id, queue="critical" if urgent else "default",
               retry=True)


def commit_delivery(session: Session, message: Message) -> None:
    """Commit a change of message's delivery status, telling the case pages that show it (assist.events)."""
    case = message.case
    if case is not None:
        outbox.event(session, "delivery", case_id=case.id, message_id=message.id, queue=case.queue,
                     assignee_id=case.assignee_id)
    outbox.commit(session)


TWILIO_API = "https://api.twilio.com"  # Twilio's own REST API


def twilio_api_url() -> str:
    """The base URL of Twilio's REST API: TWILIO_API_URL, else the service's own fake in sandbox mode, else
    Twilio's."""
    rt = runtime.current()
    settings = rt.settings
    return settings.twilio_api_url or (f"{rt.base_url()}/sandbox/twilio" if settings.sandbox else TWILIO_API)


def twilio_client() -> "Client":
    """A Twilio REST client; in sandbox mode it talks to the service's own fake of the API."""
    from twilio.rest import Client  # imported when first needed: it takes a while
    settings = runtime.settings()
    client = Client(settings.account_sid, settings.auth_token)
    client.api.base_url = twilio_api_url()
    return client


def record_opt_out(session: Session, contact, *, source: str) -> None:
    """The carrier says the contact opted out (they texted STOP, maybe to Twilio directly)."""
    if not contact.opted_out:
        contact.opted_out, contact.opted_out_at = True, clock.now()
        audit.record(session, "contact.opted_out", contact_id=contact.id, source=source)


# Later statuses never go back to earlier ones: callbacks may arrive out of order.
STATUS_RANK = {
    DeliveryStatus.PENDING: 0, DeliveryStatus.RETRYING: 0, DeliveryStatus.SENDING: 0, DeliveryStatus.UNCONFIRMED: 0,
    DeliveryStatus.QUEUED: 1, DeliveryStatus.SENT: 2,
    DeliveryStatus.DELIVERED: 3, DeliveryStatus.UNDELIVERED: 3, DeliveryStatus.FAILED: 3,
}


def record_delivery_status(session: Session, report: StatusReport) -> Message | None:
    """Record a carrier's delivery status on the outbound message it is about."""
    message = session.get(Message, report.message_id) if report.message_id else None
    if message is None or message.direction != Direction.OUTBOUND:
        message = session.scalars(
            select(Message).where(Message.channel == Channel.SMS, Message.direction == Direction.OUTBOUND,
                                  Message.channel_id == report.message_sid)
        ).one_or_none()
    if message is None:
        log.warning("status %s for unknown message %s ignored", report.status, report.message_sid)
        return None
    message.channel_id = message.channel_id or report.message_sid
    status = DeliveryStatus(report.status)
    if STATUS_RANK.get(message.delivery_status, 0) < STATUS_RANK[status]:
        message.delivery_status = status
        if status == DeliveryStatus.DELIVERED:
            message.delivered_at = clock.now()
        if report.error_code:
            message.error = f"carrier error {report.error_code}"
        if report.error_code == str(OPTED_OUT_ERROR):
            record_opt_out(session, message.contact, source=f"Twilio error {report.error_code}")
        audit.record(session, "message.status", case=message.case, message=message, status=status.value,
                     error_code=report.error_code)
        commit_delivery(session, message)
    else:
        session.commit()
    return message
