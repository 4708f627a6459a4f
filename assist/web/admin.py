"""Supervisor pages: the team's users, added, deactivated and reactivated."""

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from assist import audit, cases, db
from assist import users as accounts
from assist.errors import InvalidAddress
from assist.models import User, UserRole
from assist.web.auth import role_required
from assist.web.helpers import flash_redirect, get_or_404
from channels.addresses import normalize_email


def valid_email(_form, field):
    try:
        normalize_email(field.data or "")
    except InvalidAddress as exc:
        raise ValidationError(str(exc)) from None

bp = Blueprint("admin", __name__, url_prefix="/admin")


class UserForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), valid_email])
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    role = SelectField("Role", choices=[r.value for r in UserRole])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=accounts.MIN_PASSWORD_LENGTH)])


@bp.route("/users", methods=["GET", "POST"])
@role_required(UserRole.SUPERVISOR)
def users():
    form = UserForm()
    session = db.session()
    status = 200
    if form.validate_on_submit():
        role = UserRole(form.role.data)
        if role == UserRole.ADMIN and not current_user.has_role(UserRole.ADMIN):
            flash("Only an admin can create admins.", "error")
            status = 403
        else:
            try:
                user = accounts.create_user(session, email=form.email.data, name=form.name.data, role=role,
                                        password=form.password.data)
            except ValueError as exc:
                flash(str(exc), "error")
                status = 400
            else:
                session.flush()
                audit.record(session, "user.created", actor=current_user, user_id=user.id, role=role.value)
                session.commit()
                flash(f"Created {user.email} ({role.value}).", "info")
                return redirect(url_for("admin.users"))
    elif form.is_submitted():
        status = 400
    team = session.scalars(select(User).order_by(User.role, User.email)).all()
    return render_template("users.html", users=team, form=form, csrf_form=FlaskForm()), status


def _managed(user_id: int) -> User:
    """The user to (de)activate: not oneself, and an admin only by an admin (403)."""
    user = get_or_404(User, user_id)
    if user.id == current_user.id:
        abort(403, "you cannot deactivate yourself")
    if user.role == UserRole.ADMIN and not current_user.has_role(UserRole.ADMIN):
        abort(403, "only an admin can deactivate or reactivate an admin")
    return user


@bp.post("/users/<int:user_id>/deactivate")
@role_required(UserRole.SUPERVISOR)
def deactivate(user_id: int):  # CSRFProtect checks the form's token
    user = _managed(user_id)
    if not user.active:
        return flash_redirect(f"{user.email} is already deactivated.", "admin.users")
    session = db.session()
    released = accounts.deactivate(session, user, actor=current_user)
    cases.done(session, *released)
    return flash_redirect(f"Deactivated {user.email}: their tokens are revoked and {len(released)} open case(s) "
                          "went back to their queues.", "admin.users")


@bp.post("/users/<int:user_id>/reactivate")
@role_required(UserRole.SUPERVISOR)
def reactivate(user_id: int):
    user = _managed(user_id)
    session = db.session()
    accounts.reactivate(session, user, actor=current_user)
    session.commit()
    return flash_redirect(f"Reactivated {user.email}.", "admin.users")
