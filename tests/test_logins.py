"""Console logins kept on the server: logout, idling and deactivation end them, whatever copies of the cookie exist.

These tests arrange rows in app contexts of their own that end before any request: a request made inside a
test's open app context would share its `g`, where Flask-Login caches the user it loaded.
"""

import pytest
from conftest import PASSWORD, csrf_token
from sqlalchemy import select

from assist import db, logins
from assist.models import LoginSession, User, UserRole
from assist.tokens import hash_token
from assist.users import create_user

pytestmark = pytest.mark.both_databases
EMAIL = "agent@team.test"


@pytest.fixture
def user_id(app) -> int:
    with app.app_context():
        user = create_user(db.session(), email=EMAIL, name="Agent", role=UserRole.AGENT, password=PASSWORD)
        db.session().commit()
        return user.id


def log_in(client) -> None:
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302


def log_out(client) -> None:
    token = csrf_token(client.get("/").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302


def rows(app) -> list[LoginSession]:
    with app.app_context():
        return list(db.session().scalars(select(LoginSession).order_by(LoginSession.created_at)))


def logged_in(client) -> bool:
    return client.get("/").status_code == 200


def copy_of(client, app):
    """Another browser holding the same session cookie (stolen, or a tab of a shared computer)."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def test_a_login_opens_a_session_whose_token_only_the_cookie_has(app, client, user_id, clock):
    log_in(client)
    [row] = rows(app)
    assert row.user_id == user_id and row.ended_at is None and row.created_at == row.last_seen_at
    with client.session_transaction() as cookie:
        assert hash_token(cookie["login"]) == row.id != cookie["login"]
    assert "remember_token=" not in client.get("/").headers.get("Set-Cookie", "")
    assert client.get_cookie("remember_token") is None  # no remember-me cookie outlives the session


def test_a_cookie_copied_before_logout_is_refused_after_it(app, client, user_id):
    log_in(client)
    copy = copy_of(client, app)
    assert logged_in(copy)
    log_out(client)
    assert not logged_in(copy)
    assert copy.get("/").headers["Location"].startswith("/login")
    [row] = rows(app)
    assert row.ended_at is not None


def test_a_session_idle_too_long_ends(app, client, user_id, clock):
    log_in(client)
    clock.advance(59 * 60)
    assert logged_in(client)  # 59 minutes idle: still on (and seen now)
    clock.advance(59 * 60)
    assert logged_in(client)
    clock.advance(61 * 60)
    response = client.get("/")
    assert response.status_code == 302
    assert "Your session has ended" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert rows(app)[0].ended_at is not None
    log_in(client)  # a new login works
    assert logged_in(client)


def test_last_seen_is_written_at_most_once_a_minute(app, client, user_id, clock):
    log_in(client)
    [row] = rows(app)
    clock.advance(30)
    assert logged_in(client)
    assert rows(app)[0].last_seen_at == row.last_seen_at
    clock.advance(31)
    assert logged_in(client)
    assert rows(app)[0].last_seen_at > row.last_seen_at


def test_a_deactivated_users_sessions_are_refused(app, client, user_id):
    log_in(client)
    with app.app_context():
        db.session().get(User, user_id).active = False
        db.session().commit()
    assert not logged_in(client)
    assert rows(app)[0].ended_at is not None


def test_ending_all_sessions_of_a_user_logs_every_browser_out(app, client, user_id, clock):
    log_in(client)
    other = app.test_client()
    log_in(other)
    with app.app_context():
        assert logins.end_all(db.session(), db.session().get(User, user_id), clock.now()) == 2
        db.session().commit()
    assert not logged_in(client) and not logged_in(other)


def test_a_session_of_another_user_is_refused(app, client, user_id):
    """A cookie whose user id was changed (with the secret key) does not carry another user's session."""
    log_in(client)
    with app.app_context():
        other = create_user(db.session(), email="lead@team.test", name="Lead", role=UserRole.LEAD, password=PASSWORD)
        db.session().commit()
        other_id = other.id
    with client.session_transaction() as cookie:
        cookie["_user_id"] = str(other_id)
    assert not logged_in(client)
