"""The agents' pages: the case list and a case with its messages and a reply box."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from assist import db, outbound
from assist.auth import role_required
from assist.cases import list_cases
from assist.models import Case, CaseStatus, UserRole

bp = Blueprint("web", __name__)

MAX_REPLY_LENGTH = 1600  # characters: Twilio's limit for one SMS body


class ReplyForm(FlaskForm):
    text = TextAreaField("Reply", validators=[DataRequired(), Length(max=MAX_REPLY_LENGTH)])


@bp.get("/")
@role_required(UserRole.AGENT)
def index():
    status = request.args.get("status") or None
    if status and status not in {s.value for s in CaseStatus}:
        abort(400, f"unknown status {status!r}")
    cases = list_cases(db.session(), status=status, open_only=status is None,
                       queue=request.args.get("queue") or None)
    return render_template("cases.html", cases=cases, status=status)


@bp.get("/cases/<int:case_id>")
@role_required(UserRole.AGENT)
def case(case_id: int):
    return render_template("case.html", case=_get_case(case_id), form=ReplyForm())


@bp.post("/cases/<int:case_id>/reply")
@role_required(UserRole.AGENT)
def reply(case_id: int):
    case = _get_case(case_id)
    form = ReplyForm()
    if not form.validate():
        return render_template("case.html", case=case, form=form), 400
    session = db.session()
    message = outbound.create_reply(session, case, form.text.data, author=current_user)
    session.commit()
    outbound.enqueue_send(message)
    flash("Reply queued." if message.delivery_status.value == "pending" else
          "Not sent: the contact has opted out.", "info")
    return redirect(url_for("web.case", case_id=case.id))


def _get_case(case_id: int) -> Case:
    case = db.session().get(Case, case_id)
    if case is None:
        abort(404)
    return case
