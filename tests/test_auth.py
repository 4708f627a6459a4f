"""Logins, roles, CSRF and API tokens."""

import pytest
from conftest import PASSWORD, csrf_token
from sqlalchemy import select

from assist.ingest import ingest
from assist.models import Event, User, UserRole
from assist.users import issue_api_token
from channels.message import Channel, InboundMessage

PAGES = ["/", "/cases/1", "/admin/users", "/sandbox/twilio/"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_login_with_a_wrong_password_is_refused(client, make_user):
    user = make_user()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": user.email, "password": "wrong password", "csrf_token": token})
    assert response.status_code == 401
    assert "Wrong email or password" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_a_login_form_without_csrf_token_is_refused(client, make_user):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


def test_a_form_post_without_csrf_token_is_refused_for_a_logged_in_user(client, login, session):
    login(UserRole.SUPERVISOR)
    response = client.post("/admin/users", data={"email": "new@team.test", "name": "New", "role": "agent",
                                                  "password": "long enough password"})
    assert response.status_code == 400
    assert session.scalars(select(User).where(User.email == "new@team.test")).first() is None


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example/"],
                         ids=["absolute", "scheme-relative", "backslash"])
def test_the_login_redirect_stays_on_this_site(client, make_user, target):
    user = make_user()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", query_string={"next": target}, data={
        "email": user.email, "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("role, status", [
    (UserRole.AGENT, 403), (UserRole.LEAD, 403), (UserRole.SUPERVISOR, 200), (UserRole.ADMIN, 200),
], ids=lambda v: str(v))
def test_the_users_page_is_for_supervisors(client, login, role, status):
    login(role)
    assert client.get("/admin/users").status_code == status


def test_an_agent_cannot_create_users(client, login, session):
    login(UserRole.AGENT)
    page = client.get("/").get_data(as_text=True)
    response = client.post("/admin/users", data={"email": "x@team.test", "name": "X", "role": "admin",
                                                  "password": "long enough password",
                                                  "csrf_token": csrf_token(page)})
    assert response.status_code == 403
    assert session.scalars(select(User).where(User.email == "x@team.test")).first() is None


def test_a_supervisor_creates_a_user_and_it_is_audited(client, login, session):
    supervisor = login(UserRole.SUPERVISOR)
    token = csrf_token(client.get("/admin/users").get_data(as_text=True))
    response = client.post("/admin/users", data={"email": "Kim@Team.test", "name": "Kim", "role": "agent",
                                                 "password": "long enough password", "csrf_token": token})
    assert response.status_code == 302
    kim = session.scalars(select(User).where(User.email == "kim@team.test")).one()
    assert kim.role == UserRole.AGENT and kim.password_hash != "long enough password"
    event = session.scalars(select(Event).where(Event.kind == "user.created")).one()
    assert event.actor_id == supervisor.id and event.data["user_id"] == kim.id


def test_a_supervisor_cannot_create_an_admin(client, login, session):
    login(UserRole.SUPERVISOR)
    token = csrf_token(client.get("/admin/users").get_data(as_text=True))
    response = client.post("/admin/users", data={"email": "root@team.test", "name": "Root", "role": "admin",
                                                 "password": "long enough password", "csrf_token": token})
    assert response.status_code == 403
    assert session.scalars(select(User).where(User.email == "root@team.test")).first() is None


def test_session_cookie_is_http_only(client, make_user):
    user = make_user()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize("public_url, secure", [("https://assist.example.org", True), ("http://127.0.0.1:5000", False)])
def test_cookies_are_secure_behind_an_https_public_url(tmp_path, public_url, secure):
    from assist.web.app import create_app

    app = create_app(environ={"INSTANCE_PATH": str(tmp_path), "PUBLIC_BASE_URL": public_url})
    assert app.config["SESSION_COOKIE_SECURE"] is secure and app.config["REMEMBER_COOKIE_SECURE"] is secure
    app.extensions["runtime"].close()


# -- the JSON API ---------------------------------------------------------------------------------

def test_the_api_needs_a_valid_token(client, make_user, session):
    user = make_user()
    assert client.get("/api/cases").status_code == 401
    assert client.get("/api/cases", headers={"Authorization": "Bearer nope"}).status_code == 401
    token = issue_api_token(user)
    session.commit()
    ingest(session, InboundMessage(channel=Channel.SMS, channel_id="SM1", sender="+15035550101",
                                   recipient="+15005550006", text="my dog got out", original="my dog got out"))
    response = client.get("/api/cases", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    [case] = response.get_json()
    detail = client.get(f"/api/cases/{case['id']}", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert detail["messages"][0]["text"] == "my dog got out"
    assert detail["contact"]["phone"] == "+15035550101"
    missing = client.get("/api/cases/999", headers={"Authorization": f"Bearer {token}"})
    assert missing.status_code == 404 and missing.get_json()["error"] == "Not Found"


def test_a_deactivated_user_loses_the_api(client, make_user, session):
    user = make_user()
    token = issue_api_token(user)
    user.active = False
    session.commit()
    assert client.get("/api/cases", headers={"Authorization": f"Bearer {token}"}).status_code == 401
