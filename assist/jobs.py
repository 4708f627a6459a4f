"""RQ jobs: module-level functions that take ids, run in an app context, and raise to be retried."""

import logging
import smtplib
from datetime import datetime, timezone

import requests
from flask import current_app
from rq import get_current_job
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator

from assist import audit, db, mail
from assist.errors import NotSendable, SendFailed
from assist.models import DeliveryStatus, Direction, Message
from assist.outbound import twilio_client
from assist.urls import external_url
from channels import sms
from channels.addresses import mask
from channels.message import Channel

log = logging.getLogger(__name__)

CALLBACK_TIMEOUT = 10  # seconds


def send_message(message_id: int) -> str | None:
    """Send a stored outbound message on its channel and record the carrier's id.

    Raises:
        SendFailed: a transient failure; RQ retries the job while retries are left.
    """
    session = db.session()
    message = session.get(Message, message_id)
    if message is None or message.direction != Direction.OUTBOUND:
        raise NotSendable(f"message {message_id} is not an outbound message")
    if message.delivery_status not in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING):
        return message.channel_id  # already sent by an earlier run of this job
    if message.contact.opted_out:
        message.delivery_status = DeliveryStatus.SUPPRESSED
        session.commit()
        return None

    message.attempts += 1
    sender = SENDERS.get(message.channel)
    try:
        if sender is None:
            raise NotSendable(f"no sender for the {message.channel} channel yet")
        sid = sender(message)
    except NotSendable as exc:  # configuration, not the carrier: trying again cannot help
        _record_failure(session, message, str(exc), reason="not sendable", final=True)
        return None
    except TwilioRestException as exc:
        # 4xx (but 429) means the request itself is wrong: trying again cannot help.
        permanent = 400 <= exc.status < 500 and exc.status != 429
        _record_failure(session, message, f"Twilio {exc.status} {exc.code or ''}: {exc.msg}",
                        reason=f"Twilio {exc.status} {exc.code or ''}", final=permanent or not _retries_left())
        if permanent:
            return None
        raise SendFailed(f"message {message_id}: Twilio answered {exc.status}") from exc
    except (TwilioException, requests.RequestException, OSError, smtplib.SMTPException) as exc:
        _record_failure(session, message, f"{type(exc).__name__}: {exc}", reason=type(exc).__name__,
                        final=not _retries_left())
        raise SendFailed(f"message {message_id}: {type(exc).__name__}") from exc

    message.channel_id = sid
    message.delivery_status = DeliveryStatus.QUEUED
    message.sent_at = datetime.now(timezone.utc)
    message.error = None
    audit.record(session, "message.sent", case=message.case, message=message, attempt=message.attempts)
    session.commit()
    log.info("sent message %s to %s as %s", message.id, mask(message.recipient), sid)
    return sid


def _send_sms(message: Message) -> str:
    return sms.send_sms(
        twilio_client(),
        from_=message.sender or current_app.config["TWILIO_FROM_NUMBER"],
        to=message.recipient,
        body=message.text,
        status_callback=external_url("sms.status", message=message.id),
    )


def _send_email(message: Message) -> str:
    return mail.send(message)


SENDERS = {Channel.SMS: _send_sms, Channel.EMAIL: _send_email}


def _retries_left() -> bool:
    job = get_current_job()
    return bool(job and job.retries_left)


def _record_failure(session, message: Message, error: str, *, reason: str, final: bool) -> None:
    """Record a failed attempt on the message; reason (no personal data) goes to the log."""
    message.delivery_status = DeliveryStatus.FAILED if final else DeliveryStatus.RETRYING
    message.error = error[:500]
    audit.record(session, "message.send_failed", case=message.case, message=message,
                 attempt=message.attempts, final=final, error=message.error)
    session.commit()
    log.warning("send of message %s failed (attempt %s, final=%s): %s", message.id, message.attempts, final, reason)


def check_first_response(case_id: int) -> bool:
    """Scheduled at a case's first-response due time: escalate it to the lead if nobody answered."""
    from assist import routing
    from assist.models import Case

    session = db.session()
    case = session.get(Case, case_id)
    if case is None:
        raise NotSendable(f"case {case_id} does not exist")
    breached = routing.check_first_response(session, case, datetime.now(timezone.utc))
    session.commit()
    if breached:
        log.warning("case %s breached its first-response SLA (queue %s); escalated", case.id, case.queue)
    return breached


def post_status_callbacks(url: str, base_params: dict, statuses: list[str]) -> None:
    """Sandbox mode: call a StatusCallback URL as Twilio would, signed with the auth token."""
    validator = RequestValidator(current_app.config["TWILIO_AUTH_TOKEN"])
    for status in statuses:
        params = {**base_params, "MessageStatus": status, "SmsStatus": status}
        signature = validator.compute_signature(url, params)
        response = requests.post(url, data=params, headers={"X-Twilio-Signature": signature},
                                 timeout=CALLBACK_TIMEOUT)
        response.raise_for_status()
