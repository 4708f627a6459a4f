"""Verify that a webhook request really comes from Twilio."""

import functools
import logging

from flask import abort, request
from twilio.request_validator import RequestValidator, get_signature_algorithm

from assist import runtime

log = logging.getLogger(__name__)


def signed_url() -> str:
    """Return the URL Twilio signed for the current request.

    Twilio signs the public URL it called. When PUBLIC_BASE_URL is configured it
    wins; otherwise the request URL is used, and behind a proxy the scheme and
    host come from X-Forwarded-* (ProxyFix, enabled by TRUSTED_PROXIES).
    """
    base = runtime.settings().public_base_url
    if not base:
        return request.url
    return base + request.full_path.removesuffix("?")


def verify_twilio_signature(view):
    """Refuse (403) a request whose X-Twilio-Signature does not match; run the view otherwise."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        signature = request.headers.get("X-Twilio-Signature", "")
        algorithm = get_signature_algorithm(request.headers.get("X-Twilio-Webhooks-Signature-Settings"))
        validator = RequestValidator(runtime.settings().auth_token)
        if not signature or not validator.validate(signed_url(), request.form, signature, algorithm):
            log.warning("refused %s: bad or missing X-Twilio-Signature", request.path)
            abort(403, "X-Twilio-Signature does not match this request")
        return view(*args, **kwargs)

    return wrapper
