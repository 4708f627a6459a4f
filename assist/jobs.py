"""RQ jobs: module-level functions that take ids, run in an app context, and raise to be retried."""

import logging
import smtplib

import requests
from rq import get_current_job
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator

from assist import audit, cases, clock, csat, db, mail, outbound, outbox, routing, runtime, sandbox
from assist.errors import ForeignCallback, NotSendable, SendFailed
from assist.models import Case, DeliveryStatus, Direction, Message
from assist.outbound import twilio_client
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
    if message.delivery_status == DeliveryStatus.SENDING:
        # An earlier run handed it over and was cut off before it could record the answer: it may have
        # gone out, and an accepted message is never sent twice. An agent sees it and decides.
        message.delivery_status = DeliveryStatus.UNCONFIRMED
        message.error = "the send was cut off after it was handed over: it may have been sent"
        audit.record(session, "message.send_unconfirmed", case=message.case, message=message,
                     attempt=message.attempts)
        outbound.commit_delivery(session, message)
        log.error("send of message %s was cut off after the hand-over; not sent again", message.id)
        return None
    if message.delivery_status not in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING):
        return message.channel_id  # already sent by an earlier run of this job
    if message.contact.opted_out:
        message.delivery_status = DeliveryStatus.SUPPRESSED
        audit.record(session, "message.suppressed", case=message.case, message=message)
        outbound.commit_delivery(session, message)
        return None

    sender = SENDERS.get(Channel(message.channel))
    if sender is None:
        _record_failure(session, message, f"no sender for the {message.channel} channel yet",
                        reason="not sendable", final=True)
        return None
    # Recorded before the carrier is asked: whatever fails after the hand-over, no later run sends it again.
    message.attempts += 1
    message.delivery_status = DeliveryStatus.SENDING
    session.commit()
    try:
        sid = sender(message)
    except NotSendable as exc:  # configuration, not the carrier: trying again cannot help
        _record_failure(session, message, str(exc), reason="not sendable", final=True)
        return None
    except TwilioRestException as exc:
        # 4xx (but 429) means the request itself is wrong: trying again cannot help.
        permanent = 400 <= exc.status < 500 and exc.status != 429
        if exc.code == outbound.OPTED_OUT_ERROR:
            outbound.record_opt_out(session, message.contact, source=f"Twilio error {exc.code}")
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
    # Twilio queues what it accepts; a relay that said 250 has sent it on.
    message.delivery_status = DeliveryStatus.SENT if message.channel == Channel.EMAIL else DeliveryStatus.QUEUED
    message.sent_at = clock.now()
    message.error = None
    case = message.case
    if message.author_id is not None and case is not None and case.first_response_at is None:
        case.first_response_at = message.created_at  # answered when the agent wrote it, now that it went out
    audit.record(session, "message.sent", case=message.case, message=message, attempt=message.attempts)
    outbound.commit_delivery(session, message)
    log.info("sent message %s to %s as %s", message.id, mask(message.recipient), sid)
    return sid


def _send_sms(message: Message) -> str:
    return sms.send_sms(
        twilio_client(),
        from_=message.sender or runtime.settings().twilio_from_number,
        to=message.recipient,
        body=message.text,
        status_callback=runtime.current().url("sms.status", message=message.id),
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
    outbound.commit_delivery(session, message)
    log.warning("send of message %s failed (attempt %s, final=%s): %s", message.id, message.attempts, final, reason)


def check_first_response(case_id: int) -> bool:
    """Scheduled at a case's first-response due time: escalate it to the lead if nobody answered.

    RQ's scheduler works in whole seconds, so this can run up to a second early: it then runs
    again at the due time. The sweep (sweep_overdue_cases) catches a check that was never run.
    """
    session = db.session()
    case = session.get(Case, case_id, with_for_update=True)
    if case is None:
        return False  # nothing to escalate
    now = clock.now()
    if not routing.sla_running(case):
        session.commit()
        return False
    if case.first_response_due_at > now:
        routing.schedule_sla_check(session, case, now=now, again=True)
        outbox.commit(session)
        return False
    breached = routing.check_first_response(session, case, now)
    session.commit()
    if breached:
        log.warning("case %s breached its first-response SLA (queue %s); escalated", case.id, case.queue)
    return breached


def ask_csat(case_id: int) -> int | None:
    """Owed CSAT_DELAY_MINUTES after a case was resolved: ask its customer to rate it (assist.csat); return the
    question's message id, None when the case is not asked."""
    question = csat.ask(db.session(), case_id, clock.now())
    return question.id if question is not None else None


def after_inbound(case_id: int, routed: bool, requeued: bool, alert_lead: bool) -> None:
    """After an inbound message's commit, in a worker: give its case to someone when its route changed (a
    new queue, or nobody has it yet) and tell the consoles, alert the queue's lead when the playbook says so,
    and owe the case's first-response check."""
    session = db.session()
    case = session.get(Case, case_id, with_for_update=True)  # waits for a message of the case being stored
    if case is None:
        return
    if routed and case.is_open and (requeued or case.assignee_id is None) \
            and routing.assign(session, case, clock.now()) is not None:
        outbox.event(session, "case", case_id=case.id, queue=case.queue, assignee_id=case.assignee_id)
    if alert_lead:
        lead = cases.lead_for(session, case.queue)
        audit.record(session, "case.lead_alerted", case=case, playbook=case.playbook_id,
                     lead_id=lead.id if lead else None)
    routing.schedule_sla_check(session, case)
    outbox.commit(session)


SWEEP_BATCH = 500  # overdue cases escalated per sweep run


def sweep_overdue_cases() -> int:
    """Escalate every open case past its first-response due time that nobody answered; return how many.

    Runs every minute (assist.worker.PERIODIC), so an SLA check that was lost — Redis down when it
    was to be scheduled, a worker killed while running it — still escalates within a minute.
    """
    session = db.session()
    now = clock.now()
    overdue = session.scalars(routing.overdue_cases(now).limit(SWEEP_BATCH).with_for_update(skip_locked=True)).all()
    escalated = [case.id for case in overdue if routing.check_first_response(session, case, now)]
    session.commit()
    if escalated:
        log.warning("sweep escalated %s overdue case(s): %s", len(escalated), escalated)
    return len(escalated)


def apply_retention() -> dict[str, int]:
    """Remove the message bodies, voicemails and mails of cases resolved longer than RETENTION_DAYS ago; return
    the counts. Runs daily (assist.worker.PERIODIC); a run cut short is finished by the next."""
    from assist import retention

    return retention.run(db.session(), clock.now(), runtime.settings().retention_days).counts()


def place_call_legs(leg_ids: list[int]) -> None:
    """Ring the phones of call legs (agents' offers, the on-call phone, callbacks) through Twilio's Calls API."""
    from assist import calls

    calls.place_legs(db.session(), leg_ids, twilio_client(), voice_urls, runtime.settings())


def cancel_call_legs(call_id: int, keep: int | None) -> None:
    """Hang up the offers of a call someone took (keep is theirs) or that left its queue."""
    from assist import calls

    calls.cancel_legs(db.session(), call_id, keep, twilio_client())


def voice_urls(step: str, **params) -> str:
    """Absolute URLs of the voice webhooks, for Twilio to call."""
    return runtime.current().url(f"voice.{step}", **params)


def post_status_callbacks(url: str, base_params: dict, statuses: list[str]) -> None:
    """Sandbox mode: call a StatusCallback URL as Twilio would, signed with the auth token.

    Raises:
        ForeignCallback: url is not on the service's own base URL (nothing is posted).
    """
    if not sandbox.own_url(url, runtime.current().base_url()):
        raise ForeignCallback("a sandbox status callback goes only to the service's own base URL")
    validator = RequestValidator(runtime.settings().auth_token)
    for status in statuses:
        params = {**base_params, "MessageStatus": status, "SmsStatus": status}
        signature = validator.compute_signature(url, params)
        response = requests.post(url, data=params, headers={"X-Twilio-Signature": signature},
                                 timeout=CALLBACK_TIMEOUT)
        response.raise_for_status()
