"""A safety review in Debian's Chromium: a lead opens it from a sitter's case, adds a finding and decides; the
member's case then shows their standing."""


from conftest import ARTIFACTS, PASSWORD, TEAM_NUMBER
from sqlalchemy import select

from assist.models import Case, CaseStatus, Contact, Direction, Member, MemberRole, Message, SafetyReview, UserRole

SITTER_PHONE = "+15035550812"


def test_a_lead_opens_a_review_from_a_case_adds_a_finding_and_decides(browser, live_server, session, make_user):
    sitter = Member(external_id="S-82", role=MemberRole.SITTER, name="Sam Rivers", phone=SITTER_PHONE)
    contact = Contact(phone=SITTER_PHONE, member=sitter, name=sitter.name)
    case = Case(contact=contact, status=CaseStatus.OPEN, queue="safety", urgency="normal")
    session.add_all([sitter, contact, case, Message(
        case=case, contact=contact, direction=Direction.INBOUND, channel="sms", sender=SITTER_PHONE,
        recipient=TEAM_NUMBER, text="the owner says I was rude", original="the owner says I was rude")])
    session.commit()
    lead = make_user(UserRole.LEAD)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    problems: list[str] = []
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", lead.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")

    page.goto(f"{live_server.url}/cases/{case.id}")
    page.click("#open-review")
    page.wait_for_url("**/reviews/*")
    assert "the owner says I was rude" in page.inner_text("#review-timeline")
    page.select_option("#finding-guideline", "respectful-conduct")
    page.fill("#finding-text", "Swore at the owner on the phone; the owner sent a recording")
    page.click("#finding-form button[type=submit]")
    page.wait_for_selector("#findings >> text=Swore at the owner")
    assert "No threats, harassment" in page.inner_text("#findings")
    page.select_option("#decision", "warning")
    page.fill("#reasons", "A first breach, admitted")
    page.click("#decision-form button[type=submit]")
    page.wait_for_selector("text=Decision in force.")
    assert page.inner_text("#review-standing") == "warned"
    assert "formal warning" in page.inner_text("#outcome-text")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review.png"), full_page=True)

    page.goto(f"{live_server.url}/cases/{case.id}")
    assert "This member is warned" in page.inner_text("#member-standing")
    page.screenshot(path=str(ARTIFACTS / "case-standing.png"), full_page=True)
    context.close()
    review = session.scalars(select(SafetyReview)).one()
    assert (review.decision.value, review.reviewer_id, len(review.findings)) == ("warning", lead.id, 1)
    assert problems == []
