"""The email channel: an aiosmtpd handler in, `email` (policy.default) parsing, threaded replies out."""

import hashlib
import hmac
import html as html_lib
import logging
import re
import smtplib
from collections.abc import Awaitable, Callable, Sequence
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid, parseaddr

import nh3
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from channels.addresses import MaskAddresses, mask, normalize_email
from channels.email_text import triage_text
from channels.errors import BadWebhook, InvalidAddress
from channels.message import Attachment, Channel, InboundMessage

log = logging.getLogger(__name__)

CASE_TOKEN = re.compile(r"\[Case #(\d+)\]", re.IGNORECASE)
AUTOMATED_SENDERS = re.compile(r"^(mailer-daemon|postmaster|no-?reply|bounces?)([+@]|$)", re.IGNORECASE)
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # larger attachments keep their metadata, not their content


def _header(message, name: str) -> str:
    """A header's value as text, or "" when it is missing or cannot be decoded."""
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):  # a header policy.default cannot parse
        value = message.get_all(name, [""])[0] if hasattr(message, "get_all") else ""
    return str(value or "").strip()


MAX_NAME = 200  # characters: what a contact's name keeps


def display_name(from_header: str, address: str) -> str:
    """The sender's name in a From header ("Ann Peters" of "\"Ann Peters\" <ann@example.com>"), without
    quotes and extra spaces; "" when there is none or it is only an address (some clients repeat it there)."""
    name = " ".join(parseaddr(from_header)[0].split()).strip("\"' ")
    if not name or "@" in name or name.lower() == address.lower():
        return ""
    return name[:MAX_NAME]


def is_automated(message) -> bool:
    """Whether mail was sent by a machine (RFC 3834 Auto-Submitted, bulk/list Precedence, bounces, lists)."""
    auto = _header(message, "Auto-Submitted").lower()
    if auto and auto != "no":
        return True
    if _header(message, "Precedence").lower() in {"bulk", "junk", "list", "auto_reply"}:
        return True
    if _header(message, "List-Id") or _header(message, "List-Unsubscribe") or _header(message, "X-Autoreply") \
            or _header(message, "X-Autorespond"):
        return True
    if message.get_content_type() == "multipart/report":  # delivery status notifications
        return True
    local = parseaddr(_header(message, "From"))[1].split("@")[0]
    return bool(AUTOMATED_SENDERS.match(local))


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body: block ends become line breaks, tags go, entities decode."""
    spaced = re.sub(r"(?i)<\s*(br|/p|/div|/li|/tr|/h\d)\b[^>]*>", "\n", markup)
    text = html_lib.unescape(nh3.clean(spaced, tags=set()))
    return re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]+", " ", text)).strip()


def _text_of(part) -> str:
    """A text part's content, whatever charset it declares (or wrongly declares); "" for a part that is
    not text (a mail that is only a photo)."""
    if part.get_content_maintype() != "text":
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeDecodeError, AssertionError, ValueError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", errors="replace")
    return content if isinstance(content, str) else ""


AUTH_METHODS = ("spf", "dkim", "dmarc")
_COMMENT = re.compile(r"\([^()]*\)")  # RFC 5322 comments: "(sender IP is 192.0.2.1)"
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_RESINFO = re.compile(r"\s*([a-z0-9_-]+)\s*(?:/\s*\d+\s*)?=\s*([a-z0-9_-]+)", re.IGNORECASE)


def authentication_results(message, authserv_id: str) -> dict[str, str] | None:
    """The SPF, DKIM and DMARC results ("pass", "fail", "none", ...) of the topmost Authentication-Results
    header (RFC 8601) that authserv_id, the upstream MTA, wrote; None when there is none or no MTA is trusted.

    Anyone can write the header: only the configured MTA's is read. That MTA removes headers carrying its own
    id from incoming mail (RFC 8601 section 5), so the topmost one with its id is the one it added.
    """
    if not authserv_id:
        return None
    try:
        values = [str(value) for value in message.get_all("Authentication-Results") or []]
    except (ValueError, IndexError, TypeError):  # a header policy.default cannot parse
        return None
    for value in values:
        text = _QUOTED.sub('""', value)
        while _COMMENT.search(text):  # innermost first: comments nest
            text = _COMMENT.sub(" ", text)
        head, *resinfos = text.split(";")
        if head.lower().split()[:1] != [authserv_id.lower()]:  # "mx.example.org" or "mx.example.org 1"
            continue
        results, seen = dict.fromkeys(AUTH_METHODS, "none"), set()
        for resinfo in resinfos:
            found = _RESINFO.match(resinfo)
            if found is None or found.group(1).lower() not in AUTH_METHODS:
                continue
            method, result = found.group(1).lower(), found.group(2).lower()
            # Several DKIM signatures get one result each: one that passes authenticates the mail.
            if method not in seen or (method == "dkim" and result == "pass"):
                results[method] = result
                seen.add(method)
        return results
    return None


def fails_authentication(results: dict[str, str]) -> bool:
    """Whether a trusted MTA's results leave the From address unproven: DMARC failed, or nothing passed."""
    return results.get("dmarc") == "fail" or "pass" not in results.values()


MAX_SUBJECT = 998  # RFC 5322's longest line: what the subject column keeps (triage reads the whole of it)


def parse_email(raw: bytes, *, recipient: str = "", envelope_from: str = "", authserv_id: str = "") -> InboundMessage:
    """Turn a raw RFC 5322 message into an InboundMessage (its new text for triage, all of it kept).

    The sender is the From header's address, else the envelope's (SMTP MAIL FROM): a broken From header
    still reaches a person. The upstream MTA's authentication results (its `authserv_id`'s
    Authentication-Results) are kept in meta["auth"]; mail failing them is marked unauthenticated.

    Raises:
        BadWebhook: neither From nor the envelope has a usable address.
    """
    message = message_from_bytes(raw, policy=policy.default)
    from_header = _header(message, "From")
    sender = None
    for candidate in (parseaddr(from_header)[1], envelope_from):
        try:
            sender = normalize_email(candidate)
            break
        except InvalidAddress:
            continue
    if sender is None:
        raise BadWebhook("neither the From header nor the envelope has an email address")
    message_id = _header(message, "Message-ID") or f"<{hashlib.sha256(raw).hexdigest()}@no-message-id>"
    subject = " ".join(_header(message, "Subject").split())
    plain = html = None
    try:
        body = message.get_body(preferencelist=("plain",))
        plain = _text_of(body) if body is not None else None
        html_part = message.get_body(preferencelist=("html",))
        html = _text_of(html_part) if html_part is not None else None
    except (KeyError, TypeError, AttributeError):  # broken MIME structure: take what decodes
        plain = _text_of(message) if not message.is_multipart() else ""
    if plain is None and html is None and not message.is_multipart():
        plain = _text_of(message)
    full = plain if plain is not None else html_to_text(html or "")
    attachments = [attachment for attachment, _ in _attachments(message)]
    references = re.findall(r"<[^<>\s]+>", _header(message, "In-Reply-To") + " " + _header(message, "References"))
    token = CASE_TOKEN.search(subject)
    auth = authentication_results(message, authserv_id)
    to = recipient or (getaddresses([_header(message, "To")]) or [("", "")])[0][1].lower()
    return InboundMessage(
        channel=Channel.EMAIL, channel_id=message_id[:255], sender=sender, recipient=to,
        sender_name=display_name(from_header, sender),
        text=triage_text(subject, full), original=full, subject=subject[:MAX_SUBJECT], html=html,
        attachments=tuple(attachments), automated=is_automated(message),
        unauthenticated=auth is not None and fails_authentication(auth), meta={"auth": auth} if auth else {},
        thread_ids=tuple(dict.fromkeys(references)), case_token=int(token.group(1)) if token else None,
        raw={"size": len(raw)},
    )


def _attachments(message) -> list[tuple[Attachment, bytes | None]]:
    """A parsed mail's attachments (the whole mail, when it is one) with their decoded content, if any."""
    try:
        parts = list(message.iter_attachments()) if message.is_multipart() else []
    except (KeyError, TypeError, AttributeError):
        parts = []
    if not message.is_multipart() and message.get_content_maintype() != "text":
        parts = [message]  # the whole mail is one attachment
    found = []
    for part in parts:
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else None
        name = part.get_filename() or f"attachment.{part.get_content_subtype()}"
        found.append((Attachment(name=name, content_type=part.get_content_type(),
                                 size=len(content) if content is not None else None), content))
    return found


def attachment_content(raw: bytes, index: int) -> tuple[Attachment, bytes] | None:
    """The index-th attachment parse_email listed for a raw mail, and its content; None when there is no such
    attachment or it has no content of its own (a forwarded mail inside the mail)."""
    found = _attachments(message_from_bytes(raw, policy=policy.default))
    attachment, content = found[index] if 0 <= index < len(found) else (None, None)
    return (attachment, content) if attachment is not None and content is not None else None


def redact_mail(raw: bytes, span: str, marker: str) -> bytes:
    """raw with span replaced by marker in its subject and in every text body (plain and HTML, as written or
    HTML-escaped), re-encoded; headers used for threading and the attachments stay as they were, so replies
    thread and attachments download as before."""
    message = message_from_bytes(raw, policy=policy.default)
    variants = dict.fromkeys((span, html_lib.escape(span, quote=False)))
    subject = _header(message, "Subject")
    if span in subject:
        message.replace_header("Subject", subject.replace(span, marker))
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text" or part.is_attachment():
            continue
        text = original = _text_of(part)
        for variant in variants:
            text = text.replace(variant, marker)
        if text != original:
            part.set_content(text, subtype=part.get_content_subtype(), charset="utf-8")
    try:
        rewritten = message.as_bytes(policy=policy.default.clone(linesep="\r\n"))
    except ValueError:  # a header the sender encoded with a line break in it: compat32 writes it back as it came
        rewritten = message.as_bytes(policy=policy.compat32.clone(linesep="\r\n"))
    # A body the parser could not read as text still holds the span as written: no copy of it is left.
    return rewritten.replace(span.encode(), marker.encode())


# -- SMTP in ---------------------------------------------------------------------------------------

class InboundHandler:
    """aiosmtpd handler: only the team's addresses, and the message stored before 250 (else 451).

    `store(data, mail_from)` is awaited on the event loop: it must not block it (hand the work to a thread).
    """

    def __init__(self, accepts: Callable[[str], bool], store: Callable[[bytes, str], Awaitable[object]]):
        self.accepts, self.store = accepts, store

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not self.accepts(address):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", errors="surrogateescape")
        try:
            await self.store(data, envelope.mail_from or "")
        except Exception:
            log.exception("could not store a message from %s; answered 451", mask(envelope.mail_from or ""))
            return "451 4.3.0 Could not store the message; please try again later"
        return "250 2.0.0 Message accepted"


def password_authenticator(username: str, password: str):
    """An aiosmtpd authenticator for one configured login (LOGIN and PLAIN)."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and hmac.compare_digest(auth_data.login, username.encode())
              and hmac.compare_digest(auth_data.password, password.encode()))
        return AuthResult(success=ok, handled=False)

    return authenticate


def accepts_for(allowed: Sequence[str]) -> Callable[[str], bool]:
    """A RCPT check for INBOUND_EMAIL entries: full addresses or "@domain"s."""
    addresses = {a.lower() for a in allowed if not a.startswith("@")}
    domains = {a.lower() for a in allowed if a.startswith("@")}

    def accepts(address: str) -> bool:
        address = address.strip().lower()
        return address in addresses or ("@" + address.rpartition("@")[2]) in domains

    return accepts


LIBRARY_LOGGERS = ("mail.log", "mail.debug")  # aiosmtpd's: it logs each MAIL FROM and RCPT TO in full at INFO


class _WithoutContent(logging.Filter):
    """Drops aiosmtpd's DEBUG lines of a message's content: the customer's words are not log material."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("DATA readline"))


def mask_library_logs() -> None:
    """Mask the addresses in aiosmtpd's log lines and drop those of message content (once per process)."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskAddresses) for f in logger.filters):
            logger.addFilter(_WithoutContent())
            logger.addFilter(MaskAddresses())


# -- email out -----------------------------------------------------------------------------------

def build_reply(*, team: str, to: str, subject: str, body: str, case_id: int, in_reply_to: str | None,
                references: list[str], automated: bool) -> EmailMessage:
    """A reply on the case's thread: its own Message-ID, In-Reply-To, References, the case token."""
    reply = EmailMessage(policy=policy.SMTP)
    clean = CASE_TOKEN.sub("", subject).strip()
    clean = clean if clean.lower().startswith("re:") else f"Re: {clean}" if clean else "Your case"
    reply["Subject"] = f"{clean} [Case #{case_id}]"
    reply["From"] = team
    reply["To"] = to
    reply["Reply-To"] = team
    reply["Message-ID"] = make_msgid(domain=team.rpartition("@")[2] or None)
    if in_reply_to:
        reply["In-Reply-To"] = in_reply_to
    if references or in_reply_to:
        reply["References"] = " ".join(dict.fromkeys([*references, *([in_reply_to] if in_reply_to else [])]))
    if automated:
        reply["Auto-Submitted"] = "auto-replied"  # RFC 3834: an autoresponder must not answer this
    reply.set_content(body)
    return reply


def send_email(message: EmailMessage, *, host: str, port: int, starttls: bool = False, username: str = "",
               password: str = "", timeout: float = 30) -> None:
    """Hand one message to the SMTP relay (raises smtplib.SMTPException or OSError when it cannot)."""
    with smtplib.SMTP(host, port, timeout=timeout) as relay:
        if starttls:
            relay.starttls()
        if username:
            relay.login(username, password)
        relay.send_message(message)


MAX_DATA_LINE = 64 * 1024  # bytes: real senders exceed RFC 5321's 1,000 (bare-LF mail, long HTML); Postfix takes them


class LongLineSMTP(SMTP):
    """aiosmtpd's SMTP server taking DATA lines up to MAX_DATA_LINE instead of refusing the whole mail with
    "500 Line too long"; commands keep RFC 5321's 512-byte limit (SMTP.command_size_limit)."""

    line_length_limit = MAX_DATA_LINE


class MailController(Controller):
    """aiosmtpd's Controller serving LongLineSMTP; `on_stop` runs once it has stopped serving."""

    def __init__(self, handler, *, on_stop: Callable[[], None] | None = None, **kwargs):
        super().__init__(handler, **kwargs)
        self.on_stop = on_stop

    def stop(self, no_assert: bool = False) -> None:
        super().stop(no_assert=no_assert)
        if self.on_stop is not None:
            self.on_stop()

    def factory(self):
        return LongLineSMTP(self.handler, **self.SMTP_kwargs)
