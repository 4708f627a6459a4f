"""Logins, roles and API tokens on the web: the login pages, the role check of every page, bearer tokens."""

import functools
import logging

import redis
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from assist import db, events, users
from assist.models import User, UserRole

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.session_protection = "strong"
# An EventSource cannot follow a redirect to the login page, and the events process has none: 401.
login_manager.blueprint_login_views = {"live": None}  # type: ignore[dict-item]  # None: answer 401


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


def token_required(view):
    """Authenticate an API request by its `Authorization: Bearer <token>` header (401 otherwise)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        user = users.by_token(db.session(), token) if scheme.lower() == "bearer" and token else None
        if user is None:
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
    user = users.authenticate(db.session(), form.email.data, form.password.data)
    if user is None:
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
    try:
        events.end_streams(current_user.id)
    except redis.RedisError as exc:  # logging out works without Redis (and the streams, which need it, fail)
        log.warning("could not end user %s's live streams: %s", current_user.id, exc)
    logout_user()
    return redirect(url_for("auth.login"))
