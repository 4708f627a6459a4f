"""Least privilege by queue (assist/access.py) on every page, action and API call about a case."""

import re

import pytest
from conftest import add_case, csrf_token
from sqlalchemy import select

from assist import clock
from assist.models import Call, CallState, Case, CaseStatus, Event, Note, TokenScope, UserRole
from assist.tokens import issue

pytestmark = pytest.mark.both_databases

# Each action of the console on a case, with its form.
ACTIONS = [
    ("reply", {"text": "We are on it."}),
    ("note", {"text": "checked the booking"}),
    ("claim", {}),
    ("status", {"status": "resolved"}),
    ("checklist/0", {}),
    ("escalate", {"text": "brief for the lead"}),
    ("call-back", {}),
]


def listed(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'<tr class="case-row"[^>]*data-case="(\d+)"', html)}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def two_cases(session):
    """An emergency case and a claims case, nobody's."""
    emergency = add_case(session, queue="emergency", phone="+15035550101", text="my dog is not breathing",
                         urgency="critical")
    claims = add_case(session, queue="claims", phone="+15035550102", text="the sitter broke my vase")
    return emergency, claims


def test_a_claims_agent_neither_sees_nor_touches_an_emergency_case(client, login, session, two_cases):
    emergency, claims = two_cases
    agent = login(queues=["claims"], phone="+15035550155")
    assert client.get(f"/cases/{emergency.id}").status_code == 404
    own_page = client.get(f"/cases/{claims.id}")
    assert own_page.status_code == 200
    token = csrf_token(own_page.get_data(as_text=True))
    for action, form in ACTIONS:
        answer = client.post(f"/cases/{emergency.id}/{action}", data={**form, "csrf_token": token})
        assert answer.status_code == 404, action
    assert client.get(f"/cases/{emergency.id}/escalate").status_code == 404
    session.expire_all()
    untouched = session.get(Case, emergency.id)
    assert (untouched.status, untouched.assignee_id, untouched.checklist_done) == (CaseStatus.OPEN, None, [])
    assert session.scalars(select(Note)).all() == [] and len(untouched.messages) == 1
    assert session.scalars(select(Event).where(Event.case_id == emergency.id)).all() == []
    for queue in ("mine", "all", "emergency"):
        assert emergency.id not in listed(client.get(f"/?queue={queue}").get_data(as_text=True)), queue
    assert listed(client.get("/?queue=all").get_data(as_text=True)) == {claims.id}

    # Its own case it works as before.
    assert client.post(f"/cases/{claims.id}/claim", data={"csrf_token": token}).status_code == 302
    session.expire_all()
    assert session.get(Case, claims.id).assignee_id == agent.id


def test_the_api_shows_a_token_what_its_owner_sees(client, make_user, session, two_cases):
    emergency, claims = two_cases
    agent = make_user(queues=["claims"])
    _, secret = issue(session, agent, name="script", scope=TokenScope.WRITE)
    session.commit()
    assert [c["id"] for c in client.get("/api/cases", headers=bearer(secret)).get_json()] == [claims.id]
    assert client.get("/api/cases?queue=emergency", headers=bearer(secret)).get_json() == []
    for path in (f"/api/cases/{emergency.id}", f"/api/cases/{emergency.id}/messages"):
        hidden = client.get(path, headers=bearer(secret))
        assert hidden.status_code == 404 and "not breathing" not in hidden.get_data(as_text=True), path
    assert client.post(f"/api/cases/{emergency.id}/notes", json={"text": "x"}, headers=bearer(secret)).status_code \
        == 404
    assert client.get(f"/api/cases/{claims.id}", headers=bearer(secret)).get_json()["contact"]["phone"] == \
        "+15035550102"


def test_an_agent_of_no_queue_sees_only_the_cases_given_to_them(client, login, session, two_cases):
    emergency, claims = two_cases
    agent = login()
    theirs = add_case(session, queue="support", phone="+15035550103", assignee=agent)
    for queue in ("mine", "all", "support"):
        assert listed(client.get(f"/?queue={queue}").get_data(as_text=True)) == {theirs.id}, queue
    assert client.get(f"/cases/{theirs.id}").status_code == 200
    assert client.get(f"/cases/{claims.id}").status_code == 404


def test_leads_see_every_case(client, login, two_cases):
    emergency, claims = two_cases
    login(UserRole.LEAD, queues=["claims"])
    assert listed(client.get("/?queue=all").get_data(as_text=True)) == {emergency.id, claims.id}
    assert listed(client.get("/").get_data(as_text=True)) == {claims.id}  # their "mine": their queues
    assert client.get(f"/cases/{emergency.id}").status_code == 200


def test_calls_waiting_show_only_to_the_agents_of_their_queue(client, login, session):
    call = Call(call_sid="CA1", caller="+15035550104", state=CallState.WAITING, queue="emergency",
                waiting_since=clock.now())
    session.add(call)
    session.commit()
    login(queues=["claims", "support"], phone="+15035550155")
    for queue in ("mine", "all", "emergency"):
        assert "waiting on the phone" not in client.get(f"/?queue={queue}").get_data(as_text=True), queue
    token = csrf_token(client.get("/me").get_data(as_text=True))
    assert client.post(f"/calls/{call.id}/take", data={"csrf_token": token}).status_code == 404
    client.post("/logout", data={"csrf_token": token})
    login(email="em@team.test", queues=["emergency"])
    assert "waiting on the phone" in client.get("/").get_data(as_text=True)


def test_a_case_page_lists_only_the_contacts_other_cases_one_may_see(client, login, session, two_cases):
    emergency, claims = two_cases
    other = Case(contact_id=claims.contact_id, status=CaseStatus.RESOLVED, queue="emergency")
    session.add(other)
    session.commit()
    login(queues=["claims"])
    page = client.get(f"/cases/{claims.id}").get_data(as_text=True)
    assert f"/cases/{other.id}" not in page
    assert client.get(f"/cases/{other.id}").status_code == 404


def test_who_opened_a_case_and_who_was_refused_it_is_kept(client, login, session):
    from assist import access_log

    case = add_case(session, queue="claims")
    outsider = login(UserRole.AGENT, email="outsider@team.test", queues=["support"])
    assert client.get(f"/cases/{case.id}").status_code == 404  # out of sight: as if it did not exist
    insider = login(UserRole.AGENT, email="insider@team.test", queues=["claims"])
    assert client.get(f"/cases/{case.id}").status_code == 200
    session.expire_all()
    logged = [(e.user_id, e.kind, e.object_id, e.allowed) for e in access_log.entries(session)]
    assert logged == [(insider.id, "case", case.id, True), (outsider.id, "case", case.id, False)]
    assert access_log.entries(session, user_id=outsider.id, kind="case", object_id=case.id)[0].allowed is False
