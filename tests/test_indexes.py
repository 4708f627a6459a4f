"""The schema is the models' (migrations and models agree), and every lookup on the hot path has an index:
with sequential scans priced out, PostgreSQL's plan for each still reads no big table whole."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql

from assist import db, routing
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
