"""Logins, roles and API tokens."""

import functools
import hashlib
import logging
import secrets

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from assist import db
from assist.errors import InvalidAddress
from assist.models import Presence, User, UserRole
from channels.addresses import normalize_phone

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.session_protection = "strong"

MIN_PASSWORD_LENGTH = 10  # characters


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    user = db.session().get(User, int(user_id))
    return user if user is not None and user.active else None


def role_required(role: UserRole):
    """Let logged-in users with role (or a higher one) in; others get 403."""

    def decorator(view):
        @functools.wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if not current_user.has_role(role):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session, *, email: str, name: str, role: UserRole, password: str, queues: list[str] = (),
                capacity: int = 5, on_call: bool = False, phone: str | None = None,
                presence: Presence = Presence.OFFLINE) -> User:
    """Add a user with a hashed password; the caller commits.

    Raises:
        ValueError: the password is too short or the email is taken.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    email = email.strip().lower()
    if session.scalars(select(User).where(User.email == email)).first():
        raise ValueError(f"a user with the email {email} exists")
    from assist.triage.labels import QUEUES

    unknown = set(queues) - set(QUEUES)
    if unknown:
        raise ValueError(f"unknown queue(s): {', '.join(sorted(unknown))} (queues: {', '.join(QUEUES)})")
    user = User(email=email, name=name, role=role, password_hash=generate_password_hash(password),
                queues=list(queues), capacity=capacity, on_call=on_call, phone=agent_phone(phone),
                presence=Presence(presence))
    session.add(user)
    return user


def agent_phone(raw: str | None) -> str | None:
    """An agent's phone in E.164, or None.

    Raises:
        ValueError: raw is not a phone number.
    """
    if not raw:
        return None
    try:
        return normalize_phone(raw)
    except InvalidAddress as exc:
        raise ValueError(f"phone {raw!r}: {exc}") from None


def issue_api_token(user: User) -> str:
    """Give user a new API token (replacing any old one) and return it; only its hash is kept."""
    token = secrets.token_urlsafe(32)
    user.api_token_hash = hash_token(token)
    return token


def token_required(view):
    """Authenticate an API request by its `Authorization: Bearer <token>` header (401 otherwise)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        user = None
        if scheme.lower() == "bearer" and token:
            user = db.session().scalars(select(User).where(User.api_token_hash == hash_token(token.strip()))).first()
        if user is None or not user.active:
            abort(401)
        g.api_user = user
        return view(*args, **kwargs)

    return wrapper


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if not form.is_submitted():
        return render_template("login.html", form=form)
    if not form.validate():
        return render_template("login.html", form=form), 400
    user = db.session().scalars(select(User).where(User.email == form.email.data.strip().lower())).first()
    if user is None or not user.active or not check_password_hash(user.password_hash, form.password.data):
        flash("Wrong email or password.", "error")
        return render_template("login.html", form=form), 401
    login_user(user)
    log.info("user %s logged in", user.id)
    target = request.args.get("next", "")
    # Only same-site paths: an absolute "next" would make this an open redirect.
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("web.index")
    return redirect(target)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("auth.login"))
