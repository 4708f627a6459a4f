"""Safety reviews in the console: open one from a case, gather, add findings, decide, approve a removal, tell the
member. Every view of a review, and every refusal, is kept in the access log."""

from datetime import UTC, datetime, time

from flask import Blueprint, abort, render_template, request
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from assist import access_log, db, outbox, reviews
from assist.errors import NotSendable
from assist.models import ReviewDecision, ReviewStatus, SafetyReview, UserRole
from assist.web.auth import role_required
from assist.web.helpers import flash_redirect, get_or_404, visible_case_or_404

bp = Blueprint("reviews", __name__)


class FindingForm(FlaskForm):
    guideline = SelectField("Guideline or policy")
    text = TextAreaField("Finding", validators=[DataRequired(), Length(max=reviews.MAX_TEXT_LENGTH)])


class DecisionForm(FlaskForm):
    decision = SelectField("Decision", choices=[SelectChoice(d.value, d.value.replace("_", " "))
                                                           for d in ReviewDecision])
    until = DateField("Suspended until", validators=[Optional()])
    reasons = TextAreaField("Reasons", validators=[DataRequired(), Length(max=reviews.MAX_TEXT_LENGTH)])


def _finding_form() -> FindingForm:
    form = FindingForm()
    form.guideline.choices = [SelectChoice(g.id, g.title) for g in reviews.guidelines()]
    return form


def _review_or_403(review_id: int) -> SafetyReview:
    """The review if the user may see it; a refusal is a 403 (the user knows reviews exist) kept in the access
    log, as every view is."""
    review = get_or_404(SafetyReview, review_id)
    user = current_user._get_current_object()
    allowed = reviews.may_see(user, review)
    access_log.record(db.session(), user, "review", review.id, allowed=allowed)
    db.session().commit()
    if not allowed:
        abort(403)
    return review


@bp.post("/cases/<int:case_id>/review")
@role_required(UserRole.AGENT)
def open_review(case_id: int):
    """Open a safety review of the case's member (leads and supervisors), or request one (agents)."""
    case = visible_case_or_404(case_id)
    session = db.session()
    try:
        review = reviews.open_review(session, case, current_user)
    except ValueError as exc:
        return flash_redirect(f"No review: {exc}.", "web.case", category="error", case_id=case.id)
    session.commit()
    if review.status == ReviewStatus.REQUESTED:
        return flash_redirect("Safety review requested: a lead opens it.", "web.case", case_id=case.id)
    if not reviews.may_see(current_user, review):  # an agent asking again: it is under way, and not theirs to read
        return flash_redirect("A safety review of this member is under way.", "web.case", case_id=case.id)
    return flash_redirect("Safety review open.", "reviews.review", review_id=review.id)


@bp.get("/reviews/")
@role_required(UserRole.LEAD)
def index():
    """The reviews under way: requests to open, removals to approve, reviews open."""
    return render_template("reviews.html", reviews=reviews.under_way(db.session()))


@bp.get("/reviews/<int:review_id>")
@role_required(UserRole.AGENT)
def review(review_id: int):
    return _page(_review_or_403(review_id))


def _page(review: SafetyReview, *, finding_form=None, decision_form=None, status: int = 200):
    session = db.session()
    titles = {g.id: g.title for g in reviews.guidelines()}
    return render_template(
        "review.html", review=review, timeline=reviews.timeline(session, review.member), titles=titles,
        standing=reviews.standing(session, review.member), finding_form=finding_form or _finding_form(),
        decision_form=decision_form or DecisionForm(), csrf_form=FlaskForm(),
        outcome=reviews.outcome_text(review) if review.decision else None,
    ), status


def _act(review: SafetyReview, action, done: str):
    """Run action on review and commit, or show the page again with why it was refused."""
    session = db.session()
    try:
        action()
    except (ValueError, NotSendable) as exc:
        session.rollback()
        return flash_redirect(f"Not done: {exc}.", "reviews.review", category="error", review_id=review.id)
    outbox.commit(session)  # hands an outcome message's send to the workers at once
    return flash_redirect(done, "reviews.review", review_id=review.id)


@bp.post("/reviews/<int:review_id>/take")
@role_required(UserRole.LEAD)
def take(review_id: int):
    review = _review_or_403(review_id)
    return _act(review, lambda: reviews.take(db.session(), review, current_user), "You review this member now.")


@bp.post("/reviews/<int:review_id>/findings")
@role_required(UserRole.AGENT)
def add_finding(review_id: int):
    review = _review_or_403(review_id)
    form = _finding_form()
    if not form.validate():
        return _page(review, finding_form=form, status=400)
    return _act(review, lambda: reviews.add_finding(db.session(), review, current_user, form.guideline.data,
                                                    form.text.data), "Finding added.")


@bp.post("/reviews/<int:review_id>/decision")
@role_required(UserRole.AGENT)
def decide(review_id: int):
    review = _review_or_403(review_id)
    form = DecisionForm()
    if not form.validate():
        return _page(review, decision_form=form, status=400)
    decision = ReviewDecision(form.decision.data)
    # A suspension runs to the end of its last day (UTC).
    until = datetime.combine(form.until.data, time.max, tzinfo=UTC) if form.until.data else None
    done = ("Removal decided: it waits for a second reviewer's approval." if decision == ReviewDecision.REMOVAL
            else "Decision in force.")
    return _act(review, lambda: reviews.decide(db.session(), review, current_user, decision, form.reasons.data,
                                               until), done)


@bp.post("/reviews/<int:review_id>/approve")
@role_required(UserRole.LEAD)
def approve(review_id: int):
    review = _review_or_403(review_id)
    return _act(review, lambda: reviews.approve(db.session(), review, current_user), "Removal approved: in force.")


@bp.post("/reviews/<int:review_id>/tell")
@role_required(UserRole.AGENT)
def tell(review_id: int):
    """Send the member the outcome message (once)."""
    review = _review_or_403(review_id)
    if request.form.get("confirm") != "1":
        abort(400, "confirm must be 1")
    return _act(review, lambda: reviews.tell_member(db.session(), review, current_user),
                "The outcome is on its way to the member.")
