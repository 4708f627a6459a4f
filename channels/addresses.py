"""Sender and recipient addresses in the one form the service stores them."""

import logging
import re

import phonenumbers

from channels.errors import InvalidAddress

DEFAULT_REGION = "US"  # numbers written without a country code


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return raw as an E.164 number.

    Raises:
        InvalidAddress: raw is not a possible phone number.
    """
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidAddress(f"not a phone number ({exc})") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidAddress("not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    """Return raw lower-cased and trimmed.

    Raises:
        InvalidAddress: raw is not an email address.
    """
    address = raw.strip().lower()
    local, at, domain = address.partition("@")
    if not (local and at and "." in domain) or any(c.isspace() for c in address):
        raise InvalidAddress("not an email address")
    return address


def mask(address: str) -> str:
    """Hide most of a phone number or email address, for logs."""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{address[:3]}***{address[-2:]}" if len(address) > 6 else "***"


EMAIL_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


class MaskAddresses(logging.Filter):
    """A filter for a library's logger that masks the email addresses in its records, as the service's own
    log lines mask them."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = EMAIL_ADDRESS.sub(lambda found: mask(found.group()), text)
        if masked != text:
            record.msg, record.args = masked, None
        return True
