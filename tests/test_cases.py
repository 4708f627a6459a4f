"""The case service: the queue's pages filtered in SQL, one escalation rule, reopening, the API's pages."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from assist import cases, routing
from assist.models import Case, CaseStatus, Contact, Event, UserRole

pytestmark = pytest.mark.both_databases

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def add_cases(session, n: int, *, queue: str, urgency: str, first_minute: int = 0, assignee=None) -> list[int]:
    """n open cases of their own contacts, the first waiting longest (one minute apart)."""
    added = []
    for i in range(n):
        contact = Contact(phone=f"+1503555{first_minute + i:04d}")
        at = START + timedelta(minutes=first_minute + i)
        case = Case(contact=contact, status=CaseStatus.OPEN, queue=queue, urgency=urgency, created_at=at,
                    last_inbound_at=at, assignee=assignee)
        session.add_all([contact, case])
        added.append(case)
    session.commit()
    return [c.id for c in added]


def listed(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr class="case-row"[^>]*data-case="(\d+)"', html)]


def next_link(html: str) -> str | None:
    found = re.search(r'<a rel="next" href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_among_500_open_critical_cases_a_support_agent_pages_through_their_support_cases(client, login, session):
    add_cases(session, 500, queue="emergency", urgency="critical")
    agent = login(UserRole.AGENT, queues=["support"])
    support = add_cases(session, 120, queue="support", urgency="normal", first_minute=1000)
    theirs = add_cases(session, 7, queue="support", urgency="high", first_minute=2000, assignee=agent)
    expected = theirs + support  # high before normal, then the longest waiting first

    seen, url, pages = [], "/?queue=mine", 0
    while url:
        page = client.get(url)
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        rows = listed(html)
        assert rows and len(rows) <= cases.PAGE_SIZE
        seen += rows
        url, pages = next_link(html), pages + 1
    assert seen == expected and pages == 3  # 127 cases: 50 + 50 + 27, none of the critical ones

    assert listed(client.get("/?queue=support&assignee=me").get_data(as_text=True)) == theirs
    assert listed(client.get("/?queue=support&assignee=none").get_data(as_text=True)) == support[:cases.PAGE_SIZE]
    everything_seen = listed(client.get("/?queue=all").get_data(as_text=True))
    assert everything_seen == expected[:cases.PAGE_SIZE]  # "all" is all an agent may see: no emergency case
    assert listed(client.get("/?queue=emergency").get_data(as_text=True)) == []


def test_a_page_cursor_that_was_not_made_by_the_queue_is_a_400(client, login):
    login(UserRole.AGENT)
    assert client.get("/?after=not-a-cursor").status_code == 400
    assert client.get("/?after=1_2026-06-01T09:00:00_x").status_code == 400
    assert client.get("/?assignee=someone").status_code == 400


def test_the_queue_order_and_cursor_are_the_same_in_sql_and_in_python(session):
    add_cases(session, 3, queue="safety", urgency="low")
    add_cases(session, 3, queue="safety", urgency="critical", first_minute=10)
    untriaged = add_cases(session, 2, queue="safety", urgency=None, first_minute=20)
    first = cases.queue_page(session, limit=4)
    rest = cases.queue_page(session, after=first.next, limit=4)
    ordered = [c.urgency for c in first.cases + rest.cases]
    assert ordered == ["critical"] * 3 + ["low"] * 3 + [None] * 2
    assert [c.id for c in rest.cases][-2:] == untriaged and rest.next is None


def _lead_and_agent(make_user):
    lead = make_user(UserRole.LEAD, email="lead@team.test", queues=["emergency"])
    agent = make_user(UserRole.AGENT, email="agent@team.test", queues=["emergency"])
    return lead, agent


def test_an_agent_escalating_and_a_missed_sla_follow_one_rule(session, make_user, clock):
    lead, agent = _lead_and_agent(make_user)
    by_agent, by_sla = (session.get(Case, i) for i in add_cases(session, 2, queue="emergency", urgency="critical",
                                                                assignee=agent))
    cases.escalate(session, by_agent, reason="agent", actor=agent, brief="Bite, child, ambulance called.")
    by_sla.first_response_due_at = clock.now() - timedelta(minutes=1)
    assert routing.check_first_response(session, by_sla, clock.now())
    cases.done(session, by_agent, by_sla)

    for case in (by_agent, by_sla):
        assert (case.status, case.assignee_id) == (CaseStatus.ESCALATED, lead.id)
    escalations = session.scalars(select(Event).where(Event.kind == "case.escalated").order_by(Event.id)).all()
    assert [(e.case_id, e.data["reason"], e.data["lead_id"]) for e in escalations] == [
        (by_agent.id, "agent", lead.id), (by_sla.id, "sla", lead.id)]
    assert by_sla.sla_breached_at is not None and by_agent.sla_breached_at is None


def test_choosing_escalated_as_the_status_escalates_to_the_lead(session, make_user):
    lead, agent = _lead_and_agent(make_user)
    case = session.get(Case, add_cases(session, 1, queue="emergency", urgency="high", assignee=agent)[0])
    cases.set_status(session, case, CaseStatus.ESCALATED, actor=agent)
    assert (case.status, case.assignee) == (CaseStatus.ESCALATED, lead)


def test_resolving_and_reopening(session, make_user, clock):
    agent = make_user(UserRole.AGENT)
    case = session.get(Case, add_cases(session, 1, queue="support", urgency="normal")[0])
    cases.claim(session, case, agent)
    cases.set_status(session, case, CaseStatus.RESOLVED, actor=agent)
    assert case.status == CaseStatus.RESOLVED
    assert case.resolved_at == pytest.approx(clock.now(), abs=timedelta(seconds=5))
    cases.set_status(session, case, CaseStatus.PENDING, actor=agent)
    assert (case.status, case.resolved_at) == (CaseStatus.PENDING, None)
    cases.reopen(session, case, reason="again")  # not resolved: nothing to reopen
    cases.done(session, case)
    kinds = [e.kind for e in session.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.id))]
    assert kinds == ["case.claimed", "case.status", "case.reopened"]


def test_the_api_pages_by_cursor_with_a_link_header(client, make_user, session):
    from assist.tokens import issue

    _, token = issue(session, make_user(UserRole.LEAD), name="reports")
    session.commit()
    ids = add_cases(session, 5, queue="claims", urgency="normal")
    headers = {"Authorization": f"Bearer {token}"}
    first = client.get("/api/cases?limit=2&queue=claims", headers=headers)
    assert [c["id"] for c in first.get_json()] == ids[:2]
    link = re.fullmatch(r'<http://localhost(/api/cases\?[^>]+)>; rel="next"', first.headers["Link"]).group(1)
    assert "queue=claims" in link and "limit=2" in link
    second = client.get(link, headers=headers)
    third = client.get(second.headers["Link"].split(">")[0][len("<http://localhost"):], headers=headers)
    assert [c["id"] for c in second.get_json() + third.get_json()] == ids[2:] and "Link" not in third.headers
    assert client.get("/api/cases?limit=0", headers=headers).status_code == 400
    assert client.get("/api/cases?limit=%C2%B2", headers=headers).status_code == 400  # a digit, but not 0-9
    assert client.get(f"/api/cases?after=0_2026-06-01T00:00:00%2B00:00_{2**63}", headers=headers).status_code == 400
    assert client.get("/api/cases?after=zzz", headers=headers).get_json()["error"] == "Bad Request"
