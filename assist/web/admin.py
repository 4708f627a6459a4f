"""Supervisor pages: the team's users."""

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from assist import audit, db
from assist import users as accounts
from assist.errors import InvalidAddress
from assist.models import User, UserRole
from assist.web.auth import role_required
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
    return render_template("users.html", users=team, form=form), status
