"""Run `assist` commands as the README does, in their own processes, and find what they leave running."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from assist.simulate import free_port

# The environment variables a fresh shell has: nothing of the test run's own settings.
BASE_ENVIRONMENT = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}


class Demo:
    """`assist demo` in a process of its own, on free ports, with its output collected as it comes."""

    def __init__(self, assist: str, cwd: Path, env: dict | None = None):
        self.port, self.smtp_port = free_port(), free_port()
        self.env = {**BASE_ENVIRONMENT, "PORT": str(self.port), "SMTP_LISTEN": f"127.0.0.1:{self.smtp_port}",
                    **(env or {})}
        self.assist, self.cwd, self.lines = assist, cwd, []
        self.process = subprocess.Popen([assist, "demo"], cwd=cwd, env=self.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._collect, daemon=True)
        self.reader.start()

    def _collect(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_until_up(self, timeout: float = 90) -> None:
        """Wait until the console answers and the banner (printed once the demo is ready) is out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the demo exited with {self.process.returncode}:\n{self.output}")
            try:
                up = requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
            except requests.RequestException:  # not up yet, or busy loading the triage model
                up = False
            if up and "Ctrl-C stops the service." in self.output:
                return
            time.sleep(0.3)
        raise AssertionError(f"the demo did not come up:\n{self.output}")

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run another `assist` command with the demo's environment and folder."""
        return subprocess.run([self.assist, *args], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.reader.join(timeout=5)
            self.process.stdout.close()


def descendants(pid: int) -> set[int]:
    """The processes started by pid, their children and so on (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def running_in(folder: Path) -> set[int]:
    """Processes whose working directory is folder (a daemonized redis-server works in its data folder)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == folder.resolve():
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def alive(pid: int) -> bool:
    """Whether pid runs (a zombie, which has exited but was not reaped yet, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


ROOT = Path(__file__).resolve().parent.parent


class ProcfileProcess:
    """One process of the checkout's Procfile, run as a platform would (`bash -c` in the checkout), its output
    kept in a file."""

    def __init__(self, name: str, env: dict, log: Path):
        commands = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines()
                        if line and not line.startswith("#"))
        # The venv's gunicorn and assist first, as an activated venv (pytest may run without one).
        path = f"{Path(sys.executable).parent}:{env.get('PATH', os.defpath)}"
        self.name, self.log = name, log
        with log.open("wb") as out:
            self.process = subprocess.Popen(["bash", "-c", f"exec {commands[name].strip()}"], cwd=ROOT,
                                            env={**env, "PATH": path}, stdout=out, stderr=subprocess.STDOUT)

    def wait_until_up(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} did not come up:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Gunicorn's quick shutdown (SIGINT): open streams need not end first."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
