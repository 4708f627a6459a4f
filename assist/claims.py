"""Vet claims worked on a case: the claim, its eligibility checks, the invoice amounts read, the decision and
the letter that tells the customer.

Eligibility is never decided silently: every check says pass, gray or fail with its reason (eligibility(), a pure
function of the claim's facts and the policy), and a gray or failed check needs an agent's confirmation or
override, with a note when overriding, before any decision is recorded. A decision paying more than the lead's
threshold waits for a lead or supervisor; its letter goes only then, on the customer's own channel.
"""

import io
import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from zoneinfo import ZoneInfo

from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assist import audit, clock, media, outbound
from assist.errors import DuplicateClaim, NotDecidable, NotKept
from assist.models import (
    Booking,
    Case,
    Claim,
    ClaimLine,
    ClaimStatus,
    Direction,
    Member,
    Message,
    Pet,
    User,
    UserRole,
)
from assist.settings import Settings
from channels.message import Channel

log = logging.getLogger(__name__)

CENTS = Decimal("0.01")
MISMATCH = Decimal("0.01")  # an invoice total further than this share from the amount claimed is flagged
MAX_DOCUMENT = 5 * 1024 * 1024  # bytes of a document read for amounts; a larger one is only attached
MAX_NOTE = 1000  # characters of a reviewer's note


class Outcome(StrEnum):
    PASS = "pass"
    GRAY = "gray"
    FAIL = "fail"


# What a decision may be, and the reasons it may give (a fixed list, so reports can count them).
DECISIONS = {"approved": "Approved", "partial": "Partially approved", "denied": "Denied",
             "needs_info": "Needs information"}
REASONS = {
    "covered": "The incident is covered",
    "partly_covered": "Part of the treatment is covered",
    "outside_booking": "The incident was outside the booking",
    "pet_not_on_booking": "The pet was not on the booking",
    "pre_existing": "A pre-existing condition",
    "late": "Submitted after the deadline",
    "over_limit": "Above the coverage limit",
    "below_deductible": "Below the deductible",
    "duplicate": "Already claimed",
    "missing_invoice": "An itemized invoice is needed",
    "missing_records": "The vet's records are needed",
}

LETTERS = {
    "approved": "Hello {{ name }}, your claim #{{ claim }} for {{ pet }} is approved: we will reimburse "
                "{{ amount }}. Reason: {{ reason }}. — The incident team",
    "partial": "Hello {{ name }}, your claim #{{ claim }} for {{ pet }} is partly approved: we will reimburse "
               "{{ amount }} of the {{ claimed }} claimed. Reason: {{ reason }}. — The incident team",
    "denied": "Hello {{ name }}, we are sorry: your claim #{{ claim }} for {{ pet }} is not approved. "
              "Reason: {{ reason }}. Reply to this message if you have questions. — The incident team",
    "needs_info": "Hello {{ name }}, to decide your claim #{{ claim }} for {{ pet }} we need more: {{ reason }}. "
                  "Please reply with it here. — The incident team",
}
_letters = SandboxedEnvironment(autoescape=False)

# "Total 123.45", "TOTAL DUE: $1,234.50", "Grand total ... 80.00"; never a subtotal (no word boundary inside).
TOTAL = re.compile(r"\btotal\b[^0-9\n]{0,40}?([0-9]{1,3}(?:,[0-9]{3})*(?:\.[0-9]{2})|[0-9]+(?:\.[0-9]{2}))",
                   re.IGNORECASE)
READABLE = ("application/pdf", "text/plain")


@dataclass(frozen=True)
class Policy:
    """The claim settings, amounts in minor units."""

    currency: str
    gray_hours: int
    deadline_days: int
    deadline_gray_days: int
    coverage_limit: int
    deductible: int
    lead_approval: int
    zone: ZoneInfo

    @classmethod
    def of(cls, settings: Settings) -> "Policy":
        return cls(currency=settings.claim_currency, gray_hours=settings.claim_gray_hours,
                   deadline_days=settings.claim_deadline_days, deadline_gray_days=settings.claim_deadline_gray_days,
                   coverage_limit=minor_units(settings.coverage_limit), deductible=minor_units(settings.deductible),
                   lead_approval=minor_units(settings.claim_lead_approval_amount),
                   zone=ZoneInfo(settings.business_timezone))


@dataclass(frozen=True)
class Facts:
    """What eligibility looks at, taken from a claim and its booking."""

    incident_at: datetime
    submitted_at: datetime
    booking_starts: datetime
    booking_ends: datetime
    booking_owner_id: int
    booking_sitter_id: int
    booking_pet_ids: frozenset[int]
    pet_id: int
    pet_name: str
    pet_owner_id: int
    pet_notes: str
    claimant_id: int
    amount_claimed: int
    other_claims: tuple[int, ...]  # ids of other claims for the same booking and pet (another day)


@dataclass(frozen=True)
class Check:
    key: str
    label: str
    outcome: Outcome
    reason: str


@dataclass(frozen=True)
class Found:
    """An amount read from a document or an email, beside what was claimed."""

    source: str
    amount: int
    mismatch: bool


def minor_units(amount: Decimal) -> int:
    return int((amount / CENTS).to_integral_value(ROUND_HALF_UP))


def parse_amount(text: str) -> int:
    """Minor units of an amount typed as "1,234.50" or "80".

    Raises:
        ValueError: text is not a positive amount with at most two decimals.
    """
    try:
        amount = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENTS):
        raise ValueError(f"{text!r} is not a positive amount with at most two decimals")
    return minor_units(amount)


def money(amount: int, currency: str) -> str:
    return f"{Decimal(amount) * CENTS:,.2f} {currency}"


def eligibility(facts: Facts, policy: Policy) -> list[Check]:
    """Every check of a claim, each pass, gray or fail with its reason."""
    return [_window(facts, policy), _pet(facts), _party(facts), _deadline(facts, policy), _amount(facts, policy),
            _earlier(facts), _conditions(facts)]


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f}".rstrip("0").rstrip(".") + (" hour" if hours == 1 else " hours")


def _window(facts: Facts, policy: Policy) -> Check:
    label, gray = "Incident within the booking", timedelta(hours=policy.gray_hours)
    if facts.booking_starts <= facts.incident_at <= facts.booking_ends:
        return Check("window", label, Outcome.PASS, "the incident happened during the booking")
    before = facts.incident_at < facts.booking_starts
    off = facts.booking_starts - facts.incident_at if before else facts.incident_at - facts.booking_ends
    where = "before the booking started" if before else "after the booking ended"
    if off <= gray:
        return Check("window", label, Outcome.GRAY,
                     f"the incident was {_hours(off)} {where} (within the {policy.gray_hours} h gray area)")
    return Check("window", label, Outcome.FAIL, f"the incident was {_hours(off)} {where}")


def _pet(facts: Facts) -> Check:
    label = "Pet on the booking"
    if facts.pet_id in facts.booking_pet_ids:
        return Check("pet", label, Outcome.PASS, f"{facts.pet_name} is on the booking")
    if facts.pet_owner_id == facts.booking_owner_id:
        return Check("pet", label, Outcome.GRAY, f"{facts.pet_name} is the owner's pet but not on the booking")
    return Check("pet", label, Outcome.FAIL, f"{facts.pet_name} is not the booking owner's pet")


def _party(facts: Facts) -> Check:
    label = "Claimant is a party of the booking"
    if facts.claimant_id == facts.booking_owner_id:
        return Check("party", label, Outcome.PASS, "the claimant is the booking's owner")
    if facts.claimant_id == facts.booking_sitter_id:
        return Check("party", label, Outcome.PASS, "the claimant is the booking's sitter")
    return Check("party", label, Outcome.FAIL, "the claimant is neither the owner nor the sitter of the booking")


def _deadline(facts: Facts, policy: Policy) -> Check:
    label = f"Submitted within {policy.deadline_days} days"
    late = facts.submitted_at - facts.incident_at - timedelta(days=policy.deadline_days)
    if late <= timedelta(0):
        return Check("deadline", label, Outcome.PASS, "submitted in time")
    days = late.days + (1 if late.seconds or late.microseconds else 0)
    if late <= timedelta(days=policy.deadline_gray_days):
        return Check("deadline", label, Outcome.GRAY, f"submitted {days} day(s) late (within the "
                                                      f"{policy.deadline_gray_days}-day gray area)")
    return Check("deadline", label, Outcome.FAIL, f"submitted {days} day(s) late")


def _amount(facts: Facts, policy: Policy) -> Check:
    label = "Amount within the coverage"
    claimed = money(facts.amount_claimed, policy.currency)
    if facts.amount_claimed <= policy.deductible:
        return Check("amount", label, Outcome.FAIL,
                     f"{claimed} does not exceed the deductible of {money(policy.deductible, policy.currency)}")
    if facts.amount_claimed > policy.coverage_limit:
        return Check("amount", label, Outcome.GRAY, f"{claimed} is above the coverage limit of "
                                                    f"{money(policy.coverage_limit, policy.currency)}: at most the "
                                                    "limit is paid")
    return Check("amount", label, Outcome.PASS, f"{claimed} is above the deductible and within the limit")


def _earlier(facts: Facts) -> Check:
    label = "No earlier claim for the incident"
    if facts.other_claims:
        shown = ", ".join(f"#{i}" for i in facts.other_claims)
        return Check("earlier", label, Outcome.GRAY, f"claim {shown} for the same pet and booking, another day: "
                                                    "the same incident?")
    return Check("earlier", label, Outcome.PASS, "no other claim for this pet and booking")


def _conditions(facts: Facts) -> Check:
    label = "Pre-existing conditions"
    if facts.pet_notes.strip():
        return Check("conditions", label, Outcome.GRAY, f"the pet's profile notes: {facts.pet_notes.strip()}")
    return Check("conditions", label, Outcome.PASS, "none on the pet's profile")


def facts_of(session: Session, claim: Claim) -> Facts:
    others = session.scalars(select(Claim.id).where(Claim.booking_id == claim.booking_id, Claim.pet_id == claim.pet_id,
                                                    Claim.id != claim.id).order_by(Claim.id)).all()
    booking, pet = claim.booking, claim.pet
    return Facts(incident_at=claim.incident_at, submitted_at=claim.created_at, booking_starts=booking.starts_at,
                 booking_ends=booking.ends_at, booking_owner_id=booking.owner_id, booking_sitter_id=booking.sitter_id,
                 booking_pet_ids=frozenset(p.id for p in booking.pets), pet_id=pet.id, pet_name=pet.name,
                 pet_owner_id=pet.owner_id, pet_notes=pet.notes or "", claimant_id=claim.claimant_id,
                 amount_claimed=claim.amount_claimed, other_claims=tuple(others))


def checks(session: Session, claim: Claim, policy: Policy) -> list[Check]:
    return eligibility(facts_of(session, claim), policy)


# -- opening a claim ------------------------------------------------------------------------------------------------

def choices(session: Session, member: Member) -> tuple[list[Booking], list[Pet]]:
    """The bookings a member is a party of (newest first) and the pets of those bookings' owners."""
    bookings = list(session.scalars(select(Booking).where((Booking.owner_id == member.id)
                                                          | (Booking.sitter_id == member.id))
                                    .order_by(Booking.starts_at.desc())))
    owners = {member.id} | {b.owner_id for b in bookings}
    pets = list(session.scalars(select(Pet).where(Pet.owner_id.in_(owners)).order_by(Pet.name, Pet.id)))
    return bookings, pets


def open_claim(session: Session, case: Case, *, booking: Booking, pet: Pet, incident_at: datetime, clinic: str,
               lines: list[tuple[str, int]], amount_claimed: int, documents: list[dict], actor: User,
               policy: Policy) -> Claim:
    """Open a claim on case for its contact's member; the caller commits.

    Raises:
        DuplicateClaim: the incident (booking, pet, day) is claimed already; the session is then rolled back
            if the database was the one to say so.
        ValueError: the case's contact is no member, or a document is not one of the case's attachments.
    """
    member = case.contact.member
    if member is None:
        raise ValueError("the contact is not matched to a member: a claim needs its claimant")
    for document in documents:
        _attachment_of(session, case, document)
    incident_at = incident_at.astimezone(UTC)  # SQLite keeps no offset: every stored time is UTC
    day = incident_at.astimezone(policy.zone).date()
    earlier = _same_incident(session, booking, pet, day)
    if earlier is not None:
        raise DuplicateClaim(earlier)
    claim = Claim(case=case, claimant=member, booking=booking, pet=pet, incident_at=incident_at, incident_day=day,
                  clinic=clinic, currency=policy.currency, amount_claimed=amount_claimed, documents=documents,
                  created_by_id=actor.id, created_at=clock.now(),
                  lines=[ClaimLine(description=d, amount=a, currency=policy.currency) for d, a in lines])
    session.add(claim)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()  # another agent's claim for the incident was committed since the look above
        raise DuplicateClaim(_same_incident(session, booking, pet, day)) from None
    audit.record(session, "claim.opened", actor=actor, case=case, claim_id=claim.id,
                 amount=amount_claimed, currency=policy.currency)
    return claim


def _same_incident(session: Session, booking: Booking, pet: Pet, day: date) -> int | None:
    return session.scalars(select(Claim.id).where(Claim.booking_id == booking.id, Claim.pet_id == pet.id,
                                                  Claim.incident_day == day)).first()


def _attachment_of(session: Session, case: Case, document: dict) -> tuple[Message, dict]:
    message = session.get(Message, document.get("message_id"))
    index = document.get("index")
    if message is None or message.case_id != case.id or not isinstance(index, int) \
            or not 0 <= index < len(message.attachments):
        raise ValueError(f"{document} is not an attachment of case #{case.id}")
    return message, message.attachments[index]


def attachments(case: Case) -> list[tuple[Message, int, dict]]:
    """Every file the customer sent on case: (message, index, listed attachment)."""
    return [(m, i, a) for m in case.messages if m.direction == Direction.INBOUND for i, a in enumerate(m.attachments)]


# -- the agent's review of each check -------------------------------------------------------------------------------

def review(session: Session, claim: Claim, check: Check, *, override: bool, note: str, actor: User) -> None:
    """Confirm a check's outcome, or override it (with a note saying why); audited.

    Raises:
        NotDecidable: an override without a note, or the claim is decided already.
    """
    note = note.strip()[:MAX_NOTE]
    if override and not note:
        raise NotDecidable("say in a note why the check is overridden")
    if claim.status != ClaimStatus.OPEN:
        raise NotDecidable("the claim is decided: its checks are closed")
    verdict = "override" if override else "confirm"
    claim.reviews = {**(claim.reviews or {}), check.key: {"verdict": verdict, "note": note, "by": actor.name,
                                                          "outcome": check.outcome.value,
                                                          "at": clock.now().isoformat()}}
    audit.record(session, "claim.reviewed", actor=actor, case=claim.case, claim_id=claim.id, check=check.key,
                 outcome=check.outcome.value, verdict=verdict, note=note)


def unreviewed(claim: Claim, found: list[Check]) -> list[Check]:
    """The gray and failed checks nobody has confirmed or overridden (for the outcome they show now)."""
    reviews = claim.reviews or {}
    return [c for c in found if c.outcome != Outcome.PASS
            and reviews.get(c.key, {}).get("outcome") != c.outcome.value]


# -- the decision ---------------------------------------------------------------------------------------------------

def payable(claim: Claim, policy: Policy) -> int:
    """What an approval pays: the amount claimed up to the coverage limit, less the deductible."""
    return max(0, min(claim.amount_claimed, policy.coverage_limit) - policy.deductible)


def letter(claim: Claim, decision: str, reason_code: str, amount: int | None) -> str:
    """The letter telling the customer a decision (their name, pet, amounts; never the agents' notes)."""
    return _letters.from_string(LETTERS[decision]).render(
        name=claim.claimant.name.split()[0] if claim.claimant.name else "there", claim=claim.id, pet=claim.pet.name,
        amount=money(amount or 0, claim.currency), claimed=money(claim.amount_claimed, claim.currency),
        reason=REASONS[reason_code]).strip()


def decide(session: Session, claim: Claim, found: list[Check], *, decision: str, reason_code: str,
           amount: int | None, actor: User, policy: Policy) -> Message | None:
    """Record a decision; the letter to send now (the caller owes its send: cases.done(send=)), or None while a
    decision above the lead's threshold waits for a lead.

    Raises:
        NotDecidable: checks unreviewed, an unknown decision or reason, a partial amount out of bounds.
    """
    if claim.status != ClaimStatus.OPEN:
        raise NotDecidable(f"the claim is {claim.status.value.replace('_', ' ')} already")
    if decision not in DECISIONS or reason_code not in REASONS:
        raise NotDecidable("choose a decision and a reason from the lists")
    waiting = unreviewed(claim, found)
    if waiting and decision != "needs_info":
        raise NotDecidable("confirm or override first: " + ", ".join(c.label for c in waiting))
    paid = _paid(claim, decision, amount, policy)
    claim.outcome, claim.reason_code, claim.amount_approved = decision, reason_code, paid
    claim.letter = letter(claim, decision, reason_code, paid)
    claim.decided_by_id, claim.decided_at = actor.id, clock.now()
    lead_needed = paid is not None and paid > policy.lead_approval and not actor.has_role(UserRole.LEAD)
    audit.record(session, "claim.decided", actor=actor, case=claim.case, claim_id=claim.id, decision=decision,
                 reason=reason_code, amount=paid, awaiting_lead=lead_needed)
    if lead_needed:
        claim.status = ClaimStatus.AWAITING_LEAD
        return None
    return _send(session, claim, actor)


def _paid(claim: Claim, decision: str, amount: int | None, policy: Policy) -> int | None:
    if decision == "approved":
        return payable(claim, policy)
    if decision != "partial":
        return None
    most = payable(claim, policy)
    if amount is None or not 0 < amount < most:
        raise NotDecidable(f"a partial approval pays more than 0 and less than {money(most, claim.currency)}")
    return amount


def approve(session: Session, claim: Claim, actor: User) -> Message:
    """A lead or supervisor approves a decision waiting for them; its letter goes now.

    Raises:
        NotDecidable: the claim waits for no approval, or actor is no lead.
    """
    if not actor.has_role(UserRole.LEAD):
        raise NotDecidable("only a lead or supervisor approves this amount")
    if claim.status != ClaimStatus.AWAITING_LEAD:
        raise NotDecidable("the claim waits for no approval")
    claim.approved_by_id, claim.approved_at = actor.id, clock.now()
    audit.record(session, "claim.approved", actor=actor, case=claim.case, claim_id=claim.id,
                 amount=claim.amount_approved)
    return _send(session, claim, actor)


def _send(session: Session, claim: Claim, actor: User) -> Message:
    """Store the letter as a reply on the customer's channel; asking for more leaves the claim open."""
    message = outbound.create_reply(session, claim.case, claim.letter or "", author=actor)
    claim.letter_message_id = message.id
    claim.status = ClaimStatus.OPEN if claim.outcome == "needs_info" else ClaimStatus.DECIDED
    if claim.status == ClaimStatus.OPEN:
        claim.outcome = claim.reason_code = None
    return message


# -- amounts read from the invoice ----------------------------------------------------------------------------------

def invoice_amounts(session: Session, claim: Claim) -> list[Found]:
    """The totals read from the claim's documents (a PDF's text, a plain-text file) and from the emails that
    carried them, each flagged when it differs from the amount claimed by more than 1%; images are not read."""
    found: list[Found] = []
    seen_bodies: set[int] = set()
    for document in claim.documents or []:
        try:
            message, listed = _attachment_of(session, claim.case, document)
        except ValueError:
            continue  # the file is gone from the case since (removed by retention): nothing left to read
        if message.channel == Channel.EMAIL and message.id not in seen_bodies:
            seen_bodies.add(message.id)
            found += _totals(f"the email of {message.created_at:%b %d}", message.text, claim)
        if listed.get("content_type") in READABLE:
            found += _totals(listed["name"], _document_text(session, message, document["index"], listed), claim)
    return found


def _totals(source: str, text: str, claim: Claim) -> list[Found]:
    amounts = [minor_units(Decimal(m.group(1).replace(",", ""))) for m in TOTAL.finditer(text)]
    if not amounts:
        return []
    total = amounts[-1]  # the last total of a document is its grand total
    off = abs(total - claim.amount_claimed)
    return [Found(source, total, Decimal(off) > MISMATCH * claim.amount_claimed)]


def _document_text(session: Session, message: Message, index: int, listed: dict) -> str:
    """The text of an email's attachment, parsed again from the stored mail ("" when it cannot be read)."""
    if message.channel != Channel.EMAIL or (listed.get("size") or 0) > MAX_DOCUMENT:
        return ""  # MMS files stay with Twilio: they are linked, not fetched to be read
    try:
        download = media.attachment(session, message, index)
    except NotKept:
        return ""
    content = b"".join(download.chunks)
    if listed["content_type"] == "text/plain":
        return content.decode("utf-8", "replace")
    return _pdf_text(content)


def _pdf_text(content: bytes) -> str:
    from pypdf import PdfReader  # imported when first needed
    from pypdf.errors import PdfReadError

    try:
        return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages)
    except (PdfReadError, ValueError, KeyError) as exc:
        log.info("a claim's PDF could not be read (%s): only attached", type(exc).__name__)
        return ""
