"""The leadership summary (assist/summary.py, assist `report`, /summary): a seeded week's critical incidents with
their SLA outcomes, misses with causes, and no customer's name, phone number or email address unless asked for."""

import html
import io
import re
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time

import pytest
from conftest import BUSINESS_ZONE, TEAM_NUMBER
from pypdf import PdfReader
from sqlalchemy import select

from assist import summary, summary_document
from assist.models import Case, CaseStatus, Contact, DeliveryStatus, Direction, Event, Message, Note, UserRole

WEEK = (date(2026, 5, 27), date(2026, 6, 2))  # Wednesday to Tuesday, the week before the clock's day
NAME, PHONE, EMAIL = "Dana Whitfield", "+15035550123", "dana.whitfield@example.com"
SITTER_NOTE_NAME = "Sam Ortiz"
# What must not appear by default: E.164 and dialled phone numbers, email addresses, the customers' names.
PHONE_LIKE = re.compile(r"\+\d{7,15}|\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b")
EMAIL_LIKE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
NAMES = re.compile(r"Dana|Whitfield|Sam\b|Ortiz", re.IGNORECASE)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A local time of the business time zone, in UTC as the database keeps it."""
    return datetime.combine(day, clock_time(hour, minute), tzinfo=BUSINESS_ZONE).astimezone(UTC)


def add(session, contact, opened: datetime, *, urgency: str, queue: str = "emergency", text: str = "my dog got out",
        category: str = "lost_pet", due_minutes: int | None = 5, **fields) -> Case:
    case = Case(contact=contact, queue=queue, urgency=urgency, created_at=opened, last_inbound_at=opened,
                first_response_due_at=opened + timedelta(minutes=due_minutes) if due_minutes else None, **fields)
    session.add_all([case, Message(case=case, contact=contact, direction=Direction.INBOUND, channel="sms",
                                   sender=contact.phone or contact.email, recipient=TEAM_NUMBER, text=text,
                                   original=text, created_at=opened,
                                   triage={"urgency": urgency, "emotion": "fear", "category": category})])
    return case


@pytest.fixture
def week(session, make_user):
    """A week of cases: four critical incidents (met, breached after hours, answered late, one on the last
    evening, which is already the next day in UTC), a miss caused by a failed send, and cases around the week."""
    agent = make_user(UserRole.AGENT, email="alex@team.test", queues=["emergency", "support"])
    agent.name = "Alex Agent"
    dana = Contact(name=NAME, phone=PHONE)
    mailer = Contact(name="Sam Ortiz", email="sam.ortiz@example.org")
    said = f"This is Dana, my dog Rex was hit by a car outside 1234 Oak Street, call {PHONE} or {EMAIL}"
    met = add(session, dana, local(WEEK[0], 10), urgency="critical", text=said, category="pet_health",
              status=CaseStatus.RESOLVED, assignee=agent, resolved_at=local(WEEK[0], 11))
    met.first_response_at = local(WEEK[0], 10, 3)
    breached = add(session, dana, local(date(2026, 5, 30), 3), urgency="critical", status=CaseStatus.ESCALATED,
                   sla_breached_at=local(date(2026, 5, 30), 3, 5))
    late = add(session, mailer, local(date(2026, 5, 31), 14), urgency="critical", category="bite_attack",
               text="the sitter's dog bit me", status=CaseStatus.OPEN, assignee=agent,
               sla_breached_at=local(date(2026, 5, 31), 14, 5))
    late.first_response_at = local(date(2026, 5, 31), 14, 20)
    evening = add(session, dana, local(WEEK[1], 23, 30), urgency="critical", status=CaseStatus.RESOLVED,
                  resolved_at=local(WEEK[1], 23, 32), due_minutes=None)
    failed = add(session, mailer, local(date(2026, 5, 29), 9), urgency="normal", queue="support",
                 category="payment", text="refund please", due_minutes=60, status=CaseStatus.OPEN, assignee=agent)
    session.flush()
    session.add_all([
        Message(case=late, contact=mailer, direction=Direction.OUTBOUND, channel="email", sender="team@x.test",
                recipient=mailer.email, text="We are on it", original="We are on it", author=agent,
                delivery_status=DeliveryStatus.SENT, created_at=local(date(2026, 5, 31), 14, 20)),
        Message(case=failed, contact=mailer, direction=Direction.OUTBOUND, channel="email", sender="team@x.test",
                recipient=mailer.email, text="Refund on its way", original="Refund on its way", author=agent,
                delivery_status=DeliveryStatus.FAILED, error="relay refused",
                created_at=local(date(2026, 5, 29), 9, 30)),
        Note(case_id=late.id, kind="brief", author=agent, text=f"Incident brief: case {late.id}\n\nWhat happened:\n"
                                                         f"{SITTER_NOTE_NAME} (owner) contacted us about Bella: "
                                                         f"\"the sitter's dog bit me at sam.ortiz@example.org\"\n"),
    ])
    before = {"urgency": "critical", "status": CaseStatus.RESOLVED}
    add(session, dana, local(date(2026, 5, 22), 12), **before)  # the week before: a trend, no incident
    add(session, dana, local(date(2026, 5, 26), 22), **before)  # in the week in UTC, not in Chicago
    session.commit()
    return {"met": met.id, "breached": breached.id, "late": late.id, "evening": evening.id, "failed": failed.id}


def text_of(document: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", " ", document, flags=re.S)))


def rows(document: str, section: str) -> dict[int, str]:
    """The table rows of one section of the summary, by case number, as text."""
    part = re.search(rf'<section class="summary-{section}">(.*?)</section>', document, re.S).group(1)
    return {int(case): " ".join(text_of(row).split())
            for case, row in re.findall(r'<tr data-case="(\d+)">(.*?)</tr>', part, re.S)}


def assert_no_personal_data(text: str) -> None:
    assert not PHONE_LIKE.search(text), PHONE_LIKE.search(text)
    assert not EMAIL_LIKE.search(text), EMAIL_LIKE.search(text)
    assert not NAMES.search(text), NAMES.search(text)


def summary_of(app, session, *, with_names: bool = False) -> str:
    from assist import clock, runtime

    with app.app_context():
        settings = runtime.settings()
        chosen = summary.period(*WEEK, settings.business_timezone)
        return summary_document.html(summary.build(session, settings, chosen, clock.now(), with_names=with_names))


@pytest.mark.both_databases
def test_the_week_lists_every_critical_incident_with_its_sla_outcome_and_every_miss_with_its_cause(app, session,
                                                                                                   week):
    document = summary_of(app, session)
    incidents = rows(document, "incidents")
    assert list(incidents) == [week["met"], week["breached"], week["late"], week["evening"]]
    assert "met: first response in 3 min" in incidents[week["met"]]
    assert "missed: no first response" in incidents[week["breached"]]
    assert "missed: first response in 20 min, 15 min late" in incidents[week["late"]]
    assert "no first-response target" in incidents[week["evening"]]
    assert "Tue Jun 02 23:30" in incidents[week["evening"]]  # the business time zone's day and hour
    assert "(owner) contacted us about Bella" in incidents[week["late"]]  # the escalation brief's line
    misses = rows(document, "misses")
    assert misses == {week["breached"]: misses[week["breached"]], week["late"]: misses[week["late"]],
                      week["failed"]: misses[week["failed"]]}
    assert "after hours and nobody on call took it" in misses[week["breached"]]
    assert "answered late by Alex Agent" in misses[week["late"]]
    assert "a reply failed to send (relay refused)" in misses[week["failed"]]
    text = " ".join(text_of(document).split())
    assert "days in America/Chicago" in text
    assert "5 cases opened (+3 on 2)" in text
    assert f"2 critical cases open: #{week['breached']}, #{week['late']}" in text
    assert "nobody is on call" in text and "nobody active takes the safety queue" in text
    assert_no_personal_data(text)


def test_names_and_contact_details_appear_only_when_asked_for(app, session, week):
    text = " ".join(text_of(summary_of(app, session, with_names=True)).split())
    assert NAME in text and PHONE in text and "sam.ortiz@example.org" in text
    assert f"{SITTER_NOTE_NAME} (owner)" in text
    assert "[phone]" not in text and "[email]" not in text


@pytest.mark.parametrize("said, left", [
    ("call me at (503) 555-0123 now", "call me at [phone] now"),
    ("text +44 7700 900123 or dana@example.com", "text [phone] or [email]"),
    ("we are at 1234 NE Oak Street, apt 2", "we are at [address], apt 2"),
    ("Dana says DANA WHITFIELD's dog", "[name] says [name]'s dog"),
    ("at 14:30 on 2026-06-03, 3 dogs", "at 14:30 on 2026-06-03, 3 dogs"),
], ids=["dialled", "e164-and-email", "street", "names", "times-and-dates-kept"])
def test_scrub_leaves_out_contact_details_and_names(said, left):
    assert summary.scrub(said, names=[NAME]) == left


def test_the_pdf_is_one_page_without_personal_data(app, session, week):
    plain = PdfReader(io.BytesIO(summary_document.pdf(summary_of(app, session))))
    assert len(plain.pages) == 1
    text = " ".join(plain.pages[0].extract_text().split())
    assert "Critical incidents (4)" in text and "missed: no first response" in text
    assert_no_personal_data(text)


def test_the_report_command_writes_the_file_and_audits_names(runner, session, week, tmp_path):
    output = tmp_path / "week.html"
    result = runner.invoke(args=["report", "--from", "2026-05-27", "--to", "2026-06-02", "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert f"wrote {output}" in result.output
    document = output.read_text(encoding="utf-8")
    assert list(rows(document, "incidents")) == [week["met"], week["breached"], week["late"], week["evening"]]
    assert_no_personal_data(text_of(document))
    assert session.scalars(select(Event).where(Event.kind == "summary.with_names")).first() is None
    named = runner.invoke(args=["report", "--from", "2026-05-27", "--to", "2026-06-02", "--output", str(output),
                                "--with-names"])
    assert named.exit_code == 0, named.output
    assert PHONE in output.read_text(encoding="utf-8")
    session.expire_all()
    [event] = session.scalars(select(Event).where(Event.kind == "summary.with_names"))
    assert event.data == {"first": "2026-05-27", "last": "2026-06-02", "via": "cli"}


@pytest.mark.parametrize("dates, error", [
    (["--from", "2026-13-01", "--to", "2026-06-02"], "'2026-13-01' is not a date as YYYY-MM-DD"),
    (["--from", "27/05/2026", "--to", "2026-06-02"], "'27/05/2026' is not a date as YYYY-MM-DD"),
    (["--from", "2026-06-02", "--to", "2026-05-27"], "the period ends (2026-05-27) before it starts (2026-06-02)"),
    (["--from", "2024-01-01", "--to", "2026-06-02"], "the period is longer than 366 days"),
], ids=["no-such-month", "not-iso", "backwards", "too-long"])
def test_the_report_command_rejects_bad_dates(runner, tmp_path, dates, error):
    result = runner.invoke(args=["report", *dates, "--output", str(tmp_path / "x.html")])
    assert result.exit_code == 2
    assert error in result.output
    assert not (tmp_path / "x.html").exists()


def test_the_page_is_behind_login_and_not_for_agents(client, login, session, week):
    assert client.get("/summary/").status_code == 302  # to the login page
    login(UserRole.AGENT)
    assert client.get("/summary/?from=2026-05-27&to=2026-06-02").status_code == 403
    assert client.get("/summary/pdf?from=2026-05-27&to=2026-06-02").status_code == 403


def test_a_lead_sees_the_summary_and_downloads_the_pdf(client, login, session, week):
    lead = login(UserRole.LEAD)
    page = client.get("/summary/?from=2026-05-27&to=2026-06-02")
    assert page.status_code == 200
    document = page.get_data(as_text=True)
    assert list(rows(document, "incidents")) == [week["met"], week["breached"], week["late"], week["evening"]]
    assert_no_personal_data(text_of(re.search(r'<article class="summary".*</article>', document, re.S).group(0)))
    named = client.get("/summary/?from=2026-05-27&to=2026-06-02&with_names=1").get_data(as_text=True)
    assert PHONE in named
    [event] = session.scalars(select(Event).where(Event.kind == "summary.with_names"))
    assert event.actor_id == lead.id and event.data["via"] == "console"
    pdf = client.get("/summary/pdf?from=2026-05-27&to=2026-06-02")
    assert pdf.mimetype == "application/pdf"
    assert 'filename="summary-2026-05-27-2026-06-02.pdf"' in pdf.headers["Content-Disposition"]
    assert "Critical incidents (4)" in PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    assert client.get("/summary/?from=2026-06-02&to=2026-05-27").status_code == 400

