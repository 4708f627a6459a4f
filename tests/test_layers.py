"""The layers point one way (tests/layers.py): channels <- core <- web <- cli and workers."""

import subprocess
import sys

import pytest
from layers import ROOT, imported, layer_of, module_name, source_files, violations


def test_no_import_goes_against_the_layer_order():
    found = violations()
    assert not found, "\n".join(map(str, found))


@pytest.mark.parametrize("where, source, layer", [
    ("channels/sms.py", "from assist.errors import BadWebhook", "channels"),
    ("channels/voice.py", "def build():\n    from flask import current_app\n", "channels"),
    ("channels/email.py", "import sqlalchemy.orm", "channels"),
    ("assist/routing.py", "from flask import current_app", "core"),
    ("assist/jobs.py", "from assist.web.urls import external_url", "core"),
    ("assist/ingest.py", "from assist import web", "core"),
    ("assist/triage/rules.py", "import flask_login", "core"),
    ("assist/outbound.py", "def later():\n    from assist import cli\n", "core"),
    ("assist/web/console.py", "from assist.worker import make_worker", "web"),
])
def test_the_check_catches_an_import_against_the_order(tmp_path, monkeypatch, where, source, layer):
    import layers

    module = tmp_path / where
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(source)
    monkeypatch.setattr(layers, "ROOT", tmp_path)
    [violation] = layers.violations([module])
    assert violation.layer == layer and violation.path == where


def test_imports_the_order_allows_are_not_flagged(tmp_path, monkeypatch):
    import layers

    allowed = {"channels/sms.py": "from twilio.twiml.messaging_response import MessagingResponse\n"
                                  "from channels.message import Channel",
               "assist/ingest.py": "from channels.message import InboundMessage\nfrom sqlalchemy import select",
               "assist/web/sms.py": "from flask import Blueprint\nfrom assist import ingest",
               "assist/cli.py": "from assist.web.app import create_app\nfrom assist import worker"}
    files = []
    for where, source in allowed.items():
        (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / where).write_text(source)
        files.append(tmp_path / where)
    monkeypatch.setattr(layers, "ROOT", tmp_path)
    assert layers.violations(files) == []


def test_every_module_has_a_layer():
    names = [module_name(path) for path in source_files()]
    assert "assist.web.app" in names and "channels.sms" in names and "assist.triage.pipeline" in names
    assert {layer_of(name) for name in names} == {"channels", "core", "web", "top"}


def _loaded_by(statement: str, watched: tuple[str, ...]) -> list[str]:
    code = f"import sys\n{statement}\nprint(sorted(m for m in sys.modules if m.split('.')[0] in {watched!r}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return eval(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["assist.ingest", "assist.routing", "assist.playbooks", "assist.calls",
                                    "assist.jobs", "assist.cases"])
def test_importing_a_core_module_loads_neither_flask_nor_spacy(module):
    assert _loaded_by(f"import {module}", ("flask", "flask_login", "flask_wtf", "spacy", "thinc")) == []


def test_importing_a_channel_loads_nothing_of_the_service():
    loaded = _loaded_by("import channels.addresses, channels.sms, channels.voice, channels.email",
                        ("assist", "flask", "sqlalchemy", "redis"))
    assert loaded == []


def test_the_parser_sees_function_level_imports():
    tree = compile("def f():\n    from flask import g\n", "<test>", "exec", flags=0x400)  # ast.PyCF_ONLY_AST
    assert (2, "flask") in list(imported(tree))
