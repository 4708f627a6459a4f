"""The `assist` command."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from processes import BASE_ENVIRONMENT
from sqlalchemy import select

from assist.ingest import ingest
from assist.models import Member, User, UserRole
from assist.simulate import free_port
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


ASSIST = str(Path(sys.executable).with_name("assist"))
SERVICE_COMMANDS = {"cases", "classify", "db", "demo", "evaluate", "members", "playbooks", "sandbox", "settings",
                    "simulate", "smtp", "train", "users", "worker"}


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
