"""Logins (where they lead, how often they may fail, what they cost), roles, CSRF and API tokens."""

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from conftest import PASSWORD, add_case, configure, csrf_token
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from assist import clock, db, routing, users
from assist.ingest import ingest
from assist.models import Case, CaseStatus, Event, User, UserRole
from assist.tokens import issue
from assist.users import create_user
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


def log_in(client, email: str, password: str = PASSWORD, next_: str | None = None):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    path = "/login" if next_ is None else "/login?" + urlencode({"next": next_})
    return client.post(path, data={"email": email, "password": password, "csrf_token": token})


EVIL_NEXT = {
    "absolute": "https://evil.example/",
    "scheme-relative": "//evil.example",
    "tab": "/\t/evil.example",
    "newline": "/\n/evil.example",
    "carriage return": "/\r/evil.example",
    "backslash": "/\\evil.example",
    "two backslashes": "\\\\evil.example",
    "backslash then slash": "\\/evil.example",
    "leading space": " //evil.example",
    "javascript": "javascript:alert(1)",
    "scheme without slashes": "https:evil.example",
    "no leading slash": "evil.example/",
    "non-breaking space": "/\u00a0/evil.example",
}


@pytest.mark.parametrize("target", EVIL_NEXT.values(), ids=EVIL_NEXT.keys())
def test_the_login_redirect_stays_on_this_site(client, make_user, target):
    user = make_user()
    response = log_in(client, user.email, next_=target)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_the_login_redirect_refuses_a_url_encoded_tab(client, make_user):
    """The finding: "/%09/evil.example" passed the old check and Werkzeug dropped the tab: "//evil.example"."""
    user = make_user()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login?next=%2F%09%2Fevil.example", data={
        "email": user.email, "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_the_login_redirect_keeps_a_path_of_this_site(client, make_user):
    user = make_user()
    response = log_in(client, user.email, next_="/cases/7?tab=notes")
    assert response.headers["Location"] == "/cases/7?tab=notes"


def test_a_page_sends_to_the_login_and_back(client, make_user):
    user = make_user()
    location = client.get("/admin/users").headers["Location"]
    next_ = parse_qs(urlsplit(location).query)["next"][0]
    assert log_in(client, user.email, next_=next_).headers["Location"] == "/admin/users"


# -- failed logins ---------------------------------------------------------------------------------

def test_the_eleventh_attempt_is_refused_even_with_the_right_password(client, make_user):
    user = make_user()
    for _ in range(10):
        assert log_in(client, user.email, "wrong password").status_code == 401
    response = log_in(client, user.email)
    assert response.status_code == 429
    assert "Too many failed logins" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not logged in


def test_successful_logins_do_not_count(client, make_user):
    user = make_user()
    for _ in range(12):
        assert log_in(client, user.email).status_code == 302
        client.post("/logout", data={"csrf_token": csrf_token(client.get("/").get_data(as_text=True))})
    assert log_in(client, user.email, "wrong password").status_code == 401


def test_failures_of_one_account_leave_the_others_alone(client, make_user):
    target, other = make_user(), make_user(email="other@team.test")
    for _ in range(10):
        log_in(client, target.email.upper(), "wrong password")  # the same account, however it is spelled
    assert log_in(client, target.email).status_code == 429
    assert log_in(client, other.email).status_code == 302


def test_one_address_trying_many_accounts_is_refused(app, client, make_user):
    configure(app, login_failures_per_address=3)
    user = make_user()
    for n in range(3):
        assert log_in(client, f"guess{n}@team.test", "wrong password").status_code == 401
    assert log_in(client, user.email).status_code == 429
    client.environ_base["REMOTE_ADDR"] = "192.0.2.7"  # another address
    assert log_in(client, user.email).status_code == 302


def test_the_limits_count_on_redis_for_the_window(app, client, make_user, redis_connection):
    configure(app, login_failure_window=120)
    user = make_user()
    log_in(client, user.email, "wrong password")
    [key, *_] = [k for k in redis_connection.keys("limits:*") if b"account" in k]
    assert user.email.encode() not in key  # the account is hashed
    assert 0 < redis_connection.ttl(key) <= 120


# -- an unknown email costs a password check too ----------------------------------------------------

@pytest.mark.parametrize("email", ["agent@team.test", "nobody@team.test"], ids=["known", "unknown"])
def test_every_login_checks_one_password_hash(client, make_user, monkeypatch, email):
    make_user()
    checked = []
    real_check = users.check_password_hash
    monkeypatch.setattr(users, "check_password_hash", lambda *args: checked.append(args) or real_check(*args))
    assert log_in(client, email, "wrong password").status_code == 401
    [(password_hash, password)] = checked
    assert password == "wrong password" and password_hash.startswith(generate_password_hash("x").split("$")[0])


def test_an_inactive_user_costs_a_password_check_and_is_refused(client, make_user, session, monkeypatch):
    user = make_user()
    user.active = False
    session.commit()
    checked = []
    real_check = users.check_password_hash
    monkeypatch.setattr(users, "check_password_hash", lambda *args: checked.append(args) or real_check(*args))
    assert log_in(client, user.email).status_code == 401
    assert len(checked) == 1


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
    user = make_user(UserRole.LEAD)
    assert client.get("/api/cases").status_code == 401
    assert client.get("/api/cases", headers={"Authorization": "Bearer nope"}).status_code == 401
    _, token = issue(session, user, name="reports")
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
    _, token = issue(session, user, name="reports")
    user.active = False
    session.commit()
    assert client.get("/api/cases", headers={"Authorization": f"Bearer {token}"}).status_code == 401


# -- deactivating a user --------------------------------------------------------------------------

def signed_in(app, email: str):
    """A browser of its own, logged in as email."""
    browser = app.test_client()
    form = csrf_token(browser.get("/login").get_data(as_text=True))
    assert browser.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": form}).status_code == 302
    return browser


def test_a_supervisor_deactivates_a_user_everywhere_at_once(app):
    # Two browsers at once: each request in an app context of its own (the session fixture's would share `g`).
    with app.app_context():
        session = db.session()
        agent = create_user(session, email="ana@team.test", name="Ana", role=UserRole.AGENT, password=PASSWORD,
                            queues=["claims"])
        supervisor = create_user(session, email="sam@team.test", name="Sam", role=UserRole.SUPERVISOR,
                                 password=PASSWORD)
        held = add_case(session, queue="claims", assignee=agent)
        _, secret = issue(session, agent, name="reports")
        session.commit()
    theirs, client = signed_in(app, "ana@team.test"), signed_in(app, "sam@team.test")
    assert theirs.get("/").status_code == 200
    page = client.get("/admin/users").get_data(as_text=True)
    assert client.post(f"/admin/users/{agent.id}/deactivate").status_code == 400  # no CSRF token
    answer = client.post(f"/admin/users/{agent.id}/deactivate", data={"csrf_token": csrf_token(page)})
    assert answer.status_code == 302

    assert theirs.get("/").status_code == 302  # the session they had is refused on its next request
    assert client.get("/api/cases", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    with app.app_context():
        session = db.session()
        assert not session.get(User, agent.id).active
        case = session.get(Case, held.id)
        assert (case.assignee_id, case.queue, case.status) == (None, "claims", CaseStatus.OPEN)
        [released] = session.scalars(select(Event).where(Event.kind == "case.unassigned")).all()
        assert (released.case_id, released.actor_id, released.data["previous_assignee_id"]) == \
            (held.id, supervisor.id, agent.id)
        assert routing.assign(session, case, clock.now()) is None  # the queue's only agent takes no new case
        deactivated = session.scalars(select(Event).where(Event.kind == "user.deactivated")).one()
        assert deactivated.data["tokens_revoked"] == 1


def test_a_supervisor_cannot_deactivate_an_admin_or_themselves(client, login, make_user, session):
    admin = make_user(UserRole.ADMIN)
    supervisor = login(UserRole.SUPERVISOR)
    token = csrf_token(client.get("/admin/users").get_data(as_text=True))
    for user in (admin, supervisor):
        assert client.post(f"/admin/users/{user.id}/deactivate", data={"csrf_token": token}).status_code == 403
    session.expire_all()
    assert session.get(User, admin.id).active and session.get(User, supervisor.id).active


def test_a_reactivated_user_logs_in_again(client, login, make_user, session):
    agent = make_user(email="ana@team.test")
    login(UserRole.SUPERVISOR)
    token = csrf_token(client.get("/admin/users").get_data(as_text=True))
    client.post(f"/admin/users/{agent.id}/deactivate", data={"csrf_token": token})
    assert client.post(f"/admin/users/{agent.id}/reactivate", data={"csrf_token": token}).status_code == 302
    session.expire_all()
    assert session.get(User, agent.id).active
