"""API tokens (assist/tokens.py): scope, expiry, revocation, last use, the console's page, the migration."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import add_case, csrf_token

from assist import db, tokens
from assist.models import ApiToken, Event, Note, TokenScope, UserRole

pytestmark = pytest.mark.both_databases


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def lead(make_user):
    return make_user(UserRole.LEAD, email="lee@team.test")


def issued(session, user, scope: TokenScope = TokenScope.READ, **options) -> tuple[ApiToken, str]:
    token, secret = tokens.issue(session, user, name="script", scope=scope, **options)
    session.commit()
    return token, secret


def test_a_revoked_token_is_refused(client, session, lead):
    token, secret = issued(session, lead)
    assert client.get("/api/cases", headers=bearer(secret)).status_code == 200
    tokens.revoke(session, token, actor=lead)
    session.commit()
    refused = client.get("/api/cases", headers=bearer(secret))
    assert refused.status_code == 401 and refused.get_json()["error"] == "Unauthorized"


def test_a_token_expires_on_the_apps_clock(client, session, lead, clock):
    token, secret = issued(session, lead, days=2)
    assert token.expires_at == token.created_at + timedelta(days=2)
    clock.advance(2 * 86400 - 60)
    assert client.get("/api/cases", headers=bearer(secret)).status_code == 200
    clock.advance(61)
    assert client.get("/api/cases", headers=bearer(secret)).status_code == 401


def test_a_token_lasts_90_days_unless_told_and_never_over_365(session, lead):
    token, _ = issued(session, lead)
    assert token.expires_at - token.created_at == timedelta(days=90)
    with pytest.raises(ValueError, match="1 to 365 days"):
        tokens.issue(session, lead, name="forever", days=366)


def test_a_read_token_cannot_write_and_a_write_token_adds_a_note_as_its_owner(client, session, lead):
    case = add_case(session, queue="claims")
    _, read = issued(session, lead)
    refused = client.post(f"/api/cases/{case.id}/notes", json={"text": "checked"}, headers=bearer(read))
    assert refused.status_code == 403 and refused.get_json()["error"] == "Forbidden"
    assert session.scalars(sa.select(Note)).all() == []
    _, write = issued(session, lead, TokenScope.WRITE)
    added = client.post(f"/api/cases/{case.id}/notes", json={"text": "checked the booking"}, headers=bearer(write))
    assert added.status_code == 201, added.get_data(as_text=True)
    [note] = session.scalars(sa.select(Note)).all()
    assert (note.case_id, note.author_id, note.kind, note.text) == (case.id, lead.id, "note", "checked the booking")
    assert added.get_json()["id"] == note.id
    assert session.scalars(sa.select(Event).where(Event.kind == "case.note")).one().actor_id == lead.id


@pytest.mark.parametrize("body", [None, {}, {"text": ""}, {"text": "   "}, {"text": 5}, ["text"],
                                  {"text": "x" * 5001}],
                         ids=["no-json", "no-text", "empty", "blank", "not-a-string", "a-list", "too-long"])
def test_a_bad_note_is_a_400(client, session, lead, body):
    case = add_case(session, queue="claims")
    _, write = issued(session, lead, TokenScope.WRITE)
    answer = client.post(f"/api/cases/{case.id}/notes", json=body, headers=bearer(write))
    assert answer.status_code == 400 and answer.get_json()["error"] == "Bad Request"
    assert session.scalars(sa.select(Note)).all() == []


def test_last_use_is_recorded_at_most_once_a_minute(client, session, lead, clock):
    token, secret = issued(session, lead)
    assert token.last_used_at is None
    client.get("/api/cases", headers=bearer(secret))
    session.expire_all()
    first = session.get(ApiToken, token.id).last_used_at
    assert first is not None and abs((first - clock.now()).total_seconds()) < 5
    clock.advance(30)
    client.get("/api/cases", headers=bearer(secret))
    session.expire_all()
    assert session.get(ApiToken, token.id).last_used_at == first
    clock.advance(31)
    client.get("/api/cases", headers=bearer(secret))
    session.expire_all()
    assert session.get(ApiToken, token.id).last_used_at > first


def test_the_console_creates_a_token_shown_once_and_revokes_it(client, login, session):
    agent = login(queues=["claims"])
    page = client.get("/tokens/").get_data(as_text=True)
    created = client.post("/tokens/", data={"csrf_token": csrf_token(page), "name": "my script", "scope": "write",
                                           "days": "30"})
    assert created.status_code == 200
    html = created.get_data(as_text=True)
    token = session.scalars(sa.select(ApiToken)).one()
    assert (token.user_id, token.name, token.scope) == (agent.id, "my script", TokenScope.WRITE)
    secret = html.split('<div class="card" id="new-token">')[1].split("<code>")[1].split("</code>")[0]
    assert tokens.hash_token(secret) == token.token_hash
    again = client.get("/tokens/").get_data(as_text=True)
    assert "my script" in again and secret not in again  # listed, never shown again
    assert client.get("/api/cases", headers=bearer(secret)).status_code == 200
    assert client.post(f"/tokens/{token.id}/revoke", data={"csrf_token": csrf_token(again)}).status_code == 302
    assert client.get("/api/cases", headers=bearer(secret)).status_code == 401


@pytest.mark.parametrize("form, error", [
    ({"name": "", "scope": "read", "days": "30"}, "This field is required"),
    ({"name": "x", "scope": "admin", "days": "30"}, "Not a valid choice"),
    ({"name": "x", "scope": "read", "days": "366"}, "between 1 and 365"),
], ids=["no-name", "bad-scope", "too-long"])
def test_the_console_refuses_a_bad_token_form(client, login, session, form, error):
    login()
    page = client.get("/tokens/").get_data(as_text=True)
    answer = client.post("/tokens/", data={"csrf_token": csrf_token(page), **form})
    assert answer.status_code == 400 and error in answer.get_data(as_text=True)
    assert session.scalars(sa.select(ApiToken)).all() == []


def test_only_an_admin_sees_and_revokes_someone_elses_token(client, login, make_user, session, lead):
    theirs, _ = issued(session, lead)
    login(email="agent@team.test")
    page = client.get("/tokens/").get_data(as_text=True)
    assert "lee@team.test" not in page and "No tokens." in page
    assert client.post(f"/tokens/{theirs.id}/revoke", data={"csrf_token": csrf_token(page)}).status_code == 404
    client.post("/logout", data={"csrf_token": csrf_token(page)})
    login(UserRole.ADMIN)
    page = client.get("/tokens/").get_data(as_text=True)
    assert "lee@team.test" in page
    assert client.post(f"/tokens/{theirs.id}/revoke", data={"csrf_token": csrf_token(page)}).status_code == 302
    session.expire_all()
    assert session.get(ApiToken, theirs.id).revoked_at is not None


def test_migration_0014_moves_the_old_tokens_to_the_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db.upgrade(url, "0013")
    engine = db.make_engine(url)  # foreign keys enforced, as the app has them
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO users (email, name, role, password_hash, api_token_hash, active, queues, capacity, on_call, "
            "presence, created_at) VALUES ('old@team.test', 'Old', 'lead', 'x', :hash, 1, '[]', 5, 0, 'offline', "
            "'2026-01-01 00:00:00')"), {"hash": tokens.hash_token("old-secret")})
        connection.execute(sa.text("INSERT INTO contacts (phone, opted_out, created_at) VALUES ('+15035550101', 0, "
                                   "'2026-01-01 00:00:00')"))
        connection.execute(sa.text(
            "INSERT INTO cases (contact_id, status, queue, priority, assignee_id, created_at, updated_at, "
            "checklist_done) VALUES (1, 'open', 'claims', 3, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00', '[]')"))
    db.upgrade(url)
    with engine.connect() as connection:
        [row] = connection.execute(sa.text("SELECT user_id, name, scope, token_hash, revoked_at FROM api_tokens")).all()
        columns = {c["name"] for c in sa.inspect(connection).get_columns("users")}
        assert connection.execute(sa.text("SELECT assignee_id FROM cases")).scalar() == 1
    engine.dispose()
    assert row == (1, "migrated", "read", tokens.hash_token("old-secret"), None)
    assert "api_token_hash" not in columns
