"""Supervisor pages: the team's users, added, edited (details, queues, role), deactivated and reactivated, and
given one-time links to set a new password."""

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, EmailField, IntegerField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, ValidationError
from wtforms.widgets import CheckboxInput

from assist import audit, cases, db
from assist import users as accounts
from assist.errors import InvalidAddress, NotPermitted
from assist.models import User, UserRole
from assist.triage.labels import QUEUES
from assist.web.auth import role_required
from assist.web.helpers import flash_redirect, get_or_404
from channels.addresses import normalize_email


def valid_email(_form, field):
    try:
        normalize_email(field.data or "")
    except InvalidAddress as exc:
        raise ValidationError(str(exc)) from None


def valid_phone(_form, field):
    try:
        accounts.agent_phone(field.data)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


bp = Blueprint("admin", __name__, url_prefix="/admin")


class Checkboxes(SelectMultipleField):
    """Several choices as checkboxes (the template lays each out with its label)."""

    option_widget = CheckboxInput()


class DetailsForm(FlaskForm):
    """What a user's page and the new user form share: who they are and which cases they take."""

    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    role = SelectField("Role", choices=[r.value for r in UserRole])
    queues = Checkboxes("Queues", choices=list(QUEUES))
    capacity = IntegerField("Capacity (open cases at once)", default=5,
                            validators=[NumberRange(min=0, max=accounts.MAX_CAPACITY)])
    phone = StringField("Phone (E.164)", validators=[valid_phone])
    on_call = BooleanField("On call: takes critical cases after hours")


class NewUserForm(DetailsForm):
    email = EmailField("Email", validators=[DataRequired(), valid_email])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=accounts.MIN_PASSWORD_LENGTH)])


class UserForm(DetailsForm):
    active = BooleanField("Active: may log in and is routed cases")


def _roles_for(actor: User) -> list[str]:
    """The roles actor may give: an admin any, others any but admin."""
    return [r.value for r in UserRole if r != UserRole.ADMIN or actor.has_role(UserRole.ADMIN)]


def _no_queue_warning(user: User) -> None:
    if not user.queues and user.active:
        flash(f"{user.email} is in no queue: no case will be routed to them.", "error")


@bp.route("/users", methods=["GET", "POST"])
@role_required(UserRole.SUPERVISOR)
def users():
    form = NewUserForm()
    form.role.choices = _roles_for(current_user)
    session = db.session()
    status = 200
    if form.validate_on_submit():
        role = UserRole(form.role.data)
        try:
            user = accounts.create_user(session, email=form.email.data, name=form.name.data, role=role,
                                        password=form.password.data, queues=form.queues.data,
                                        capacity=form.capacity.data, on_call=form.on_call.data,
                                        phone=form.phone.data)
        except ValueError as exc:
            flash(str(exc), "error")
            status = 400
        else:
            session.flush()
            audit.record(session, "user.created", actor=current_user, user_id=user.id, role=role.value,
                         queues=user.queues, capacity=user.capacity, on_call=user.on_call)
            session.commit()
            flash(f"Created {user.email} ({role.value}).", "info")
            _no_queue_warning(user)
            return redirect(url_for("admin.users"))
    elif form.is_submitted():
        # A role the form does not offer (admin, to a supervisor) fails its choices: refused, not invalid.
        status = 403 if form.role.data == UserRole.ADMIN.value else 400
        if status == 403:
            flash("Only an admin can create admins.", "error")
    team = session.scalars(select(User).order_by(User.role, User.email)).all()
    return render_template("users.html", users=team, form=form, csrf_form=FlaskForm(),
                           may_change=_may_change), status


def _may_change(user: User) -> bool:
    """Whether the logged-in user may change user's account at all (the template hides the controls if not)."""
    return user.role != UserRole.ADMIN or current_user.has_role(UserRole.ADMIN)


def _changeable(user_id: int, *, active: bool | None = None) -> User:
    """The user whose account the logged-in user changes: a 404 if none, a 403 with the reason if not theirs
    to change."""
    user = get_or_404(User, user_id)
    try:
        accounts.check_may_change(current_user, user, active=active)
    except NotPermitted as exc:
        abort(403, str(exc))
    return user


def _user_form(user: User, **kwargs) -> UserForm:
    form = UserForm(obj=user, **kwargs)
    form.role.choices = _roles_for(current_user)
    if user.id == current_user.id:
        # Nobody changes their own role or shuts themselves out: those fields are not on their own page.
        del form.role
        del form.active
    return form


def _user_page(user: User, form: UserForm, *, reset_link: str | None = None, status: int = 200):
    return render_template("user.html", user=user, form=form, csrf_form=FlaskForm(), reset_link=reset_link,
                           reset_hours=accounts.RESET_LINK_HOURS), status


@bp.get("/users/<int:user_id>")
@role_required(UserRole.SUPERVISOR)
def user(user_id: int):
    person = _changeable(user_id)
    form = _user_form(person, data={"role": person.role.value, "phone": person.phone or ""})
    return _user_page(person, form)


@bp.post("/users/<int:user_id>")
@role_required(UserRole.SUPERVISOR)
def edit(user_id: int):
    person = _changeable(user_id)
    form = _user_form(person)
    if not form.validate():
        return _user_page(person, form, status=403 if _asks_for_admin(form) else 400)
    role = UserRole(form.role.data) if "role" in form else None
    active = form.active.data if "active" in form else None
    try:
        accounts.check_may_change(current_user, person, role=role, active=active)
    except NotPermitted as exc:
        abort(403, str(exc))
    changes = {"name": form.name.data, "queues": form.queues.data, "capacity": form.capacity.data,
               "phone": form.phone.data, "on_call": form.on_call.data}
    if role is not None:
        changes["role"] = role
    session = db.session()
    try:
        released = accounts.edit(session, person, actor=current_user, active=active, **changes)
    except ValueError as exc:
        flash(str(exc), "error")
        return _user_page(person, form, status=400)
    cases.done(session, *released)
    flash(f"Saved {person.email}." + (f" {len(released)} open case(s) went back to their queues." if released
                                      else ""), "info")
    _no_queue_warning(person)
    return redirect(url_for("admin.user", user_id=person.id))


def _asks_for_admin(form: UserForm) -> bool:
    """Whether a refused form asked for the admin role it does not offer (a supervisor's forged post)."""
    return "role" in form and form.role.data == UserRole.ADMIN.value and bool(form.role.errors)


@bp.post("/users/<int:user_id>/reset-password")
@role_required(UserRole.SUPERVISOR)
def reset_password(user_id: int):
    person = _changeable(user_id)
    session = db.session()
    try:
        secret = accounts.issue_reset_link(session, person, actor=current_user)
    except ValueError as exc:
        return flash_redirect(str(exc), "admin.user", category="error", user_id=person.id)
    session.commit()
    form = _user_form(person, formdata=None, data={"role": person.role.value, "phone": person.phone or ""})
    # Shown on this page once, never flashed (the session cookie is signed, not secret).
    return _user_page(person, form, reset_link=url_for("auth.reset_password", token=secret, _external=True))


@bp.post("/users/<int:user_id>/deactivate")
@role_required(UserRole.SUPERVISOR)
def deactivate(user_id: int):  # CSRFProtect checks the form's token
    user = _changeable(user_id, active=False)
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
    user = _changeable(user_id, active=True)
    session = db.session()
    accounts.reactivate(session, user, actor=current_user)
    session.commit()
    return flash_redirect(f"Reactivated {user.email}.", "admin.users")
