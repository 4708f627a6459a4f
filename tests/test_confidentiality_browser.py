"""Confidentiality in a real browser: words selected in a message are redacted from the case page, and a
supervisor reads the access log."""

from conftest import ARTIFACTS, add_case
from playwright.sync_api import expect

from assist import cases
from assist.models import UserRole

CARD = "4111 1111 1111 1111"
TIMEOUT = 5000  # milliseconds


def test_words_selected_in_a_message_are_redacted_and_the_access_log_shows_who_read_what(
        open_page, live_server, make_user, session):
    case = add_case(session, queue="claims", text=f"they charged my card {CARD} twice for the boarding")
    cases.note(session, case, "the sitter's neighbour called about shouting", author=None, restricted=True)
    session.commit()
    agent = make_user(UserRole.AGENT, email="agent@team.test", queues=["claims"])
    page = open_page(agent)
    page.goto(f"{live_server.url}/cases/{case.id}")
    expect(page.locator(".note.restricted")).to_have_count(0)
    body = page.locator(".msg .body").first
    page.evaluate("""([element, words]) => {
        const text = element.firstChild, at = text.textContent.indexOf(words), range = document.createRange();
        range.setStart(text, at); range.setEnd(text, at + words.length);
        document.getSelection().removeAllRanges(); document.getSelection().addRange(range);
    }""", [body.element_handle(), CARD])
    page.locator(".msg details.redact summary").first.click()
    words = page.locator(".msg .redact-words").first
    expect(words).to_have_value(CARD, timeout=TIMEOUT)
    page.locator(".msg details.redact select[name=reason]").first.select_option("card_number")
    page.screenshot(path=str(ARTIFACTS / "redact-form.png"), full_page=True)
    page.locator(".msg details.redact button[type=submit]").first.click()
    expect(page.locator(".msg .body").first).to_contain_text("[redacted: card number] twice", timeout=TIMEOUT)
    assert CARD not in page.content()

    supervisor = make_user(UserRole.SUPERVISOR, email="sup@team.test")
    page = open_page(supervisor)
    page.goto(f"{live_server.url}/access-log/?user={agent.id}")
    rows = page.locator("tbody tr")
    # The restricted note was withheld from both views of the page: before the redaction and after it.
    expect(rows.filter(has_text="note #").filter(has_text="refused")).to_have_count(2, timeout=TIMEOUT)
    expect(rows.filter(has_text=f"case #{case.id}")).not_to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "access-log.png"), full_page=True)
