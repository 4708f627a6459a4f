"""Error pages: people get a console page with its navigation and never an exception's text; the programs that
call the service keep their JSON and plain answers."""

import pytest
from conftest import csrf_token

from assist import reports
from assist.models import UserRole

TOP_BAR = '<nav id="site-nav"'


def test_a_missing_page_and_a_hidden_case_read_the_same_with_the_navigation(client, login):
    login(UserRole.AGENT)
    for path in ("/no-such-page", "/cases/999999"):
        response = client.get(path)
        page = response.get_data(as_text=True)
        assert response.status_code == 404 and response.mimetype == "text/html"
        assert TOP_BAR in page and '<main id="main"' in page and "<h1>Not found" in page
        assert "no case with that number that you may see" in page


def test_a_forbidden_page_says_so_in_the_console(client, login):
    login(UserRole.AGENT)
    response = client.get("/admin/users")
    page = response.get_data(as_text=True)
    assert response.status_code == 403 and TOP_BAR in page and "<h1>Not open to you" in page


def test_a_reason_given_with_the_error_is_shown(client, login):
    supervisor = login(UserRole.SUPERVISOR)
    token = csrf_token(client.get("/admin/users").get_data(as_text=True))
    response = client.post(f"/admin/users/{supervisor.id}/deactivate", data={"csrf_token": token})
    assert response.status_code == 403 and "you cannot deactivate yourself" in response.get_data(as_text=True)


def test_a_crash_shows_a_page_with_the_navigation_and_nothing_of_the_exception(app, client, login, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the error is logged, the browser gets a 500

    def crash(*_args):
        raise RuntimeError("password=hunter2 at db.internal:5432")

    monkeypatch.setattr(reports, "figures", crash)
    login(UserRole.SUPERVISOR)
    response = client.get("/dashboard/")
    page = response.get_data(as_text=True)
    assert response.status_code == 500 and TOP_BAR in page and "<h1>Something went wrong" in page
    for leak in ("hunter2", "db.internal", "RuntimeError", "Traceback"):
        assert leak not in page


@pytest.mark.parametrize("path, status, mimetype", [
    ("/api/cases/999999", 404, "application/json"),  # the API's own JSON errors
    ("/api/cases", 401, "application/json"),
    ("/api/no-such-thing", 404, "text/html"),  # Werkzeug's plain page, as before
    ("/events", 401, "text/html"),
    ("/twilio/sms", 403, "text/html"),  # Twilio posts without a signature
    ("/sandbox/twilio/2010-04-01/Accounts/AC1/Messages.json", 401, "text/html"),
], ids=["api-case", "api-no-token", "api-no-route", "events", "webhook", "sandbox-api"])
def test_programs_keep_their_own_error_answers(client, login, make_user, session, path, status, mimetype):
    from assist.tokens import issue

    _, token = issue(session, make_user(UserRole.AGENT, email="script@team.test"), name="script")
    session.commit()
    headers = {"Authorization": f"Bearer {token}"} if path == "/api/cases/999999" else {}
    response = client.post(path, headers=headers) if "twilio" in path else client.get(path, headers=headers)
    assert (response.status_code, response.mimetype) == (status, mimetype)
    assert TOP_BAR not in response.get_data(as_text=True)
