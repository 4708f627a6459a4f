"""Safety reviews: a confidential look at a member's conduct, its findings, and a decision that may remove them.

A review is opened on the member behind a case (an agent may only request one: a lead or supervisor opens it).
It gathers every case, message and note involving the member in one dated timeline; its reviewer adds findings
citing a guideline (assist/guidelines.yaml) and decides. A removal stays pending until a second lead or
supervisor approves it. The member's standing (active, warned, suspended until, removed) follows from the
decisions in force; agents see it on any case of theirs, and a new contact from a suspended or removed member is
flagged as it is stored. The member may be told the outcome by a templated message that never sees the findings.
"""

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

import yaml
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from assist import audit, claims, clock, outbound
from assist.models import (
    Booking,
    Case,
    Claim,
    Contact,
    Member,
    Message,
    Note,
    ReviewDecision,
    ReviewFinding,
    ReviewStatus,
    SafetyReview,
    User,
    UserRole,
)

MAX_TEXT_LENGTH = 4000  # characters of a finding or of a decision's reasons
FLAG = "member_standing"  # the key of a flagged message's meta: the sender's standing when it arrived
FLAGGED_STANDINGS = ("suspended", "removed")  # a contact from these is flagged as it arrives

# What the member is told of each decision; rendered in a sandbox from OutcomeContext alone, so no finding or
# internal reason can reach the member.
OUTCOME_TEMPLATES = {
    ReviewDecision.NO_ACTION: "Hi {{ first_name }}, we have finished reviewing your account: no action is needed. "
                              "Thank you for your patience. {{ team_name }}",
    ReviewDecision.WARNING: "Hi {{ first_name }}, after a review of your account we are issuing a formal "
                            "warning under our community guidelines. A further breach may lead to a suspension. "
                            "{{ team_name }}",
    ReviewDecision.SUSPENSION: "Hi {{ first_name }}, after a review of your account it is suspended until "
                               "{{ until }}. You cannot book or be booked until then. {{ team_name }}",
    ReviewDecision.REMOVAL: "Hi {{ first_name }}, after a review of your account it has been removed from the "
                            "platform under our community guidelines. {{ team_name }}",
}
TEAM_NAME = "The incident team"

_sandbox = SandboxedEnvironment(autoescape=False)


@dataclass(frozen=True)
class Guideline:
    id: str
    title: str


@functools.cache
def guidelines() -> tuple[Guideline, ...]:
    """The guidelines and policies a finding may cite, as shipped in assist/guidelines.yaml."""
    text = resources.files("assist").joinpath("guidelines.yaml").read_text(encoding="utf-8")
    return tuple(Guideline(str(g["id"]), str(g["title"])) for g in yaml.safe_load(text))


@dataclass(frozen=True)
class Standing:
    """Where a member stands on the platform: active, warned, suspended (until) or removed, and since when."""

    status: str
    since: datetime | None = None
    until: datetime | None = None


ACTIVE = Standing("active")


def standing(session: Session, member: Member | None) -> Standing:
    """The member's standing now, by the decisions in force: a removal outranks a running suspension, which
    outranks a warning."""
    if member is None:
        return ACTIVE
    now = clock.now()
    in_force = session.scalars(select(SafetyReview).where(SafetyReview.member_id == member.id,
                                                          SafetyReview.status == ReviewStatus.DECIDED)
                               .order_by(SafetyReview.in_force_at.desc())).all()
    for decision, status in ((ReviewDecision.REMOVAL, "removed"), (ReviewDecision.SUSPENSION, "suspended"),
                             (ReviewDecision.WARNING, "warned")):
        for review in in_force:
            running = decision != ReviewDecision.SUSPENSION or (review.suspended_until or now) > now
            if review.decision == decision and running:
                return Standing(status, review.in_force_at, review.suspended_until)
    return ACTIVE


def flag_inbound(session: Session, message: Message) -> None:
    """Flag a message from a suspended or removed member as it is stored, and say so once on its case.

    The case keeps the route its playbook gives it: a removed member may still write about a pet in danger, and
    moving the case to the safety queue would delay that answer; the flag, the case page's banner and a note
    tell whoever handles it."""
    found = standing(session, message.contact.member)
    if found.status not in FLAGGED_STANDINGS:
        return
    message.meta = {**(message.meta or {}), FLAG: found.status}
    case = message.case
    if case is None or any((m.meta or {}).get(FLAG) for m in case.messages if m.id != message.id):
        return
    until = f" until {found.until:%Y-%m-%d}" if found.until else ""
    session.add(Note(case_id=case.id, kind="flag", text=f"This contact is from a member {found.status}{until} after a "
                                                  "safety review. Handle with care; a lead can tell you more."))
    audit.record(session, "member.flagged", case=case, message=message, standing=found.status)


def may_see(user: User, review: SafetyReview) -> bool:
    """Leads, supervisors and admins see every review; an agent only one they are the reviewer of."""
    return user.has_role(UserRole.LEAD) or review.reviewer_id == user.id


def under_way(session: Session) -> list[SafetyReview]:
    """The reviews not decided yet, requests and removals awaiting approval first (they wait for someone)."""
    order = {ReviewStatus.REQUESTED: 0, ReviewStatus.PENDING: 1, ReviewStatus.OPEN: 2}
    found = session.scalars(select(SafetyReview).where(SafetyReview.status != ReviewStatus.DECIDED)
                            .order_by(SafetyReview.id)).all()
    return sorted(found, key=lambda r: order[r.status])


def open_review(session: Session, case: Case, user: User) -> SafetyReview:
    """Open a review of case's member (a lead or more, who becomes its reviewer), or request one (an agent).
    An open review of the member is returned as it is. The caller commits.

    Raises:
        ValueError: the case's contact is not a known member.
    """
    member = case.contact.member
    if member is None:
        raise ValueError("this contact is not matched to a member: there is nobody to review")
    current = session.scalars(select(SafetyReview).where(SafetyReview.member_id == member.id,
                                                         SafetyReview.status != ReviewStatus.DECIDED)).first()
    if current is not None:
        if current.status == ReviewStatus.REQUESTED and user.has_role(UserRole.LEAD):
            take(session, current, user)
        return current
    lead = user.has_role(UserRole.LEAD)
    review = SafetyReview(member=member, case=case, requested_by=user, reviewer=user if lead else None,
                          status=ReviewStatus.OPEN if lead else ReviewStatus.REQUESTED)
    session.add(review)
    session.flush()
    audit.record(session, "review.opened" if lead else "review.requested", actor=user, case=case,
                 review_id=review.id, member_id=member.id)
    return review


def take(session: Session, review: SafetyReview, lead: User) -> None:
    """A lead opens a review an agent requested and becomes its reviewer."""
    if review.status != ReviewStatus.REQUESTED:
        raise ValueError("this review is not waiting for a reviewer")
    review.status, review.reviewer = ReviewStatus.OPEN, lead
    audit.record(session, "review.opened", actor=lead, case=review.case, review_id=review.id,
                 member_id=review.member_id)


def add_finding(session: Session, review: SafetyReview, author: User, guideline: str, text: str) -> ReviewFinding:
    """Add a finding citing a guideline of the list.

    Raises:
        ValueError: the guideline is not on the list, the text is empty, or the review is no longer open.
    """
    if review.status != ReviewStatus.OPEN:
        raise ValueError("findings are added while the review is open")
    if guideline not in {g.id for g in guidelines()}:
        raise ValueError(f"unknown guideline {guideline!r}")
    if not text.strip():
        raise ValueError("a finding needs its text")
    finding = ReviewFinding(review=review, author=author, guideline=guideline, text=text.strip())
    session.add(finding)
    session.flush()
    audit.record(session, "review.finding", actor=author, case=review.case, review_id=review.id,
                 finding_id=finding.id, guideline=guideline)
    return finding


def decide(session: Session, review: SafetyReview, reviewer: User, decision: ReviewDecision, reasons: str,
           suspended_until: datetime | None = None) -> None:
    """Decide an open review: in force at once, but for a removal, which waits for a second reviewer.

    Raises:
        ValueError: the review is not open, the reasons are missing, or a suspension has no end in the future.
    """
    if review.status != ReviewStatus.OPEN:
        raise ValueError("only an open review can be decided")
    if not reviewer.has_role(UserRole.LEAD) and review.reviewer_id != reviewer.id:
        raise ValueError("only the review's reviewer, a lead or a supervisor decides it")
    if not reasons.strip():
        raise ValueError("a decision needs its reasons")
    now = clock.now()
    if decision == ReviewDecision.SUSPENSION:
        if suspended_until is None or suspended_until <= now:
            raise ValueError("a suspension needs an end date in the future")
    else:
        suspended_until = None
    review.decision, review.reasons, review.suspended_until = decision, reasons.strip(), suspended_until
    review.decided_by, review.decided_at = reviewer, now
    if decision == ReviewDecision.REMOVAL:
        review.status = ReviewStatus.PENDING
    else:
        review.status, review.in_force_at = ReviewStatus.DECIDED, now
    audit.record(session, "review.decided", actor=reviewer, case=review.case, review_id=review.id,
                 decision=decision.value, pending=review.status == ReviewStatus.PENDING,
                 until=suspended_until.isoformat() if suspended_until else None)


def approve(session: Session, review: SafetyReview, approver: User) -> None:
    """A second lead or supervisor approves a pending removal, which is then in force.

    Raises:
        ValueError: nothing waits for approval, or the approver is the one who decided or is not a lead.
    """
    if review.status != ReviewStatus.PENDING:
        raise ValueError("this review has no removal waiting for approval")
    if not approver.has_role(UserRole.LEAD):
        raise ValueError("a removal is approved by a lead or a supervisor")
    if approver.id == review.decided_by_id:
        raise ValueError("a removal is approved by a second reviewer, not the one who decided it")
    review.status, review.approved_by, review.in_force_at = ReviewStatus.DECIDED, approver, clock.now()
    audit.record(session, "review.approved", actor=approver, case=review.case, review_id=review.id,
                 decision=review.decision.value if review.decision else None)


@dataclass(frozen=True)
class OutcomeContext:
    """All an outcome message may say: never a finding, nor the reviewers' reasons."""

    first_name: str
    until: str
    team_name: str = TEAM_NAME


def outcome_context(review: SafetyReview) -> OutcomeContext:
    first_name = review.member.name.split()[0] if review.member.name.strip() else "there"
    until = f"{review.suspended_until:%B %d, %Y}" if review.suspended_until else ""
    return OutcomeContext(first_name=first_name, until=until)


def outcome_text(review: SafetyReview) -> str:
    """The message that tells the member the outcome of a decided review."""
    if review.decision is None:
        raise ValueError("the review is not decided")
    return _sandbox.from_string(OUTCOME_TEMPLATES[review.decision]).render(vars(outcome_context(review)))


def tell_member(session: Session, review: SafetyReview, user: User) -> Message:
    """Send the member the outcome, once, on the channel of the case the review was opened from; the caller owes
    the send (outbox) by committing.

    Raises:
        ValueError: the decision is not in force yet, or the member was told already.
        NotSendable: the case's contact has no address on its channel.
    """
    if review.status != ReviewStatus.DECIDED:
        raise ValueError("the member is told once the decision is in force")
    if review.outcome_message_id is not None:
        raise ValueError("the member was told the outcome already")
    message = outbound.create_reply(session, review.case, outcome_text(review), author=user)
    outbound.queue_send(session, message)
    review.outcome_message_id = message.id
    audit.record(session, "review.told", actor=user, case=review.case, message=message, review_id=review.id)
    return message


# -- the timeline of everything involving the member ---------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # case, message, note, claim
    case_id: int
    text: str


def involved_cases(session: Session, member: Member) -> list[Case]:
    """The cases of the member's contacts, and those of the other party of a booking of theirs written during
    that booking."""
    own = session.scalars(select(Case).join(Contact).where(Contact.member_id == member.id)).all()
    bookings = session.scalars(select(Booking).where(or_(Booking.owner_id == member.id,
                                                         Booking.sitter_id == member.id))).all()
    counterparties: dict[int, list[Booking]] = {}
    for booking in bookings:
        other = booking.sitter_id if booking.owner_id == member.id else booking.owner_id
        counterparties.setdefault(other, []).append(booking)
    theirs = session.scalars(select(Case).join(Contact).where(Contact.member_id.in_(counterparties))).all()
    during = [c for c in theirs if any(b.starts_at <= c.created_at <= b.ends_at
                                       for b in counterparties[c.contact.member_id or 0])]
    return sorted({c.id: c for c in [*own, *during]}.values(), key=lambda c: c.id)


def _case_entries(session: Session, cases: list[Case]) -> Iterable[Entry]:
    for case in cases:
        yield Entry(case.created_at, "case", case.id, f"case opened by {case.contact.name or case.contact.address} "
                                                      f"· {case.queue} · {case.status.value}")


def _message_entries(session: Session, cases: list[Case]) -> Iterable[Entry]:
    for case in cases:
        for message in case.messages:
            yield Entry(message.created_at, "message", case.id,
                        f"{message.direction.value} {message.channel}: {message.text}")


def _note_entries(session: Session, cases: list[Case]) -> Iterable[Entry]:
    notes = session.scalars(select(Note).where(Note.case_id.in_([c.id for c in cases]))).all()
    for note in notes:
        author = note.author.name if note.author else "the service"
        yield Entry(note.created_at, "note", note.case_id, f"{note.kind} by {author}: {note.text}")


def _claim_entries(session: Session, cases: list[Case]) -> Iterable[Entry]:
    found = session.scalars(select(Claim).where(Claim.case_id.in_([c.id for c in cases]))).all()
    for claim in found:
        outcome = f" · {claim.outcome}" if claim.outcome else ""
        yield Entry(claim.created_at, "claim", claim.case_id,
                    f"vet claim #{claim.id} for {claim.pet.name} at {claim.clinic}: "
                    f"{claims.money(claim.amount_claimed, claim.currency)} · {claim.status.value}{outcome}")


# What a review's timeline gathers from the cases involving the member: one function per kind of record.
GATHERERS: tuple[Callable[[Session, list[Case]], Iterable[Entry]], ...] = (
    _case_entries, _message_entries, _note_entries, _claim_entries)


def timeline(session: Session, member: Member) -> list[Entry]:
    """Every case, message, note and claim involving the member, oldest first."""
    cases = involved_cases(session, member)
    return sorted((e for gather in GATHERERS for e in gather(session, cases)), key=lambda e: (e.at, e.kind))
