"""Settings: production refuses to start without its secrets; sandbox mode runs on nothing."""

import subprocess
import sys
from pathlib import Path

import pytest
from processes import BASE_ENVIRONMENT

from assist.errors import ConfigError
from assist.settings import SANDBOX_AUTH_TOKEN
from assist.web.app import create_app

ASSIST = str(Path(sys.executable).with_name("assist"))
PRODUCTION = {"TWILIO_ACCOUNT_SID": "AC" + "7" * 32, "TWILIO_AUTH_TOKEN": "a-real-auth-token",
              "SECRET_KEY": "a-real-secret-key"}


@pytest.mark.parametrize("missing", ["TWILIO_AUTH_TOKEN", "SECRET_KEY"])
def test_with_a_twilio_account_a_missing_secret_stops_create_app(missing, tmp_path):
    environ = {**PRODUCTION, "INSTANCE_PATH": str(tmp_path)}
    del environ[missing]
    with pytest.raises(ConfigError, match=f"^{missing} is not set; it is required when TWILIO_ACCOUNT_SID is set$"):
        create_app(environ=environ)
    assert not (tmp_path / "secret_key").exists()  # no key was made up


@pytest.mark.parametrize("command", [
    [sys.executable, "-c", "from assist.wsgi import app"],  # the web process (gunicorn assist.wsgi:app)
    [ASSIST, "worker"],
    [ASSIST, "smtp"],
], ids=["web", "worker", "smtp"])
def test_each_process_stops_with_one_line_naming_the_missing_secret(command, tmp_path):
    environ = {**BASE_ENVIRONMENT, **PRODUCTION, "INSTANCE_PATH": str(tmp_path)}
    del environ["TWILIO_AUTH_TOKEN"]
    result = subprocess.run(command, env=environ, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "TWILIO_AUTH_TOKEN is not set; it is required when TWILIO_ACCOUNT_SID is set" in line


def test_sandbox_mode_needs_no_settings_and_keeps_its_key_in_the_instance_folder(tmp_path):
    app = create_app(environ={"INSTANCE_PATH": str(tmp_path)})
    settings = app.extensions["runtime"].settings
    assert settings.sandbox and settings.auth_token == SANDBOX_AUTH_TOKEN
    assert app.config["SECRET_KEY"] == (tmp_path / "secret_key").read_text()
    assert create_app(environ={"INSTANCE_PATH": str(tmp_path)}).config["SECRET_KEY"] == app.config["SECRET_KEY"]


def test_with_its_secrets_production_starts(tmp_path):
    app = create_app(environ={**PRODUCTION, "INSTANCE_PATH": str(tmp_path)})
    assert not app.extensions["runtime"].settings.sandbox and app.config["SECRET_KEY"] == "a-real-secret-key"
    assert "sandbox.outbox_page" not in app.view_functions  # no fake Twilio API in production
