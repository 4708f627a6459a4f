"""Logins, roles and API tokens on the web: the login pages, the role check of every page, bearer tokens."""

import functools
import logging

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from assist import db, tokens, users
from assist.models import TokenScope, User, UserRole

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.session_protection = "strong"


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
    logout_user()
    return redirect(url_for("auth.login"))
