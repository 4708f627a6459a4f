"""Console logins on the server: each login is a row, so logging out, idling or a deactivated account ends it
whatever copies of the browser's cookie exist.

The browser keeps a random token (in Flask's signed session cookie); the table keeps only its hash.
"""

import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from assist.models import LoginSession, User
from assist.tokens import hash_token

TOUCH_INTERVAL = timedelta(seconds=60)  # last_seen_at is written at most this often


def start(session: Session, user: User, now: datetime) -> str:
    """Open a login session for user and return its token; the caller commits."""
    token = secrets.token_urlsafe(32)
    session.add(LoginSession(id=hash_token(token), user_id=user.id, created_at=now, last_seen_at=now))
    return token


def _lapsed(login: LoginSession, now: datetime, idle: timedelta) -> bool:
    """Whether an open login session may no longer be used: idle longer than idle, or its user deactivated."""
    return not login.user.active or now - login.last_seen_at > idle


def resume(session: Session, token: str, now: datetime, idle: timedelta) -> User | None:
    """The user of the open login session with this token, seen now; None (ending the session) when it has
    ended, was idle longer than idle, or belongs to an inactive user. The caller commits."""
    login = session.get(LoginSession, hash_token(token))
    if login is None or login.ended_at is not None:
        return None
    if _lapsed(login, now, idle):
        login.ended_at = now
        return None
    if now - login.last_seen_at >= TOUCH_INTERVAL:
        login.last_seen_at = now
    return login.user


def user_of(session: Session, token: str, now: datetime, idle: timedelta) -> User | None:
    """The user of the open login session with this token, without counting this as a use of it; None when
    it has ended, idled out or belongs to an inactive user."""
    login = session.get(LoginSession, hash_token(token)) if token else None
    if login is None or login.ended_at is not None or _lapsed(login, now, idle):
        return None
    return login.user


def end(session: Session, token: str, now: datetime) -> None:
    """End the login session with this token (logging out); the caller commits."""
    login = session.get(LoginSession, hash_token(token))
    if login is not None and login.ended_at is None:
        login.ended_at = now


def end_all(session: Session, user: User, now: datetime) -> int:
    """End every open login session of user (deactivation, a password change) and return how many; the caller
    commits."""
    result = session.execute(update(LoginSession)
                             .where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
                             .values(ended_at=now))
    return result.rowcount  # type: ignore[attr-defined]  # an UPDATE's result has one

