"""The team's users: accounts with roles and queues, their phones and passwords; editing, deactivating them, and
one-time links to set a new password."""

import functools
import secrets
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from assist import audit, cases, clock, logins, tokens
from assist.errors import InvalidAddress, NotPermitted, ResetLinkRefused
from assist.models import OPEN_STATUSES, Case, PasswordReset, Presence, User, UserRole
from assist.triage.labels import QUEUES
from channels.addresses import normalize_phone

MIN_PASSWORD_LENGTH = 10  # characters
MAX_CAPACITY = 100  # open cases one person can hold
RESET_LINK_HOURS = 24  # hours a password reset link works


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
    user = User(email=email, name=name, role=role, password_hash=generate_password_hash(password),
                queues=known_queues(queues), capacity=capacity, on_call=on_call, phone=agent_phone(phone),
                presence=Presence(presence))
    session.add(user)
    return user


def known_queues(queues: Sequence[str]) -> list[str]:
    """The queues as a list in the taxonomy's order.

    Raises:
        ValueError: one is not a queue of the taxonomy.
    """
    unknown = set(queues) - set(QUEUES)
    if unknown:
        raise ValueError(f"unknown queue(s): {', '.join(sorted(unknown))} (queues: {', '.join(QUEUES)})")
    return [queue for queue in QUEUES if queue in queues]


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


def check_may_change(actor: User, user: User, *, role: UserRole | None = None, active: bool | None = None) -> None:
    """Refuse what actor may not do to user's account: change an admin's unless an admin, make anyone an admin
    unless an admin, change their own role, deactivate themselves.

    Raises:
        NotPermitted: with the reason.
    """
    is_admin = actor.has_role(UserRole.ADMIN)
    if user.role == UserRole.ADMIN and not is_admin:
        raise NotPermitted("only an admin can change an admin's account")
    if role == UserRole.ADMIN and user.role != UserRole.ADMIN and not is_admin:
        raise NotPermitted("only an admin can make someone an admin")
    if user.id == actor.id and role is not None and role != user.role:
        raise NotPermitted("nobody changes their own role")
    if user.id == actor.id and active is False:
        raise NotPermitted("you cannot deactivate yourself")


# What edit() changes, and what the audit trail keeps of the new value: the value itself, or only that it
# changed (a name or a phone is personal data, kept on the user's row and nowhere else).
EDITABLE = {"name": False, "role": True, "queues": True, "capacity": True, "phone": False, "on_call": True}


def edit(session: Session, user: User, *, actor: User | None = None, active: bool | None = None,
         **changes) -> list[Case]:
    """Change user's details (the keys of EDITABLE) and whether they are active, and audit what changed.
    Returns the open cases a deactivation sent back to their queues; the caller ends the unit of work with
    cases.done(session, *returned).

    Raises:
        ValueError: a value is invalid (then nothing has changed).
    """
    values = _valid(changes)
    changed = [field for field in EDITABLE if field in values and getattr(user, field) != values[field]]
    for field in changed:
        setattr(user, field, values[field])
    if changed:
        audit.record(session, "user.edited", actor=actor, user_id=user.id, changed=changed,
                     **{field: values[field] for field in changed if EDITABLE[field]})
    if active is True and not user.active:
        reactivate(session, user, actor=actor)
    if active is False and user.active:
        return deactivate(session, user, actor=actor)
    return []


def _valid(changes: dict) -> dict:
    """The changes with their values checked and normalised (a phone in E.164, queues in the taxonomy's order)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    values = dict(changes)
    if "name" in values:
        values["name"] = values["name"].strip()
        if not values["name"]:
            raise ValueError("the name cannot be empty")
    if "role" in values:
        values["role"] = UserRole(values["role"])
    if "queues" in values:
        values["queues"] = known_queues(values["queues"])
    if "capacity" in values and not 0 <= values["capacity"] <= MAX_CAPACITY:
        raise ValueError(f"the capacity is 0 to {MAX_CAPACITY} open cases")
    if "phone" in values:
        values["phone"] = agent_phone(values["phone"])
    return values


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


def issue_reset_link(session: Session, user: User, *, actor: User | None = None) -> str:
    """Make a one-time token for user to set a new password with, working RESET_LINK_HOURS; earlier links of
    theirs stop working. Returns the token (only its hash is kept); the caller commits and shows it once.

    Raises:
        ValueError: the user is deactivated.
    """
    if not user.active:
        raise ValueError(f"{user.email} is deactivated: reactivate them first")
    now = clock.now()
    session.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None),
                                                PasswordReset.expires_at > now).values(expires_at=now))
    secret = secrets.token_urlsafe(32)
    expires_at = now + timedelta(hours=RESET_LINK_HOURS)
    session.add(PasswordReset(user_id=user.id, token_hash=tokens.hash_token(secret), created_at=now,
                              expires_at=expires_at))
    audit.record(session, "user.reset_link_issued", actor=actor, user_id=user.id, expires_at=expires_at.isoformat())
    return secret


def reset_link(session: Session, secret: str) -> PasswordReset:
    """The reset link this token is, while it still works.

    Raises:
        ResetLinkRefused: no such link, or it was used, has expired or its user was deactivated.
    """
    link = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == tokens.hash_token(secret)))
    if link is None:
        raise ResetLinkRefused("this password reset link is not valid: ask an admin or supervisor for a new one")
    if link.used_at is not None:
        raise ResetLinkRefused("this password reset link was already used: ask an admin or supervisor for a new one")
    if clock.now() >= link.expires_at:
        raise ResetLinkRefused("this password reset link has expired: ask an admin or supervisor for a new one")
    if not link.user.active:
        raise ResetLinkRefused("this account is deactivated")
    return link


def reset_password(session: Session, secret: str, password: str) -> User:
    """Set a new password with a reset link, which then stops working, and end every login session of its user
    (whoever had the old password is out). Returns the user; the caller commits.

    Raises:
        ResetLinkRefused: see reset_link.
        ValueError: the password is too short.
    """
    link = reset_link(session, secret)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    now = clock.now()
    link.used_at = now
    link.user.password_hash = generate_password_hash(password)
    ended = logins.end_all(session, link.user, now)
    audit.record(session, "user.password_reset", actor=link.user, user_id=link.user.id, sessions_ended=ended)
    return link.user


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
