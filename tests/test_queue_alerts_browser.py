"""Alerts, time and keys in a real browser: a critical case flashes, sounds, notifies and counts in the title while
the keyboard selection stays on its case; countdowns read h:mm; `?`, Esc, `1`-`3` and Ctrl+Enter; a long SMS asks
before it goes."""

import re
from datetime import timedelta

from conftest import ARTIFACTS
from playwright.sync_api import expect
from sqlalchemy import select
from test_console_browser import sms

from assist import background, sandbox
from assist.models import Case, Contact, Message, UserRole
from assist.triage.labels import QUEUES

# What the page does with sound and desktop notifications, recorded: headless Chromium plays nothing and shows no
# notification, so the test counts the tones console.js starts and the notifications it raises.
RECORD_ALERTS = """
  window.tones = 0;
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function (...args) { window.tones += 1; return start.apply(this, args); };
  window.notices = [];
  window.Notification = class {
    static permission = "granted";
    static requestPermission() { return Promise.resolve("granted"); }
    constructor(title, options) { window.notices.push({ title, body: options.body }); }
  };
  window.hideTab = (hidden) => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    document.dispatchEvent(new Event("visibilitychange"));
  };
"""


def case_of(session, phone: str) -> Case:
    session.expire_all()
    return session.scalars(select(Case).join(Contact).where(Contact.phone == phone)).one()


def row(page, case: Case):
    return page.locator(f"tr.case-row[data-case='{case.id}']")


def selected_case(page) -> str:
    return page.get_attribute("tr.case-row.selected", "data-case")


def test_a_critical_case_alerts_and_the_selection_stays_on_its_case(open_page, live_server, make_user, session,
                                                                      drain):
    ARTIFACTS.mkdir(exist_ok=True)
    for phone, text in (("+15035550801", "quick question about how payouts work"),
                        ("+15035550802", "how do I update the photo on my profile?")):
        sms(live_server, text, sender=phone)
    drain()
    first, second = case_of(session, "+15035550801"), case_of(session, "+15035550802")
    page = open_page(make_user(UserRole.AGENT, queues=list(QUEUES)))
    page.wait_for_function("document.getElementById('live-state').textContent === 'live'")
    page.evaluate(RECORD_ALERTS)
    page.click("#alerts-enable")  # asks for the permission from a gesture, as browsers require
    expect(page.locator("#alerts-enable")).to_have_text("Desktop alerts on")
    page.keyboard.press("j")  # the selection on the second case (and a gesture: the page may make sound)
    chosen = selected_case(page)
    assert chosen in {str(first.id), str(second.id)}
    assert row(page, first).get_attribute("data-urgency") != "critical"
    title = page.title()

    sms(live_server, "Pico just got hit by a car on Elm St, he's bleeding from his leg", sender="+15035550803")
    drain()
    critical = case_of(session, "+15035550803")
    row(page, critical).wait_for(timeout=2000)
    assert set(row(page, critical).get_attribute("class").split()) == {"case-row", "flash", "unseen"}
    assert page.evaluate("getComputedStyle(document.querySelector('tr.flash')).animationName") == "flash-critical"
    assert page.title() == f"(1) {title}"
    assert selected_case(page) == chosen  # the case, though its row moved down
    assert page.inner_text("#queue-announcer") == f"New critical case #{critical.id}: pet_health"
    assert page.evaluate("window.tones") == 2  # the two-tone chime
    assert page.evaluate("window.notices") == []  # the tab is in view
    page.screenshot(path=str(ARTIFACTS / "queue-critical-flash.png"))
    elsewhere = page.context.new_page()
    elsewhere.goto(f"{live_server.url}/cases/{critical.id}")  # opened in another tab: seen
    expect(page).to_have_title(title)
    assert page.locator("tr.unseen").count() == 0
    elsewhere.close()

    # Muted, with the tab hidden: a case that turns critical raises a notification naming only its number and
    # category, counts, and makes no sound; showing the tab again counts it all as seen.
    page.uncheck("#alert-sound")
    assert page.evaluate("localStorage.getItem('assist.alert-sound-off')") == "1"  # remembered
    page.evaluate("window.hideTab(true)")
    turning = next(c for c in (first, second) if str(c.id) != chosen)
    sms(live_server, "wait, the dog just got out the front door and ran off!", sender=turning.contact.phone)
    drain()
    expect(page).to_have_title(f"(1) {title}", timeout=2000)
    assert page.evaluate("window.notices") == [{"title": f"Critical case #{turning.id}", "body": "lost_pet"}]
    assert page.evaluate("window.tones") == 2
    assert "flash" in row(page, turning).get_attribute("class")
    assert page.inner_text("#queue-announcer") == f"Now critical: case #{turning.id}: lost_pet"
    assert selected_case(page) == chosen
    page.evaluate("window.hideTab(false)")
    assert page.title() == title
    assert page.locator("tr.unseen").count() == 0

    page.keyboard.press("Enter")  # opens the selected case, not the row that now sits where it was
    page.wait_for_url(f"**/cases/{chosen}")


def test_the_case_page_counts_down_in_hours_and_minutes_and_shows_overdue(open_page, live_server, make_user,
                                                                          session, drain, clock):
    sms(live_server, "my dog just ate a whole bar of dark chocolate", sender="+15035550811")
    drain()
    case = case_of(session, "+15035550811")
    case.first_response_due_at = clock.now() + timedelta(days=1, seconds=-30)
    session.commit()
    page = open_page(make_user(UserRole.LEAD))
    assert re.fullmatch(r"in (23:59|23:58)", row(page, case).locator(".countdown").inner_text())
    page.goto(f"{live_server.url}/cases/{case.id}")
    sla = page.locator("#sla")
    assert re.fullmatch(r"in (23:59|23:58)", sla.locator(".countdown").inner_text())
    assert "sla-due" in sla.get_attribute("class")

    case.first_response_due_at = clock.now() - timedelta(seconds=3)
    session.commit()
    page.reload()
    assert "sla-overdue" in sla.get_attribute("class")
    # Seconds late on the service's clock: the browser's own clock is far from the test's (a day in 2026).
    assert re.fullmatch(r"overdue \d s", sla.locator(".countdown").inner_text())
    assert page.get_by_label("Status").is_visible()  # in the header bar, labelled
    page.screenshot(path=str(ARTIFACTS / "case-header-overdue.png"))


def test_keys_and_a_long_sms_that_asks_before_it_goes(open_page, live_server, make_user, session, drain, app):
    sms(live_server, "Pico just got hit by a car on Elm St, he's bleeding from his leg", sender="+15035550821")
    drain()
    case = case_of(session, "+15035550821")
    page = open_page(make_user(UserRole.LEAD))
    page.goto(f"{live_server.url}/cases/{case.id}")

    page.keyboard.press("?")
    assert page.locator("#keys-help").is_visible()
    page.screenshot(path=str(ARTIFACTS / "case-keys-help.png"))
    assert "Ctrl" in page.inner_text("#keys-help") and "Esc" in page.inner_text("#keys-help")
    page.keyboard.press("Escape")
    assert not page.locator("#keys-help").is_visible()

    suggestions = page.locator("button.suggestion")
    assert suggestions.count() >= 2
    page.keyboard.press("2")
    assert page.input_value("#reply-text") == suggestions.nth(1).get_attribute("data-text")
    page.keyboard.press("Escape")  # leaves the reply box: keys are keys again
    assert page.evaluate("document.activeElement === document.body")

    long_reply = " ".join(["We are on it and will call you in a minute."] * 12)  # 539 characters: 4 segments
    page.fill("#reply-text", long_reply)
    counter = page.locator("#segments")
    assert "4 SMS segments" in counter.inner_text() and "too-long" in counter.get_attribute("class")
    confirm = page.locator("#send-confirm")

    page.click("#reply-form button[type=submit]")
    assert confirm.is_visible() and confirm.locator(".segment-count").inner_text() == "4"
    page.screenshot(path=str(ARTIFACTS / "case-send-confirm.png"))
    confirm.get_by_role("button", name="Keep editing").click()
    assert not confirm.is_visible()
    assert page.input_value("#reply-text") == long_reply
    assert page.evaluate("document.activeElement.id") == "reply-text"

    page.keyboard.press("Control+Enter")
    assert confirm.is_visible()
    page.keyboard.press("Escape")  # the focused button was Keep editing: Esc cancels all the same
    assert not confirm.is_visible()
    drain()
    assert session.scalars(select(Message).where(Message.author_id.is_not(None))).all() == []  # nothing sent

    page.keyboard.press("Control+Enter")
    confirm.get_by_role("button", name="Send it").click()
    page.locator("ol.timeline li.msg.outbound", has_text=long_reply).wait_for(timeout=5000)
    drain()
    with app.app_context():
        assert [m["body"] for m in sandbox.sent_messages(background.connection())] == [long_reply]
