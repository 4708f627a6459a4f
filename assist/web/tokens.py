"""The API tokens page: a user's own tokens (an admin sees everyone's), created (shown once) and revoked."""

from flask import Blueprint, abort, render_template
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange

from assist import clock, db, tokens
from assist.models import ApiToken, TokenScope, UserRole
from assist.web.auth import role_required
from assist.web.helpers import flash_redirect, get_or_404

bp = Blueprint("tokens", __name__, url_prefix="/tokens")


class TokenForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=tokens.MAX_NAME_LENGTH)])
    scope = SelectField("Scope", choices=[s.value for s in TokenScope], default=TokenScope.READ.value)
    days = IntegerField("Days valid", default=tokens.DEFAULT_DAYS,
                        validators=[DataRequired(), NumberRange(min=1, max=tokens.MAX_DAYS)])


def _page(form: TokenForm, *, created: str | None = None, status: int = 200):
    everyone = current_user.has_role(UserRole.ADMIN)
    return render_template("tokens.html", tokens=tokens.listed(db.session(), None if everyone else current_user),
                           everyone=everyone, form=form, created=created, state=tokens.state, now=clock.now(),
                           max_days=tokens.MAX_DAYS, csrf_form=FlaskForm()), status


@bp.get("/")
@role_required(UserRole.AGENT)
def index():
    return _page(TokenForm())


@bp.post("/")
@role_required(UserRole.AGENT)
def create():
    form = TokenForm()
    if not form.validate():
        return _page(form, status=400)
    session = db.session()
    try:
        _token, secret = tokens.issue(session, current_user, name=form.name.data, scope=TokenScope(form.scope.data),
                                      days=form.days.data, actor=current_user)
    except ValueError as exc:
        form.name.errors.append(str(exc))
        return _page(form, status=400)
    session.commit()
    # Shown on this page once, never put in the flashed messages (the session cookie is signed, not secret).
    return _page(TokenForm(formdata=None), created=secret)


@bp.post("/<int:token_id>/revoke")
@role_required(UserRole.AGENT)
def revoke(token_id: int):
    token = get_or_404(ApiToken, token_id)
    if token.user_id != current_user.id and not current_user.has_role(UserRole.ADMIN):
        abort(404)  # someone else's token: as if there were none
    session = db.session()
    revoked = tokens.revoke(session, token, actor=current_user)
    session.commit()
    return flash_redirect(f"Revoked the token {token.name!r}." if revoked else "That token was already revoked.",
                          "tokens.index")
