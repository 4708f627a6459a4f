"""Contacts: find or create the contact behind an address, linked to its marketplace member."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from assist import audit
from assist.models import Call, Contact, Member, Message, User


def find_or_create(session: Session, *, phone: str | None = None, email: str | None = None,
                   name: str = "") -> Contact:
    """Return the contact for a normalized phone or email, creating it (linked to its member) if new.

    A new contact is named after its member, else after name (the name the sender gave, such as an email's
    display name)."""
    column, value = (Contact.phone, phone) if phone else (Contact.email, email)
    # FOR UPDATE serializes concurrent messages of one contact on PostgreSQL.
    contact = session.scalars(select(Contact).where(column == value).with_for_update()).one_or_none()
    if contact is not None:
        return contact
    member_column = Member.phone if phone else Member.email
    member = session.scalars(select(Member).where(member_column == value).order_by(Member.id)).first()
    contact = Contact(phone=phone, email=email, member=member, name=(member.name if member else None) or name or None)
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


def merge_unverified(session: Session, contact: Contact, *, actor: User) -> Contact:
    """Merge an unverified contact into the contact of the address it claims (created, linked to its member, if
    new), once an agent has checked the sender is who they say: its cases, messages and calls move there, and
    replies go to that address from now on. Returns that contact; the caller commits.

    Raises:
        ValueError: contact is not an unverified one.
    """
    if not contact.claimed_email or contact.email is not None:
        raise ValueError("only an unverified sender's contact can be merged into the address it claims")
    target = find_or_create(session, email=contact.claimed_email)
    moved = list(contact.cases)
    for case in moved:
        case.contact = target
    for message in session.scalars(select(Message).where(Message.contact_id == contact.id)):
        message.contact = target
    for call in session.scalars(select(Call).where(Call.contact_id == contact.id)):
        call.contact_id = target.id
    for case in moved:  # on each case (an unverified contact has one at least), so its activity trail shows it
        audit.record(session, "contact.merged", actor=actor, case=case, contact_id=target.id,
                     merged_contact_id=contact.id, cases=[c.id for c in moved])
    session.flush()
    session.delete(contact)
    return target
