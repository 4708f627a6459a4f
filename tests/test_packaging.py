"""The package works outside the checkout: a wheel installed into a fresh venv, run from an empty folder."""

import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from processes import BASE_ENVIRONMENT, Demo

REPO = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv holding the wheel built from this checkout.

    The wheel is installed without dependencies; they come from the test run's own venv
    through a .pth line (installing spaCy and the rest again would take minutes). That
    venv's editable install is not visible there: .pth files of an added path are not run.
    """
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(root / "dist"), str(REPO)], check=True, capture_output=True)
    [wheel] = (root / "dist").glob("*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site] = (venv / "lib").glob("python3*/site-packages")
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    return venv


def test_the_installed_package_is_not_the_checkout(venv, tmp_path):
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import assist; print(assist.__file__)"],
                           cwd=tmp_path, env=BASE_ENVIRONMENT, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(venv)


def test_the_wsgi_app_imports_anywhere_and_keeps_its_instance_in_the_current_folder(venv, tmp_path):
    app = subprocess.run([str(venv / "bin" / "python"), "-c", "from assist.wsgi import app; print(app.instance_path)"],
                         cwd=tmp_path, env=BASE_ENVIRONMENT, capture_output=True, text=True)
    assert app.returncode == 0, app.stderr
    assert Path(app.stdout.strip()) == tmp_path / "instance"


def test_the_demo_answers_with_a_playbook_from_an_empty_folder(venv, tmp_path):
    demo = Demo(str(venv / "bin" / "assist"), cwd=tmp_path)
    try:
        demo.wait_until_up()
        checked = demo.run("playbooks", "check")
        simulate = demo.run("simulate", "sms", "--from", "+15551234567", "my dog got out")
    finally:
        demo.stop()
    assert checked.returncode == 0 and "40 playbooks valid" in checked.stdout, checked.stdout + checked.stderr
    assert simulate.returncode == 0, simulate.stdout + simulate.stderr
    [reply] = ET.fromstring(simulate.stdout[simulate.stdout.index("<?xml"):]).iter("Message")
    playbook = yaml.safe_load((REPO / "playbooks" / "lost-pet-now.yaml").read_text())
    opening = playbook["auto_reply"]["sms"].split(".")[1].strip()  # "Search nearby now: call …"
    assert opening.split("{{")[0].strip() in reply.text
    assert (tmp_path / "instance" / "assist.db").exists()
