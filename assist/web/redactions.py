"""Redacting part of a stored message from the case page: the words (selected on the page) or a start and end,
with a reason (assist/redaction.py does the work everywhere the message is kept)."""

from flask import Blueprint, abort
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import Length, NumberRange, Optional

from assist import cases, db, redaction, runtime
from assist.models import Message, UserRole
from assist.web.auth import role_required
from assist.web.helpers import flash_redirect, visible_case_or_404

bp = Blueprint("redactions", __name__)

MAX_WORDS = 1000  # characters one redaction names


class RedactForm(FlaskForm):
    words = StringField("Words to redact", validators=[Optional(), Length(max=MAX_WORDS)])
    start = IntegerField("From character", validators=[Optional(), NumberRange(min=0)])
    end = IntegerField("To character", validators=[Optional(), NumberRange(min=1)])
    reason = SelectField("Reason", choices=list(redaction.REASONS))


@bp.post("/cases/<int:case_id>/messages/<int:message_id>/redact")
@role_required(UserRole.AGENT)
def redact(case_id: int, message_id: int):
    """Redact the words given (every occurrence) or the span from start to end of one of the case's messages."""
    case = visible_case_or_404(case_id)
    session = db.session()
    message = session.get(Message, message_id)
    if message is None or message.case_id != case.id:
        abort(404)
    form = RedactForm()
    if not form.validate():
        abort(400, "; ".join(f"{form[name].label.text}: {e}" for name, errors in form.errors.items() for e in errors))
    settings, who = runtime.settings(), current_user._get_current_object()
    try:
        if form.words.data:
            redaction.redact_text(session, message, form.words.data, reason=form.reason.data, actor=who,
                                  settings=settings)
        elif form.start.data is not None and form.end.data is not None:
            redaction.redact(session, message, form.start.data, form.end.data, reason=form.reason.data, actor=who,
                             settings=settings)
        else:
            raise ValueError("give the words to redact, or where they start and end")
    except ValueError as exc:
        session.rollback()
        return flash_redirect(f"Not redacted: {exc}.", "web.case", category="error", case_id=case.id)
    cases.done(session, case)
    return flash_redirect(f"Redacted ({redaction.REASONS[form.reason.data]}).", "web.case", case_id=case.id)
