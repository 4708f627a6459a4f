"""The case page live in a real browser: two agents on one case see each other and never both answer the
customer, and what changes on the case (messages, delivery statuses, ticks, who has it) shows without a reload."""

import re

import pytest
from conftest import ARTIFACTS, PASSWORD
from playwright.sync_api import expect
from sqlalchemy import select
from test_console_browser import sms

from assist import background, sandbox
from assist.models import Case, UserRole

LIVE = 2000  # milliseconds: what any agent does shows on a colleague's page within this


@pytest.fixture
def open_case(browser, live_server):
    """Open a case page as a user, in a browser of their own; fail the test on any script error, dialog or CSP
    violation (the reply refused with 409 is the one failed load expected)."""
    contexts, problems = [], []

    def open_as(user, case: Case):
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
        page.on("console", lambda message: message.type == "error" and "status of 409" not in message.text
                and problems.append(f"console: {message.text}"))
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.goto(live_server.url + "/login")
        page.fill("input[name=email]", user.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(live_server.url + "/")
        page.goto(f"{live_server.url}/cases/{case.id}")
        page.evaluate("window.stillTheSamePage = true")  # gone if the page reloads
        return page

    yield open_as
    for context in contexts:
        context.close()
    assert problems == []


@pytest.fixture
def case(live_server, session) -> Case:
    """A case opened by a customer's SMS, routed by the playbooks (so it has a checklist)."""
    sms(live_server, "my dog got out and ran off")
    return session.scalars(select(Case)).one()


@pytest.fixture
def two_agents(make_user, session, case):
    """Lee and Sam, agents of the case's queue."""
    lee = make_user(UserRole.AGENT, email="lee@team.test", queues=[case.queue])
    sam = make_user(UserRole.AGENT, email="sam@team.test", queues=[case.queue])
    lee.name, sam.name = "Lee Park", "Sam Ortiz"
    session.commit()
    return lee, sam


def same_page(page) -> bool:
    return page.evaluate("window.stillTheSamePage === true")


def test_two_agents_see_each_other_and_only_the_first_reply_goes_out(open_case, two_agents, case, drain, app):
    ARTIFACTS.mkdir(exist_ok=True)
    lee, sam = two_agents
    lee_page = open_case(lee, case)
    sam_page = open_case(sam, case)
    expect(sam_page.locator("#viewers")).to_have_text("Lee Park is viewing", timeout=LIVE)
    expect(lee_page.locator("#viewers")).to_have_text("Sam Ortiz is viewing", timeout=LIVE)

    lee_text, sam_text = "Lee here: we are looking for him now.", "Sam here: which way did he run?"
    lee_page.click("#reply-text")
    lee_page.keyboard.type(lee_text)
    expect(sam_page.locator("#viewers")).to_have_text("Lee Park is typing a reply…", timeout=LIVE)
    sam_page.click("#reply-text")
    sam_page.keyboard.type(sam_text)
    expect(lee_page.locator("#viewers")).to_have_text("Sam Ortiz is typing a reply…", timeout=LIVE)
    sam_page.screenshot(path=str(ARTIFACTS / "case-two-agents.png"), full_page=True)

    lee_page.click("#reply-form button[type=submit]")
    lee_page.wait_for_selector("text=Reply queued.")
    expect(sam_page.locator("#timeline li.msg.outbound", has_text=lee_text)).to_be_visible(timeout=LIVE)
    assert same_page(sam_page) and sam_page.input_value("#reply-text") == sam_text  # live, draft kept

    sam_page.click("#reply-form button[type=submit]")
    expect(sam_page.locator("#reply-form .error")).to_have_text(
        re.compile(r"Lee Park replied \d+ s ago — review before sending\."))
    assert sam_page.input_value("#reply-text") == sam_text  # the refused draft is still there to review
    drain()
    with app.app_context():
        assert [m["body"] for m in sandbox.sent_messages(background.connection())] == [lee_text]
    # The fake Twilio API's status callbacks reach the pages that show the reply.
    status = sam_page.locator("#timeline li.msg.outbound", has_text=lee_text).locator(".status")
    expect(status).to_have_text(re.compile("sent|delivered"), timeout=LIVE)


def test_a_follow_up_sms_shows_on_an_open_case_page_and_the_drafts_stay(open_case, two_agents, case, live_server):
    lee, _ = two_agents
    page = open_case(lee, case)
    page.fill("#note-text", "Half a note about the ")
    page.click("#reply-text")
    page.keyboard.type("Half a reply to the")
    sms(live_server, "he came back but he is limping now")  # the same customer, through the signed webhook
    follow_up = page.locator("#timeline li.msg.inbound", has_text="limping now")
    expect(follow_up).to_be_visible(timeout=LIVE)
    assert same_page(page)
    assert page.input_value("#reply-text") == "Half a reply to the"
    assert page.input_value("#note-text") == "Half a note about the "
    assert page.evaluate("document.activeElement.id") == "reply-text"  # still typing where they were


def test_a_tick_saves_in_place_shows_to_the_colleague_and_in_the_activity_trail(open_case, two_agents, case):
    lee, sam = two_agents
    lee_page = open_case(lee, case)
    sam_page = open_case(sam, case)
    lee_page.fill("#reply-text", "Half a reply")
    lee_page.fill("#note-text", "Half a note")
    lee_page.evaluate("window.scrollTo(0, 300)")

    box = lee_page.locator("form.tick input[type=checkbox]").first
    item = lee_page.locator("form.tick label").first.inner_text().strip()
    box.check()
    expect(lee_page.locator("#case-feedback")).to_have_text(f"“{item}” is ticked now.")
    lee_page.screenshot(path=str(ARTIFACTS / "case-ticked.png"))
    assert same_page(lee_page) and lee_page.evaluate("window.scrollY") == 300
    assert (lee_page.input_value("#reply-text"), lee_page.input_value("#note-text")) == ("Half a reply", "Half a note")
    expect(sam_page.locator("form.tick input[type=checkbox]").first).to_be_checked(timeout=LIVE)
    trail = f"Lee Park ticked “{item}”"
    expect(sam_page.locator("#timeline li.activity", has_text=trail)).to_be_visible(timeout=LIVE)
    expect(lee_page.locator("#timeline li.activity", has_text=trail)).to_be_visible()

    # Lee takes the case: Sam's page says whose it is now, and asks before taking it over.
    lee_page.click("#case-claim button:text('Assign to me')")
    expect(lee_page.locator("#case-feedback")).to_have_text("The case is yours.")
    expect(lee_page.locator("#case-claim")).not_to_contain_text("Assign to me")
    expect(sam_page.locator("#take-over")).to_contain_text("Lee Park has this case — take it over?", timeout=LIVE)
    expect(sam_page.locator("[data-case-assignee]")).to_have_text("Lee Park")
    expect(sam_page.locator("#timeline li.activity", has_text="Lee Park took the case")).to_be_visible()

    # A note saved in place: the note box empties, the reply draft stays, and Sam sees the note.
    lee_page.fill("#note-text", "Called the owner: the dog was seen on Elm St.")
    lee_page.click("#note-form button[type=submit]")
    expect(lee_page.locator("#case-feedback")).to_have_text("Note added.")
    assert lee_page.input_value("#note-text") == "" and lee_page.input_value("#reply-text") == "Half a reply"
    expect(sam_page.locator("#timeline li.note", has_text="seen on Elm St")).to_be_visible(timeout=LIVE)
    assert same_page(lee_page) and same_page(sam_page)
    expect(sam_page.locator("#viewers")).to_have_text("Lee Park is typing a note…")
    sam_page.screenshot(path=str(ARTIFACTS / "case-live.png"), full_page=True)
