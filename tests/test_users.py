"""The team's accounts: edited from the console and `assist users`, routed by their queues and capacity, reset
with one-time links; every change in the audit trail."""

import re

import pytest
from conftest import ACCOUNT_SID, PASSWORD, TEAM_NUMBER, csrf_token
from sqlalchemy import select

from assist import db
from assist.models import ApiToken, Case, Event, User, UserRole
from assist.simulate import sms_params
from assist.tokens import issue
from assist.users import RESET_LINK_HOURS, authenticate, create_user

QUESTION = "quick question about how payouts work"  # the support queue, not urgent: no on-call rule applies
NEW_PASSWORD = "a brand new passphrase"


def ask(twilio, sender: str) -> None:
    response = twilio.post("/twilio/sms", sms_params(from_=sender, to=TEAM_NUMBER, body=QUESTION,
                                                     account_sid=ACCOUNT_SID))
    assert response.status_code == 200


def assignees(session) -> list[str | None]:
    session.expire_all()
    return [c.assignee.email if c.assignee else None for c in session.scalars(select(Case).order_by(Case.id))]


def events(session, kind: str) -> list[Event]:
    session.expire_all()
    return list(session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def edit_form(user: User, **changes) -> dict:
    """The user page's form as it would be posted unchanged, with changes."""
    form = {"name": user.name, "role": user.role.value, "queues": list(user.queues), "capacity": str(user.capacity),
            "phone": user.phone or "", "active": "y"}
    if user.on_call:
        form["on_call"] = "y"
    form.update(changes)
    return {field: value for field, value in form.items() if value is not None}


def post_edit(client, user: User, **changes):
    token = csrf_token(client.get(f"/admin/users/{user.id}").get_data(as_text=True))
    return client.post(f"/admin/users/{user.id}", data={**edit_form(user, **changes), "csrf_token": token})


def test_an_agent_created_with_a_queue_is_routed_its_cases_and_shows_in_the_load_table(client, login, session,
                                                                                       twilio, drain):
    supervisor = login(UserRole.SUPERVISOR)
    token = csrf_token(client.get("/admin/users").get_data(as_text=True))
    created = client.post("/admin/users", data={
        "email": "nia@team.test", "name": "Nia Okafor", "role": "agent", "password": PASSWORD,
        "queues": ["support"], "capacity": "3", "phone": "(503) 555-0142", "csrf_token": token})
    assert created.status_code == 302, created.get_data(as_text=True)
    nia = session.scalars(select(User).where(User.email == "nia@team.test")).one()
    assert (nia.queues, nia.capacity, nia.phone) == (["support"], 3, "+15035550142")
    ask(twilio, "+15035550601")
    drain()
    assert assignees(session) == ["nia@team.test"]
    assert "Nia Okafor" in client.get("/dashboard/").get_data(as_text=True)
    [audited] = events(session, "user.created")
    assert (audited.actor_id, audited.data["queues"], audited.data["capacity"]) == (supervisor.id, ["support"], 3)


def test_a_user_created_in_no_queue_is_warned_of(client, login):
    login(UserRole.SUPERVISOR)
    token = csrf_token(client.get("/admin/users").get_data(as_text=True))
    page = client.post("/admin/users", data={"email": "lo@team.test", "name": "Lo", "role": "agent",
                                             "password": PASSWORD, "capacity": "5", "csrf_token": token},
                       follow_redirects=True).get_data(as_text=True)
    assert "lo@team.test is in no queue: no case will be routed to them." in page


def test_editing_queues_and_capacity_changes_routing(client, login, make_user, session, twilio, drain):
    supervisor = login(UserRole.SUPERVISOR)
    agent = make_user(UserRole.AGENT, queues=["claims"], capacity=5)
    ask(twilio, "+15035550611")
    drain()
    assert assignees(session) == [None]  # in claims only: a support case waits

    assert post_edit(client, agent, queues=["support", "claims"], capacity="1").status_code == 302
    ask(twilio, "+15035550612")
    ask(twilio, "+15035550613")
    drain()
    assert assignees(session) == [None, agent.email, None]  # a capacity of one: the third waits

    [edited] = events(session, "user.edited")
    assert edited.actor_id == supervisor.id
    assert edited.data == {"user_id": agent.id, "changed": ["queues", "capacity"], "queues": ["claims", "support"],
                           "capacity": 1}
    assert session.get(User, agent.id).queues == ["claims", "support"]  # in the taxonomy's order


def test_the_user_page_edits_name_role_phone_and_on_call_and_audits_no_personal_data(client, login, make_user,
                                                                                     session):
    login(UserRole.SUPERVISOR)
    agent = make_user(UserRole.AGENT, queues=["support"])
    page = client.get(f"/admin/users/{agent.id}").get_data(as_text=True)
    assert 'checked id="queues-3"' in page and 'value="admin"' not in page  # a supervisor makes no admin
    answer = post_edit(client, agent, name="Ana Lima", role="lead", phone="+1 503 555 0199", on_call="y")
    assert answer.status_code == 302
    session.expire_all()
    agent = session.get(User, agent.id)
    assert (agent.name, agent.role, agent.phone, agent.on_call) == ("Ana Lima", UserRole.LEAD, "+15035550199", True)
    [edited] = events(session, "user.edited")
    assert edited.data == {"user_id": agent.id, "changed": ["name", "role", "phone", "on_call"], "role": "lead",
                           "on_call": True}


@pytest.mark.parametrize("changes, error", [
    ({"phone": "call me maybe"}, "phone"),
    ({"capacity": "101"}, "Number must be between 0 and 100"),
    ({"queues": ["nowhere"]}, "is not a valid choice"),
    ({"name": ""}, "This field is required"),
], ids=["phone", "capacity", "queue", "name"])
def test_a_bad_edit_is_refused_and_changes_nothing(client, login, make_user, session, changes, error):
    login(UserRole.SUPERVISOR)
    agent = make_user(UserRole.AGENT, queues=["support"])
    answer = post_edit(client, agent, **changes)
    assert answer.status_code == 400 and error in answer.get_data(as_text=True)
    session.expire_all()
    assert session.get(User, agent.id).queues == ["support"] and events(session, "user.edited") == []


@pytest.mark.parametrize("actor_role, target_role, changes", [
    (UserRole.SUPERVISOR, UserRole.ADMIN, {"name": "Renamed"}),
    (UserRole.SUPERVISOR, UserRole.AGENT, {"role": "admin"}),
    (UserRole.LEAD, UserRole.AGENT, {"name": "Renamed"}),
], ids=["supervisor edits an admin", "supervisor makes an admin", "lead edits"])
def test_who_may_not_edit_whom(client, login, make_user, session, actor_role, target_role, changes):
    login(actor_role)
    target = make_user(target_role, email="target@team.test", queues=["support"])
    token = csrf_token(client.get("/login").get_data(as_text=True))
    answer = client.post(f"/admin/users/{target.id}", data={**edit_form(target, **changes), "csrf_token": token})
    assert answer.status_code == 403
    session.expire_all()
    assert (session.get(User, target.id).name, session.get(User, target.id).role) == (target.name, target_role)


def test_an_admin_makes_an_admin_and_nobody_changes_their_own_role(client, login, make_user, session):
    admin = login(UserRole.ADMIN)
    agent = make_user(UserRole.AGENT)
    assert post_edit(client, agent, role="admin").status_code == 302
    own_page = client.get(f"/admin/users/{admin.id}").get_data(as_text=True)
    assert "nobody changes their own role" in own_page and 'name="role"' not in own_page
    assert 'name="active"' not in own_page
    assert post_edit(client, admin, role="agent", active=None, name="Still Admin").status_code == 302
    session.expire_all()
    assert session.get(User, agent.id).role == UserRole.ADMIN
    assert (session.get(User, admin.id).role, session.get(User, admin.id).name) == (UserRole.ADMIN, "Still Admin")


def signed_in(app, email: str):
    """A browser of its own, logged in as email. Tests with several browsers keep out of the session fixture's
    app context: each request needs its own `g` (the logged-in user, the CSRF token)."""
    browser = app.test_client()
    form = csrf_token(browser.get("/login").get_data(as_text=True))
    assert browser.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": form}).status_code == 302
    return browser


def team_of_two(app) -> tuple[int, str]:
    """A supervisor and an agent with an API token; the agent's id and the token."""
    with app.app_context():
        session = db.session()
        create_user(session, email="sam@team.test", name="Sam", role=UserRole.SUPERVISOR, password=PASSWORD)
        agent = create_user(session, email="ana@team.test", name="Ana", role=UserRole.AGENT, password=PASSWORD,
                            queues=["support"])
        session.flush()
        _, secret = issue(session, agent, name="reports")
        session.commit()
        return agent.id, secret


def test_deactivating_from_the_user_page_ends_sessions_and_tokens(app):
    agent_id, secret = team_of_two(app)
    theirs, client = signed_in(app, "ana@team.test"), signed_in(app, "sam@team.test")
    assert theirs.get("/").status_code == 200
    with app.app_context():
        agent = db.session().get(User, agent_id)
    assert post_edit(client, agent, active=None).status_code == 302  # the box unticked
    assert theirs.get("/").status_code == 302
    assert client.get("/api/cases", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    with app.app_context():
        session = db.session()
        assert session.scalars(select(ApiToken)).one().revoked_at is not None
        assert [e.data["tokens_revoked"] for e in events(session, "user.deactivated")] == [1]


def reset_path(page: str) -> str:
    """The reset link shown on a page, without the public base URL (http://localhost in tests)."""
    return re.search(r'<code>http://localhost(/reset-password\?token=[^<]+)</code>', page).group(1)


def use_link(client, path: str, password: str = NEW_PASSWORD, again: str | None = None):
    """Open the link and send its form as the browser does: to /reset-password, the token in the body."""
    page = client.get(path).get_data(as_text=True)
    link_token = re.search(r'name="token" type="hidden" value="([^"]+)"', page).group(1)
    return client.post("/reset-password", data={"token": link_token, "password": password,
                                                "again": again or password, "csrf_token": csrf_token(page)})


def test_a_reset_link_works_once_and_ends_the_users_sessions(app):
    agent_id, _ = team_of_two(app)
    theirs, client = signed_in(app, "ana@team.test"), signed_in(app, "sam@team.test")
    token = csrf_token(client.get(f"/admin/users/{agent_id}").get_data(as_text=True))
    issued = client.post(f"/admin/users/{agent_id}/reset-password", data={"csrf_token": token})
    path = reset_path(issued.get_data(as_text=True))
    assert 'id="reset-link"' not in client.get(f"/admin/users/{agent_id}").get_data(as_text=True)  # shown once

    anyone = app.test_client()
    mismatch = use_link(anyone, path, again="something else")
    assert mismatch.status_code == 400 and "the two passwords differ" in mismatch.get_data(as_text=True)
    answer = use_link(anyone, path)
    assert answer.status_code == 302 and answer.headers["Location"] == "/login"
    assert theirs.get("/").status_code == 302  # logged out everywhere
    again = anyone.get(path)
    assert again.status_code == 410 and "already used" in again.get_data(as_text=True)
    with app.app_context():
        session = db.session()
        assert authenticate(session, "ana@team.test", NEW_PASSWORD) is not None
        assert authenticate(session, "ana@team.test", PASSWORD) is None
        supervisor = session.scalars(select(User).where(User.email == "sam@team.test")).one()
        assert [(e.kind, e.actor_id) for e in events(session, "user.reset_link_issued") + events(
            session, "user.password_reset")] == [("user.reset_link_issued", supervisor.id),
                                                 ("user.password_reset", agent_id)]


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)  # expiry: time zones compared
def test_a_reset_link_is_refused_after_its_expiry_or_a_newer_link(app, client, login, make_user, clock):
    login(UserRole.SUPERVISOR)
    agent = make_user(UserRole.AGENT)
    token = csrf_token(client.get(f"/admin/users/{agent.id}").get_data(as_text=True))

    def new_link() -> str:
        page = client.post(f"/admin/users/{agent.id}/reset-password", data={"csrf_token": token})
        return reset_path(page.get_data(as_text=True))

    first, second = new_link(), new_link()
    refused = client.get(first)
    assert refused.status_code == 410 and "expired" in refused.get_data(as_text=True)
    clock.advance(RESET_LINK_HOURS * 3600 + 1)
    refused = app.test_client().get(second)
    assert refused.status_code == 410 and "expired" in refused.get_data(as_text=True)
    assert app.test_client().get("/reset-password?token=not-a-link").status_code == 410


def test_the_cli_edits_a_user_and_prints_a_reset_link(runner, app, session, twilio, drain):
    created = runner.invoke(args=["users", "create", "--email", "kim@team.test", "--name", "Kim",
                                  "--password", PASSWORD])
    assert created.exit_code == 0, created.output
    result = runner.invoke(args=["users", "edit", "Kim@Team.test", "--name", "Kim Lee", "--role", "lead",
                                 "--queues", "support, claims", "--capacity", "2", "--phone", "503-555-0177",
                                 "--on-call"])
    assert result.exit_code == 0, result.output
    assert "kim@team.test: lead, active, queues claims, support, capacity 2, phone +15035550177, on call" \
        in result.output
    ask(twilio, "+15035550621")
    drain()
    assert assignees(session) == ["kim@team.test"]

    refused = runner.invoke(args=["users", "edit", "kim@team.test", "--queues", "nowhere"])
    assert refused.exit_code == 1 and "unknown queue(s): nowhere" in refused.output
    reset = runner.invoke(args=["users", "reset-password", "kim@team.test"])
    assert reset.exit_code == 0, reset.output
    link = reset.stdout.strip().splitlines()[-1]
    assert link.startswith("http://localhost/reset-password?token=")
    assert use_link(app.test_client(), link.removeprefix("http://localhost")).status_code == 302

    assert runner.invoke(args=["users", "edit", "kim@team.test", "--inactive"]).exit_code == 0
    session.expire_all()
    agent = session.scalars(select(User)).one()
    assert not agent.active and agent.on_call is False
    assert [e.kind for e in session.scalars(select(Event).where(Event.kind.like("user.%")).order_by(Event.id))] == [
        "user.created", "user.edited", "user.reset_link_issued", "user.password_reset", "user.deactivated"]
