"""The files a case holds besides words, fetched from where they are kept: an email's attachments from the mail
as it was received (raw_emails), MMS media and voicemails from Twilio, which keeps them behind the account's
credentials. The console hands them out (assist/web/files.py); the browser never talks to Twilio."""

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from assist import outbound, runtime
from assist.errors import FetchFailed, NotKept
from assist.models import Call, Message, RawEmail
from channels import email as email_channel
from channels.message import Channel

log = logging.getLogger(__name__)

TWILIO_TIMEOUT = (5, 30)  # seconds: to connect, and between two reads of the body
CHUNK = 64 * 1024  # bytes streamed at a time
API_VERSION = "2010-04-01"
# The files Twilio keeps, by the path of their URL: MMS media and recordings. Only these paths of the service's
# own account are fetched, on the configured API's base URL, whatever host a stored URL names.
TWILIO_FILE = re.compile(rf"/{API_VERSION}/Accounts/(?P<account>AC[0-9a-fA-F]{{32}})/"
                         r"(?:Messages/MM[0-9a-fA-F]{32}/Media/ME[0-9a-fA-F]{32}|Recordings/(?P<recording>RE[0-9a-fA-F]{32}))")


@dataclass(frozen=True)
class Download:
    """A file's content as it comes, with what its sender or keeper says it is (not to be trusted)."""

    name: str
    content_type: str
    chunks: Iterable[bytes]
    size: int | None = None
    partial: str | None = None  # the Content-Range of a part asked for (an audio player seeking), else None
    close: Callable[[], None] = lambda: None


def attachment(session: Session, message: Message, index: int, byte_range: str | None = None) -> Download:
    """The index-th attachment of message: from its stored mail (email) or from Twilio (MMS, recordings).

    Raises:
        NotKept: the message has no such attachment, or its content is not to be had.
        FetchFailed: Twilio did not hand it over.
    """
    if not 0 <= index < len(message.attachments):
        raise NotKept(f"message {message.id} has no attachment {index}")
    listed = message.attachments[index]
    if message.channel == Channel.EMAIL:
        return _mail_attachment(session, message, index, listed)
    return _from_twilio(_twilio_path(listed.get("ref") or ""), name=listed["name"],
                        content_type=listed["content_type"], byte_range=byte_range, what=f"message {message.id}")


def recording(call: Call, byte_range: str | None = None) -> Download:
    """The voicemail a caller left, as WAV (Twilio's own format; it converts to MP3 only on request).

    Raises:
        NotKept: the caller left none, or Twilio no longer keeps it.
        FetchFailed: Twilio did not hand it over.
    """
    if call.recording_sid is None:
        raise NotKept(f"call {call.id} has no recording")
    path = f"/{API_VERSION}/Accounts/{runtime.settings().account_sid}/Recordings/{call.recording_sid}.wav"
    return _from_twilio(path, name=f"voicemail-call-{call.id}.wav", content_type="audio/wav", byte_range=byte_range,
                        what=f"call {call.id}")


def _mail_attachment(session: Session, message: Message, index: int, listed: dict) -> Download:
    """An email attachment, parsed again out of the mail as received: the mail is its only copy."""
    raw = session.scalars(select(RawEmail).where(RawEmail.message_id == message.id).order_by(RawEmail.id)).first()
    found = email_channel.attachment_content(raw.data, index) if raw is not None else None
    # The same attachment as listed when the mail was stored, or none: never another part of the mail.
    if found is None or (found[0].name, found[0].content_type) != (listed["name"], listed["content_type"]):
        raise NotKept(f"the content of attachment {index} of message {message.id} was not kept")
    content = found[1]
    return Download(name=listed["name"], content_type=listed["content_type"], chunks=[content], size=len(content))


def _twilio_path(ref: str) -> str:
    """The API path of a file Twilio keeps for the service's account, from its stored URL.

    Raises:
        NotKept: ref is not such a file (media hosted elsewhere, another account's).
    """
    found = TWILIO_FILE.search(ref)
    if found is None or not ref.endswith(found.group(0)) or found["account"] != runtime.settings().account_sid:
        raise NotKept("not a file Twilio keeps for this account")
    # A recording's URL names no format: Twilio answers WAV to .wav (and MP3 to .mp3).
    return found.group(0) + (".wav" if found["recording"] else "")


def _from_twilio(path: str, *, name: str, content_type: str, byte_range: str | None, what: str) -> Download:
    """Stream a file from Twilio's API with the account's credentials (a range of it, if asked)."""
    settings = runtime.settings()
    try:
        response = requests.get(outbound.twilio_api_url() + path, auth=(settings.account_sid, settings.auth_token),
                                headers={"Range": byte_range} if byte_range else {}, stream=True,
                                timeout=TWILIO_TIMEOUT)
    except requests.RequestException as exc:
        log.warning("the file of %s could not be fetched from Twilio: %s", what, type(exc).__name__)
        raise FetchFailed(f"Twilio did not answer ({type(exc).__name__})") from None
    if response.status_code not in (200, 206):
        response.close()
        log.warning("the file of %s could not be fetched from Twilio: it answered %s", what, response.status_code)
        if response.status_code == 404:
            raise NotKept("Twilio no longer keeps it")
        raise FetchFailed(f"Twilio answered {response.status_code}")
    # A compressed answer is decompressed as it streams: its Content-Length is not the length sent on.
    size = response.headers.get("Content-Length", "") if "Content-Encoding" not in response.headers else ""
    return Download(name=name, content_type=content_type, chunks=response.iter_content(CHUNK),
                    size=int(size) if size.isdigit() else None,
                    partial=response.headers.get("Content-Range") if response.status_code == 206 else None,
                    close=response.close)
