"""The README's first command: `assist demo` on the embedded defaults, played with `assist simulate`."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ASSIST = str(Path(sys.executable).with_name("assist"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_runs_on_embedded_defaults_and_simulate_makes_a_case(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "TWILIO_", "PUBLIC_"))}
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), PORT=str(port))
    demo = subprocess.Popen([ASSIST, "demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:  # not up yet, or busy loading the triage model
                time.sleep(0.3)
        else:
            raise AssertionError("the demo did not come up")

        simulate = subprocess.run([ASSIST, "simulate", "sms", "--from", "+15551234567", "my dog got out"],
                                  env=env, capture_output=True, text=True, timeout=30)
        assert simulate.returncode == 0, simulate.stderr
        assert "<Response><Message" in simulate.stdout

        listed = subprocess.run([ASSIST, "cases", "list", "--json"], env=env, capture_output=True, text=True,
                                timeout=30)
        assert listed.returncode == 0, listed.stderr
        cases = json.loads(listed.stdout)
        mine = [c for c in cases if c["contact"]["phone"] == "+15551234567"]
        assert len(mine) == 1
        assert mine[0]["messages"][0]["text"] == "my dog got out"
        assert len(cases) == 4  # the three demo customers' cases and this one
        # simulate acted out Twilio delivering the TwiML acknowledgement
        acknowledgement = mine[0]["messages"][1]
        assert acknowledgement["direction"] == "outbound" and acknowledgement["text"]
        assert acknowledgement["delivery_status"] == "delivered"
        assert acknowledgement["channel_id"].startswith("SM")
    finally:
        demo.terminate()
        output, _ = demo.communicate(timeout=20)
    assert "Demo logins:" in output and "agent@demo.test" in output
