"""Vet claims in the console: open one from a case, review its checks, decide it, and a lead's approval.

Claims are the claims queue's work: its agents, leads and supervisors open them. Every claim page opened, and
every refusal, is in the access log (assist/access_log.py).
"""

from datetime import datetime

from flask import Blueprint, abort, render_template, request
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateTimeLocalField, Form, FormField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields import FieldList
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from assist import access, access_log, cases, claims, db, runtime
from assist.errors import DuplicateClaim, NotDecidable, NotSendable
from assist.models import Case, Claim, UserRole
from assist.web.auth import role_required
from assist.web.helpers import flash_redirect, visible_case_or_404

bp = Blueprint("claims", __name__)

QUEUE = "claims"
LINES = 4  # invoice lines offered on the form


class LineForm(Form):
    description = StringField("Description", validators=[Optional(), Length(max=200)])
    amount = StringField("Amount", validators=[Optional(), Length(max=20)])


class ClaimForm(FlaskForm):
    booking = SelectField("Booking", coerce=int)
    pet = SelectField("Pet", coerce=int)
    incident = DateTimeLocalField("Incident (team time)", format="%Y-%m-%dT%H:%M", validators=[DataRequired()])
    clinic = StringField("Clinic", validators=[DataRequired(), Length(max=200)])
    amount = StringField("Amount claimed", validators=[DataRequired(), Length(max=20)])
    lines = FieldList(FormField(LineForm), min_entries=LINES, max_entries=LINES)
    documents = SelectMultipleField("Documents", option_widget=CheckboxInput(), widget=ListWidget(prefix_label=False))


class ReviewForm(FlaskForm):
    note = TextAreaField("Note", validators=[Length(max=claims.MAX_NOTE)])


class DecisionForm(FlaskForm):
    decision = SelectField("Decision", choices=[SelectChoice(k, v) for k, v in claims.DECISIONS.items()])
    reason = SelectField("Reason", choices=[SelectChoice(k, v) for k, v in claims.REASONS.items()])
    amount = StringField("Amount (partial approval)", validators=[Optional(), Length(max=20)])


def works_claims(user) -> bool:
    return access.sees_all(user) or QUEUE in (user.queues or [])


def _case_for_claims(case_id: int) -> Case:
    case = visible_case_or_404(case_id)
    if not works_claims(current_user):
        abort(403, "claims are the claims queue's work")
    return case


def _claim_or_404(claim_id: int) -> Claim:
    """The claim if the user may work it (logged either way), else 404 (its case out of sight) or 403."""
    session = db.session()
    claim = session.get(Claim, claim_id)
    if claim is None:
        abort(404)
    allowed = access.can_see(current_user, claim.case) and works_claims(current_user)
    access_log.record(session, current_user._get_current_object(), "claim", claim.id, allowed=allowed)
    session.commit()
    if not allowed:
        abort(403 if access.can_see(current_user, claim.case) else 404)
    return claim


@bp.app_template_global()
def claims_of(case: Case) -> list[Claim]:
    """The claims of a case, for its page's card (none for those who do not work claims)."""
    if not works_claims(current_user):
        return []
    return list(db.session().scalars(select(Claim).where(Claim.case_id == case.id).order_by(Claim.id)))


@bp.app_template_global()
def may_open_claims() -> bool:
    return works_claims(current_user)


@bp.route("/cases/<int:case_id>/claims/new", methods=["GET", "POST"])
@role_required(UserRole.AGENT)
def new(case_id: int):
    case = _case_for_claims(case_id)
    member = case.contact.member
    if member is None:
        return flash_redirect("Match the contact to a member first: a claim needs its claimant.", "web.case",
                              category="error", case_id=case.id)
    session = db.session()
    bookings, pets = claims.choices(session, member)
    form = ClaimForm()
    form.booking.choices = [SelectChoice(b.id, f"{b.external_id} · {b.service} · {b.starts_at:%b %d %H:%M}–"
                                               f"{b.ends_at:%b %d %H:%M} UTC") for b in bookings]
    form.pet.choices = [SelectChoice(p.id, f"{p.name} ({p.species})") for p in pets]
    form.documents.choices = [SelectChoice(f"{m.id}:{i}", f"{a['name']} ({a['content_type']})")
                              for m, i, a in claims.attachments(case)]
    if request.method == "GET" or not form.validate():
        return render_template("claim_new.html", case=case, form=form), 400 if form.errors else 200
    policy = claims.Policy.of(runtime.settings())
    try:
        opened = claims.open_claim(
            session, case, booking=next(b for b in bookings if b.id == form.booking.data),
            pet=next(p for p in pets if p.id == form.pet.data),
            incident_at=_team_time(form.incident.data, policy), clinic=form.clinic.data.strip(),
            lines=_lines(form), amount_claimed=_amount(form.amount), actor=current_user,
            documents=[{"message_id": int(m), "index": int(i)} for m, i in (d.split(":") for d in form.documents.data)],
            policy=policy)
    except ValueError as exc:
        form.amount.errors = [*form.amount.errors, str(exc)]
        return render_template("claim_new.html", case=case, form=form), 400
    except DuplicateClaim as exc:
        return render_template("claim_new.html", case=case, form=form, duplicate=exc), 409
    cases.done(session, case)
    return flash_redirect(f"Claim #{opened.id} opened.", "claims.show", claim_id=opened.id)


def _team_time(moment: datetime, policy: claims.Policy) -> datetime:
    return moment.replace(tzinfo=policy.zone)


def _amount(field) -> int:
    """Minor units of an amount field, or a ValueError naming it."""
    try:
        return claims.parse_amount(field.data or "")
    except ValueError as exc:
        raise ValueError(f"{field.label.text}: {exc}") from None


def _lines(form: ClaimForm) -> list[tuple[str, int]]:
    lines = []
    for entry in form.lines:
        line = entry.form  # a FormField's own .description is its label's help text, not the line's
        description, amount = (line.description.data or "").strip(), (line.amount.data or "").strip()
        if description or amount:
            if not description:
                raise ValueError("an invoice line with an amount needs its description")
            lines.append((description, _amount(line.amount)))
    return lines


@bp.get("/claims/<int:claim_id>")
@role_required(UserRole.AGENT)
def show(claim_id: int):
    return _page(_claim_or_404(claim_id))


def _page(claim: Claim, *, decision_form: DecisionForm | None = None, preview: str | None = None,
          error: str | None = None, status: int = 200):
    session = db.session()
    policy = claims.Policy.of(runtime.settings())
    found = claims.checks(session, claim, policy)
    files = {(m.id, i): (m, a) for m, i, a in claims.attachments(claim.case)}
    documents = [(d["index"], *files[(d["message_id"], d["index"])]) for d in claim.documents or []
                 if (d["message_id"], d["index"]) in files]
    return render_template(
        "claim.html", claim=claim, checks=found, waiting={c.key for c in claims.unreviewed(claim, found)},
        invoice=claims.invoice_amounts(session, claim), documents=documents, money=claims.money,
        lines_total=sum(line.amount for line in claim.lines), payable=claims.payable(claim, policy),
        lead_approval=policy.lead_approval, decisions=claims.DECISIONS, reasons=claims.REASONS,
        review_form=ReviewForm(), decision_form=decision_form or DecisionForm(), preview=preview, error=error,
    ), status


@bp.post("/claims/<int:claim_id>/checks/<key>")
@role_required(UserRole.AGENT)
def review(claim_id: int, key: str):
    claim = _claim_or_404(claim_id)
    session = db.session()
    check = next((c for c in claims.checks(session, claim, claims.Policy.of(runtime.settings())) if c.key == key),
                 None)
    form = ReviewForm()
    if check is None or not form.validate():
        abort(400, "no such check, or the note is too long")
    override = request.form.get("verdict") == "override"
    try:
        claims.review(session, claim, check, override=override, note=form.note.data or "", actor=current_user)
    except NotDecidable as exc:
        session.rollback()
        return _page(claim, error=str(exc), status=400)
    cases.done(session, claim.case)
    return flash_redirect(f"“{check.label}” {'overridden' if override else 'confirmed'}.", "claims.show",
                          claim_id=claim.id)


@bp.post("/claims/<int:claim_id>/decide")
@role_required(UserRole.AGENT)
def decide(claim_id: int):
    """Preview the letter of a decision (action=preview), or record the decision and send it (action=send)."""
    claim = _claim_or_404(claim_id)
    session = db.session()
    form = DecisionForm()
    if not form.validate():
        return _page(claim, decision_form=form, status=400)
    policy = claims.Policy.of(runtime.settings())
    try:
        amount = _amount(form.amount) if form.decision.data == "partial" else None
    except ValueError as exc:
        return _page(claim, decision_form=form, error=str(exc), status=400)
    if request.form.get("action") != "send":
        shown = claims.letter(claim, form.decision.data, form.reason.data,
                              amount if form.decision.data == "partial" else claims.payable(claim, policy))
        return _page(claim, decision_form=form, preview=shown)
    try:
        letter = claims.decide(session, claim, claims.checks(session, claim, policy), decision=form.decision.data,
                               reason_code=form.reason.data, amount=amount, actor=current_user, policy=policy)
    except (NotDecidable, NotSendable) as exc:
        session.rollback()
        return _page(claim, decision_form=form, error=str(exc), status=400)
    cases.done(session, claim.case, send=letter)
    said = "Decision recorded; the letter is on its way." if letter else \
        "Decision recorded: above the lead's threshold, it waits for a lead's approval before the letter goes."
    return flash_redirect(said, "claims.show", claim_id=claim.id)


@bp.post("/claims/<int:claim_id>/approve")
@role_required(UserRole.LEAD)
def approve(claim_id: int):
    claim = _claim_or_404(claim_id)
    session = db.session()
    try:
        letter = claims.approve(session, claim, current_user)
    except (NotDecidable, NotSendable) as exc:
        session.rollback()
        return _page(claim, error=str(exc), status=409)
    cases.done(session, claim.case, send=letter)
    return flash_redirect("Approved; the letter is on its way.", "claims.show", claim_id=claim.id)
