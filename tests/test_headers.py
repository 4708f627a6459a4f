"""Security headers on every kind of response, templates the CSP lets run, and Secure cookies behind a proxy."""

import re
from pathlib import Path

import pytest
from conftest import ACCOUNT_SID, PASSWORD, TEAM_NUMBER, csrf_token
from conftest import test_environment as app_environment

from assist.models import UserRole
from assist.simulate import sms_params
from assist.web.app import create_app

TEMPLATES = Path(__file__).parents[1] / "assist" / "templates"
EXPECTED = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
CSP_DIRECTIVES = ["default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'",
                  "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'"]


def assert_secured(response):
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, name
    policy = [d.strip() for d in response.headers["Content-Security-Policy"].split(";")]
    assert set(CSP_DIRECTIVES) <= set(policy)
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


def test_pages_and_errors_carry_the_security_headers(client, login):
    assert_secured(client.get("/login"))
    login(UserRole.SUPERVISOR)
    for path, status in [("/", 200), ("/dashboard/", 200), ("/cases/999", 404), ("/no-such-page", 404),
                         ("/static/console.js", 200)]:
        with client.get(path) as response:  # a static file's response holds the file open
            assert response.status_code == status, path
            assert_secured(response)


def test_a_server_error_carries_the_security_headers(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    response = client.get("/boom")
    assert response.status_code == 500
    assert_secured(response)


def test_webhooks_and_the_api_carry_the_security_headers(client, twilio):
    response = twilio.post("/twilio/sms", sms_params(from_="+15035550101", to=TEAM_NUMBER, body="my dog got out",
                                                     account_sid=ACCOUNT_SID))
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert_secured(response)
    api = client.get("/api/cases")
    assert api.status_code == 401 and api.is_json
    assert_secured(api)
    assert_secured(client.get("/healthz"))


def test_plain_http_gets_no_hsts(client):
    assert "Strict-Transport-Security" not in client.get("/login").headers


INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "event handler attribute": re.compile(r"<[^>]*\son[a-z]+\s*=", re.I),
    "style attribute": re.compile(r"<[^>]*\sstyle\s*=", re.I),
    "style element": re.compile(r"<style\b", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_templates_have_nothing_inline_that_the_policy_blocks(template):
    html = (TEMPLATES / template).read_text(encoding="utf-8")
    found = [kind for kind, pattern in INLINE.items() if pattern.search(html)]
    assert found == []


# -- Secure cookies and HSTS behind a trusted proxy ------------------------------------------------------

@pytest.fixture
def proxied_app(database_url, redis_connection, tmp_path, clock):
    """The app behind one trusted proxy, its PUBLIC_BASE_URL unset (nothing but the request says https)."""
    environ = {**app_environment(database_url, tmp_path / "instance"), "TRUSTED_PROXIES": "1"}
    del environ["PUBLIC_BASE_URL"]
    app = create_app({"TESTING": True}, environ=environ, clock=clock)
    yield app
    app.extensions["runtime"].close()


@pytest.mark.parametrize("proto, secure", [("https", True), ("http", False)])
def test_cookies_are_secure_when_a_trusted_proxy_says_https(proxied_app, proto, secure):
    from assist import db
    from assist.users import create_user

    with proxied_app.app_context():
        create_user(db.session(), email="agent@team.test", name="Agent", role=UserRole.AGENT, password=PASSWORD)
        db.session().commit()
    client = proxied_app.test_client()
    forwarded = {"X-Forwarded-Proto": proto, "X-Forwarded-For": "198.51.100.9",
                 "Referer": f"{proto}://localhost/login"}  # CSRF checks the referrer over https
    page = client.get("/login", headers=forwarded)
    assert ("Secure" in session_cookie(page)) is secure
    assert ("Strict-Transport-Security" in page.headers) is secure
    response = client.post("/login", headers=forwarded, data={
        "email": "agent@team.test", "password": PASSWORD, "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.status_code == 302
    assert ("Secure" in session_cookie(response)) is secure


def session_cookie(response) -> list[str]:
    """The attributes of the session cookie a response sets."""
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    return cookie.split("; ")
