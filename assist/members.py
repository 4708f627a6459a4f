"""Marketplace members, their pets and bookings: the context agents need, imported from CSV.

Two CSV shapes, told apart by their header:
- members: member_id, role, name, phone, email, pet_name, pet_species, pet_breed, pet_notes
  (one row per pet; a member without pets leaves the pet columns empty);
- bookings: booking_id, owner_id, sitter_id, service, starts_at, ends_at, location, pets
  (owner_id/sitter_id are member_ids, times ISO 8601 with an offset, pets separated by ";").
Rows are upserted by their ids, so importing a file again changes nothing.
"""

import csv
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from assist.errors import ImportFailed, InvalidAddress
from assist.models import Booking, Member, MemberRole, Pet
from channels.addresses import normalize_email, normalize_phone

MEMBER_COLUMNS = ("member_id", "role", "name", "phone", "email")
BOOKING_COLUMNS = ("booking_id", "owner_id", "sitter_id", "service", "starts_at", "ends_at")


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0


def import_csv(session: Session, stream: TextIO) -> ImportReport:
    """Import a members or bookings CSV in one transaction; the caller commits.

    Raises:
        ImportFailed: the header fits neither shape, or a row is invalid (its line is named).
    """
    reader = csv.DictReader(stream)
    header = set(reader.fieldnames or ())
    if set(BOOKING_COLUMNS) <= header:
        kind, import_row = "bookings", _import_booking
    elif set(MEMBER_COLUMNS) <= header:
        kind, import_row = "members", _import_member
    else:
        raise ImportFailed(f"line 1: expected the columns {', '.join(MEMBER_COLUMNS)} (members) "
                           f"or {', '.join(BOOKING_COLUMNS)} (bookings)")
    report = ImportReport(kind)
    for row in reader:
        try:
            created = import_row(session, {k: (v or "").strip() for k, v in row.items() if k})
        except (ValueError, InvalidAddress) as exc:
            raise ImportFailed(f"line {reader.line_num}: {exc}") from None
        report.rows += 1
        report.created += created
        report.updated += not created
    return report


def _import_member(session: Session, row: dict) -> bool:
    if not row["member_id"] or not row["name"]:
        raise ValueError("member_id and name are required")
    try:
        role = MemberRole(row["role"].lower())
    except ValueError:
        raise ValueError(f"role must be owner or sitter, not {row['role']!r}") from None
    member = session.scalars(select(Member).where(Member.external_id == row["member_id"])).one_or_none()
    created = member is None
    if created:
        member = Member(external_id=row["member_id"])
        session.add(member)
    member.role, member.name = role, row["name"]
    member.phone = normalize_phone(row["phone"]) if row["phone"] else None
    member.email = normalize_email(row["email"]) if row["email"] else None
    if row.get("pet_name"):
        if not row.get("pet_species"):
            raise ValueError("pet_species is required with pet_name")
        session.flush()
        pet = session.scalars(select(Pet).where(Pet.owner_id == member.id, Pet.name == row["pet_name"])).one_or_none()
        if pet is None:
            pet = Pet(owner=member, name=row["pet_name"])
            session.add(pet)
        pet.species = row["pet_species"]
        pet.breed, pet.notes = row.get("pet_breed") or None, row.get("pet_notes") or None
    session.flush()
    return created


def _member(session: Session, external_id: str, role: MemberRole) -> Member:
    member = session.scalars(select(Member).where(Member.external_id == external_id)).one_or_none()
    if member is None:
        raise ValueError(f"unknown member {external_id!r} (import the members first)")
    if member.role != role:
        raise ValueError(f"member {external_id!r} is a {member.role.value}, not a {role.value}")
    return member


def _timestamp(value: str, column: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{column} is not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{column} needs a UTC offset: {value!r}")
    return moment


def _import_booking(session: Session, row: dict) -> bool:
    if not row["booking_id"] or not row["service"]:
        raise ValueError("booking_id and service are required")
    owner = _member(session, row["owner_id"], MemberRole.OWNER)
    sitter = _member(session, row["sitter_id"], MemberRole.SITTER)
    starts, ends = _timestamp(row["starts_at"], "starts_at"), _timestamp(row["ends_at"], "ends_at")
    if ends < starts:
        raise ValueError("ends_at is before starts_at")
    names = [n.strip() for n in row.get("pets", "").split(";") if n.strip()]
    pets = []
    for name in names:
        pet = next((p for p in owner.pets if p.name == name), None)
        if pet is None:
            raise ValueError(f"{owner.name} has no pet named {name!r}")
        pets.append(pet)
    booking = session.scalars(select(Booking).where(Booking.external_id == row["booking_id"])).one_or_none()
    created = booking is None
    if created:
        booking = Booking(external_id=row["booking_id"])
        session.add(booking)
    booking.owner, booking.sitter, booking.service = owner, sitter, row["service"]
    booking.starts_at, booking.ends_at, booking.location = starts, ends, row.get("location") or None
    booking.pets = pets
    session.flush()
    return created
