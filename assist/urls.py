"""Absolute URLs for callbacks, inside a request or in a job."""

from urllib.parse import urlsplit

from flask import current_app, has_request_context, url_for


def public_base_url() -> str:
    """Return the URL the outside world reaches the app at, without a trailing slash."""
    configured = current_app.config.get("PUBLIC_BASE_URL")
    if configured:
        return configured.rstrip("/")
    if has_request_context():
        return url_for("healthz", _external=True).removesuffix("/healthz")
    return f"http://127.0.0.1:{current_app.config['PORT']}"


def external_url(endpoint: str, **values) -> str:
    """Build an absolute URL for endpoint on the public base URL (callbacks Twilio will call)."""
    base = urlsplit(public_base_url())
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme)
    return adapter.build(endpoint, values, force_external=True)
