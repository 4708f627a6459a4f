"""Fixtures: the app on SQLite or PostgreSQL, real Redis, a live server, signed Twilio posts, a worker."""

import json
import os
import re
import sqlite3
import threading
import time
import uuid
from contextlib import closing
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
import redis
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from assist import background, db, outbox, runtime, triage
from assist.clock import SetClock
from assist.models import Case, CaseStatus, Contact, Direction, Message, UserRole
from assist.settings import SANDBOX_ACCOUNT_SID
from assist.simulate import post_signed
from assist.users import create_user
from assist.web.app import create_app
from assist.worker import make_worker

FIXTURES = Path(__file__).with_name("fixtures")
IN_CI = os.environ.get("CI") == "true"


def worker_redis_url(url: str) -> str:
    """The Redis database of this pytest process: TEST_REDIS_URL's, or under pytest-xdist (scripts/test runs
    one worker per core) the one that many below it for worker gwN, since every test flushes its database."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker:
        return url
    base, _, number = url.rpartition("/")
    return f"{base}/{int(number or 0) - int(worker.removeprefix('gw'))}"


REDIS_URL = worker_redis_url(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
AUTH_TOKEN = "test-auth-token-0123456789"
ACCOUNT_SID = SANDBOX_ACCOUNT_SID  # the app fixture runs in sandbox mode: the SDK talks to its fake API
TEAM_NUMBER = "+15005550006"
PASSWORD = "correct horse battery"
SOON = 10  # seconds: drain() waits for scheduled jobs due within this (send retries), not for SLA checks


def need_service(name: str, error: Exception):
    """Skip a test whose service is down, except under CI, where that fails the run."""
    message = f"{name} is not reachable ({error}); start it (see .ci/run)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def load_fixture(path: str) -> dict:
    return json.loads((FIXTURES / path).read_text())


@pytest.fixture(scope="session")
def redis_connection():
    connection = redis.Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except redis.ConnectionError as exc:
        need_service("Redis at " + REDIS_URL, exc)
    return connection


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh PostgreSQL database for this test session, dropped at its end."""
    name = f"assist_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        need_service("PostgreSQL at " + POSTGRES_URL, exc)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url.replace("postgresql://", "postgresql+psycopg://", 1)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A SQLite database migrated to head once per session: each test starts from a copy of it."""
    path = tmp_path_factory.mktemp("migrated") / "assist.db"
    db.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def database_url(request, tmp_path):
    """The database of one test: SQLite by default; parametrize indirectly with "postgresql"."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        path = tmp_path / "assist.db"
        with closing(sqlite3.connect(request.getfixturevalue("migrated_sqlite"))) as source, \
                closing(sqlite3.connect(path)) as copy:
            source.backup(copy)
        url = f"sqlite:///{path}"
        db.upgrade(url)  # a no-op at head: kept so a test never runs on a schema behind the migrations
        yield url
        return
    url = request.getfixturevalue("postgres_database")
    db.upgrade(url)
    engine = db.make_engine(url)
    with engine.begin() as connection:  # empty every table, keep the schema
        tables = ", ".join(f'"{t.name}"' for t in db_tables())
        connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    engine.dispose()
    yield url
    # Whatever the test started is over: a connection still in a transaction is a session left open (it
    # would hold its locks in production, and block the next test's TRUNCATE here).
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        left = admin.execute("SELECT left(query, 120) FROM pg_stat_activity WHERE datname = %s "
                             "AND state LIKE 'idle in transaction%%'", (name,)).fetchall()
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    assert not left, f"sessions left in a transaction: {left}"


def pytest_generate_tests(metafunc):
    """Modules marked `pytestmark = pytest.mark.both_databases` run each of their database tests on SQLite
    and on PostgreSQL (production's), unless a test chooses its own."""
    if metafunc.definition.get_closest_marker("both_databases") and "database_url" in metafunc.fixturenames \
            and not any("database_url" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize")):
        metafunc.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def db_tables():
    from assist.models import Base

    return Base.metadata.sorted_tables


BUSINESS_ZONE = ZoneInfo("America/Chicago")  # not UTC, so time-zone mistakes show
IN_HOURS, AFTER_HOURS = clock_time(12, 0), clock_time(3, 0)  # in BUSINESS_ZONE, with BUSINESS_HOURS 08:00-20:00


def business_time(at: clock_time, day: date = date(2026, 6, 3)) -> datetime:
    """A moment of a fixed day (a Wednesday) at a local time of the business time zone."""
    return datetime.combine(day, at, tzinfo=BUSINESS_ZONE)


def test_environment(database_url: str, instance: Path) -> dict[str, str]:
    """The whole environment the app fixture sees: nothing of the caller's is inherited."""
    return {
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "test-secret-key",
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": TEAM_NUMBER,
        "PUBLIC_BASE_URL": "http://localhost",
        "SEND_RETRY_INTERVALS": "1,1",
        "BUSINESS_HOURS": "08:00-20:00",
        "BUSINESS_TIMEZONE": BUSINESS_ZONE.key,
    }


@pytest.fixture
def clock(request):
    """The app's clock: noon of a fixed weekday in the business time zone, running on from there.

    Parametrize it indirectly with a local time to start elsewhere (see AT_ANY_HOUR). A test that
    needs a particular time sets it (clock.set) or advances it (clock.advance).
    """
    return SetClock(business_time(getattr(request, "param", IN_HOURS)))


# For a module whose tests must pass whatever the hour and whatever the caller's environment says:
# pytestmark = AT_ANY_HOUR. Each test runs with the clock in and out of business hours.
AT_ANY_HOUR = [pytest.mark.parametrize("clock", [IN_HOURS, AFTER_HOURS], ids=["12:00", "03:00"], indirect=True),
               pytest.mark.usefixtures("noisy_environment")]


@pytest.fixture
def noisy_environment(monkeypatch):
    """A caller's environment full of settings that the app fixture must not pick up."""
    noise = {"BUSINESS_HOURS": "00:00-00:01", "BUSINESS_TIMEZONE": "Pacific/Kiritimati",
             "ON_CALL_NUMBER": "+15550000000", "PUBLIC_BASE_URL": "https://elsewhere.example",
             "TWILIO_AUTH_TOKEN": "someone-elses-token",
             "DATABASE_URL": "sqlite:////nonexistent/elsewhere.db", "PLAYBOOKS_DIR": "/nonexistent/playbooks"}
    for name, value in noise.items():
        monkeypatch.setenv(name, value)
    return noise


@pytest.fixture
def app(database_url, redis_connection, tmp_path, clock):
    redis_connection.flushdb()
    app = create_app({"TESTING": True}, environ=test_environment(database_url, tmp_path / "instance"), clock=clock)
    yield app
    runtime_of(app).close()


def runtime_of(app) -> runtime.Runtime:
    return app.extensions["runtime"]


def configure(app, **changes) -> None:
    """Change some of the app's settings for one test (they are checked as at startup)."""
    runtime_of(app).configure(**changes)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    """Flask's CLI runner, with the service's commands on the app (`assist` finds them in assist.cli)."""
    from assist import cli

    cli.init_app(app)
    return app.test_cli_runner()


@pytest.fixture
def session(app):
    """A database session of the app, for arranging and checking rows."""
    with app.app_context():
        yield db.session()


class Twilio:
    """Posts webhooks signed exactly as Twilio signs them, to the test client or a live server."""

    def __init__(self, app, client, base_url: str):
        self.app, self.client, self.base_url = app, client, base_url

    def signature(self, path: str, params: dict, token: str = AUTH_TOKEN) -> str:
        return RequestValidator(token).compute_signature(self.base_url + path, params)

    def post(self, path: str, params: dict, *, signature: str | None = None, headers: dict | None = None):
        headers = {"X-Twilio-Signature": self.signature(path, params) if signature is None else signature,
                   **(headers or {})}
        return self.client.post(path, data=params, headers=headers)


@pytest.fixture
def twilio(app, client):
    return Twilio(app, client, runtime_of(app).settings.public_base_url)


class LiveServer:
    def __init__(self, app):
        app.config["PROPAGATE_EXCEPTIONS"] = False  # a view's error is logged with its traceback, then 500
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        configure(app, public_base_url=self.url)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def post_signed(self, path: str, params: dict, **headers):
        return post_signed(self.url + path, params, AUTH_TOKEN, **headers)


CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"  # screenshots the browser tests take


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, driven by Playwright: one per test module (`playwright install` cannot download here)."""
    if not CHROMIUM.exists():
        need_service("Chromium at /usr/bin/chromium", FileNotFoundError("apt-get install chromium"))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"])
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser, live_server):
    """A logged-in page that fails the test on any dialog, console error or Content Security Policy violation."""
    contexts, problems, violations = [], [], []

    def open_as(user):
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
        page.on("console", lambda message: message.type == "error" and problems.append(f"console: {message.text}"))
        page.on("console", lambda message: "Content Security Policy" in message.text
                and violations.append(message.text))
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.goto(live_server.url + "/login")
        page.fill("input[name=email]", user.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(live_server.url + "/")
        return page

    yield open_as
    for context in contexts:
        context.close()
    assert violations == []
    assert problems == []


@pytest.fixture
def live_server(app):
    triage.load()  # once per process: a test's first webhook must not wait for the model under its 15 s timeout
    server = LiveServer(app)
    yield server
    assert server.thread.is_alive(), "the live server's thread ended before the test did"
    server.server.shutdown()


@pytest.fixture
def drain(app):
    """Run an RQ worker on the real Redis until no job is queued or due within `soon` seconds (retries included).

    Jobs scheduled further ahead (a case's first-response SLA check) stay scheduled.
    """

    def run(timeout: float = 20.0, logging_level: str = "WARNING", soon: int = SOON) -> None:
        worker = make_worker(runtime_of(app))
        deadline = time.monotonic() + timeout
        with app.app_context():
            all_queues = background.queues()
            while time.monotonic() < deadline:
                outbox.relay(db.session())  # as the worker's relay thread does
                worker.work(burst=True, with_scheduler=True, logging_level=logging_level)
                waiting = sum(q.count + len(ScheduledJobRegistry(queue=q).get_jobs_to_schedule(int(time.time()) + soon))
                              for q in all_queues) + outbox.unrelayed(db.session())
                if waiting == 0:
                    return
                time.sleep(0.2)
        raise AssertionError("jobs still waiting after the timeout")

    return run


@pytest.fixture
def make_user(session):
    def make(role: UserRole = UserRole.AGENT, email: str | None = None, **details):
        user = create_user(session, email=email or f"{role.value}@team.test", name=f"{role.value} user",
                           role=role, password=PASSWORD, **details)
        session.commit()
        return user

    return make


@pytest.fixture
def login(client, make_user):
    """Log a new user of a role in through the login form (with its CSRF token)."""

    def log_in(role: UserRole = UserRole.AGENT, **details):
        user = make_user(role, **details)
        page = client.get("/login")
        token = csrf_token(page.get_data(as_text=True))
        response = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)
        return user

    return log_in


def csrf_token(html: str) -> str:
    """Return the CSRF token of the first form on a page."""
    tag = re.search(r'<input[^>]*name="csrf_token"[^>]*>', html).group(0)
    return re.search(r'value="([^"]+)"', tag).group(1)


def seen_marker(html: str) -> str:
    """The reply form's marker of the newest message the case page showed (sent back with a reply)."""
    return re.search(r'<input type="hidden" name="seen" value="(\d+)">', html).group(1)


def count(session, model) -> int:
    session.expire_all()
    return len(session.scalars(select(model)).all())


def add_case(session, *, queue: str, assignee=None, phone: str = "+15035550199", text: str = "help please",
             urgency: str = "normal") -> Case:
    """An open case in queue (held by assignee) with one inbound SMS of its own contact, committed."""
    contact = Contact(phone=phone)
    case = Case(contact=contact, status=CaseStatus.OPEN, queue=queue, urgency=urgency, assignee=assignee)
    message = Message(case=case, contact=contact, direction=Direction.INBOUND, channel="sms", sender=phone,
                      recipient=TEAM_NUMBER, text=text, original=text)
    session.add_all([contact, case, message])
    session.commit()
    return case
