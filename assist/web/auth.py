"""Logins, roles and API tokens on the web: the login pages, the role check of every page, bearer tokens."""

import functools
import logging
from datetime import timedelta

import redis
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from assist import db, events, logins, runtime, tokens, users
from assist.errors import ResetLinkRefused
from assist.models import TokenScope, User, UserRole
from assist.web import throttle
from assist.web.helpers import same_site

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.session_protection = "strong"
LOGIN_KEY = "login"  # the Flask session's key for the login session's token (assist/logins.py)
# An EventSource cannot follow a redirect to the login page, and the events process has none: 401.
login_manager.blueprint_login_views = {"live": None}  # type: ignore[dict-item]  # None: answer 401


def passive(view):
    """Mark a view that a page calls by itself (a heartbeat, a live update): it is not the user's activity, so a
    console left open still idles out. Put it above role_required."""
    view.passive = True
    return view


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The user of this cookie's login session, if it is still open on the server (every request that looks
    at the user checks it: a copy of the cookie is worth nothing once the session has ended)."""
    token = session.get(LOGIN_KEY)
    idle = timedelta(minutes=runtime.settings().session_idle_minutes)
    by_itself = getattr(current_app.view_functions.get(request.endpoint or ""), "passive", False)
    look_up = logins.user_of if by_itself else logins.resume  # user_of does not count as a use of the login
    user = look_up(db.session(), token, runtime.now(), idle) if token else None
    if db.session().dirty:  # last_seen_at (at most once a minute), or the session's end
        db.session().commit()
    if user is not None and str(user.id) == user_id:
        return user
    # Flask-Login's own remember-me cookie is never set (login_user(remember=False)); one forged with the
    # secret key still lands here without a token, and is refused.
    session.pop("_user_id", None)
    session.pop(LOGIN_KEY, None)
    flash("Your session has ended; log in again.", "info")
    return None


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


def token_required(view=None, *, scope: TokenScope = TokenScope.READ):
    """Authenticate an API request by its `Authorization: Bearer <token>` header: 401 without a usable token
    (unknown, expired, revoked, its owner deactivated), 403 when the token's scope is below scope. The view
    finds the token in g.api_token and its owner in g.api_user."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
            session = db.session()
            token = tokens.authenticate(session, secret) if scheme.lower() == "bearer" and secret else None
            if token is None:
                abort(401)
            if session.dirty:
                session.commit()  # its last use
            if scope == TokenScope.WRITE and token.scope != TokenScope.WRITE:
                abort(403, "this token may only read (its scope is read)")
            g.api_token, g.api_user = token, token.user
            return view(*args, **kwargs)

        return wrapper

    return decorator(view) if view is not None else decorator


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


@bp.route("/login", methods=["GET", "POST"])
@throttle.failed_logins
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
    token = logins.start(db.session(), user, runtime.now())
    db.session().commit()
    login_user(user, remember=False)
    session[LOGIN_KEY] = token
    log.info("user %s logged in", user.id)
    return redirect(same_site(request.args.get("next"), "web.index"))


@bp.errorhandler(429)
def too_many_failures(_error):
    flash("Too many failed logins: wait a few minutes, or ask a supervisor to check your account.", "error")
    return render_template("login.html", form=LoginForm()), 429


@bp.post("/logout")
@login_required
def logout():
    token = session.pop(LOGIN_KEY, None)
    if token:
        logins.end(db.session(), token, runtime.now())
        db.session().commit()
    try:
        events.end_streams(current_user.id)
    except redis.RedisError as exc:  # logging out works without Redis (and the streams, which need it, fail)
        log.warning("could not end user %s's live streams: %s", current_user.id, exc)
    logout_user()
    return redirect(url_for("auth.login"))


class NewPasswordForm(FlaskForm):
    token = HiddenField()
    password = PasswordField("New password", validators=[DataRequired(), Length(min=users.MIN_PASSWORD_LENGTH)])
    again = PasswordField("The same again", validators=[EqualTo("password", "the two passwords differ")])


@bp.route("/reset-password", methods=["GET", "POST"])
def reset_password():
    """Set a new password with a one-time link an admin or supervisor made (assist.users.issue_reset_link).

    The link carries its token in the query string, which access logs leave out (the README's format logs
    the path alone); the form sends it back in its body.
    """
    session = db.session()
    form = NewPasswordForm(data={"token": request.args.get("token", "")})
    try:
        link = users.reset_link(session, form.token.data or "")
    except ResetLinkRefused as exc:
        return render_template("reset_password.html", refused=str(exc)), 410
    if not form.validate_on_submit():
        return render_template("reset_password.html", form=form, email=link.user.email), \
            400 if form.is_submitted() else 200
    user = users.reset_password(session, form.token.data, form.password.data)
    session.commit()
    log.info("user %s set a new password with a reset link", user.id)
    flash("Your new password is set: log in with it.", "info")
    return redirect(url_for("auth.login"))
