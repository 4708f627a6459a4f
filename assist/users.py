"""The team's users: accounts with roles and queues, their phones and passwords; deactivating them."""

import functools
import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from assist import audit, cases, clock, logins, tokens
from assist.errors import InvalidAddress
from assist.models import OPEN_STATUSES, Case, Presence, User, UserRole
from assist.triage.labels import QUEUES
from channels.addresses import normalize_phone

MIN_PASSWORD_LENGTH = 10  # characters


def create_user(session, *, email: str, name: str, role: UserRole, password: str, queues: Sequence[str] = (),
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


def deactivate(session: Session, user: User, *, actor: User | None = None) -> list[Case]:
    """Shut user out: their open sessions end, and no login, no API token, no new cases or calls (routing
    takes active users only); their open cases go back to their queues unassigned. Returns those cases; the
    caller ends the unit of work with cases.done(session, *returned).
    """
    user.active, user.presence, user.on_call = False, Presence.OFFLINE, False
    revoked = tokens.revoke_all(session, user, actor=actor)
    logins.end_all(session, user, clock.now())
    released = list(session.scalars(select(Case).where(Case.assignee_id == user.id, Case.status.in_(OPEN_STATUSES))
                                    .order_by(Case.id)))
    for case in released:
        cases.unassign(session, case, reason="assignee deactivated", actor=actor)
    audit.record(session, "user.deactivated", actor=actor, user_id=user.id, tokens_revoked=revoked,
                 cases_released=len(released))
    return released


def reactivate(session: Session, user: User, *, actor: User | None = None) -> None:
    """Let a deactivated user log in again (their revoked tokens stay revoked); the caller commits."""
    user.active = True
    audit.record(session, "user.reactivated", actor=actor, user_id=user.id)


def by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this email and password, else None."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        # As slow as a known email, so the answer's time does not tell which emails have accounts.
        check_password_hash(_unknown_user_hash(), password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user


@functools.cache
def _unknown_user_hash() -> str:
    """The hash of a random password, made as users' hashes are: checked when no user has the email."""
    return generate_password_hash(secrets.token_urlsafe(16))
