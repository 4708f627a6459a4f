"""The service levels a lead reports: each figure of a small known set of cases against hand-computed values, on
SQLite and PostgreSQL; the dashboard's filters, its CSV exports, and who may see them."""

import csv
import importlib.util
import io
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import TEAM_NUMBER

from assist import metrics
from assist.metrics import Filters, Levels
from assist.models import Case, CaseStatus, Contact, Direction, Event, Message, UserRole

pytestmark = pytest.mark.both_databases

MINUTE, HOUR = 60, 3600  # seconds


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=UTC) if day > 0 else datetime(2026, 5, 31 + day, hour,
                                                                                        minute, tzinfo=UTC)


def add(session, opened: datetime, *, queue: str, channel: str = "sms", category: str = "general",
        first_response: int | None = None, due: int | None = None, resolved: int | None = None, assignee=None,
        events: tuple[str, ...] = ()) -> Case:
    """A case opened at a time by one inbound message, answered, due and resolved so many seconds later."""
    contact = Contact(phone=f"+1503555{opened.day:02}{opened.hour:02}" if channel != "email" else None,
                      email="owner@example.com" if channel == "email" else None)
    seconds = lambda n: None if n is None else opened + timedelta(seconds=n)  # noqa: E731
    case = Case(contact=contact, queue=queue, created_at=opened, assignee=assignee,
                status=CaseStatus.RESOLVED if resolved is not None else CaseStatus.OPEN,
                first_response_at=seconds(first_response), first_response_due_at=seconds(due),
                resolved_at=seconds(resolved))
    message = Message(case=case, contact=contact, direction=Direction.INBOUND, channel=channel, sender="someone",
                      recipient=TEAM_NUMBER, text="help", original="help", created_at=opened,
                      triage={"urgency": "normal", "category": category})
    later = Message(case=case, contact=contact, direction=Direction.INBOUND, channel="voice", sender="someone",
                    recipient=TEAM_NUMBER, text="again", original="again", created_at=opened + timedelta(minutes=1),
                    triage={"urgency": "normal", "category": "payment"})  # not the case's first: never counted
    session.add_all([contact, case, message, later])
    session.flush()
    session.add_all([Event(kind=kind, case_id=case.id, at=opened) for kind in events])
    return case


@pytest.fixture
def known_cases(session, make_user):
    """Seven cases around June 1-3, 2026 (the clock stands at June 3, 17:00 UTC) and two agents."""
    ann = make_user(UserRole.AGENT, email="ann@team.test", queues=["emergency"], capacity=4)
    bob = make_user(UserRole.AGENT, email="bob@team.test", queues=["support"])
    ann.name, bob.name = "Ann", "=HYPERLINK(\"http://evil.example\")"  # a name a spreadsheet would run
    add(session, at(1, 10), queue="emergency", category="pet_health", first_response=2 * MINUTE, due=5 * MINUTE,
        resolved=3 * HOUR, assignee=ann, events=("case.escalated",))
    add(session, at(1, 11), queue="emergency", channel="email", category="lost_pet", first_response=10 * MINUTE,
        due=5 * MINUTE, resolved=HOUR, assignee=ann, events=("case.reopened", "case.reopened"))
    add(session, at(1, 12), queue="support", first_response=4 * MINUTE, assignee=bob)  # no SLA
    add(session, at(2, 8), queue="emergency", category="pet_health", first_response=MINUTE, due=5 * MINUTE,
        assignee=ann)
    add(session, at(2, 9), queue="claims", category="vet_claim", due=HOUR)  # unanswered, overdue
    add(session, at(3, 16, 50), queue="support", due=20 * MINUTE)  # unanswered, not due yet at 17:00
    add(session, at(0, 23, 59), queue="support", first_response=MINUTE)  # May 31: before the range
    session.commit()
    return ann, bob


def figures(session, clock, **chosen) -> metrics.Metrics:
    return metrics.metrics(session, Filters(date(2026, 6, 1), date(2026, 6, 3), **chosen), clock.now())


def test_each_figure_per_day_is_the_hand_computed_one(session, clock, known_cases):
    by_day = figures(session, clock)
    assert [start for start, _ in by_day.periods] == [date(2026, 6, 1), date(2026, 6, 2), date(2026, 6, 3)]
    june_1, june_2, june_3 = (levels for _, levels in by_day.periods)
    # June 1: first responses of 120, 600 and 240 s; p90 sits 0.8 of the way from 240 to 600
    assert june_1 == Levels(cases=3, first_response_median=240, first_response_p90=528, resolution_median=2 * HOUR,
                            sla_met=1, sla_due=2, escalations=1, reopened=1)
    assert june_2 == Levels(cases=2, first_response_median=60, first_response_p90=60, resolution_median=None,
                            sla_met=1, sla_due=2, escalations=0, reopened=0)
    assert june_3 == Levels(cases=1, sla_met=0, sla_due=0)
    # all: 60, 120, 240, 600 s: the median halfway from 120 to 240, p90 0.7 of the way from 240 to 600
    assert by_day.total == Levels(cases=6, first_response_median=180, first_response_p90=492,
                                  resolution_median=2 * HOUR, sla_met=2, sla_due=4, escalations=1, reopened=1)
    assert by_day.total.sla_attainment == 0.5


def test_weeks_start_on_monday_and_the_filters_choose_by_queue_category_and_channel(session, clock, known_cases):
    weekly = metrics.metrics(session, Filters(date(2026, 5, 28), date(2026, 6, 3), period="week"), clock.now())
    assert [(start, levels.cases) for start, levels in weekly.periods] == [(date(2026, 5, 25), 1),
                                                                            (date(2026, 6, 1), 6)]
    emergency = figures(session, clock, queue="emergency").total
    assert (emergency.cases, emergency.first_response_median, emergency.sla_met, emergency.sla_due) == (3, 120, 2, 3)
    pet_health = figures(session, clock, category="pet_health").total  # the first message's, not the later one's
    assert (pet_health.cases, pet_health.first_response_median, pet_health.escalations) == (2, 90, 1)
    assert figures(session, clock, category="payment").total == Levels()
    by_email = figures(session, clock, channel="email").total
    assert (by_email.cases, by_email.first_response_median, by_email.reopened) == (1, 600, 1)


def test_each_agent_has_the_cases_they_hold_their_median_first_response_and_their_load(session, clock, known_cases):
    ann, bob = known_cases
    agents = {a.user.id: a for a in figures(session, clock).agents}
    assert (agents[ann.id].levels.cases, agents[ann.id].levels.first_response_median, agents[ann.id].open_cases) \
        == (3, 120, 1)
    assert (agents[bob.id].levels.cases, agents[bob.id].levels.first_response_median, agents[bob.id].open_cases) \
        == (1, 240, 1)


def test_a_lead_sees_the_service_levels_of_the_chosen_range(client, login, session, known_cases):
    login(UserRole.LEAD)
    page = client.get("/dashboard/?from=2026-06-01&to=2026-06-03&queue=emergency").get_data(as_text=True)
    assert 'data-period="2026-06-01" data-cases="2"' in page and 'data-period="2026-06-02" data-cases="1"' in page
    assert '<td data-label="SLA attainment">67% (2/3)</td>' in page  # of the emergency queue
    assert "Pet health" in page and "<option selected>emergency</option>" in page
    partial = client.get("/dashboard/figures?from=2026-06-01&to=2026-06-03&queue=emergency").get_data(as_text=True)
    assert 'data-period="2026-06-01" data-cases="2"' in partial and "<form" not in partial


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_agent_cannot_see_the_service_levels_or_export_them(client, login, known_cases):
    login(UserRole.AGENT)
    assert client.get("/dashboard/figures").status_code == 403
    assert client.get("/dashboard/export/periods.csv").status_code == 403


@pytest.mark.parametrize("query, reason", [
    ("period=month", "unknown period"), ("queue=nowhere", "unknown queue"), ("category=pet health", "unknown category"),
    ("channel=fax", "unknown channel"), ("from=2026-06-03&to=2026-06-01", "from must not be after to"),
    ("from=2026-01-01&to=2026-06-01", "more than 92 periods")],
    ids=["period", "queue", "category", "channel", "reversed", "too long"])
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the checks come before any query
def test_the_filters_answer_400_with_the_reason(client, login, query, reason):
    login(UserRole.LEAD)
    response = client.get(f"/dashboard/?{query}")
    assert response.status_code == 400 and reason in response.get_data(as_text=True)


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_every_table_exports_as_csv_with_the_filters_and_no_cell_a_spreadsheet_would_run(client, login, known_cases):
    login(UserRole.SUPERVISOR)
    periods = read_csv(client.get("/dashboard/export/periods.csv?from=2026-06-01&to=2026-06-03"))
    assert periods == [
        ["day", "cases", "first response median (min)", "first response p90 (min)", "resolution median (h)",
         "SLA attainment (%)", "escalations", "reopened"],
        ["2026-06-01", "3", "4.0", "8.8", "2.0", "50", "1", "1"],
        ["2026-06-02", "2", "1.0", "1.0", "", "50", "0", "0"],
        ["2026-06-03", "1", "", "", "", "", "0", "0"],
        ["total", "6", "3.0", "8.2", "2.0", "50", "1", "1"]]
    by_email = read_csv(client.get("/dashboard/export/periods.csv?from=2026-06-01&to=2026-06-03&channel=email"))
    assert by_email[-1][:2] == ["total", "1"]
    agents = read_csv(client.get("/dashboard/export/agents.csv?from=2026-06-01&to=2026-06-03"))
    assert agents[0] == ["agent", "cases handled", "first response median (min)", "open cases", "capacity"]
    assert ["Ann", "3", "2.0", "1", "4"] in agents
    assert ["'=HYPERLINK(\"http://evil.example\")", "1", "4.0", "1", "5"] in agents
    queues = read_csv(client.get("/dashboard/export/queues.csv"))
    assert queues[0] == ["queue", "open cases", "SLA breaches", "oldest waiting (min)"] and len(queues) == 5
    categories = read_csv(client.get("/dashboard/export/categories.csv"))
    assert categories[1] == ["Pet health", "2"]  # the triaged inbound messages of the charts' 7 days
    assert client.get("/dashboard/export/secrets.csv").status_code == 404


def bench_generator(monkeypatch):
    """bench/metrics.py, whose generated cases the benchmark times (run as a script, it finds bench/scratch.py
    beside it: so does the test)."""
    bench = Path(__file__).parents[1] / "bench"
    monkeypatch.syspath_prepend(str(bench))
    spec = importlib.util.spec_from_file_location("bench_metrics", bench / "metrics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def percentile(values: list[float], p: float) -> float | None:
    """What percentile_cont gives: interpolated between the two nearest ranks."""
    if not values:
        return None
    ordered, position = sorted(values), p * (len(values) - 1)
    lower = int(position)
    upper = ordered[min(lower + 1, len(ordered) - 1)]
    return round(ordered[lower] + (position - lower) * (upper - ordered[lower]), 3)


def expected_levels(cases: list[dict], now: datetime) -> Levels:
    """The service levels of generated cases, counted in Python."""
    def seconds(c, at):
        return (c[at] - c["created_at"]).total_seconds()

    responses = [seconds(c, "first_response_at") for c in cases if c["first_response_at"]]
    came_due = [c for c in cases if c["first_response_due_at"] and (c["first_response_at"]
                                                                      or c["first_response_due_at"] <= now)]
    return Levels(cases=len(cases), first_response_median=percentile(responses, 0.5),
                  first_response_p90=percentile(responses, 0.9),
                  resolution_median=percentile([seconds(c, "resolved_at") for c in cases if c["resolved_at"]], 0.5),
                  sla_met=sum(1 for c in came_due if c["first_response_at"]
                              and c["first_response_at"] <= c["first_response_due_at"]),
                  sla_due=len(came_due), escalations=sum(c["escalated"] for c in cases),
                  reopened=sum(c["reopened"] for c in cases))


def test_the_figures_of_the_benchmarks_generated_cases_are_pythons_own_count(session, clock, make_user,
                                                                             monkeypatch):
    bench, now = bench_generator(monkeypatch), clock.now()
    agents = [make_user(UserRole.AGENT, email=f"agent{i}@team.test", queues=["support"]) for i in range(2)]
    cases = bench.generate(200, now, [a.id for a in agents])
    bench.load(session, cases)
    today = now.astimezone(UTC).date()
    chosen = Filters(today - timedelta(days=bench.DAYS), today)
    figures = metrics.metrics(session, chosen, now)
    by_day = defaultdict(list)
    for c in cases:
        by_day[c["created_at"].astimezone(UTC).date()].append(c)
    assert figures.periods == [(day, expected_levels(by_day[day], now) if by_day[day] else Levels())
                               for day in chosen.periods()]
    assert figures.total == expected_levels(cases, now)
    by_agent = {a.user.id: a.levels for a in figures.agents}
    for agent in agents:
        assert by_agent[agent.id] == expected_levels([c for c in cases if c["assignee_id"] == agent.id], now)
    by_queue = metrics.metrics(session, Filters(chosen.start, chosen.end, category="vet_claim", channel="email"),
                               now).total
    assert by_queue == expected_levels([c for c in cases if c["category"] == "vet_claim"
                                        and c["channel"] == "email"], now)
