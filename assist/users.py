"""The team's users: accounts with roles and queues, their phones, API tokens and passwords."""

import functools
import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from assist.errors import InvalidAddress
from assist.models import Presence, User, UserRole
from assist.triage.labels import QUEUES
from channels.addresses import normalize_phone

MIN_PASSWORD_LENGTH = 10  # characters


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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


def issue_api_token(user: User) -> str:
    """Give user a new API token (replacing any old one) and return it; only its hash is kept."""
    token = secrets.token_urlsafe(32)
    user.api_token_hash = hash_token(token)
    return token


def by_token(session: Session, token: str) -> User | None:
    """The active user an API token belongs to."""
    user = session.scalar(select(User).where(User.api_token_hash == hash_token(token.strip())))
    return user if user is not None and user.active else None


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
