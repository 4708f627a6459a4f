"""The malformed-mail corpus (tests/fixtures/mail_corpus, made by its make_corpus.py) over real SMTP
sessions: each mail gets 250 and a case, or 250 and a place in "Mail needing attention", or a deliberate
refusal — never a 451 that the sender would retry forever, never lost."""

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_email import send, smtp_server  # noqa: F401  (fixture)

from assist import mail
from assist.models import Message, RawEmail

pytestmark = pytest.mark.both_databases

CORPUS = Path(__file__).parent / "fixtures" / "mail_corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())


def test_the_corpus_is_large_and_has_every_outcome():
    assert len(EXPECTED) >= 60 and len(list(CORPUS.glob("*.eml"))) == len(EXPECTED)
    assert {entry["expected"] for entry in EXPECTED.values()} == {"case", "attention", "refused"}


def outcome(session, after: int, code: int) -> str:
    """What became of one mail: the raw row its session stored (after id `after`) says."""
    stored = session.scalar(select(RawEmail).where(RawEmail.id > after))
    if code >= 500:
        return "refused" if stored is None else f"answered {code} but stored"
    if code != 250:
        return f"answered {code}"
    if stored is None:
        return "250 but not stored"
    if stored.message_id is not None:
        message = session.get(Message, stored.message_id)
        return "case" if message.case_id is not None else "message without a case"
    return "attention" if stored in mail.needing_attention(session) else "stored, not listed"


def test_every_mail_of_the_corpus_ends_where_it_should(smtp_server, session):  # noqa: F811
    found = {}
    for name, entry in sorted(EXPECTED.items()):
        raw = (CORPUS / f"{name}.eml").read_bytes()
        session.expire_all()
        last = session.scalar(select(func.max(RawEmail.id))) or 0
        code = send(smtp_server, raw, mail_from=entry["envelope_from"] or "<>")[0]
        session.expire_all()
        found[name] = outcome(session, last, code)
    wrong = {name: f"{found[name]}, expected {entry['expected']}" for name, entry in EXPECTED.items()
             if found[name] != entry["expected"]}
    assert not wrong, json.dumps(wrong, indent=1)
