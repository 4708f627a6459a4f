"""API tokens: issued with a name, a scope and an expiry, shown once, kept as their SHA-256, revoked at will.

A token acts with its owner's visibility (assist.access) and no more than its scope allows.
"""

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from assist import audit, clock
from assist.models import ApiToken, TokenScope, User

DEFAULT_DAYS = 90  # days a token lasts unless told otherwise
MAX_DAYS = 365  # days: no token lasts longer
LAST_USED_EVERY = 60  # seconds: last_used_at is written at most this often, not on every request
MAX_NAME_LENGTH = 100  # characters


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, user: User, *, name: str, scope: TokenScope = TokenScope.READ,
          days: int = DEFAULT_DAYS, actor: User | None = None) -> tuple[ApiToken, str]:
    """Give user a new API token; return its row and the token itself (only its hash is kept). The caller
    commits.

    Raises:
        ValueError: no name, a name too long, or days outside 1..MAX_DAYS.
    """
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"give the token a name of 1 to {MAX_NAME_LENGTH} characters")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"a token lasts 1 to {MAX_DAYS} days")
    if not user.active:
        raise ValueError("the user is deactivated")
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    token = ApiToken(user=user, name=name, scope=TokenScope(scope), token_hash=hash_token(secret), created_at=now,
                     expires_at=now + timedelta(days=days))
    session.add(token)
    session.flush()
    audit.record(session, "token.issued", actor=actor, token_id=token.id, user_id=user.id, scope=token.scope.value,
                 days=days)
    return token, secret


def authenticate(session: Session, secret: str) -> ApiToken | None:
    """The usable token (not revoked, not expired, its owner active) this secret is, else None; its last use
    is brought up to date (at most once a LAST_USED_EVERY), for the caller to commit."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret.strip())))
    now = clock.now()
    if token is None or not token.usable(now):
        return None
    if token.last_used_at is None or now - token.last_used_at >= timedelta(seconds=LAST_USED_EVERY):
        token.last_used_at = now
    return token


def revoke(session: Session, token: ApiToken, *, actor: User | None = None) -> bool:
    """Revoke the token; return whether it was still unrevoked. The caller commits."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = clock.now()
    audit.record(session, "token.revoked", actor=actor, token_id=token.id, user_id=token.user_id)
    return True


def revoke_all(session: Session, user: User, *, actor: User | None = None) -> int:
    """Revoke every unrevoked token of user; return how many."""
    return sum(revoke(session, t, actor=actor) for t in session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))))


def listed(session: Session, user: User | None = None) -> Sequence[ApiToken]:
    """The tokens of user (None: everyone's), newest first."""
    query = select(ApiToken).options(selectinload(ApiToken.user)).order_by(ApiToken.id.desc())
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return session.scalars(query).all()


def state(token: ApiToken, now: datetime) -> str:
    """The token's state in words: active, expired or revoked."""
    if token.revoked_at is not None:
        return "revoked"
    return "expired" if now >= token.expires_at else "active"
