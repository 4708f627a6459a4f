"""The `assist` command."""

import json

from sqlalchemy import select

from assist.ingest import ingest
from assist.models import Member, User, UserRole
from channels.message import Channel, InboundMessage


def test_users_create_and_token(runner, session):
    result = runner.invoke(args=["users", "create", "--email", "Kim@Team.test", "--name", "Kim", "--role", "lead",
                                 "--password", "long enough password"])
    assert result.exit_code == 0, result.output
    kim = session.scalars(select(User)).one()
    assert (kim.email, kim.role) == ("kim@team.test", UserRole.LEAD)
    token = runner.invoke(args=["users", "token", "kim@team.test"]).output.strip()
    assert len(token) > 30
    session.expire_all()
    assert session.get(User, kim.id).api_token_hash not in (None, token)


def test_users_create_refuses_a_short_password(runner):
    result = runner.invoke(args=["users", "create", "--email", "a@team.test", "--name", "A", "--password", "short"])
    assert result.exit_code == 1
    assert "at least 10 characters" in result.output


def test_members_import(runner, session, tmp_path):
    path = tmp_path / "members.csv"
    path.write_text("member_id,role,name,phone,email,pet_name,pet_species,pet_breed,pet_notes\n"
                    "M-1,owner,Ana Ruiz,+15035550101,,Fig,dog,,\n")
    result = runner.invoke(args=["members", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "members: 1 rows, 1 created" in result.output
    assert session.scalars(select(Member)).one().pets[0].name == "Fig"


def test_members_import_names_the_bad_line_and_imports_nothing(runner, session, tmp_path):
    path = tmp_path / "members.csv"
    path.write_text("member_id,role,name,phone,email\nM-1,owner,Ana,,\nM-2,cat,Bo,,\n")
    result = runner.invoke(args=["members", "import", str(path)])
    assert result.exit_code == 1
    assert "line 3: role must be owner or sitter" in result.output and "nothing was imported" in result.output
    assert session.scalars(select(Member)).all() == []


def test_cases_list_json(runner, session):
    ingest(session, InboundMessage(channel=Channel.SMS, channel_id="SM1", sender="+15035550101",
                                   recipient="+15005550006", text="my dog got out", original="my dog got out"))
    result = runner.invoke(args=["cases", "list", "--json"])
    assert result.exit_code == 0, result.output
    [case] = json.loads(result.output)
    assert {"id", "status", "queue", "urgency", "contact", "messages"} <= set(case)
    assert case["contact"]["phone"] == "+15035550101"
    inbound, reply = case["messages"]
    assert (inbound["channel"], inbound["direction"], inbound["channel_id"], inbound["text"]) == (
        "sms", "inbound", "SM1", "my dog got out")
    assert "triage" in inbound
    assert reply["direction"] == "outbound"
