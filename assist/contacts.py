"""Contacts: find or create the contact behind an address, linked to its marketplace member."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from assist.models import Contact, Member


def find_or_create(session: Session, *, phone: str | None = None, email: str | None = None) -> Contact:
    """Return the contact for a normalized phone or email, creating it (linked to its member) if new."""
    column, value = (Contact.phone, phone) if phone else (Contact.email, email)
    # FOR UPDATE serializes concurrent messages of one contact on PostgreSQL.
    contact = session.scalars(select(Contact).where(column == value).with_for_update()).one_or_none()
    if contact is not None:
        return contact
    member_column = Member.phone if phone else Member.email
    member = session.scalars(select(Member).where(member_column == value).order_by(Member.id)).first()
    contact = Contact(phone=phone, email=email, member=member, name=member.name if member else None)
    with session.begin_nested():  # a concurrent insert of the same address fails alone
        session.add(contact)
    return contact


def is_known(session: Session, email: str) -> bool:
    """Whether email is the address of a contact or of a member."""
    return (session.scalar(select(Contact.id).where(Contact.email == email).limit(1)) is not None
            or session.scalar(select(Member.id).where(Member.email == email).limit(1)) is not None)


def unverified(session: Session, claimed_email: str) -> Contact:
    """The contact of mail that claims claimed_email but failed authentication, created if new: it has no
    address, member or name of its own (nothing is sent to it, it sees none of the owner's cases) until an
    agent who has checked it merges it."""
    contact = session.scalars(select(Contact).where(Contact.claimed_email == claimed_email, Contact.email.is_(None))
                              .order_by(Contact.id).with_for_update()).first()
    if contact is None:
        contact = Contact(claimed_email=claimed_email)
        session.add(contact)
        session.flush()
    return contact
