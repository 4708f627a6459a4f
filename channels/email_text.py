"""The new part of an email: what the customer wrote this time, without quotes, signature or disclaimer."""

import re

# Where quoted history starts: everything from the first match on is an earlier message.
QUOTE_HEADERS = [
    re.compile(r"^\s*On\b[^\n]{0,250}(\n[^\n]{0,250})?\bwrote:\s*$", re.MULTILINE | re.IGNORECASE),
    re.compile(r"^\s*El\b[^\n]{0,250}(\n[^\n]{0,250})?\bescribió:\s*$", re.MULTILINE | re.IGNORECASE),
    re.compile(r"^\s*Le\b[^\n]{0,250}(\n[^\n]{0,250})?\ba écrit\s*:\s*$", re.MULTILINE | re.IGNORECASE),
    re.compile(r"^\s*-{2,}\s*(Original Message|Mensaje original|Forwarded message|Mensaje reenviado)\s*-{2,}\s*$",
               re.MULTILINE | re.IGNORECASE),
    re.compile(r"^\s*Begin forwarded message:\s*$", re.MULTILINE | re.IGNORECASE),
    # Outlook: a From: line followed within a few lines by Sent:/Date: and To:/Subject:
    re.compile(r"^\s*(_{10,}\s*\n\s*)?\*?(From|De):\*?[^\n]*\n(\s*\*?[A-Za-z]+:\*?[^\n]*\n){0,2}"
               r"\s*\*?(Sent|Date|Enviado|Fecha):", re.MULTILINE),
]
# Where a signature or a legal footer starts: everything from there on goes.
FOOTERS = [
    re.compile(r"^-- ?$", re.MULTILINE),
    re.compile(r"^\s*(Sent from my|Sent from Yahoo|Sent from Outlook|Get Outlook for|Sent via|Enviado desde)\b",
               re.MULTILINE | re.IGNORECASE),
    re.compile(r"^\s*(CONFIDENTIALITY NOTICE|CONFIDENTIAL|DISCLAIMER|PRIVILEGED|AVISO DE CONFIDENCIALIDAD|"
               r"This (e-?mail|message|communication)( and any (attachments|files))?[^\n]{0,40}"
               r"(is|are|may be) (intended|confidential|privileged)|The information (contained )?in this)",
               re.MULTILINE | re.IGNORECASE),
]
VALEDICTION = re.compile(
    r"^\s*(thanks|thank you|many thanks|thanks again|best|best regards|kind regards|regards|cheers|sincerely|"
    r"warmly|warm regards|all the best|take care|gracias|saludos|un saludo|atentamente|muchas gracias)\b[ ,.!]*$",
    re.IGNORECASE)
SIGN_OFF_LINES = 6  # at most this many short lines after a valediction count as the signature
SIGN_OFF_WIDTH = 60  # characters


def split_subject(text: str) -> tuple[str, str]:
    """Split "Subject: ...\\n\\nbody" into its subject and body; text without the header is all body."""
    if text.startswith("Subject:"):
        head, _, body = text.partition("\n")
        return head.removeprefix("Subject:").strip(), body.lstrip("\n")
    return "", text


def new_part(body: str) -> str:
    """Return the text the sender wrote this time; the body itself when nothing else is left."""
    text = body.replace("\r\n", "\n")
    cut = len(text)
    for pattern in QUOTE_HEADERS + FOOTERS:
        match = pattern.search(text)
        if match and match.start() < cut:
            cut = match.start()
    text = text[:cut]
    text = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith(">"))
    text = _drop_sign_off(text).strip()
    return text or body.strip()


def _drop_sign_off(text: str) -> str:
    lines = text.rstrip().split("\n")
    for i in range(len(lines) - 1, max(len(lines) - 2 - SIGN_OFF_LINES, -1), -1):
        if VALEDICTION.match(lines[i]):
            tail = lines[i + 1:]
            if all(len(line) <= SIGN_OFF_WIDTH for line in tail):
                return "\n".join(lines[:i])
            break
    return text


def triage_text(subject: str, body: str) -> str:
    """What triage reads of an email: the subject, then the new part of the body."""
    new = new_part(body)
    return f"{subject}\n\n{new}" if subject else new
