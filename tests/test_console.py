"""The console over HTTP: actions, notes that are never sent, escalation, the dashboard's roles, escaping."""

import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ACCOUNT_SID, PASSWORD, TEAM_NUMBER, add_case, csrf_token, seen_marker
from sqlalchemy import select

from assist import background, cases, sandbox
from assist.models import Case, CaseStatus, Direction, Event, Message, Note, UserRole
from assist.simulate import sms_params
from assist.triage.labels import QUEUES
from channels.message import Channel, InboundMessage

pytestmark = pytest.mark.both_databases

CUSTOMER = "+15035550600"


def post_sms(live_server, body: str, sender: str = CUSTOMER):
    return live_server.post_signed("/twilio/sms", sms_params(from_=sender, to=TEAM_NUMBER, body=body,
                                                             account_sid=ACCOUNT_SID))


def test_an_agent_searches_the_cases_of_their_queues_but_cannot_open_the_dashboard(client, login, session):
    theirs = add_case(session, queue="emergency", text="the sitter left the gate open", phone="+15035550610")
    others = add_case(session, queue="claims", text="the sitter broke a vase", phone="+15035550611")
    login(UserRole.AGENT, queues=["emergency"])
    assert client.get("/dashboard/").status_code == 403
    found = client.get("/dashboard/search?q=sitter").get_data(as_text=True)
    assert f">#{theirs.id}<" in found and f">#{others.id}<" not in found
    assert 'href="/dashboard/search"' in client.get("/").get_data(as_text=True)  # in the top bar


def test_a_lead_sees_the_dashboard_and_searches_every_case(client, login, session):
    cases = [add_case(session, queue=q, text="the sitter never came", phone=f"+1503555062{i}")
             for i, q in enumerate(["emergency", "claims"])]
    login(UserRole.LEAD, queues=["emergency"])
    assert client.get("/dashboard/").status_code == 200
    found = client.get("/dashboard/search?q=sitter").get_data(as_text=True)
    assert all(f">#{c.id}<" in found for c in cases)


def _ingest_at(session, clock, at: datetime, text: str, sender: str) -> Case:
    from assist.ingest import ingest

    clock.set(at)
    result = ingest(session, InboundMessage(channel=Channel.SMS, channel_id=f"SM{sender[-4:]}{at.timestamp():.0f}",
                                            sender=sender, recipient=TEAM_NUMBER, text=text, original=text))
    return session.get(Case, result.case_id)


def test_the_dashboard_counts_queues_breaches_and_volume_by_utc_day(client, login, session, clock):
    now = datetime(2026, 6, 3, 17, 0, tzinfo=UTC)  # noon in Chicago, where the team works
    # 23:30 UTC on June 2 is June 2; 00:30 UTC on June 3 is still June 2 in Chicago, but a UTC day is June 3.
    _ingest_at(session, clock, datetime(2026, 6, 2, 23, 30, tzinfo=UTC), "my dog ate rat poison",
               "+15035550701")
    _ingest_at(session, clock, datetime(2026, 6, 3, 0, 30, tzinfo=UTC), "the cat ate lilies",
               "+15035550702")
    _ingest_at(session, clock, datetime(2026, 5, 20, 12, 0, tzinfo=UTC), "my dog got out",
               "+15035550703")  # two weeks ago: outside the charts' 7 days
    payout = _ingest_at(session, clock, now - timedelta(minutes=30), "how do I change my payout account?",
                        "+15035550704")
    breached = _ingest_at(session, clock, now - timedelta(minutes=10), "the dog I'm walking bit a kid",
                          "+15035550705")
    breached.sla_breached_at = now
    session.commit()
    clock.set(now)
    login(UserRole.SUPERVISOR)
    page = client.get("/dashboard/").get_data(as_text=True)

    def card(queue: str) -> str:
        return re.search(rf'data-queue="{queue}">(.*?)</div>', page, re.DOTALL).group(1)

    assert '<p class="big">4</p>' in card("emergency") and "1 SLA breach<" in card("emergency")
    assert re.search(r"oldest waiting: <a [^>]*>#\d+</a>, \d+ min", card("emergency"))
    assert '<p class="big">1</p>' in card("support") and f"#{payout.id}</a>, 30 min" in card("support")
    assert '<p class="big">0</p>' in card("claims") and "nobody waiting" in card("claims")
    assert "<title>2026-06-02: 1 critical</title>" in page and "<title>2026-06-03: 2 critical</title>" in page
    assert "<title>2026-06-03: 1 low</title>" in page or "<title>2026-06-03: 1 normal</title>" in page
    days = dict(re.findall(r'data-day="([\d-]+)" data-total="(\d+)"', page))
    assert list(days) == [f"2026-05-{d}" for d in range(28, 32)] + ["2026-06-01", "2026-06-02", "2026-06-03"]
    assert days["2026-06-02"] == "1" and days["2026-06-03"] == "3" and days["2026-05-28"] == "0"
    assert "<title>Pet health: 2</title>" in page  # the May message is outside the window
    assert f"#{breached.id}</a> emergency" in page


def test_the_dashboard_search_finds_by_words_and_rejects_bad_dates(client, login, live_server, session):
    post_sms(live_server, "my dog just ate a bar of dark chocolate")
    post_sms(live_server, "how do I change my payout account?", sender="+15035550601")
    login(UserRole.SUPERVISOR)
    found = client.get("/dashboard/search?q=chocolate").get_data(as_text=True)
    assert "#1" in found and "#2" not in found
    assert client.get("/dashboard/search?from=yesterday").status_code == 400


@pytest.mark.parametrize("query, reason", [
    ("from=1900-01-01&to=9999-12-31", "from must be a date from 2000-01-01 to 2100-12-31"),
    ("to=9999-12-31", "to must be a date from 2000-01-01 to 2100-12-31"),
    ("from=1999-12-31", "from must be a date from 2000-01-01"),
    ("from=20240105", "from must be a date as YYYY-MM-DD"),
    ("to=2024-02-30", "to must be a date as YYYY-MM-DD"),
    ("q=" + "x" * 201, "longer than 200 characters"),
], ids=["far-past-and-future", "year-9999", "before-2000", "basic-format", "no-such-day", "long-text"])
def test_the_dashboard_search_answers_400_with_the_reason(client, login, query, reason):
    login(UserRole.SUPERVISOR)
    response = client.get(f"/dashboard/search?{query}")
    assert response.status_code == 400 and reason in response.get_data(as_text=True)


def test_the_dashboard_search_matches_percent_and_underscore_as_typed(client, login, live_server, session):
    post_sms(live_server, "my dog just ate a bar of dark chocolate")
    post_sms(live_server, "the refund is 100% wrong", sender="+15035550601")
    login(UserRole.SUPERVISOR)
    assert "#1" not in client.get("/dashboard/search?q=%25").get_data(as_text=True)  # not a LIKE wildcard
    assert "#1" not in client.get("/dashboard/search?q=_").get_data(as_text=True)
    found = client.get("/dashboard/search?q=100%25").get_data(as_text=True)
    assert "#2" in found and "#1" not in found


def test_a_note_is_never_sent_and_escalation_records_the_brief(client, login, live_server, session, drain, app):
    post_sms(live_server, "the dog I'm walking just bit a kid, his arm is bleeding")
    case = session.scalars(select(Case)).one()
    lead = login(UserRole.LEAD)
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    token = csrf_token(page)
    client.post(f"/cases/{case.id}/note",
                data={"text": "Called the parents; ambulance on the way", "csrf_token": token})
    drain()
    with app.app_context():
        assert all("ambulance" not in m["body"] for m in sandbox.sent_messages(background.connection()))
    brief_page = client.get(f"/cases/{case.id}/escalate").get_data(as_text=True)
    assert "What happened:" in brief_page and "Timeline:" in brief_page and "critical" in brief_page
    assert "Open questions:" in brief_page and "ambulance" in brief_page
    client.post(f"/cases/{case.id}/escalate", data={"text": "Brief: bite, child, ambulance called.",
                                                    "csrf_token": token})
    session.expire_all()
    case = session.get(Case, case.id)
    assert case.status == CaseStatus.ESCALATED and case.assignee_id == lead.id
    kinds = [n.kind for n in session.scalars(select(Note).where(Note.case_id == case.id))]
    assert kinds == ["note", "brief"]


def test_claim_status_and_checklist(client, login, live_server, session):
    post_sms(live_server, "my dog got out and ran off")
    case = session.scalars(select(Case)).one()
    agent = login(UserRole.AGENT, queues=[case.queue])
    token = csrf_token(client.get(f"/cases/{case.id}").get_data(as_text=True))
    client.post(f"/cases/{case.id}/claim", data={"csrf_token": token})
    client.post(f"/cases/{case.id}/checklist/0", data={"done": "1", "csrf_token": token})
    client.post(f"/cases/{case.id}/status", data={"status": "pending", "csrf_token": token})
    session.expire_all()
    case = session.get(Case, case.id)
    assert (case.assignee_id, case.status, case.checklist_done) == (agent.id, CaseStatus.PENDING, [0])


def test_customer_strings_are_escaped_everywhere(client, login, live_server, session):
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    post_sms(live_server, f"help {payload}")
    login(UserRole.SUPERVISOR)
    case = session.scalars(select(Case)).one()
    for path, shows_text in (("/", True), (f"/cases/{case.id}", True), (f"/cases/{case.id}/escalate", True),
                             ("/dashboard/search?q=script", False)):
        page = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page
        assert ("&lt;script&gt;" in page) == shows_text


def test_the_event_stream_relays_new_messages(client, login, live_server, session, drain):
    login(UserRole.AGENT, queues=["emergency"])  # where a lost dog goes
    response = client.get("/events", buffered=False)
    assert response.mimetype == "text/event-stream"
    chunks = response.response
    assert next(chunks).startswith(b"retry:")
    post_sms(live_server, "my dog got out")
    drain()  # the worker tells the consoles, after the webhook's commit
    deadline = time.monotonic() + 5
    data = b""
    while b'"kind": "message"' not in data and time.monotonic() < deadline:  # the case's own event may come first
        data += next(chunks)
    response.close()
    assert b'"kind": "message"' in data


def test_html_is_sanitized_by_nh3():
    from assist.web.sanitize import sanitized_html

    dirty = ('<p onclick="x()">Hi <b>there</b></p><script>alert(1)</script><img src=x onerror=alert(1)>'
             '<a href="javascript:alert(1)">x</a><a href="https://vet.example/invoice">invoice</a><style>*{}</style>')
    clean = str(sanitized_html(dirty))
    assert "<b>there</b>" in clean and "https://vet.example/invoice" in clean and 'rel="noopener' in clean
    for bad in ("<script", "onerror", "onclick", "javascript:", "<img", "<style"):
        assert bad not in clean


@pytest.mark.parametrize("path", ["/cases/99999999999999999999", "/api/cases/2147483648"], ids=["case", "api-case"])
def test_an_id_past_the_largest_row_id_is_a_404_not_a_database_overflow(client, login, make_user, session, path):
    from assist.tokens import issue

    login(UserRole.AGENT)
    _, token = issue(session, make_user(email="api@team.test"), name="script")
    session.commit()
    assert client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 404


class Browser:
    """A test client of its own whose every request has an app context of its own: a test's requests share the
    test's (the session fixture's), and with it flask-wtf's CSRF token cached in g."""

    def __init__(self, app):
        self.app, self.client = app, app.test_client()

    def get(self, *args, **kwargs):
        with self.app.app_context():
            return self.client.get(*args, **kwargs)

    def post(self, *args, **kwargs):
        with self.app.app_context():
            return self.client.post(*args, **kwargs)


def second_agent(app, make_user, **details):
    """Another agent, logged in on a browser of their own."""
    user = make_user(UserRole.AGENT, email="second@team.test", **details)
    other = Browser(app)
    token = csrf_token(other.get("/login").get_data(as_text=True))
    assert other.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}).status_code \
        == 302
    return user, other


def reply_form(client, case_id: int, text: str) -> dict:
    """The reply form as the case page shows it now, with text typed in."""
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    return {"text": text, "csrf_token": csrf_token(page), "seen": seen_marker(page)}


def human_replies(session, case_id: int) -> list[Message]:
    session.expire_all()
    return session.scalars(select(Message).where(Message.case_id == case_id, Message.direction == Direction.OUTBOUND,
                                                 Message.author_id.is_not(None))).all()


def sent_bodies(app) -> list[str]:
    with app.app_context():
        return [m["body"] for m in sandbox.sent_messages(background.connection())]


def test_a_reply_sent_meanwhile_by_a_colleague_refuses_the_other_until_reviewed(
        app, client, login, make_user, live_server, session, drain, clock):
    post_sms(live_server, "my sitter never showed up and I fly out in an hour")
    case = session.scalars(select(Case)).one()
    login(UserRole.LEAD)
    _, agent = second_agent(app, make_user, queues=[case.queue])
    first = reply_form(client, case.id, "Calling you now to find a backup sitter.")
    second = reply_form(agent, case.id, "Hi! A backup sitter is on the way.")
    assert first["seen"] == second["seen"]

    assert client.post(f"/cases/{case.id}/reply", data=first).status_code == 302
    clock.advance(120)
    refused = agent.post(f"/cases/{case.id}/reply", data=second)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "lead user replied 2 min ago — review before sending" in page
    assert "Calling you now to find a backup sitter." in page  # the colleague's reply, to review
    assert "Hi! A backup sitter is on the way.</textarea>" in page  # the draft, kept
    assert [m.text for m in human_replies(session, case.id)] == ["Calling you now to find a backup sitter."]
    drain()
    assert [b for b in sent_bodies(app) if "sitter" in b] == ["Calling you now to find a backup sitter."]

    # Having seen it, the agent sends from the page they were shown.
    again = {**second, "seen": seen_marker(page), "csrf_token": csrf_token(page)}
    assert int(again["seen"]) > int(second["seen"])
    assert agent.post(f"/cases/{case.id}/reply", data=again).status_code == 302
    assert len(human_replies(session, case.id)) == 2
    drain()
    assert "Hi! A backup sitter is on the way." in sent_bodies(app)


def test_a_reply_of_the_bot_meanwhile_refuses_the_agents_and_their_own_earlier_reply_does_not(
        client, login, live_server, session, clock):
    post_sms(live_server, "how do I change my payout account?")
    case = session.scalars(select(Case)).one()
    login(UserRole.LEAD)
    form = reply_form(client, case.id, "Settings, then Payouts.")
    assert client.post(f"/cases/{case.id}/reply", data=form).status_code == 302
    # The same marker again: only the agent's own reply is newer, so nothing was missed.
    assert client.post(f"/cases/{case.id}/reply", data={**form, "text": "And save."}).status_code == 302
    cases.reply(session, session.get(Case, case.id), "We are looking into it.", author=None)
    session.commit()
    clock.advance(3)
    refused = client.post(f"/cases/{case.id}/reply", data={**form, "text": "Anything else?"})
    assert refused.status_code == 409
    assert "The bot replied 3 s ago — review before sending" in refused.get_data(as_text=True)
    assert len(human_replies(session, case.id)) == 2


@pytest.mark.parametrize("seen", [None, "", "x", "-1", "99999999999"], ids=["missing", "empty", "word", "negative",
                                                                           "too-big"])
def test_a_reply_without_what_the_page_showed_is_a_400(client, login, live_server, session, seen):
    post_sms(live_server, "my dog got out and ran off")
    case = session.scalars(select(Case)).one()
    login(UserRole.LEAD)
    form = reply_form(client, case.id, "On it.")
    if seen is None:
        del form["seen"]
    else:
        form["seen"] = seen
    assert client.post(f"/cases/{case.id}/reply", data=form).status_code == 400
    assert human_replies(session, case.id) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_replies_sent_at_the_same_moment_one_goes_through(app, client, login, make_user, live_server, session):
    post_sms(live_server, "the sitter is not answering")
    case = session.scalars(select(Case)).one()
    login(UserRole.LEAD)
    _, agent = second_agent(app, make_user, queues=[case.queue])
    forms = [(client, reply_form(client, case.id, "Lead here: on it.")),
             (agent, reply_form(agent, case.id, "Agent here: on it."))]
    case_id = case.id
    session.rollback()  # the test's own session holds no snapshot or lock meanwhile (and the threads use none)
    start, answers = threading.Barrier(2), []

    def send(browser, form):
        start.wait()
        answers.append(browser.post(f"/cases/{case_id}/reply", data=form).status_code)

    threads = [threading.Thread(target=send, args=pair) for pair in forms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(answers) == [302, 409]
    assert len(human_replies(session, case_id)) == 1


def test_claiming_a_colleagues_case_asks_first(app, client, login, make_user, live_server, session):
    post_sms(live_server, "my dog got out and ran off")
    case = session.scalars(select(Case)).one()
    holder, agent = second_agent(app, make_user, queues=[case.queue])
    token = csrf_token(agent.get(f"/cases/{case.id}").get_data(as_text=True))
    assert agent.post(f"/cases/{case.id}/claim", data={"csrf_token": token}).status_code == 302
    lead = login(UserRole.LEAD)
    session.expire_all()  # the test's requests share its session: let them read the claim
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "agent user has this case — take it over?" in page and "Assign to me" not in page
    token = csrf_token(page)

    refused = client.post(f"/cases/{case.id}/claim", data={"csrf_token": token})
    assert refused.status_code == 409 and "agent user has this case" in refused.get_data(as_text=True)
    session.expire_all()
    assert session.get(Case, case.id).assignee_id == holder.id

    assert client.post(f"/cases/{case.id}/claim", data={"csrf_token": token, "take_over": "1"}).status_code == 302
    session.expire_all()
    assert session.get(Case, case.id).assignee_id == lead.id
    [taken] = session.scalars(select(Event).where(Event.case_id == case.id, Event.kind == "case.claimed")
                              .order_by(Event.id.desc()).limit(1)).all()
    assert taken.data["took_over_from"] == holder.id


def test_a_lead_assigns_a_case_to_a_teammate_of_its_queue_and_an_agent_cannot(
        app, client, login, make_user, live_server, session):
    post_sms(live_server, "my dog got out and ran off")
    case = session.scalars(select(Case)).one()
    outsider = make_user(UserRole.AGENT, email="outsider@team.test", queues=[q for q in QUEUES if q != case.queue])
    teammate, agent = second_agent(app, make_user, queues=[case.queue])
    agent_page = agent.get(f"/cases/{case.id}").get_data(as_text=True)
    assert 'id="assign-to"' not in agent_page
    assert agent.post(f"/cases/{case.id}/assign", data={"csrf_token": csrf_token(agent_page),
                                                       "user_id": teammate.id}).status_code == 403
    login(UserRole.LEAD, queues=[case.queue])
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert f'<option value="{teammate.id}">agent user</option>' in page and f'<option value="{outsider.id}"' not in page
    token = csrf_token(page)
    assert client.post(f"/cases/{case.id}/assign", data={"csrf_token": token, "user_id": outsider.id}
                       ).status_code == 400
    assert client.post(f"/cases/{case.id}/assign", data={"csrf_token": token, "user_id": teammate.id}
                       ).status_code == 302
    session.expire_all()
    assert session.get(Case, case.id).assignee_id == teammate.id
    [event] = session.scalars(select(Event).where(Event.case_id == case.id, Event.kind == "case.assigned",
                                                  Event.actor_id.is_not(None))).all()
    assert event.data["reason"] == "lead" and event.data["assignee_id"] == teammate.id

    # The case is the teammate's now: giving it to someone else asks first.
    other = make_user(UserRole.AGENT, email="other@team.test", queues=[case.queue])
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "take it from agent user" in page
    refused = client.post(f"/cases/{case.id}/assign", data={"csrf_token": token, "user_id": other.id},
                          headers={"Accept": "application/json"})
    assert refused.status_code == 409 and "agent user has this case" in refused.get_json()["error"]
    session.expire_all()
    assert session.get(Case, case.id).assignee_id == teammate.id
    assert client.post(f"/cases/{case.id}/assign", data={"csrf_token": token, "user_id": other.id,
                                                         "take_over": "1"}).status_code == 302
    session.expire_all()
    assert session.get(Case, case.id).assignee_id == other.id
