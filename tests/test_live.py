"""The consoles' live streams (/events): only what the user may see, a few streams per user, ended by logout and
deactivation, and served by a process of their own so that open consoles never hold up Twilio's webhooks."""

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from conftest import ACCOUNT_SID, AUTH_TOKEN, PASSWORD, TEAM_NUMBER, csrf_token
from conftest import test_environment as app_environment
from processes import BASE_ENVIRONMENT, ProcfileProcess
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from werkzeug.security import generate_password_hash

from assist import db, events
from assist.models import Case, Contact, User, UserRole
from assist.simulate import free_port, sms_params
from assist.triage.labels import QUEUES
from assist.users import create_user
from assist.web import live

pytestmark = pytest.mark.both_databases

EMERGENCY_TEXT = "my dog got out and ran off"  # routed to the emergency queue
CLAIMS_TEXT = "my couch cushions were torn up during last weeks house sit, who pays for this"  # routed to claims


def post_sms(live_server, body: str, sender: str) -> None:
    response = live_server.post_signed("/twilio/sms", sms_params(from_=sender, to=TEAM_NUMBER, body=body,
                                                                 account_sid=ACCOUNT_SID))
    assert response.status_code == 200, response.text


# These tests keep no app context open (as the session fixture does): requests made in one would share its `g`,
# where Flask-Login keeps the request's user and Flask-WTF the CSRF token, so two browsers would be one.

def add_user(app, role: UserRole, email: str, queues: tuple[str, ...] = ()) -> User:
    with app.app_context():
        user = create_user(db.session(), email=email, name=email, role=role, password=PASSWORD, queues=queues)
        db.session().commit()
        return user


def change_user(app, user: User, **changes) -> None:
    with app.app_context():
        for name, value in changes.items():
            setattr(db.session().get(User, user.id), name, value)
        db.session().commit()


def case_by_sender(app, sender: str) -> Case:
    with app.app_context():
        return db.session().scalars(select(Case).join(Contact, Case.contact_id == Contact.id)
                                    .where(Contact.phone == sender)).one()


def logged_in(app, user: User):
    """A test client of its own (a browser) with user logged in."""
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def open_stream(client):
    """Open /events; return its chunks, the first (the reconnect delay) read."""
    response = client.get("/events", buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    chunks = iter(response.response)
    assert next(chunks).startswith(b"retry:")
    return response, chunks


def read_until(chunks, needle: bytes, timeout: float = 10) -> bytes:
    """What a stream sent up to and including needle (it yields at least a keep-alive each HEARTBEAT)."""
    data, deadline = b"", time.monotonic() + timeout
    while needle not in data:
        assert time.monotonic() < deadline, f"{needle!r} did not come: {data!r}"
        data += next(chunks)
    return data


def ends(chunks, within: int = 10) -> bool:
    """Whether a stream ends within a few chunks (with HEARTBEAT 0 it yields a keep-alive every second)."""
    for _ in range(within):
        try:
            next(chunks)
        except StopIteration:
            return True
    return False


def test_an_agent_receives_only_the_events_of_their_queues_and_the_lead_all(app, live_server, monkeypatch):
    monkeypatch.setattr(live, "RECHECK", 0)  # look at the user again at every turn: a queue added counts at once
    agent = add_user(app, UserRole.AGENT, "claims@team.test", queues=("claims",))
    lead = add_user(app, UserRole.LEAD, "lead@team.test")
    agent_stream, agent_chunks = open_stream(logged_in(app, agent))
    lead_stream, lead_chunks = open_stream(logged_in(app, lead))

    post_sms(live_server, EMERGENCY_TEXT, "+15035550601")
    post_sms(live_server, CLAIMS_TEXT, "+15035550602")
    emergency, claims = case_by_sender(app, "+15035550601"), case_by_sender(app, "+15035550602")
    assert (emergency.queue, claims.queue) == ("emergency", "claims")

    # Redis delivers in order: once the claims case's event is here, the emergency case's was relayed or dropped.
    seen_by_agent = read_until(agent_chunks, f'"case_id": {claims.id}'.encode())
    assert f'"case_id": {emergency.id}'.encode() not in seen_by_agent and b'"emergency"' not in seen_by_agent
    seen_by_lead = read_until(lead_chunks, f'"case_id": {claims.id}'.encode())
    assert f'"case_id": {emergency.id}'.encode() in seen_by_lead

    # The stream follows the user's queues as they change (looked at again every RECHECK seconds).
    change_user(app, agent, queues=["claims", "emergency"])
    post_sms(live_server, EMERGENCY_TEXT, "+15035550603")
    second = case_by_sender(app, "+15035550603")
    assert f'"case_id": {second.id}'.encode() in read_until(agent_chunks, f'"case_id": {second.id}'.encode())
    agent_stream.close()
    lead_stream.close()


def test_a_user_has_at_most_five_streams(app):
    agent, other = add_user(app, UserRole.AGENT, "a@team.test"), add_user(app, UserRole.AGENT, "b@team.test")
    browser = logged_in(app, agent)
    streams = [browser.get("/events", buffered=False) for _ in range(events.STREAMS_PER_USER)]
    assert [s.status_code for s in streams] == [200] * events.STREAMS_PER_USER
    refused = browser.get("/events", buffered=False)
    assert refused.status_code == 429 and "close another tab" in refused.get_data(as_text=True)
    assert refused.headers["Retry-After"]
    other_stream = logged_in(app, other).get("/events", buffered=False)
    assert other_stream.status_code == 200  # the limit is per user

    streams.pop().close()  # a tab closed frees its slot
    again = browser.get("/events", buffered=False)
    assert again.status_code == 200
    for stream in (*streams, again, other_stream):
        stream.close()


def test_a_slot_whose_process_died_frees_itself(app, monkeypatch):
    agent = add_user(app, UserRole.AGENT, "agent@team.test")
    with app.app_context():
        taken = [events.open_stream(agent.id) for _ in range(events.STREAMS_PER_USER)]
        assert None not in taken and events.open_stream(agent.id) is None
        # Never closed nor renewed (the process was killed): the lease runs out.
        later = time.time() + events.STREAM_LEASE + 1
        monkeypatch.setattr(events.time, "time", lambda: later)
        assert events.open_stream(agent.id) is not None


def test_streams_end_when_redis_goes_away_so_their_browsers_reconnect():
    relay = events.Relay(lambda: redis.Redis(port=free_port(), socket_connect_timeout=1))  # nothing listens there
    assert relay.listen(user_id=1).get(timeout=5) == events.END


def test_a_stream_needs_a_login(client):
    assert client.get("/events").status_code == 401


def test_logging_out_ends_the_users_streams(app, monkeypatch):
    monkeypatch.setattr(live, "HEARTBEAT", 0)  # a keep-alive every turn: a stream that goes on shows at once
    agent = add_user(app, UserRole.AGENT, "agent@team.test")
    browser, elsewhere = logged_in(app, agent), logged_in(app, agent)
    _, chunks = open_stream(browser)
    _, other_chunks = open_stream(elsewhere)
    assert not ends(chunks, within=1)
    page = browser.get("/").get_data(as_text=True)
    assert browser.post("/logout", data={"csrf_token": csrf_token(page)}).status_code == 302
    assert ends(chunks) and ends(other_chunks)
    assert browser.get("/events").status_code == 401  # and the browser's reconnect is refused


def test_a_deactivated_user_s_stream_ends(app, monkeypatch):
    monkeypatch.setattr(live, "HEARTBEAT", 0)
    monkeypatch.setattr(live, "RECHECK", 0)
    agent = add_user(app, UserRole.AGENT, "agent@team.test")
    _, chunks = open_stream(logged_in(app, agent))
    assert not ends(chunks, within=2)
    change_user(app, agent, active=False)
    assert ends(chunks)


def test_a_stream_ends_when_its_login_idles_out(app, clock, monkeypatch):
    """An open console is not activity: the stream does not keep its login alive past the idle timeout."""
    monkeypatch.setattr(live, "HEARTBEAT", 0)
    monkeypatch.setattr(live, "RECHECK", 0)
    agent = add_user(app, UserRole.AGENT, "agent@team.test")
    _, chunks = open_stream(logged_in(app, agent))
    assert not ends(chunks, within=2)
    clock.advance(app.extensions["runtime"].settings.session_idle_minutes * 60 + 1)
    assert ends(chunks)


# -- the Procfile's processes ----------------------------------------------------------------------

STREAMS = 200  # consoles open at once: 40 users with 5 tabs each
WEBHOOKS = 20
WEBHOOK_BOUND = 3.0  # seconds each webhook may take (about 0.05 here); Twilio gives up at 15
BROWSER = "live-test-browser"  # one User-Agent for the login and the streams: Flask-Login's "strong" protection


class Stream:
    """A console's /events stream on a raw socket: opened, its answer's head read, then left open."""

    def __init__(self, port: int, cookie: str):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.socket.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {BROWSER}\r\n"
                            f"Accept: text/event-stream\r\nCookie: session={cookie}\r\n\r\n".encode())
        self.received = b""

    def read_until(self, needle: bytes) -> bytes:
        while needle not in self.received:
            chunk = self.socket.recv(65536)
            assert chunk, f"the stream closed: {self.received!r}"
            self.received += chunk
        return self.received

    @property
    def status(self) -> int:
        return int(self.read_until(b"\r\n").split(b" ", 2)[1])


def session_cookie(base: str, email: str) -> str:
    browser = requests.Session()
    browser.headers["User-Agent"] = BROWSER
    token = csrf_token(browser.get(f"{base}/login", timeout=10).text)
    response = browser.post(f"{base}/login", data={"email": email, "password": PASSWORD, "csrf_token": token},
                            allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return browser.cookies["session"]


def send_sms(web: str, i: int, text: str = EMERGENCY_TEXT) -> float:
    """Post customer i's signed SMS to the web process; return the seconds it took to answer."""
    params = sms_params(from_=f"+1503555{i:04d}", to=TEAM_NUMBER, body=text, account_sid=ACCOUNT_SID)
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{web}/twilio/sms", params)
    started = time.monotonic()
    response = requests.post(f"{web}/twilio/sms", data=params, headers={"X-Twilio-Signature": signature},
                             timeout=WEBHOOK_BOUND + 5)
    assert response.status_code == 200, response.text
    return time.monotonic() - started


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_open_consoles_never_hold_up_twilios_webhooks(app, database_url, tmp_path):
    web_port, events_port = free_port(), free_port()
    web, events_url = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{events_port}"
    env = {**BASE_ENVIRONMENT, **app_environment(database_url, tmp_path / "instance"), "PUBLIC_BASE_URL": web,
           "PORT": str(web_port), "EVENTS_PORT": str(events_port), "LOG_LEVEL": "WARNING"}
    processes = [ProcfileProcess(name, env, tmp_path / f"{name}.log") for name in ("web", "events")]
    streams: list[Stream] = []
    try:
        # 40 agents, half of them claims-only. A cheap password hash: 40 logins at scrypt's cost take seconds.
        with app.app_context():
            cheap = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
            db.session().add_all(User(email=f"agent{i}@team.test", name=f"Agent {i}", role=UserRole.AGENT,
                                      password_hash=cheap, queues=["claims"] if i % 2 else list(QUEUES))
                                 for i in range(STREAMS // events.STREAMS_PER_USER))
            db.session().commit()
        processes[1].wait_until_up(f"{events_url}/healthz")
        processes[0].wait_until_up(f"{web}/healthz")
        with ThreadPoolExecutor(6) as warm_up:  # each web worker's first request is slow, streams or not
            list(warm_up.map(lambda i: send_sms(web, i), range(WEBHOOKS, WEBHOOKS + 6)))
        cookies = [session_cookie(web, f"agent{i}@team.test") for i in range(STREAMS // events.STREAMS_PER_USER)]

        streams = [Stream(events_port, cookies[i % len(cookies)]) for i in range(STREAMS)]
        assert [s.status for s in streams] == [200] * STREAMS
        for stream in streams:
            stream.read_until(b"retry:")
        sixth = Stream(events_port, cookies[0])
        assert sixth.status == 429  # the limit holds across connections to the process
        sixth.socket.close()
        assert requests.get(f"{web}/events", timeout=5).status_code == 404  # the web process holds no stream

        took = [send_sms(web, i) for i in range(WEBHOOKS)]
        assert max(took) < WEBHOOK_BOUND, f"webhooks took {[round(t, 2) for t in took]} s"
        started = time.monotonic()
        assert requests.get(f"{events_url}/healthz", timeout=5).status_code == 200
        assert time.monotonic() - started < WEBHOOK_BOUND

        # The streams relay across processes, each what its user may see: the emergency cases' messages reach
        # an agent of every queue (an even one), and not a claims-only agent (an odd one), who gets a claims case's.
        assert b'"queue": "emergency"' in streams[0].read_until(b'"kind": "message"')
        send_sms(web, WEBHOOKS + 6, CLAIMS_TEXT)
        assert b'"emergency"' not in streams[1].read_until(b'"queue": "claims"')
    finally:
        for stream in streams:
            stream.socket.close()
        for process in processes:
            process.stop()


def test_services_on_other_databases_of_one_redis_never_hear_each_others_events(redis_connection):
    """Pub/sub ignores the database: the channel names carry it instead."""
    pool = redis_connection.connection_pool
    ours = redis_connection
    theirs = redis.Redis(connection_pool=type(pool)(connection_class=pool.connection_class, **{
        **pool.connection_kwargs, "db": (pool.connection_kwargs.get("db", 0) + 1) % 16}))
    relay = events.Relay(lambda: ours)
    inbox = relay.listen(user_id=7)
    try:
        theirs.publish(events.channel(theirs), '{"kind": "case", "case_id": 1}')
        theirs.publish(events.user_channel(theirs, 7), "end")
        ours.publish(events.channel(ours), '{"kind": "case", "case_id": 2}')
        assert inbox.get(timeout=5)[0] == {"kind": "case", "case_id": 2}  # ours, and nothing of theirs before it
        assert inbox.empty()
    finally:
        relay.forget(inbox)
        theirs.connection_pool.disconnect()
        deadline = time.monotonic() + 5
        while relay._running and time.monotonic() < deadline:  # its subscription closes with its last listener
            time.sleep(0.1)
