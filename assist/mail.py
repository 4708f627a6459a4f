"""The email channel's core side: store raw mail durably, ingest it in a job, run the SMTP server, send replies."""

import hashlib
import logging
import os
import ssl

from aiosmtpd.controller import Controller
from rq import get_current_job
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from assist import db, ingest, outbox, runtime
from assist.errors import BadWebhook, NotSendable, PortBusy
from assist.models import Direction, Message, RawEmail
from assist.settings import host_and_port
from channels import email as email_channel
from channels.addresses import mask

log = logging.getLogger(__name__)


def receive(rt: runtime.Runtime, data: bytes, mail_from: str) -> RawEmail:
    """Store a received message durably, with the job that ingests it, in one commit; raises only if it could
    not be stored. The SMTP session gets its 250 then: parsing, triage and routing run in a worker."""
    with runtime.bind(rt):
        session = db.session()
        digest = hashlib.sha256(data).hexdigest()
        found = session.scalar(select(RawEmail).where(RawEmail.digest == digest))
        if found is not None:
            return found  # a resend of the same bytes: stored (and ingested, or owed) once
        raw = RawEmail(digest=digest, data=data, mail_from=mail_from[:320])
        session.add(raw)
        try:
            session.flush()
        except IntegrityError:  # the same bytes stored by a concurrent session
            session.rollback()
            return session.scalars(select(RawEmail).where(RawEmail.digest == digest)).one()
        outbox.job(session, "assist.mail.ingest_stored", raw.id, retry=True)
        outbox.commit(session)
        return raw


def ingest_raw(session, raw: RawEmail, recipient: str) -> RawEmail:
    """Parse a stored raw mail and ingest it; one that cannot become a message keeps why, and waits in the
    console's list of mail that needs attention."""
    try:
        inbound = email_channel.parse_email(raw.data, recipient=recipient, envelope_from=raw.mail_from)
    except BadWebhook as exc:
        raw.error = str(exc)[:500]
        session.commit()
        log.warning("stored raw email %s but could not ingest it: %s", raw.id, exc)
        return raw
    result = ingest.ingest(session, inbound)
    raw.message_id, raw.error = result.message_id, None
    session.commit()
    return raw


def ingest_stored(raw_id: int) -> int | None:
    """The job that ingests a stored raw mail; returns its message id. A failure is kept on the mail (the
    console's list of mail needing attention shows it) and raised, for RQ to try again."""
    session = db.session()
    raw = session.get(RawEmail, raw_id)
    if raw is None or raw.message_id is not None:
        return raw.message_id if raw else None
    try:
        return ingest_raw(session, raw, runtime.settings().team_email).message_id
    except Exception as exc:
        session.rollback()
        job = get_current_job()
        again = "it is tried again" if job is not None and job.retries_left else "retry it from this list"
        log.exception("ingesting raw email %s failed; %s", raw_id, again)
        raw = session.get(RawEmail, raw_id)
        raw.error = f"ingesting it failed ({type(exc).__name__}); {again}"[:500]
        session.commit()
        raise


ATTENTION_LIMIT = 200


def needing_attention(session) -> list[RawEmail]:
    """Stored mail that did not become a message (no usable sender, or parsing failed), newest first."""
    return list(session.scalars(select(RawEmail).where(RawEmail.message_id.is_(None), RawEmail.error.is_not(None))
                                .order_by(RawEmail.id.desc()).limit(ATTENTION_LIMIT)))


def preview(raw: RawEmail, limit: int = 4000) -> str:
    """The start of a raw mail as text, for a person to read (the page escapes it)."""
    return raw.data[:limit].decode("utf-8", errors="replace")


def start_server(rt: runtime.Runtime) -> Controller:
    """Start the inbound SMTP server (aiosmtpd Controller) on SMTP_LISTEN; stop it with .stop().

    Raises:
        PortBusy: something else listens on SMTP_LISTEN.
    """
    settings = rt.settings
    host, port = host_and_port(settings.smtp_listen)
    handler = email_channel.InboundHandler(
        accepts=email_channel.accepts_for(settings.inbound_email),
        store=lambda data, mail_from: receive(rt, data, mail_from))
    options: dict = {}
    if settings.smtp_tls_cert:  # STARTTLS offered, and required before MAIL
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(settings.smtp_tls_cert, settings.smtp_tls_key or None)
        options.update(tls_context=context, require_starttls=True)
    if settings.smtp_auth_user:  # a submission-style server: senders must log in (over TLS when it is on)
        options.update(authenticator=email_channel.password_authenticator(settings.smtp_auth_user,
                                                                          settings.smtp_auth_password),
                       auth_required=True, auth_require_tls=bool(settings.smtp_tls_cert))
    controller = email_channel.MailController(handler, hostname=host, port=port,
                                              data_size_limit=settings.smtp_max_bytes,
                                              server_hostname=settings.smtp_hostname, **options)
    try:
        controller.start()
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise PortBusy(f"SMTP_LISTEN {settings.smtp_listen} is busy ({reason}): "
                       "set SMTP_LISTEN to a free host:port") from None
    log.info("SMTP server listening on %s:%s for %s", controller.hostname, controller.port,
             ", ".join(settings.inbound_email))
    return controller


def send(message: Message) -> str:
    """Send an outbound email message on its case's thread through the relay; return its Message-ID."""
    settings = runtime.settings()
    if not settings.smtp_relay:
        raise NotSendable("SMTP_RELAY is not configured")
    case = message.case
    earlier = [m for m in case.messages if m.channel == "email" and m.channel_id and m.id != message.id]
    last_inbound = next((m for m in reversed(earlier) if m.direction == Direction.INBOUND), None)
    reply = email_channel.build_reply(
        team=settings.team_email, to=message.recipient, subject=(last_inbound.subject if last_inbound else "") or "",
        body=message.text, case_id=case.id, in_reply_to=last_inbound.channel_id if last_inbound else None,
        references=[m.channel_id for m in earlier], automated=message.author_id is None)
    host, port = host_and_port(settings.smtp_relay)
    email_channel.send_email(reply, host=host, port=port, starttls=settings.smtp_relay_starttls,
                             username=settings.smtp_relay_user, password=settings.smtp_relay_password)
    log.info("sent email message %s to %s", message.id, mask(message.recipient))
    return reply["Message-ID"]
