"""The README's first command: `assist demo` on the embedded defaults, played with `assist simulate`."""

import json
import signal
import sys
from pathlib import Path

import pytest
import requests
from processes import Demo, alive, descendants, running_in

ASSIST = str(Path(sys.executable).with_name("assist"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_runs_on_embedded_defaults_and_stops_everything_it_started(tmp_path, sig):
    instance = tmp_path / "instance"
    demo = Demo(ASSIST, cwd=tmp_path, env={"INSTANCE_PATH": str(instance)})
    try:
        demo.wait_until_up()
        started = descendants(demo.process.pid) | running_in(instance)  # its worker's scheduler, embedded Redis
        assert any("redis-server" in Path(f"/proc/{pid}/cmdline").read_text() for pid in started), started

        simulate = demo.run("simulate", "sms", "--from", "+15551234567", "my dog got out")
        assert simulate.returncode == 0, simulate.stderr
        assert "<Response><Message" in simulate.stdout

        listed = demo.run("cases", "list", "--json")
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
        # a search's terms (a phone number here) stay out of the access log, as do status callbacks' ids
        searched = requests.get(f"http://127.0.0.1:{demo.port}/dashboard/search?q=%2B15550199876&from=2024-01-01",
                                allow_redirects=False, timeout=10)
        assert searched.status_code == 302  # to the login page, logged all the same
    finally:
        code = demo.stop(sig)
    assert code == 0, demo.output
    assert [pid for pid in started if alive(pid)] == []
    assert "GET /dashboard/search HTTP/1.1" in demo.output  # werkzeug colours a line by its status
    assert "15550199876" not in demo.output and "?q=" not in demo.output
    assert "/twilio/sms/status HTTP/1.1" in demo.output and "status?message=" not in demo.output
    assert "Demo logins:" in demo.output and "agent@demo.test" in demo.output
    assert f"PORT={demo.port} SMTP_LISTEN=127.0.0.1:{demo.smtp_port} assist simulate sms" in demo.output

