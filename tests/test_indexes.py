"""The schema is the models' (migrations and models agree), and every lookup on the hot path has an index:
with sequential scans priced out, PostgreSQL's plan for each still reads no big table whole."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.dialects import postgresql

from assist import db, reports, routing
from assist.models import OPEN_STATUSES, Base, Case, Contact, Message, OutboxEntry, RawEmail
from channels.message import Channel

BIG_TABLES = ("messages", "cases", "contacts", "events", "raw_emails", "outbox")


@pytest.mark.both_databases
def test_the_migrations_build_exactly_the_models_schema(app):
    with app.app_context(), db.engine().connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def hot_queries(now) -> dict:
    return {
        "a redelivery's stored message": select(Message).where(Message.channel == Channel.SMS,
                                                               Message.channel_id == "SM1"),
        "a redelivery by idempotency token": select(Message).where(Message.idempotency_token == "t"),
        "the bot's reply to a message": select(Message).where(Message.in_reply_to_id == 1,
                                                              Message.author_id.is_(None)),
        "a contact by phone": select(Contact).where(Contact.phone == "+15035550123"),
        "a contact by email": select(Contact).where(Contact.email == "ann@example.com"),
        "the contact's open case": select(Case).where(Case.contact_id == 1, Case.status.in_(OPEN_STATUSES)),
        "a case's messages": select(Message).where(Message.case_id == 1),
        "the overdue cases (the SLA sweep)": routing.overdue_cases(now).limit(500),
        "a raw mail by its bytes' digest": select(RawEmail).where(RawEmail.digest == "d" * 64),
        "the outbox's waiting rows": select(OutboxEntry).where(OutboxEntry.done_at.is_(None),
                                                               OutboxEntry.relayed_at.is_(None)).limit(200),
        "the dashboard's volume by urgency": select(Message.urgency, func.count())
        .where(reports.triaged_inbound(now)).group_by(Message.urgency),
        "the dashboard's volume by category": select(Message.category, func.count())
        .where(reports.triaged_inbound(now)).group_by(Message.category),
    }


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_every_hot_lookup_uses_an_index(app, session, clock):
    full_scans = {}
    for name, query in hot_queries(clock.now()).items():
        sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(row[0] for row in session.execute(text(f"EXPLAIN {sql}")))
        session.rollback()
        scanned = [t for t in BIG_TABLES if f"Seq Scan on {t}" in plan]
        if scanned:
            full_scans[name] = scanned
    assert full_scans == {}


def test_the_labels_migration_copies_each_triaged_messages_urgency_and_category(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db.upgrade(url, "0012")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO contacts (phone, opted_out, created_at) VALUES ('+15035550100', 0, "
                                "'2026-12-01 10:00:00')"))
        for i, triage in enumerate(['{"urgency": "critical", "category": "pet_health"}', None]):
            connection.execute(text(
                "INSERT INTO messages (contact_id, direction, channel, channel_id, sender, recipient, text, original, "
                "attachments, attempts, triage, created_at) VALUES (1, 'inbound', 'sms', :sid, '+15035550100', "
                "'+15005550006', 'x', 'x', '[]', 0, :triage, '2026-12-01 10:00:00')"),
                {"sid": f"SM{i}", "triage": triage})
    db.upgrade(url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT urgency, category FROM messages ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("critical", "pet_health"), (None, None)]


def test_a_messages_labels_follow_its_triage(session):
    message = Message(contact_id=1, direction="inbound", channel="sms", sender="a", recipient="b", text="x",
                      original="x", triage={"urgency": "high", "category": "lost_pet", "emotion": "fear"})
    assert (message.urgency, message.category) == ("high", "lost_pet")
    message.triage = None
    assert (message.urgency, message.category) == (None, None)
