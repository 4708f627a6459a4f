"""A case's files for the agents who may see the case: attachments, MMS media and voicemails, served so that
no browser ever runs what a customer sent as a page of this site (a download, of a type that cannot be one)."""

import re
import unicodedata
from collections.abc import Iterator
from urllib.parse import quote

from flask import Blueprint, Response, abort, request

from assist import db, media
from assist.errors import FetchFailed, NotKept
from assist.models import Call, Message, UserRole
from assist.web.auth import role_required
from assist.web.helpers import visible_case_or_404

bp = Blueprint("files", __name__)

# The types a file keeps when served: none of them is rendered as a document that runs script. Everything else
# (HTML, SVG, XML, JavaScript, text, anything unknown) is served as bytes to save.
RASTER_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
DOCUMENTS = frozenset({"application/pdf"})
AUDIO = re.compile(r"audio/[a-z0-9][a-z0-9.+-]{0,60}")
OPAQUE = "application/octet-stream"
MAX_NAME = 150  # characters of a file's name in Content-Disposition
BYTE_RANGE = re.compile(r"bytes=[0-9]{0,15}-[0-9]{0,15}")
# Opened on its own (a new tab), a file runs nothing and loads nothing.
FILE_POLICY = "sandbox; default-src 'none'"


@bp.get("/cases/<int:case_id>/messages/<int:message_id>/attachments/<int:index>")
@role_required(UserRole.AGENT)
def attachment(case_id: int, message_id: int, index: int):
    """Download a message's attachment (saved, never shown in the page)."""
    case = visible_case_or_404(case_id)
    message = db.session().get(Message, message_id)
    if message is None or message.case_id != case.id:
        abort(404)
    return _served(lambda: media.attachment(db.session(), message, index, _byte_range()), inline=False)


@bp.get("/cases/<int:case_id>/calls/<int:call_id>/recording")
@role_required(UserRole.AGENT)
def recording(case_id: int, call_id: int):
    """A call's voicemail, for the case page's audio player (Twilio's credentials stay on the server)."""
    case = visible_case_or_404(case_id)
    call = db.session().get(Call, call_id)
    if call is None or call.case_id != case.id:
        abort(404)
    return _served(lambda: media.recording(call, _byte_range()), inline=True)


def _byte_range() -> str | None:
    """The browser's Range header when it is one plain range of bytes (what an audio player asks for); it is
    passed on to Twilio, so nothing else is."""
    asked = request.headers.get("Range", "")
    return asked if BYTE_RANGE.fullmatch(asked) else None


def _served(fetch, *, inline: bool) -> Response:
    try:
        download = fetch()
    except NotKept:
        abort(404)
    except FetchFailed:
        abort(502, "Twilio did not hand the file over; try again in a moment.")
    served = served_type(download.content_type)
    response = Response(_streamed(download), status=206 if download.partial else 200, mimetype=served,
                        direct_passthrough=True)
    # Only audio plays in the page; anything else is saved (a raster image would be harmless, but is saved too).
    response.headers["Content-Disposition"] = disposition(
        "inline" if inline and served.startswith("audio/") else "attachment", download.name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = FILE_POLICY
    response.headers["Cache-Control"] = "private, no-store"
    if download.size is not None:
        response.content_length = download.size
    if download.partial:
        response.headers["Content-Range"] = download.partial
    return response


def _streamed(download: media.Download) -> Iterator[bytes]:
    try:
        yield from download.chunks
    finally:
        download.close()


def served_type(declared: str) -> str:
    """The Content-Type a file is served with: its own if it is a raster image, a PDF or audio, else bytes."""
    kind = declared.split(";")[0].strip().lower()
    if kind in RASTER_IMAGES or kind in DOCUMENTS or AUDIO.fullmatch(kind):
        return kind
    return OPAQUE


def disposition(kind: str, name: str) -> str:
    """A Content-Disposition (RFC 6266) naming the file: an ASCII fallback and the name itself as UTF-8
    (filename*), without anything that could end the header, escape the quotes or name a folder."""
    clean = "".join(c for c in unicodedata.normalize("NFC", name) if c.isprintable() and c not in '\\/"')
    clean = clean.strip(" .")[:MAX_NAME] or "attachment"
    fallback = "".join(c if c.isascii() and c != "%" else "_" for c in clean)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(clean, safe='')}"
