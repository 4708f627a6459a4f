"""What every response says to the browser about itself: security headers, and cookies marked Secure whenever
the request came over https (directly, or through a trusted proxy's X-Forwarded-Proto)."""

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

# No inline script or style, nothing from elsewhere, no framing (the console's one-click forms would be open
# to clickjacking), forms post only here.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
])
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
HSTS = "max-age=31536000"  # seconds: a year


def add_security_headers(response):
    """Give a response (a page, an error, a webhook's TwiML, the API's JSON, a static file) the headers."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, Secure on every https request and not only when PUBLIC_BASE_URL says
    https: behind a trusted proxy, ProxyFix has set the scheme from X-Forwarded-Proto."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return super().get_cookie_secure(app) or request.is_secure


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    app.after_request(add_security_headers)
