"""Time on the console: durations as h:mm, the case header's first-response state, the queue's countdowns."""

import re
from datetime import timedelta

import pytest
from conftest import add_case

from assist.models import UserRole
from assist.web.timing import countdown, hours_minutes, waited

MINUTE, HOUR, DAY = 60, 3600, 86400  # seconds


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0 s"), (59.9, "59 s"), (60, "0:01"), (4 * MINUTE + 59, "0:04"), (HOUR + 5 * MINUTE + 10, "1:05"),
    (DAY - MINUTE, "23:59"), (DAY, "24:00"), (-(HOUR + 5 * MINUTE), "1:05"),
], ids=["nothing", "under-a-minute", "a-minute", "minutes-not-seconds", "an-hour-and-more", "a-day-less-a-minute",
        "a-day", "negative"])
def test_durations_read_as_hours_and_minutes(seconds, shown):
    assert hours_minutes(seconds) == shown


def test_countdowns_say_in_or_overdue(clock):
    now = clock.now()
    assert countdown(now + timedelta(days=1, minutes=-1), now) == "in 23:59"
    assert countdown(now - timedelta(hours=1, minutes=5), now) == "overdue 1:05"
    assert waited(now - timedelta(minutes=12), now) == "0:12"
    assert waited(now + timedelta(seconds=5), now) == "0 s"  # a moment a little ahead of this clock: no minus


def header_sla(html: str) -> tuple[str, str] | None:
    """The case header's first-response state: its class and its words."""
    found = re.search(r'<p class="sla (sla-\w+)" id="sla">(.*?)</p>', html, re.S)
    if found is None:
        return None
    return found.group(1), " ".join(re.sub(r"<[^>]+>", " ", found.group(2)).split())


def _due(clock, seconds: int | None):
    return None if seconds is None else clock.now() + timedelta(seconds=seconds)


@pytest.mark.parametrize(("due", "answered", "breached", "state", "words"), [
    (DAY - 30, None, None, "sla-due", "First response in 23:59 due"),
    (-(HOUR + 5 * MINUTE + 20), None, None, "sla-overdue", "First response overdue 1:05 due"),
    (-HOUR, None, -HOUR + 1, "sla-breached", "First response SLA breached"),
    (HOUR, -MINUTE, None, "sla-answered", "First response answered"),
], ids=["due", "overdue", "breached", "answered"])
def test_the_case_header_shows_where_the_first_response_stands(client, login, session, clock, due, answered,
                                                                breached, state, words):
    """Offsets in seconds from now."""
    case = add_case(session, queue="emergency", urgency="critical")
    case.first_response_due_at, case.first_response_at = _due(clock, due), _due(clock, answered)
    case.sla_breached_at = _due(clock, breached)
    session.commit()
    login(UserRole.LEAD)
    found = header_sla(client.get(f"/cases/{case.id}").get_data(as_text=True))
    assert found is not None and found[0] == state and found[1].startswith(words)


def test_a_case_without_a_first_response_sla_shows_no_state(client, login, session):
    case = add_case(session, queue="support")
    login(UserRole.LEAD)
    assert header_sla(client.get(f"/cases/{case.id}").get_data(as_text=True)) is None


def test_status_and_escalate_are_in_the_header_bar_once(client, login, session):
    case = add_case(session, queue="support")
    login(UserRole.LEAD)
    html = client.get(f"/cases/{case.id}").get_data(as_text=True)
    header = html[html.index('<header class="case-header"'):html.index("</header>", html.index("case-header"))]
    assert re.search(r'<form [^>]*id="status-form" data-in-place>', header)
    assert re.search(r'<label class="inline">Status <select id="case-status" name="status">', header)
    assert 'id="escalate-link"' in header
    assert html.count('name="status"') == 1 and html.count('id="escalate-link"') == 1  # moved, not copied


def test_queue_rows_count_down_in_hours_and_minutes_and_carry_the_case(client, login, session, clock):
    case = add_case(session, queue="emergency", urgency="critical")
    case.first_response_due_at = _due(clock, 2 * HOUR + 30)
    case.last_inbound_at = _due(clock, -(HOUR + 2 * MINUTE + 5))
    session.commit()
    login(UserRole.LEAD)
    html = client.get("/?queue=all").get_data(as_text=True)
    row = re.search(r'<tr class="case-row"[^>]*>', html).group(0)
    assert f'data-case="{case.id}"' in row and 'data-urgency="critical"' in row
    assert re.search(r'<span class="countdown" data-due="[^"]+" title="due [^"]+">in 2:00</span>', html)
    assert re.search(r'<span class="waited" data-since="[^"]+">1:02</span>', html)
