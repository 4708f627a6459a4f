"""Safety reviews (assist/reviews.py, assist/web/reviews.py): confidential, two reviewers for a removal, the
member's standing on their cases and at triage, and an outcome message that never carries a finding."""

from datetime import timedelta

import pytest
from conftest import ACCOUNT_SID, PASSWORD, TEAM_NUMBER, csrf_token
from sqlalchemy import select

from assist import access_log, clock, reviews
from assist.models import (
    Case,
    CaseStatus,
    Contact,
    Direction,
    Event,
    Member,
    MemberRole,
    Message,
    Note,
    OutboxEntry,
    ReviewDecision,
    ReviewStatus,
    SafetyReview,
    UserRole,
)
from assist.simulate import sms_params

SITTER_PHONE = "+15035550811"
FINDING = "Left the dog alone for two days; the neighbour fed it"
REASONS = "Repeated neglect confirmed by the owner's photos"


@pytest.fixture
def sitter_case(session):
    """An open case of a sitter, texted from the sitter's own number."""
    sitter = Member(external_id="S-81", role=MemberRole.SITTER, name="Sam Rivers", phone=SITTER_PHONE)
    contact = Contact(phone=SITTER_PHONE, member=sitter, name=sitter.name)
    case = Case(contact=contact, status=CaseStatus.OPEN, queue="safety", urgency="normal")
    message = Message(case=case, contact=contact, direction=Direction.INBOUND, channel="sms", sender=SITTER_PHONE,
                      recipient=TEAM_NUMBER, text="the owner says I left early", original="the owner says I left early")
    session.add_all([sitter, contact, case, message])
    session.commit()
    return case


def log_in(client, user):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    answer = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)[-600:]


def switch(client, user):
    """Log out, then in as user (one client: the test's app context is every request's)."""
    post(client, "/logout")
    log_in(client, user)


def post(client, path: str, **form):
    """Post a form of the console with the CSRF token of the page it comes from."""
    token = csrf_token(client.get("/me").get_data(as_text=True))
    return client.post(path, data={**form, "csrf_token": token})


def open_review(client, case) -> int:
    answer = post(client, f"/cases/{case.id}/review")
    assert answer.status_code == 302, answer.get_data(as_text=True)[-600:]
    review_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    return review_id


def review_of(session, review_id: int) -> SafetyReview:
    session.expire_all()
    return session.get(SafetyReview, review_id)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_removal_waits_for_a_second_reviewer_then_flags_the_members_next_sms(app, client, session, twilio,
                                                                               make_user, sitter_case):
    lead = make_user(UserRole.LEAD, email="lead@team.test")
    supervisor = make_user(UserRole.SUPERVISOR, email="supervisor@team.test")
    log_in(client, lead)
    review_id = open_review(client, sitter_case)
    post(client, f"/reviews/{review_id}/findings", guideline="animal-welfare", text=FINDING)
    post(client, f"/reviews/{review_id}/decision", decision="removal", reasons=REASONS)
    assert review_of(session, review_id).status == ReviewStatus.PENDING
    assert reviews.standing(session, sitter_case.contact.member).status == "active"

    refused = post(client, f"/reviews/{review_id}/approve")  # the one who decided cannot approve
    assert refused.status_code == 302 and review_of(session, review_id).status == ReviewStatus.PENDING
    assert "second reviewer" in client.get(refused.headers["Location"]).get_data(as_text=True)

    switch(client, supervisor)
    assert "removal awaiting approval" in client.get("/reviews/").get_data(as_text=True)
    post(client, f"/reviews/{review_id}/approve")
    review = review_of(session, review_id)
    assert (review.status, review.approved_by_id) == (ReviewStatus.DECIDED, supervisor.id)
    kinds = session.scalars(select(Event.kind).where(Event.kind.like("review.%")).order_by(Event.id)).all()
    assert kinds == ["review.opened", "review.finding", "review.decided", "review.approved"]

    sitter_case.status = CaseStatus.RESOLVED  # the next text opens a case of its own
    session.commit()
    form = sms_params(from_=SITTER_PHONE, to=TEAM_NUMBER, body="can I book again?", account_sid=ACCOUNT_SID)
    assert twilio.post("/twilio/sms", form).status_code == 200
    message = session.scalars(select(Message).where(Message.channel_id == form["MessageSid"])).one()
    assert message.case_id != sitter_case.id
    assert message.meta[reviews.FLAG] == "removed"
    assert message.triage["category"] and "member_standing" not in message.triage  # a flag, not a label
    [flag_note] = session.scalars(select(Note).where(Note.case_id == message.case_id, Note.kind == "flag")).all()
    assert "removed" in flag_note.text and FINDING not in flag_note.text

    page = client.get(f"/cases/{message.case_id}").get_data(as_text=True)
    assert 'id="member-standing"' in page and "<strong>removed</strong>" in page
    assert 'id="member-flag"' in page
    assert FINDING not in page and REASONS not in page


def test_an_agent_is_refused_a_review_and_the_attempt_is_logged(app, client, session, make_user, sitter_case):
    lead = make_user(UserRole.LEAD, email="lead@team.test")
    review = reviews.open_review(session, sitter_case, lead)
    reviews.add_finding(session, review, lead, "respectful-conduct", FINDING)
    session.commit()
    agent = make_user(UserRole.AGENT, email="agent@team.test", queues=["safety"])
    log_in(client, agent)
    assert client.get("/reviews/").status_code == 403
    answer = client.get(f"/reviews/{review.id}")
    assert answer.status_code == 403 and FINDING not in answer.get_data(as_text=True)
    assert post(client, f"/reviews/{review.id}/findings", guideline="no-show", text="mine").status_code == 403
    refusals = access_log.entries(session, user_id=agent.id, kind="review", object_id=review.id)
    assert [e.allowed for e in refusals] == [False, False]
    assert len(review_of(session, review.id).findings) == 1

    switch(client, lead)
    assert FINDING in client.get(f"/reviews/{review.id}").get_data(as_text=True)
    assert access_log.entries(session, user_id=lead.id, kind="review")[0].allowed is True


def test_an_agents_request_waits_for_a_lead_to_open_it(app, client, session, make_user, sitter_case):
    agent = make_user(UserRole.AGENT, email="agent@team.test", queues=["safety"])
    lead = make_user(UserRole.LEAD, email="lead@team.test")
    log_in(client, agent)
    assert "Request a safety review of Sam Rivers" in client.get(f"/cases/{sitter_case.id}").get_data(as_text=True)
    answer = post(client, f"/cases/{sitter_case.id}/review")
    assert answer.headers["Location"].endswith(f"/cases/{sitter_case.id}")
    review = session.scalars(select(SafetyReview)).one()
    assert (review.status, review.reviewer_id, review.requested_by_id) == (ReviewStatus.REQUESTED, None, agent.id)

    switch(client, lead)
    post(client, f"/reviews/{review.id}/take")
    review = review_of(session, review.id)
    assert (review.status, review.reviewer_id) == (ReviewStatus.OPEN, lead.id)

    switch(client, agent)  # asking again is told it is under way, and shown nothing of it
    again = post(client, f"/cases/{sitter_case.id}/review")
    assert again.headers["Location"].endswith(f"/cases/{sitter_case.id}")
    assert "under way" in client.get(again.headers["Location"]).get_data(as_text=True)
    assert session.scalars(select(SafetyReview)).one().id == review.id


def test_the_outcome_goes_out_once_without_the_findings(client, session, make_user, sitter_case):
    lead = make_user(UserRole.LEAD, email="lead@team.test")
    review = reviews.open_review(session, sitter_case, lead)
    reviews.add_finding(session, review, lead, "animal-welfare", FINDING)
    until = clock.now() + timedelta(days=30)
    reviews.decide(session, review, lead, ReviewDecision.SUSPENSION, REASONS, until)
    session.commit()
    assert set(vars(reviews.outcome_context(review))) == {"first_name", "until", "team_name"}

    log_in(client, lead)
    post(client, f"/reviews/{review.id}/tell", confirm="1")
    again = post(client, f"/reviews/{review.id}/tell", confirm="1")
    assert "told the outcome already" in client.get(again.headers["Location"]).get_data(as_text=True)

    session.expire_all()
    [sent] = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)).all()
    assert (sent.channel, sent.recipient, sent.case_id) == ("sms", SITTER_PHONE, sitter_case.id)
    assert "Hi Sam" in sent.text and f"{until:%B %d, %Y}" in sent.text
    assert FINDING not in sent.text and REASONS not in sent.text
    sends = session.scalars(select(OutboxEntry).where(OutboxEntry.target == "assist.jobs.send_message")).all()
    assert [e.args for e in sends] == [[sent.id]]
    assert reviews.standing(session, sitter_case.contact.member) == reviews.Standing(
        "suspended", review_of(session, review.id).in_force_at, until)


def test_a_suspension_ends_on_its_date(session, make_user, sitter_case, clock):
    lead = make_user(UserRole.LEAD, email="lead@team.test")
    review = reviews.open_review(session, sitter_case, lead)
    reviews.decide(session, review, lead, ReviewDecision.SUSPENSION, REASONS, clock.now() + timedelta(days=2))
    session.commit()
    member = sitter_case.contact.member
    assert reviews.standing(session, member).status == "suspended"
    clock.advance(timedelta(days=3).total_seconds())
    assert reviews.standing(session, member).status == "active"


@pytest.mark.parametrize(("decision", "until", "error"), [
    (ReviewDecision.SUSPENSION, None, "end date"),
    (ReviewDecision.SUSPENSION, timedelta(days=-1), "end date"),
    (ReviewDecision.WARNING, None, "reasons"),
], ids=["suspension-without-end", "suspension-in-the-past", "no-reasons"])
def test_a_decision_without_what_it_needs_is_refused(session, make_user, sitter_case, decision, until, error):
    lead = make_user(UserRole.LEAD, email="lead@team.test")
    review = reviews.open_review(session, sitter_case, lead)
    with pytest.raises(ValueError, match=error):
        reviews.decide(session, review, lead, decision, "" if error == "reasons" else REASONS,
                       clock.now() + until if until else None)
    assert review.status == ReviewStatus.OPEN


def test_a_claim_on_a_case_of_the_member_joins_the_reviews_timeline(session, sitter_case):
    from assist.models import Booking, Claim, Pet

    sitter = sitter_case.contact.member
    owner = Member(external_id="O-12", role=MemberRole.OWNER, name="Ola Berg", phone="+15035550812")
    pet = Pet(owner=owner, name="Biscuit", species="dog")
    start = clock.now() - timedelta(days=3)
    booking = Booking(external_id="B-77", owner=owner, sitter=sitter, service="boarding", starts_at=start,
                      ends_at=start + timedelta(days=2), pets=[pet])
    claim = Claim(case=sitter_case, claimant=sitter, booking=booking, pet=pet, incident_at=start,
                  incident_day=start.date(), clinic="Elm St Vets", currency="USD", amount_claimed=12_550)
    session.add_all([owner, pet, booking, claim])
    session.commit()
    [entry] = [e for e in reviews.timeline(session, sitter) if e.kind == "claim"]
    assert entry.case_id == sitter_case.id
    assert f"vet claim #{claim.id} for Biscuit at Elm St Vets" in entry.text and "125.50" in entry.text
