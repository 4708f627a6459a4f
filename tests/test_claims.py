"""Vet claims: eligibility with reasons, one claim per incident, the invoice read, the decision and its letter."""

import io
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from conftest import add_case, configure, count, csrf_token, runtime_of
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from assist import access_log, background, claims, sandbox
from assist.errors import NotDecidable
from assist.models import (
    AccessEntry,
    Booking,
    Claim,
    ClaimStatus,
    Contact,
    Direction,
    Event,
    Member,
    MemberRole,
    Message,
    Pet,
    RawEmail,
    UserRole,
)
from assist.simulate import free_port
from channels.email import parse_email

CUSTOMER = "+15035550199"
ANN_EMAIL = "ann@example.com"
BOOKING_STARTS = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
BOOKING_ENDS = datetime(2026, 6, 2, 14, 0, tzinfo=UTC)  # the app's clock says 2026-06-03 17:00 UTC


@pytest.fixture
def world(session):
    """Ann (owner of Rex, on the booking, and of Mia, who is not), Sam the sitter, Bo's dog Max, and Ann's SMS case
    in the claims queue."""
    ann = Member(external_id="m-ann", role=MemberRole.OWNER, name="Ann Lee", phone=CUSTOMER, email=ANN_EMAIL)
    sam = Member(external_id="m-sam", role=MemberRole.SITTER, name="Sam Cho")
    bo = Member(external_id="m-bo", role=MemberRole.OWNER, name="Bo Park")
    rex = Pet(owner=ann, name="Rex", species="dog")
    mia = Pet(owner=ann, name="Mia", species="cat", notes="chronic kidney disease")
    max_ = Pet(owner=bo, name="Max", species="dog")
    booking = Booking(external_id="b-1", owner=ann, sitter=sam, service="boarding", starts_at=BOOKING_STARTS,
                      ends_at=BOOKING_ENDS, pets=[rex])
    session.add_all([ann, sam, bo, rex, mia, max_, booking])
    session.commit()
    case = add_case(session, queue="claims", phone=CUSTOMER, text="Rex cut his paw, vet bill attached")
    case.contact.member = ann
    session.commit()
    return {"case": case, "ann": ann, "booking": booking, "rex": rex, "mia": mia, "max": max_}


def policy(app) -> claims.Policy:
    return claims.Policy.of(runtime_of(app).settings)


def open_claim(app, session, world, *, pet="rex", incident=BOOKING_ENDS - timedelta(hours=2), amount=30000,
               actor=None, documents=(), case=None):
    claim = claims.open_claim(session, case or world["case"], booking=world["booking"], pet=world[pet],
                              incident_at=incident, clinic="Eastside Vet", lines=[("Exam", 8000), ("Stitches", 22000)],
                              amount_claimed=amount, documents=list(documents), actor=actor, policy=policy(app))
    session.commit()
    return claim


def by_key(app, session, claim) -> dict[str, claims.Check]:
    return {c.key: c for c in claims.checks(session, claim, policy(app))}


def test_an_incident_an_hour_after_the_booking_ended_is_gray_with_its_reason(app, session, world, make_user):
    claim = open_claim(app, session, world, incident=BOOKING_ENDS + timedelta(hours=1), actor=make_user())
    window = by_key(app, session, claim)["window"]
    assert window.outcome == claims.Outcome.GRAY
    assert window.reason == "the incident was 1 hour after the booking ended (within the 3 h gray area)"
    later = claims.eligibility(
        claims.facts_of(session, claim).__class__(**{**vars(claims.facts_of(session, claim)),
                                                     "incident_at": BOOKING_ENDS + timedelta(hours=4)}),
        policy(app))
    assert later[0].outcome == claims.Outcome.FAIL and "4 hours after" in later[0].reason


@pytest.mark.parametrize(("pet", "outcome", "reason"), [
    ("rex", "pass", "Rex is on the booking"),
    ("mia", "gray", "Mia is the owner's pet but not on the booking"),
    ("max", "fail", "Max is not the booking owner's pet"),
], ids=["on the booking", "the owner's, not on it", "someone else's"])
def test_a_pet_not_on_the_booking_is_flagged(app, session, world, make_user, pet, outcome, reason):
    checks = by_key(app, session, open_claim(app, session, world, pet=pet, actor=make_user()))
    assert (checks["pet"].outcome.value, checks["pet"].reason) == (outcome, reason)


def test_pre_existing_conditions_lateness_and_amounts_are_flagged(app, session, world, make_user):
    claim = open_claim(app, session, world, pet="mia", amount=300000, actor=make_user(),
                       incident=BOOKING_STARTS + timedelta(hours=1))
    checks = by_key(app, session, claim)
    assert checks["conditions"].outcome == claims.Outcome.GRAY
    assert "chronic kidney disease" in checks["conditions"].reason
    assert checks["amount"].outcome == claims.Outcome.GRAY and "above the coverage limit" in checks["amount"].reason
    assert checks["party"].outcome == claims.Outcome.PASS
    facts = claims.facts_of(session, claim)
    late = claims.eligibility(type(facts)(**{**vars(facts), "submitted_at": facts.incident_at + timedelta(days=33)}),
                              policy(app))
    assert [c.reason for c in late if c.key == "deadline"] == ["submitted 3 day(s) late (within the 7-day gray area)"]


@pytest.mark.both_databases
def test_a_second_claim_for_the_same_incident_is_refused_by_the_page_and_the_database(app, client, login, session,
                                                                                     world):
    login(UserRole.AGENT, queues=["claims"])
    case = world["case"]
    page = client.get(f"/cases/{case.id}/claims/new")
    assert page.status_code == 200
    form = {"csrf_token": csrf_token(page.get_data(as_text=True)), "booking": world["booking"].id,
            "pet": world["rex"].id, "incident": "2026-06-02T08:00", "clinic": "Eastside Vet", "amount": "300.00",
            "lines-0-description": "Exam", "lines-0-amount": "80", "lines-1-description": "Stitches",
            "lines-1-amount": "220.00"}
    first = client.post(f"/cases/{case.id}/claims/new", data=form)
    assert first.status_code == 302
    claim = session.scalars(select(Claim)).one()
    assert (claim.amount_claimed, [line.amount for line in claim.lines]) == (30000, [8000, 22000])
    again = client.post(f"/cases/{case.id}/claims/new", data={**form, "incident": "2026-06-02T09:30"})
    assert again.status_code == 409
    assert f"Refused: claim #{claim.id} is already open for this incident" in again.get_data(as_text=True)
    assert count(session, Claim) == 1
    # The database backs the rule: a row written past the check is refused too.
    session.add(Claim(case_id=case.id, claimant_id=claim.claimant_id, booking_id=claim.booking_id, pet_id=claim.pet_id,
                      incident_at=claim.incident_at, incident_day=claim.incident_day, clinic="x", currency="USD",
                      amount_claimed=100))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_gray_checks_must_be_confirmed_or_overridden_with_a_note_before_a_decision(app, client, login, session,
                                                                                  world):
    agent = login(UserRole.AGENT, queues=["claims"])
    claim = open_claim(app, session, world, incident=BOOKING_ENDS + timedelta(hours=1), actor=agent)
    page = client.get(f"/claims/{claim.id}")
    token = csrf_token(page.get_data(as_text=True))
    refused = client.post(f"/claims/{claim.id}/decide", data={"csrf_token": token, "decision": "approved",
                                                              "reason": "covered", "action": "send"})
    assert refused.status_code == 400 and "confirm or override first: Incident within the booking" in refused.text
    no_note = client.post(f"/claims/{claim.id}/checks/window", data={"csrf_token": token, "verdict": "override"})
    assert no_note.status_code == 400 and "why the check is overridden" in no_note.text
    confirmed = client.post(f"/claims/{claim.id}/checks/window",
                            data={"csrf_token": token, "verdict": "confirm", "note": "sitter still had Rex"})
    assert confirmed.status_code == 302
    session.expire_all()
    assert session.get(Claim, claim.id).reviews["window"]["verdict"] == "confirm"
    review = session.scalars(select(Event).where(Event.kind == "claim.reviewed")).one()
    assert (review.actor_id, review.data["check"], review.data["note"]) == (agent.id, "window", "sitter still had Rex")


def test_a_claim_over_the_threshold_waits_for_a_lead_and_its_letter_goes_once_by_sms(app, live_server, drain, client,
                                                                                    login, make_user, session, world):
    agent = login(UserRole.AGENT, queues=["claims"])
    claim = open_claim(app, session, world, amount=150000, actor=agent)  # pays 1,450.00: above the lead's 1,000.00
    token = csrf_token(client.get(f"/claims/{claim.id}").get_data(as_text=True))
    decision = {"csrf_token": token, "decision": "approved", "reason": "covered"}
    preview = client.post(f"/claims/{claim.id}/decide", data={**decision, "action": "preview"})
    assert "we will reimburse 1,450.00 USD" in preview.text
    assert not session.scalars(select(Event).where(Event.kind == "claim.decided")).all()  # a preview decides nothing
    assert client.post(f"/claims/{claim.id}/decide", data={**decision, "action": "send"}).status_code == 302
    session.expire_all()
    assert session.get(Claim, claim.id).status == ClaimStatus.AWAITING_LEAD
    assert client.post(f"/claims/{claim.id}/approve", data={"csrf_token": token}).status_code == 403
    assert not session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)).all()

    lead = make_user(UserRole.LEAD)
    with app.app_context():
        from assist import cases, db

        lead_session = db.session()
        waiting = lead_session.get(Claim, claim.id)
        cases.done(lead_session, waiting.case, send=claims.approve(lead_session, waiting, lead_session.merge(lead)))
    drain()
    session.expire_all()
    with app.app_context():
        texts = [m for m in sandbox.sent_messages(background.connection()) if m["to"] == CUSTOMER]
    assert [t["body"] for t in texts] == [session.get(Claim, claim.id).letter]
    assert f"claim #{claim.id} for Rex is approved: we will reimburse 1,450.00 USD" in texts[0]["body"]
    kinds = [(e.kind, e.actor_id) for e in session.scalars(select(Event).where(Event.kind.like("claim.%"))
                                                           .order_by(Event.id))]
    assert kinds == [("claim.opened", agent.id), ("claim.decided", agent.id), ("claim.approved", lead.id)]
    with pytest.raises(NotDecidable):
        claims.approve(session, session.get(Claim, claim.id), lead)  # once sent, never again


def pdf_with(text: str) -> bytes:
    """A one-page PDF whose text is text (Helvetica, one line each)."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=300, height=300)
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject(
        {NameObject("/F1"): writer._add_object(font)})})
    lines = " ".join(f"({line}) Tj 0 -14 Td" for line in text.splitlines())
    stream = DecodedStreamObject()
    stream.set_data(f"BT /F1 10 Tf 20 260 Td {lines} ET".encode())
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def emailed_invoice(session, world, pdf: bytes) -> Message:
    """Ann's email on her case with a PDF invoice, stored as received (raw mail and its message)."""
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = ANN_EMAIL, "incidents@incident-team.test", "Rex's vet bill"
    mail["Message-ID"] = "<invoice-1@example.com>"
    mail.set_content("Here is the invoice from Eastside Vet.")
    mail.add_attachment(pdf, maintype="application", subtype="pdf", filename="invoice.pdf")
    raw = mail.as_bytes()
    inbound = parse_email(raw)
    contact = Contact(email=ANN_EMAIL, member=world["ann"])
    case = world["case"]
    case.contact = contact
    message = Message(case=case, contact=contact, direction=Direction.INBOUND, channel="email", sender=ANN_EMAIL,
                      recipient="incidents@incident-team.test", subject="Rex's vet bill", text=inbound.text,
                      original=inbound.original, attachments=[vars(a) for a in inbound.attachments])
    session.add_all([contact, message])
    session.flush()
    session.add(RawEmail(digest="d" * 64, data=raw, mail_from=ANN_EMAIL, message_id=message.id))
    session.commit()
    return message


def test_a_pdf_invoice_total_is_read_and_a_mismatch_flagged(app, session, world, make_user):
    pdf = pdf_with("Eastside Vet invoice\nExam 80.00\nSubtotal 300.00\nTax 12.00\nTotal due: $312.00")
    message = emailed_invoice(session, world, pdf)
    claim = open_claim(app, session, world, amount=30000, actor=make_user(),
                       documents=[{"message_id": message.id, "index": 0}])
    [found] = claims.invoice_amounts(session, claim)
    assert (found.source, found.amount, found.mismatch) == ("invoice.pdf", 31200, True)
    claim.amount_claimed = 31100  # within 1% of the invoice
    assert not claims.invoice_amounts(session, claim)[0].mismatch


@pytest.fixture
def relay(app):
    """The sandbox's SMTP relay, recording what the service sends (sandbox.sent_emails)."""
    with app.app_context():
        handler = sandbox.MailSink(background.connection())
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    configure(app, smtp_relay=f"127.0.0.1:{port}")
    yield handler
    controller.stop()


def test_a_letter_goes_by_email_to_a_customer_who_wrote_by_email_and_is_audited(app, session, world, make_user,
                                                                               relay, drain):
    message = emailed_invoice(session, world, pdf_with("Total 300.00"))
    agent = make_user(queues=["claims"])
    claim = open_claim(app, session, world, actor=agent, documents=[{"message_id": message.id, "index": 0}])
    with app.app_context():
        from assist import cases, db

        work = db.session()
        mine = work.get(Claim, claim.id)
        letter = claims.decide(work, mine, claims.checks(work, mine, policy(app)), decision="denied",
                               reason_code="missing_records", amount=None, actor=work.merge(agent), policy=policy(app))
        cases.done(work, mine.case, send=letter)
    drain()
    session.expire_all()
    with app.app_context():
        emails = sandbox.sent_emails(background.connection())
    assert [e["to"] for e in emails] == [ANN_EMAIL]
    assert "is not approved. Reason: The vet's records are needed." in emails[0]["body"]
    decided = session.scalars(select(Event).where(Event.kind == "claim.decided")).one()
    assert (decided.actor_id, decided.data["decision"], decided.data["awaiting_lead"]) == (agent.id, "denied", False)
    assert session.get(Claim, claim.id).status == ClaimStatus.DECIDED


def test_an_agent_outside_the_claims_queue_is_refused_and_logged(app, client, login, make_user, session, world):
    claim = open_claim(app, session, world, actor=make_user(UserRole.LEAD, email="lead@team.test"))
    outsider = login(UserRole.AGENT, queues=["claims", "support"])
    assert client.get(f"/claims/{claim.id}").status_code == 200
    outsider.queues = ["support"]
    world["case"].queue = "support"
    session.commit()
    assert client.get(f"/claims/{claim.id}").status_code == 403
    assert client.get(f"/cases/{world['case'].id}/claims/new").status_code == 403
    logged = [(e.kind, e.object_id, e.allowed) for e in reversed(access_log.entries(session, user_id=outsider.id,
                                                                                     kind="claim"))]
    assert logged == [("claim", claim.id, True), ("claim", claim.id, False)]
    assert count(session, AccessEntry) >= 2


def test_the_case_page_links_its_claims_for_the_claims_queue_only(app, client, login, session, world, make_user):
    claim = open_claim(app, session, world, actor=make_user(UserRole.LEAD, email="lead@team.test"))
    login(UserRole.AGENT, queues=["claims"])
    page = client.get(f"/cases/{world['case'].id}").get_data(as_text=True)
    assert re.search(rf'href="/claims/{claim.id}">Claim #{claim.id}</a> · Rex · open', page)
    assert 'id="new-claim"' in page
