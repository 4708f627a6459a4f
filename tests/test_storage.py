"""Storage on SQLite and PostgreSQL: migrations, constraints, ingest and member import."""

import io
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from assist import db, members
from assist.errors import ImportFailed
from assist.ingest import ingest
from assist.models import Booking, Case, CaseStatus, Contact, Direction, Event, Member, Message, Pet
from channels.message import Attachment, Channel, InboundMessage, Keyword

pytestmark = pytest.mark.both_databases

MEMBERS = """member_id,role,name,phone,email,pet_name,pet_species,pet_breed,pet_notes
M-1,owner,Ana Ruiz,(503) 555-0101,Ana.Ruiz@Example.com,Fig,dog,dachshund,
M-1,owner,Ana Ruiz,(503) 555-0101,Ana.Ruiz@Example.com,Olive,cat,,shy
M-2,sitter,Jo Park,+15035550102,jo@example.com,,,,
"""
BOOKINGS = """booking_id,owner_id,sitter_id,service,starts_at,ends_at,location,pets
B-1,M-1,M-2,house sitting,2026-11-20T09:00:00+00:00,2026-11-30T18:00:00+00:00,"Elm St, Portland",Fig;Olive
"""


def inbound(sid: str, text: str = "hello", sender: str = "+15035550101", **kw) -> InboundMessage:
    return InboundMessage(channel=Channel.SMS, channel_id=sid, sender=sender, recipient="+15005550006",
                          text=text, original=text, **kw)


def test_migrations_create_every_table(app):
    with app.app_context():
        names = set(inspect(db.engine()).get_table_names())
    assert {"contacts", "members", "pets", "bookings", "booking_pets", "cases", "messages", "users", "events",
            "alembic_version"} <= names


def test_ingest_creates_contact_case_and_message_once(session):
    first = ingest(session, inbound("SM1", attachments=(Attachment("media-0", "image/jpeg", ref="https://m/1"),)))
    again = ingest(session, inbound("SM1"))
    assert again.duplicate and not first.duplicate
    assert (again.message_id, again.case_id, again.reply) == (first.message_id, first.case_id, first.reply)
    assert len(session.scalars(select(Message).where(Message.direction == Direction.INBOUND)).all()) == 1
    contact = session.scalars(select(Contact)).one()
    case = session.scalars(select(Case)).one()
    assert contact.phone == "+15035550101" and case.contact_id == contact.id and case.status == CaseStatus.NEW
    message = session.get(Message, first.message_id)
    assert message.attachments == [{"name": "media-0", "content_type": "image/jpeg", "size": None, "ref": "https://m/1"}]
    assert message.created_at.tzinfo is not None
    kinds = [e.kind for e in session.scalars(select(Event).order_by(Event.id)) if e.kind != "playbooks.seeded"]
    assert kinds == ["case.opened", "message.received", "case.routed", "message.triaged"]


def test_the_same_sid_on_another_channel_is_another_message(session):
    ingest(session, inbound("X1"))
    email = InboundMessage(channel=Channel.EMAIL, channel_id="X1", sender="ana@example.com",
                           recipient="team@example.com", text="hi", original="hi")
    assert not ingest(session, email).duplicate


def test_channel_ids_are_unique_per_channel_in_the_schema(session):
    contact = Contact(phone="+15035550101")
    session.add(contact)
    session.flush()
    for _ in range(2):
        session.add(Message(contact=contact, direction=Direction.INBOUND, channel="sms", channel_id="SMdup",
                            sender="a", recipient="b", text="t", original="t"))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_follow_ups_join_the_open_case_and_a_resolved_case_is_not_reopened(session):
    first = ingest(session, inbound("SM1"))
    second = ingest(session, inbound("SM2", "any news?"))
    assert second.case_id == first.case_id
    case = session.get(Case, first.case_id)
    case.status = CaseStatus.RESOLVED
    session.commit()
    third = ingest(session, inbound("SM3", "new problem"))
    assert third.case_id != first.case_id
    assert third.reply  # a new case gets its playbook's first answer


def test_another_number_never_joins_a_contacts_open_case(session):
    first = ingest(session, inbound("SM1"))
    other = ingest(session, inbound("SM2", "any news?", sender="+15035550199"))
    assert other.case_id != first.case_id
    assert session.get(Case, other.case_id).contact.phone == "+15035550199"


def test_opt_out_joins_an_open_case_but_opens_none(session):
    out = ingest(session, inbound("SM1", "STOP", keyword=Keyword.OPT_OUT))
    assert out.case_id is None and out.reply is None
    assert session.scalars(select(Contact)).one().opted_out
    opened = ingest(session, inbound("SM2", "my cat is stuck in a wall"))
    assert opened.case_id is not None and opened.reply is None  # opted out: nothing is sent
    back_in = ingest(session, inbound("SM3", "START", keyword=Keyword.OPT_IN))
    assert back_in.case_id == opened.case_id


def test_a_contact_is_linked_to_its_member(session):
    members.import_csv(session, io.StringIO(MEMBERS))
    session.commit()
    ingest(session, inbound("SM1"))
    contact = session.scalars(select(Contact)).one()
    assert contact.member.external_id == "M-1" and contact.name == "Ana Ruiz"
    assert [p.name for p in contact.member.pets] == ["Fig", "Olive"]


def test_members_and_bookings_import_and_reimport_idempotently(session):
    report = members.import_csv(session, io.StringIO(MEMBERS))
    assert (report.kind, report.rows, report.created) == ("members", 3, 2)
    bookings = members.import_csv(session, io.StringIO(BOOKINGS))
    assert (bookings.kind, bookings.created) == ("bookings", 1)
    session.commit()
    again = members.import_csv(session, io.StringIO(MEMBERS))
    members.import_csv(session, io.StringIO(BOOKINGS))
    session.commit()
    assert again.created == 0
    assert len(session.scalars(select(Member)).all()) == 2
    assert len(session.scalars(select(Pet)).all()) == 2
    ana = session.scalars(select(Member).where(Member.external_id == "M-1")).one()
    assert (ana.phone, ana.email) == ("+15035550101", "ana.ruiz@example.com")
    booking = session.scalars(select(Booking)).one()
    assert booking.sitter.name == "Jo Park" and [p.name for p in booking.pets] == ["Fig", "Olive"]
    assert booking.starts_at == datetime(2026, 11, 20, 9, tzinfo=UTC)


@pytest.mark.parametrize("csv_text, error", [
    ("name,phone\nAna,+15035550101\n", "line 1: expected the columns"),
    ("member_id,role,name,phone,email\nM-1,walker,Ana,,\n", "line 2: role must be owner or sitter"),
    ("member_id,role,name,phone,email\nM-1,owner,Ana,12,\n", "line 2: not a"),
    ("member_id,role,name,phone,email\nM-1,owner,Ana,,not-an-email\n", "line 2: not an email"),
    ("member_id,role,name,phone,email\nM-1,owner,Ana,,\n,owner,Bo,,\n", "line 3: member_id and name are required"),
    ("booking_id,owner_id,sitter_id,service,starts_at,ends_at\nB-1,M-9,M-2,walk,2026-01-01T10:00:00+00:00,"
     "2026-01-01T11:00:00+00:00\n", "line 2: unknown member 'M-9'"),
    ("booking_id,owner_id,sitter_id,service,starts_at,ends_at\nB-1,M-1,M-2,walk,tomorrow,2026-01-01T11:00:00+00:00\n",
     "line 2: starts_at is not an ISO 8601 time"),
    ("booking_id,owner_id,sitter_id,service,starts_at,ends_at\nB-1,M-1,M-2,walk,2026-01-01T10:00:00,"
     "2026-01-01T11:00:00+00:00\n", "line 2: starts_at needs a UTC offset"),
    ("booking_id,owner_id,sitter_id,service,starts_at,ends_at\nB-1,M-2,M-1,walk,2026-01-01T10:00:00+00:00,"
     "2026-01-01T11:00:00+00:00\n", "line 2: member 'M-2' is a sitter, not a owner"),
    ("booking_id,owner_id,sitter_id,service,starts_at,ends_at,location,pets\nB-1,M-1,M-2,walk,"
     "2026-01-01T10:00:00+00:00,2026-01-01T11:00:00+00:00,,Rex\n", "line 2: Ana Ruiz has no pet named 'Rex'"),
], ids=["unknown-header", "bad-role", "bad-phone", "bad-email", "missing-id", "unknown-member", "bad-time",
        "naive-time", "swapped-roles", "unknown-pet"])
def test_bad_csv_rows_name_their_line(session, csv_text, error):
    members.import_csv(session, io.StringIO(MEMBERS))
    session.commit()
    with pytest.raises(ImportFailed, match=error):
        members.import_csv(session, io.StringIO(csv_text))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_concurrent_deliveries_of_one_message_store_it_once(app):
    """Twilio's retry can race its first delivery: both answers agree and one row is stored."""
    results, barrier = [], threading.Barrier(4)

    def deliver():
        with app.app_context():
            barrier.wait()
            results.append(ingest(db.session(), inbound("SMrace")))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.message_id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    with app.app_context():
        session = db.session()
        assert len(session.scalars(select(Message).where(Message.direction == Direction.INBOUND)).all()) == 1
        assert len(session.scalars(select(Case)).all()) == 1
