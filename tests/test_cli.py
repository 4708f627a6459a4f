"""The `assist` command."""

import json
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import add_case
from processes import BASE_ENVIRONMENT
from sqlalchemy import select

from assist.ingest import ingest
from assist.models import ApiToken, Case, Member, TokenScope, User, UserRole
from assist.simulate import free_port
from assist.tokens import authenticate, hash_token, issue
from channels.message import Channel, InboundMessage


def test_users_create_and_token(runner, session):
    result = runner.invoke(args=["users", "create", "--email", "Kim@Team.test", "--name", "Kim", "--role", "lead",
                                 "--password", "long enough password"])
    assert result.exit_code == 0, result.output
    kim = session.scalars(select(User)).one()
    assert (kim.email, kim.role) == ("kim@team.test", UserRole.LEAD)
    created = runner.invoke(args=["users", "token", "create", "kim@team.test", "--name", "reports", "--scope", "write",
                                  "--days", "30"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert len(token) > 30
    [row] = session.scalars(select(ApiToken)).all()
    assert (row.user_id, row.name, row.scope, row.token_hash) == (kim.id, "reports", TokenScope.WRITE,
                                                                  hash_token(token))
    assert row.expires_at - row.created_at == timedelta(days=30)
    listed = runner.invoke(args=["users", "token", "list", "kim@team.test"])
    assert f"{row.id}\tkim@team.test\treports\twrite\tactive" in listed.output and token not in listed.output
    assert runner.invoke(args=["users", "token", "revoke", str(row.id)]).exit_code == 0
    session.expire_all()
    assert session.get(ApiToken, row.id).revoked_at is not None
    assert "revoked" in runner.invoke(args=["users", "token", "list"]).output
    again = runner.invoke(args=["users", "token", "revoke", str(row.id)])
    assert again.exit_code == 1 and "already revoked" in again.output


@pytest.mark.parametrize("args, error", [
    (["--days", "366"], "1 to 365 days"),
    (["--days", "0"], "1 to 365 days"),
    (["--scope", "admin"], "Invalid value for '--scope'"),
    (["--name", " "], "give the token a name"),
], ids=["too-long", "zero-days", "bad-scope", "blank-name"])
def test_users_token_create_refuses_bad_options(runner, make_user, session, args, error):
    make_user(email="kim@team.test")
    result = runner.invoke(args=["users", "token", "create", "kim@team.test", "--name", "reports", *args])
    assert result.exit_code != 0 and error in result.output
    assert session.scalars(select(ApiToken)).all() == []


def test_users_deactivate_and_reactivate(runner, make_user, session):
    kim = make_user(email="kim@team.test", queues=["claims"])
    _, secret = issue(session, kim, name="reports")
    case = add_case(session, queue="claims", assignee=kim)
    result = runner.invoke(args=["users", "deactivate", "kim@team.test"])
    assert result.exit_code == 0, result.output
    assert "1 open case(s)" in result.output
    session.expire_all()
    assert not session.get(User, kim.id).active and session.get(Case, case.id).assignee_id is None
    assert all(t.revoked_at is not None for t in session.scalars(select(ApiToken)))
    assert runner.invoke(args=["users", "deactivate", "kim@team.test"]).exit_code == 1
    assert runner.invoke(args=["users", "reactivate", "kim@team.test"]).exit_code == 0
    session.expire_all()
    assert session.get(User, kim.id).active
    assert authenticate(session, secret) is None  # reactivating does not bring the tokens back


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


ASSIST = str(Path(sys.executable).with_name("assist"))
SERVICE_COMMANDS = {"cases", "classify", "db", "demo", "evaluate", "members", "playbooks", "report", "retention",
                    "sandbox", "settings", "simulate", "smtp", "train", "users", "worker"}


def run_assist(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([ASSIST, *args], cwd=cwd, env={**BASE_ENVIRONMENT, **(env or {})}, capture_output=True,
                          text=True, timeout=60)


def test_help_lists_only_the_services_commands_and_loads_no_model(tmp_path):
    result = run_assist("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.split("Commands:")[1].strip().splitlines()}
    assert listed == SERVICE_COMMANDS  # not Flask's run, shell or routes
    assert "--env-file" not in result.stdout and "--app" not in result.stdout
    loaded = subprocess.run([sys.executable, "-c", "import sys\nfrom assist.cli import main\n"
                             "main(['--help'], standalone_mode=False)\n"
                             "print(sorted(m for m in ('spacy', 'thinc', 'sqlalchemy.orm') if m in sys.modules))"],
                            capture_output=True, text=True, check=True)
    assert loaded.stdout.strip().endswith("[]")  # help imports no model and no ORM


def test_version_is_the_services_own(tmp_path):
    from importlib.metadata import version

    result = run_assist("--version", cwd=tmp_path)
    assert result.stdout.strip() == f"assist, version {version('pawtrust-assist')}"


def test_simulate_help_names_the_settings_it_shares_with_the_service(tmp_path):
    result = run_assist("simulate", "--help", cwd=tmp_path)
    text = " ".join(result.stdout.split())
    for name in ("PUBLIC_BASE_URL", "PORT", "TWILIO_AUTH_TOKEN", "SMTP_LISTEN"):
        assert name in text


@pytest.mark.parametrize("command, setting, message", [
    (["smtp"], "SMTP_LISTEN", "Error: SMTP_LISTEN 127.0.0.1:{port} is busy (Address already in use): "
                              "set SMTP_LISTEN to a free host:port"),
    (["demo", "--port", "{port}"], None,
     "Error: port {port} is busy (Address already in use): pick another with --port"),
], ids=["smtp", "demo"])
def test_a_busy_port_is_one_clear_line_and_leaves_nothing_running(command, setting, message, tmp_path):
    from processes import running_in

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"INSTANCE_PATH": str(tmp_path / "instance"), "SMTP_LISTEN": f"127.0.0.1:{free_port()}"}
        if setting:
            env[setting] = f"127.0.0.1:{port}"
        result = run_assist(*(arg.format(port=port) for arg in command), cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [message.format(port=port)]
    assert running_in(tmp_path / "instance") == set()  # the demo stopped the embedded Redis it had started
