"""Confidentiality: restricted notes, the access log supervisors read, redaction and retention."""

import csv
import io
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from conftest import add_case, configure, csrf_token, runtime_of
from cryptography.fernet import Fernet
from sqlalchemy import select

from assist import access_log, briefs, cases, clock, redaction, retention
from assist.errors import ConfigError
from assist.models import (
    Call,
    Case,
    CaseStatus,
    Contact,
    Direction,
    Event,
    Message,
    Note,
    RawEmail,
    Redaction,
    TokenScope,
    UserRole,
)
from assist.settings import Settings
from assist.tokens import issue

SECRET = "the neighbour saw the sitter hit the dog"
CARD = "4111 1111 1111 1111"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def restricted_case(session, lead_author):
    case = add_case(session, queue="claims", text="my dog came back limping")
    cases.note(session, case, "called the owner back", author=lead_author)
    hidden = cases.note(session, case, SECRET, author=lead_author, restricted=True)
    session.commit()
    return case, hidden


@pytest.mark.both_databases
def test_an_agent_sees_nothing_of_a_restricted_note_and_the_refusal_is_logged(client, login, make_user, session):
    lead = make_user(UserRole.LEAD, email="lead@team.test")
    case, hidden = restricted_case(session, lead)
    agent = login(queues=["claims"])
    _, token = issue(session, agent, name="script", scope=TokenScope.READ)
    session.commit()
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "called the owner back" in page and SECRET not in page and "restricted note" not in page
    updates = client.get(f"/cases/{case.id}/updates?after=0.0.0.0").get_data(as_text=True)
    assert "called the owner back" in updates and SECRET not in updates  # what the live page fetches on an event
    assert SECRET not in client.get(f"/cases/{case.id}/escalate").get_data(as_text=True)  # the brief's draft
    for path in (f"/api/cases/{case.id}", f"/api/cases/{case.id}/messages"):
        answer = client.get(path, headers=bearer(token))
        assert answer.status_code == 200 and SECRET not in answer.get_data(as_text=True)
    session.expire_all()
    assert (agent.id, "note", hidden.id, False) in [(e.user_id, e.kind, e.object_id, e.allowed)
                                                    for e in access_log.entries(session)]

    supervisor = login(UserRole.SUPERVISOR, email="sup@team.test")
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert SECRET in page and "restricted note" in page
    session.expire_all()
    read = access_log.entries(session, user_id=supervisor.id, kind="note")
    assert [(e.object_id, e.allowed) for e in read] == [(hidden.id, True)]


def test_a_note_marked_restricted_on_the_case_page_is_kept_restricted(client, login, session):
    case = add_case(session, queue="claims")
    login(queues=["claims"])
    token = csrf_token(client.get(f"/cases/{case.id}").get_data(as_text=True))
    answer = client.post(f"/cases/{case.id}/note", data={"text": SECRET, "restricted": "y", "csrf_token": token})
    assert answer.status_code == 302
    note = session.scalars(select(Note)).one()
    assert note.restricted and note.text == SECRET
    assert SECRET not in client.get(f"/cases/{case.id}").get_data(as_text=True)  # not even to its author


def test_a_note_written_restricted_through_the_api_is_withheld_from_agents(client, make_user, session):
    case = add_case(session, queue="claims")
    agent = make_user(UserRole.AGENT, queues=["claims"])
    _, token = issue(session, agent, name="script", scope=TokenScope.WRITE)
    session.commit()
    answer = client.post(f"/api/cases/{case.id}/notes", json={"text": SECRET, "restricted": True},
                         headers=bearer(token))
    assert answer.status_code == 201 and answer.json["restricted"] is True
    assert client.post(f"/api/cases/{case.id}/notes", json={"text": "x", "restricted": "yes"},
                       headers=bearer(token)).status_code == 400
    session.expire_all()
    assert [(n.text, n.restricted) for n in session.scalars(select(Note))] == [(SECRET, True)]
    assert SECRET not in briefs.draft(session, case, [])  # the brief a lead would be sent quotes other notes only


def test_a_supervisor_reads_the_access_log_filtered_page_by_page_and_as_csv(client, login, make_user, session,
                                                                            monkeypatch):
    case = add_case(session, queue="claims")
    agent = login(queues=["claims"], email="agent@team.test")
    assert client.get("/access-log/").status_code == 403
    other = make_user(UserRole.AGENT, email="other@team.test")
    for object_id in range(101, 104):
        access_log.record(session, other, "case", object_id, allowed=False)
    session.commit()
    client.get(f"/cases/{case.id}")
    login(UserRole.SUPERVISOR, email="sup@team.test")
    page = client.get(f"/access-log/?user={agent.id}").get_data(as_text=True)
    assert f"case #{case.id}" in page and "case #101" not in page
    monkeypatch.setattr(access_log, "PAGE", 2)
    first = client.get(f"/access-log/?user={other.id}").get_data(as_text=True)
    assert "case #103" in first and "case #102" in first and "case #101" not in first and "Older entries" in first
    older = first.split('href="')[-1].split('"')[0].replace("&amp;", "&")
    second = client.get(older).get_data(as_text=True)
    assert "case #101" in second and "case #103" not in second
    exported = client.get(f"/access-log/export.csv?kind=case&object={case.id}")
    assert exported.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert rows[0] == ["at", "user_id", "user", "kind", "object_id", "allowed"]
    assert [r[1:] for r in rows[1:]] == [[str(agent.id), "agent user", "case", str(case.id), "allowed"]]
    assert client.get("/access-log/?kind=nonsense").status_code == 400


def email_case(session) -> tuple[Case, Message]:
    """An email case whose message holds a card number in its text, HTML, triage evidence and stored mail (with an
    attachment), and a brief that quotes it."""
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "ann@example.com", "team@example.com", "vet bill"
    body = f"The vet charged my card {CARD} twice, my dog is bleeding"
    mail.set_content(body)
    mail.add_alternative(f"<p>The vet charged my card {CARD} twice, my dog is bleeding</p>", subtype="html")
    mail.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf")
    contact = Contact(email="ann@example.com")
    case = Case(contact=contact, status=CaseStatus.OPEN, queue="claims", urgency="high")
    bleeding = body.index("bleeding")
    message = Message(case=case, contact=contact, direction=Direction.INBOUND, channel="email",
                      sender="ann@example.com", recipient="team@example.com", subject="vet bill", text=body,
                      original=body, html=f"<p>{body}</p>",
                      attachments=[{"name": "invoice.pdf", "content_type": "application/pdf", "size": 16}],
                      triage={"urgency": "high", "emotion": "anxious", "category": "pet_health",
                              "scores": {"urgency": {"high": 0.7}, "emotion": {"anxious": 0.6},
                                         "category": {"pet_health": 0.8}},
                              "evidence": [{"start": body.index(CARD), "end": body.index(CARD) + len(CARD),
                                            "text": CARD, "source": "model", "label": "category", "value": "x"},
                                           {"start": bleeding, "end": bleeding + 8, "text": "bleeding",
                                            "source": "rule", "label": "urgency", "value": "critical",
                                            "context": "active"}]})
    session.add_all([contact, case, message])
    session.flush()
    session.add(RawEmail(digest="d" * 64, data=mail.as_bytes(), mail_from="ann@example.com", message_id=message.id))
    cases.note(session, case, f"brief: customer says card {CARD} was charged twice", author=None, kind="brief")
    session.commit()
    return case, message


@pytest.mark.both_databases
def test_a_redacted_span_never_appears_in_the_page_the_api_the_brief_search_or_the_stored_mail(
        client, login, session):
    case, message = email_case(session)
    agent = login(queues=["claims"])
    _, token = issue(session, agent, name="script", scope=TokenScope.READ)
    session.commit()
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert CARD in page  # before: the page shows it
    answer = client.post(f"/cases/{case.id}/messages/{message.id}/redact",
                         data={"words": CARD, "reason": "card_number", "csrf_token": csrf_token(page)})
    assert answer.status_code == 302
    digits = CARD.replace(" ", "")
    outputs = {
        "page": client.get(f"/cases/{case.id}").get_data(as_text=True),
        "updates": client.get(f"/cases/{case.id}/updates?after=0.0.0.0").get_data(as_text=True),
        "api case": client.get(f"/api/cases/{case.id}", headers=bearer(token)).get_data(as_text=True),
        "api messages": client.get(f"/api/cases/{case.id}/messages", headers=bearer(token)).get_data(as_text=True),
        "brief": client.get(f"/cases/{case.id}/escalate").get_data(as_text=True),
        "search": client.get(f"/dashboard/search?q={CARD[:9]}").get_data(as_text=True),
    }
    for name, shown in outputs.items():
        assert CARD not in shown and digits not in shown and "1111 1111" not in shown, name
    assert "[redacted: card number]" in outputs["page"] and "[redacted: card number]" in outputs["api messages"]
    assert f"#{case.id}" not in outputs["search"]  # the words no longer find the case
    assert "redacted part of a message (card number; the original is removed)" in outputs["page"]

    session.expire_all()
    stored = session.get(Message, message.id)
    assert CARD not in stored.text + stored.original + stored.html
    evidence = stored.triage["evidence"]  # the card's evidence is gone, the bleeding's moved with the text
    assert [(e["text"], stored.text[e["start"]:e["end"]]) for e in evidence] == [("bleeding", "bleeding")]
    raw = session.scalars(select(RawEmail)).one().data
    assert CARD.encode() not in raw
    mail = message_from_bytes(raw, policy=policy.default)
    assert all(CARD not in part.get_content() for part in mail.walk() if part.get_content_maintype() == "text")
    download = client.get(f"/cases/{case.id}/messages/{message.id}/attachments/0")
    assert download.status_code == 200 and download.data == b"%PDF-1.4 invoice"  # attachments stay whole
    row = session.scalars(select(Redaction)).one()
    assert (row.reason, row.actor_id, row.original) == ("card_number", agent.id, None)
    logged = session.scalars(select(Event).where(Event.kind == "message.redacted")).one()
    assert CARD not in str(logged.data)

    login(UserRole.SUPERVISOR, email="sup@team.test")
    assert CARD not in client.get("/dashboard").get_data(as_text=True)


def test_a_span_is_kept_encrypted_when_the_setting_says_so(app, client, login, session):
    key = Fernet.generate_key().decode()
    configure(app, redaction_keep_original=True, redaction_key=key)
    case, message = email_case(session)
    lead = login(UserRole.LEAD)
    start = message.text.index(CARD)
    row = redaction.redact(session, message, start, start + len(CARD), reason="card_number", actor=lead,
                           settings=runtime_of(app).settings)
    session.commit()
    assert CARD.encode() not in row.original
    assert Fernet(key).decrypt(row.original).decode() == CARD
    assert "[redacted: card number]" in message.text and CARD not in message.text


@pytest.mark.parametrize("environ, problem", [
    ({"REDACTION_KEEP_ORIGINAL": "1"}, "needs REDACTION_KEY"),
    ({"REDACTION_KEY": "not-a-key"}, "not a Fernet key"),
], ids=["keep-without-key", "bad-key"])
def test_redaction_settings_are_checked_at_startup(environ, problem):
    with pytest.raises(ConfigError, match=problem):
        Settings.from_environ(environ)


@pytest.mark.parametrize("form, problem", [
    ({"words": "not in it", "reason": "address"}, "not in the message"),
    ({"start": "5", "end": "500", "reason": "other"}, "within the message"),
    ({"words": "limping", "reason": "password"}, "Reason"),
], ids=["absent-words", "span-outside", "unknown-reason"])
def test_a_bad_redaction_changes_nothing(client, login, session, form, problem):
    case = add_case(session, queue="claims", text="my dog came back limping")
    login(queues=["claims"])
    token = csrf_token(client.get(f"/cases/{case.id}").get_data(as_text=True))
    message_id = case.messages[0].id
    answer = client.post(f"/cases/{case.id}/messages/{message_id}/redact", data={**form, "csrf_token": token},
                         follow_redirects=True)
    assert problem in answer.get_data(as_text=True)
    session.expire_all()
    assert session.get(Message, message_id).text == "my dog came back limping"
    assert session.scalars(select(Redaction)).all() == []


def resolved_case(session, *, days_ago: int, phone: str, text: str, redacted_by) -> Case:
    case = add_case(session, queue="claims", phone=phone, text=text)
    case.status, case.resolved_at = CaseStatus.RESOLVED, clock.now() - timedelta(days=days_ago)
    message = case.messages[0]
    message.triage = {"urgency": "high", "emotion": "angry", "category": "billing",
                      "evidence": [{"start": 0, "end": 2, "text": text[:2]}]}
    session.add(RawEmail(digest=phone.ljust(64, "0"), data=text.encode(), mail_from="x@example.com",
                         message_id=message.id))
    session.add(Call(call_sid=f"CA{phone}", caller=phone, case_id=case.id, recording_sid="RE" + "0" * 32))
    session.add(Redaction(message_id=message.id, start=0, length=2, reason="other", actor=redacted_by,
                          original=b"sealed"))
    session.commit()
    return case


@pytest.mark.both_databases
def test_retention_removes_the_bodies_of_old_closed_cases_only_and_a_dry_run_changes_nothing(app, runner, session,
                                                                                             make_user):
    configure(app, retention_days=30)
    lead = make_user(UserRole.LEAD)
    old = resolved_case(session, days_ago=40, phone="+15035550111", text="my card 4111 was charged", redacted_by=lead)
    recent = resolved_case(session, days_ago=5, phone="+15035550112", text="the sitter was late", redacted_by=lead)
    still_open = add_case(session, queue="claims", phone="+15035550113", text="please call me")
    still_open.created_at = clock.now() - timedelta(days=90)
    session.commit()

    dry = runner.invoke(args=["retention", "run", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would remove from 1 case(s)" in dry.output and "1 message bodies" in dry.output
    assert "1 stored mails, 1 recordings" in dry.output
    session.expire_all()
    assert session.get(Message, old.messages[0].id).text == "my card 4111 was charged"
    assert session.get(Case, old.id).bodies_removed_at is None
    assert len(session.scalars(select(RawEmail)).all()) == 2

    done = runner.invoke(args=["retention", "run"])
    assert done.exit_code == 0 and "removed from 1 case(s)" in done.output
    session.expire_all()
    emptied = session.get(Case, old.id)
    message = emptied.messages[0]
    assert message.text == retention.REMOVED and "4111" not in message.original
    assert (message.urgency, message.category, message.triage["evidence"]) == ("high", "billing", [])
    assert emptied.bodies_removed_at is not None and emptied.status == CaseStatus.RESOLVED
    assert session.scalars(select(Call).where(Call.case_id == old.id)).one().recording_sid is None
    assert [r.message_id for r in session.scalars(select(RawEmail))] == [recent.messages[0].id]
    assert session.get(Case, recent.id).messages[0].text == "the sitter was late"
    kept = {r.message_id: r.original for r in session.scalars(select(Redaction))}
    assert kept == {old.messages[0].id: None, recent.messages[0].id: b"sealed"}
    assert session.get(Case, still_open.id).messages[0].text == "please call me"
    audit = session.scalars(select(Event).where(Event.kind == "retention.applied")).one()
    assert audit.data == {"days": 30, "cases": 1, "messages": 1, "attachments": 0, "mails": 1, "recordings": 1}
    again = runner.invoke(args=["retention", "run"])
    assert "removed from 0 case(s)" in again.output  # done once: the next day's run finds nothing new


def test_the_worker_runs_retention_daily():
    from assist import jobs, worker

    assert (jobs.apply_retention, "low", 24 * 3600) in worker.PERIODIC


def test_every_mail_of_the_malformed_corpus_can_be_redacted_without_leaving_the_words():
    from pathlib import Path

    from channels.email import parse_email, redact_mail
    from channels.errors import BadWebhook

    shown = "[redacted: other]"
    for path in sorted((Path(__file__).parent / "fixtures" / "mail_corpus").glob("*.eml")):
        raw = path.read_bytes()
        try:
            text = parse_email(raw, recipient="team@example.com").text
        except BadWebhook:
            continue  # no sender at all: such mail never becomes a message to redact
        words = [w for w in text.split() if w not in shown]
        if not words:
            continue
        rewritten = redact_mail(raw, words[-1], shown)
        assert words[-1] not in parse_email(rewritten, recipient="team@example.com").text, path.name
        assert words[-1].encode() not in rewritten, path.name
