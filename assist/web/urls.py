"""Absolute URLs for the callbacks Twilio will call, on the public base URL."""

from urllib.parse import urlsplit

from flask import Flask, has_request_context, url_for
from werkzeug.routing import Map

from assist import runtime


def public_base_url() -> str:
    """The URL the outside world reaches the app at, without a trailing slash: PUBLIC_BASE_URL, else the
    request's own, else http://127.0.0.1:<PORT>."""
    if not runtime.settings().public_base_url and has_request_context():
        return url_for("healthz", _external=True).removesuffix("/healthz")
    return runtime.current().base_url()


def build(url_map: Map, base: str, endpoint: str, values: dict) -> str:
    parts = urlsplit(base)
    adapter = url_map.bind(parts.netloc, script_name=parts.path or "/", url_scheme=parts.scheme)
    return adapter.build(endpoint, values, force_external=True)


def external_url(endpoint: str, **values) -> str:
    """An absolute URL of endpoint on the public base URL."""
    return runtime.current().url(endpoint, **values)


def url_builder(app: Flask):
    """The runtime's way to build the absolute URLs of the app's endpoints, in a request or out of one (jobs)."""

    def url(endpoint: str, **values) -> str:
        return build(app.url_map, public_base_url(), endpoint, values)

    return url
