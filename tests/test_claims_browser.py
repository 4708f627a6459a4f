"""A vet claim in a real browser: opened from its case, a gray check confirmed, decided with its letter."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import test_claims
from conftest import ARTIFACTS, runtime_of
from test_claims import BOOKING_ENDS

from assist.models import UserRole

# The fixture this test shares with the claims' own tests.
world = test_claims.world


def test_an_agent_opens_a_claim_confirms_its_gray_check_and_decides_it(open_page, live_server, make_user, world,
                                                                        app):
    ARTIFACTS.mkdir(exist_ok=True)
    zone = ZoneInfo(runtime_of(app).settings.business_timezone)
    page = open_page(make_user(UserRole.AGENT, queues=["claims"]))
    page.goto(f"{live_server.url}/cases/{world['case'].id}")
    page.click("#new-claim")
    page.select_option("select[name=pet]", label="Rex (dog)")
    page.fill("input[name=incident]", (BOOKING_ENDS + timedelta(hours=1)).astimezone(zone).strftime("%Y-%m-%dT%H:%M"))
    page.fill("input[name=clinic]", "Eastside Vet")
    page.fill("input[name=amount]", "300.00")
    page.fill("input[name='lines-0-description']", "Exam and stitches")
    page.fill("input[name='lines-0-amount']", "300.00")
    page.click("#claim-form button[type=submit]")

    window = page.locator("[data-check=window]")
    window.get_by_text("1 hour after the booking ended").wait_for(timeout=5000)
    assert "check-gray" in window.get_attribute("class")
    window.locator("textarea").fill("The sitter still had Rex at the hand-over")
    window.get_by_role("button", name="Confirm gray").click()
    page.locator("[data-check=window] .reviewed").get_by_text("Confirmed by agent user").wait_for()

    page.select_option("select[name=decision]", "approved")
    page.select_option("select[name=reason]", "covered")
    page.get_by_role("button", name="Preview the letter").click()
    assert "we will reimburse 250.00 USD" in page.locator("#letter-preview").inner_text(timeout=5000)
    page.click("#send-decision")
    page.locator("#decision-outcome").get_by_text("Approved: 250.00 USD").wait_for()
    page.screenshot(path=str(ARTIFACTS / "claim-decided.png"), full_page=True)
