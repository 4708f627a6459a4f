"""The email channel's core side: store raw mail durably, ingest it in a job, run the SMTP server, send replies."""

import asyncio
import hashlib
import logging
import os
import queue
import ssl
import threading
from dataclasses import dataclass

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


def receive(rt: runtime.Runtime, items: list[tuple[bytes, str]]) -> list[int]:
    """Store received messages (raw bytes, envelope sender) durably, each with the job that ingests it, in one
    commit; return their ids. Raises only if they could not be stored.

    The SMTP sessions get their 250 then; parsing, triage and routing run in a worker. The jobs are left to
    the worker's relay pass (within a second): no Redis round trip holds a session. A resend of the same
    bytes by the same sender is stored once.
    """
    with runtime.bind(rt):
        session = db.session()
        digests = [digest(data, mail_from) for data, mail_from in items]
        try:
            stored = _stored(session, digests)
            new = {}
            for (data, mail_from), key in zip(items, digests, strict=True):
                if key not in stored and key not in new:
                    new[key] = RawEmail(digest=key, data=data, mail_from=mail_from[:320])
            session.add_all(new.values())
            session.flush()
            for raw in new.values():
                outbox.job(session, "assist.mail.ingest_stored", raw.id, retry=True, by_worker=True)
            session.commit()
        except IntegrityError:  # the same mail stored by a concurrent session: all stored, or try again
            session.rollback()
            stored, new = _stored(session, digests), {}
            if set(digests) - set(stored):
                raise
        return [stored[d] if d in stored else new[d].id for d in digests]


def digest(data: bytes, mail_from: str) -> str:
    """What identifies a received mail: SHA-256 of its envelope sender and bytes. Not the bytes alone: another
    sender's copy of the same bytes is not a resend, and must not pass for one."""
    return hashlib.sha256(mail_from.encode("utf-8", errors="surrogateescape") + b"\0" + data).hexdigest()


def _stored(session, digests: list[str]) -> dict[str, int]:
    return dict(session.execute(select(RawEmail.digest, RawEmail.id).where(RawEmail.digest.in_(set(digests)))).all())


class Spool:
    """Stores the SMTP sessions' mail in small groups: when many sessions arrive at once, one transaction holds
    the bytes of several, and each session hears 250 only once the transaction holding its bytes committed.

    The sessions wait on the event loop; the database is written from the spool's own thread.
    """

    GROUP = 32  # messages per transaction, at most

    def __init__(self, rt: runtime.Runtime):
        self.rt = rt
        self.waiting: queue.SimpleQueue[tuple[bytes, str, Waiter] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="smtp-spool", daemon=True)
        self.thread.start()

    async def store(self, data: bytes, mail_from: str) -> int:
        """Store one message durably (with others waiting, if any); its id. Raises if it could not be stored."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        self.waiting.put((data, mail_from, Waiter(loop, done)))
        return await done

    def stop(self) -> None:
        self.waiting.put(None)
        self.thread.join(timeout=30)

    def _run(self) -> None:
        while (first := self.waiting.get()) is not None:
            group, stopping = [first], False
            while len(group) < self.GROUP and not self.waiting.empty():
                item = self.waiting.get()
                if item is None:
                    stopping = True
                    break
                group.append(item)
            self._store(group)
            if stopping:
                return

    def _store(self, group: list[tuple[bytes, str, "Waiter"]]) -> None:
        try:
            ids = receive(self.rt, [(data, mail_from) for data, mail_from, _ in group])
        except Exception as exc:
            if len(group) == 1:
                group[0][2].fail(exc)
                return
            for item in group:  # one that cannot be stored fails only its own session
                self._store([item])
            return
        for (_, _, waiter), raw_id in zip(group, ids, strict=True):
            waiter.succeed(raw_id)


@dataclass(frozen=True)
class Waiter:
    """A session waiting on its event loop for the spool's thread."""

    loop: asyncio.AbstractEventLoop
    future: "asyncio.Future[int]"

    def succeed(self, raw_id: int) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, raw_id, None)

    def fail(self, exc: BaseException) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, None, exc)


def _settle(future: "asyncio.Future[int]", raw_id: int | None, exc: BaseException | None) -> None:
    if future.done():  # the session went away meanwhile
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(raw_id)


def ingest_raw(session, raw: RawEmail, recipient: str) -> RawEmail:
    """Parse a stored raw mail and ingest it; one that cannot become a message keeps why, and waits in the
    console's list of mail that needs attention."""
    try:
        inbound = email_channel.parse_email(raw.data, recipient=recipient, envelope_from=raw.mail_from,
                                            authserv_id=runtime.settings().smtp_authserv_id)
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
    spool = Spool(rt)
    handler = email_channel.InboundHandler(accepts=email_channel.accepts_for(settings.inbound_email),
                                           store=spool.store)
    options: dict = {}
    if settings.smtp_tls_cert:  # STARTTLS offered, and required before MAIL
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(settings.smtp_tls_cert, settings.smtp_tls_key or None)
        options.update(tls_context=context, require_starttls=True)
    if settings.smtp_auth_user:  # a submission-style server: senders must log in, over TLS only
        options.update(authenticator=email_channel.password_authenticator(settings.smtp_auth_user,
                                                                          settings.smtp_auth_password),
                       auth_required=True)
    email_channel.mask_library_logs()
    # AUTH is never offered in cleartext, whatever the settings say (they refuse a login without a certificate).
    controller = email_channel.MailController(handler, on_stop=spool.stop, hostname=host, port=port,
                                              auth_require_tls=True,
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
