"""The console over HTTP: actions, notes that are never sent, escalation, the dashboard's roles, escaping."""

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ACCOUNT_SID, TEAM_NUMBER, csrf_token
from sqlalchemy import select

from assist import background, sandbox
from assist.models import Case, CaseStatus, Note, UserRole
from assist.simulate import sms_params
from channels.message import Channel, InboundMessage

pytestmark = pytest.mark.both_databases

CUSTOMER = "+15035550600"


def post_sms(live_server, body: str, sender: str = CUSTOMER):
    return live_server.post_signed("/twilio/sms", sms_params(from_=sender, to=TEAM_NUMBER, body=body,
                                                             account_sid=ACCOUNT_SID))


def test_an_agent_cannot_open_the_dashboard_or_search(client, login):
    login(UserRole.AGENT)
    assert client.get("/dashboard/").status_code == 403
    assert client.get("/dashboard/search?q=x").status_code == 403


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
    assert "<title>pet_health: 2</title>" in page  # the May message is outside the window
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
    client.post(f"/cases/{case.id}/checklist/0", data={"csrf_token": token})
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
    while b"data:" not in data and time.monotonic() < deadline:
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
