"""The live case page's server side: who is on a case (assist/viewers.py), what changed on it (the updates of
assist/timeline.py), actions answered in JSON for the page's own fetch, ticks that set a state and never toggle,
and who may know any of it."""

import re
import time

import pytest
from conftest import ACCOUNT_SID, TEAM_NUMBER, add_case, configure, csrf_token, load_fixture, seen_marker
from sqlalchemy import select
from test_live import add_user, logged_in, open_stream, read_until
from werkzeug.datastructures import MultiDict

from assist import db, viewers
from assist.models import Case, Event, UserRole
from assist.simulate import free_port, sms_params

JSON = {"Accept": "application/json"}
CUSTOMER = "+15035550188"
LOST_DOG = "my dog got out and ran off"  # the lost-pet playbook: the emergency queue, a checklist of six items
BOTH_DATABASES = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def texted(twilio, session, body: str = LOST_DOG) -> Case:
    """The case of the customer's SMS, through the signed webhook."""
    assert twilio.post("/twilio/sms", sms_params(from_=CUSTOMER, to=TEAM_NUMBER, body=body,
                                                 account_sid=ACCOUNT_SID)).status_code == 200
    session.expire_all()
    return session.scalars(select(Case)).one()


def cursor_of(page: str) -> str:
    return re.search(r'data-after="([0-9.]+)"', page).group(1)


@BOTH_DATABASES
def test_actions_answer_json_when_the_page_asks_and_a_page_without(client, login, make_user, twilio, session):
    case = texted(twilio, session)
    teammate = make_user(UserRole.AGENT, email="sam@team.test", queues=[case.queue])
    login(UserRole.LEAD, queues=[case.queue])
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    token = csrf_token(page)

    def post(action: str, headers=JSON, **form):
        return client.post(f"/cases/{case.id}/{action}", data={"csrf_token": token, **form}, headers=headers)

    answer = post("note", text="Called the owner back")
    assert answer.status_code == 200 and answer.get_json() == {"message": "Note added."}
    empty = post("note", text="")
    assert empty.status_code == 400 and empty.get_json() == {"error": "Internal note: This field is required."}
    ticked = post("checklist/2", done="1")
    assert ticked.status_code == 200 and ticked.get_json()["checklist"] == [2]
    assert ticked.get_json()["message"].endswith("” is ticked now.")
    assert post("status", status="pending").get_json() == {"message": "Status: pending."}
    unknown = post("status", status="asleep")
    assert unknown.status_code == 400 and "status must be one of" in unknown.get_json()["error"]
    assert post("assign", user_id=str(teammate.id)).get_json() == {"message": "Assigned to agent user."}
    nobody = post("assign", user_id="99999")
    assert nobody.status_code == 400 and "active member of the emergency queue" in nobody.get_json()["error"]

    # Taking a colleague's case asks first: 409 with the question, then yes with take_over=1.
    refused = post("claim")
    assert refused.status_code == 409 and refused.get_json() == {
        "error": "Not assigned to you: agent user has this case. Take it over only if you mean to."}
    assert post("claim", take_over="1").get_json() == {"message": "The case is yours."}
    session.expire_all()
    assert (case.status.value, case.assignee.role, case.checklist_done) == ("pending", UserRole.LEAD, [2])

    # Without JavaScript the same forms post as ever: back to the case page, which says what was done.
    plain = post("note", headers={}, text="Owner is searching the park")
    assert plain.status_code == 302 and plain.headers["Location"] == f"/cases/{case.id}"
    assert "Note added." in client.get(plain.headers["Location"]).get_data(as_text=True)
    assert post("note", headers={}, text="").status_code == 400


@BOTH_DATABASES
def test_a_tick_sets_the_state_sent_and_a_colleagues_second_tick_keeps_it(client, login, make_user, twilio,
                                                                           session):
    case = texted(twilio, session)
    login(UserRole.AGENT, queues=[case.queue])
    token = csrf_token(client.get(f"/cases/{case.id}").get_data(as_text=True))

    def tick(item: int, *done: str):
        return client.post(f"/cases/{case.id}/checklist/{item}", headers=JSON,
                           data=MultiDict([("csrf_token", token), *(("done", d) for d in done)]))

    assert tick(1, "0", "1").get_json()["checklist"] == [1]  # the form: a hidden 0, then the ticked box's 1
    again = tick(1, "0", "1")  # a colleague whose page still showed it unticked
    assert again.get_json()["checklist"] == [1] and again.get_json()["message"].endswith("was ticked already.")
    assert tick(1, "0").get_json()["checklist"] == []  # unticked, as the box was left
    assert tick(1, "0").get_json()["checklist"] == []
    for bad in (tick(1), tick(1, "yes"), tick(6, "1")):
        assert bad.status_code == 400 and bad.get_json()["error"]
    session.expire_all()
    ticks = session.scalars(select(Event).where(Event.case_id == case.id, Event.kind == "case.checklist")).all()
    assert [e.data["done"] for e in ticks] == [True, False]  # a change is audited; a tick that changed nothing not


def test_updates_bring_what_the_page_lacks_rendered_and_escaped(live_server, client, login, twilio, session,
                                                                 drain):  # the live server first: Twilio signs its URL
    case = texted(twilio, session)
    login(UserRole.AGENT, queues=[case.queue])
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    after, token = cursor_of(page), csrf_token(page)

    def updates(cursor: str) -> dict:
        answer = client.get(f"/cases/{case.id}/updates?after={cursor}")
        assert answer.status_code == 200
        return answer.get_json()

    nothing = updates(after)
    assert (nothing["entries"], nothing["after"], nothing["status"], nothing["assignee"]) == ([], after, "new", None)
    assert "Assign to me" in nothing["claim"]

    client.post(f"/cases/{case.id}/claim", data={"csrf_token": token}, headers=JSON)
    client.post(f"/cases/{case.id}/checklist/0", data={"csrf_token": token, "done": "1"}, headers=JSON)
    client.post(f"/cases/{case.id}/note", data={"csrf_token": token, "text": "vet <b>notified</b>"}, headers=JSON)
    texted(twilio, session, 'he is back <script>alert("x")</script>')
    reply = client.post(f"/cases/{case.id}/reply", data={"csrf_token": token, "seen": seen_marker(page),
                                                          "text": "Glad he is back!"})
    assert reply.status_code == 302
    changes = updates(after)
    html = "".join(e["html"] for e in changes["entries"])
    assert [e["message"] for e in changes["entries"]] == [None] * 5
    assert "agent user</span> took the case" in html and "agent user</span> ticked “" in html
    assert "vet &lt;b&gt;notified&lt;/b&gt;" in html and "&lt;script&gt;alert(" in html and "<script>" not in html
    assert "Glad he is back!" in html and "pending" in html
    assert (changes["status"], changes["assignee"], changes["checklist"]) == ("open", "agent user", [0])
    assert "Assign to me" not in changes["claim"]

    # The reply's delivery status changes: the next update renders that message again, and nothing else.
    drain()  # sends it through the fake Twilio API, which calls back with its statuses (and routes the follow-up)
    session.expire_all()  # the test's requests share its session: let them read what the worker wrote
    later = updates(changes["after"])
    [changed] = [e for e in later["entries"] if e["message"] is not None]
    assert "Glad he is back!" in changed["html"]
    assert re.search(r'class="status status-(sent|delivered)"', changed["html"])
    assert updates(later["after"])["entries"] == []
    assert client.get(f"/cases/{case.id}/updates?after=1.2").status_code == 400


def test_a_viewer_goes_when_their_heartbeats_stop_and_at_once_when_they_leave(app, session, make_user,
                                                                              monkeypatch):
    case = add_case(session, queue="claims")
    lee = make_user(UserRole.AGENT, email="lee@team.test")
    sam = make_user(UserRole.AGENT, email="sam@team.test")
    lee.name, sam.name = "Lee", "Sam"
    start = time.time()

    def at(seconds: float) -> float:
        monkeypatch.setattr(viewers.time, "time", lambda: start + seconds)
        return start + seconds

    at(0)
    viewers.here(case, lee)
    viewers.here(case, sam, typing="reply")
    now = at(viewers.HEARTBEAT)
    assert viewers.here(case, sam)[1].typing_at(now) == "reply"  # a heartbeat between keystrokes: still typing
    now = at(viewers.TYPING_FOR + 1)
    assert [(v.name, v.typing_at(now)) for v in viewers.of(case.id)] == [("Lee", None), ("Sam", None)]
    viewers.here(case, lee)  # Lee's page beats on, Sam's has stopped
    at(viewers.HEARTBEAT + viewers.VIEWING_FOR)
    assert [v.name for v in viewers.of(case.id)] == ["Lee"]
    viewers.left(case, lee)
    assert viewers.of(case.id) == []
    with pytest.raises(ValueError):
        viewers.here(case, lee, typing="a poem")


def test_an_agent_who_may_not_see_a_case_hears_nothing_of_who_is_on_it(app):
    with app.app_context():
        hidden = add_case(db.session(), queue="emergency", phone="+15035550101")
        theirs = add_case(db.session(), queue="claims", phone="+15035550102")
        hidden_id, theirs_id = hidden.id, theirs.id
    lead = add_user(app, UserRole.LEAD, "lead@team.test")
    outsider = add_user(app, UserRole.AGENT, "claims@team.test", queues=("claims",))
    lead_browser, outsider_browser = logged_in(app, lead), logged_in(app, outsider)
    lead_stream, lead_chunks = open_stream(lead_browser)
    outsider_stream, outsider_chunks = open_stream(outsider_browser)

    def beat(browser, case_id: int):
        token = csrf_token(browser.get("/").get_data(as_text=True))
        return browser.post(f"/cases/{case_id}/viewers", data={"csrf_token": token, "state": "viewing"},
                            headers=JSON)

    assert beat(lead_browser, hidden_id).status_code == 200
    assert beat(outsider_browser, hidden_id).status_code == 404
    assert outsider_browser.get(f"/cases/{hidden_id}/updates?after=0.0.0.0").status_code == 404
    seen = beat(outsider_browser, theirs_id)
    assert seen.status_code == 200 and seen.get_json()["others"] == []
    # Redis delivers in order: once the outsider's own case's event is here, the hidden one's was dropped.
    heard = read_until(outsider_chunks, f'"case_id": {theirs_id}'.encode())
    assert b"event: viewers" in heard and f'"case_id": {hidden_id}'.encode() not in heard
    assert b'"name": "lead@team.test"' not in heard
    read_until(lead_chunks, f'"case_id": {hidden_id}'.encode())
    lead_stream.close()
    outsider_stream.close()


def test_with_redis_down_the_case_page_works_without_presence(app, client, login, session):
    case = add_case(session, queue="claims")
    login(UserRole.AGENT, queues=["claims"])  # logging in counts failures in Redis: before it goes
    configure(app, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    page = client.get(f"/cases/{case.id}")
    assert page.status_code == 200
    token = csrf_token(page.get_data(as_text=True))
    beat = client.post(f"/cases/{case.id}/viewers", data={"csrf_token": token}, headers=JSON)
    assert beat.status_code == 503 and beat.get_json() == {"error": "presence is unavailable"}
    note = client.post(f"/cases/{case.id}/note", data={"csrf_token": token, "text": "still works"}, headers=JSON)
    assert note.get_json() == {"message": "Note added."}  # the consoles hear of it once Redis is back
    changes = client.get(f"/cases/{case.id}/updates?after={cursor_of(page.get_data(as_text=True))}").get_json()
    assert "still works" in changes["entries"][0]["html"]


def test_a_page_that_only_beats_and_updates_still_idles_out(app, clock):
    with app.app_context():  # closed before any request, whose `g` would otherwise keep the user loaded
        case_id = add_case(db.session(), queue="claims").id
    browser = logged_in(app, add_user(app, UserRole.AGENT, "agent@team.test", queues=("claims",)))
    token = csrf_token(browser.get(f"/cases/{case_id}").get_data(as_text=True))
    clock.advance(59 * 60)
    assert browser.post(f"/cases/{case_id}/viewers", data={"csrf_token": token}, headers=JSON).status_code == 200
    assert browser.get(f"/cases/{case_id}/updates?after=0.0.0.0").status_code == 200
    clock.advance(2 * 60)  # an hour after the last thing the agent did: the page's own requests were not activity
    assert browser.get(f"/cases/{case_id}").headers["Location"].startswith("/login")


def test_a_delivery_status_is_told_to_the_case_pages(twilio, session, redis_connection):
    from assist import events, outbound

    case = texted(twilio, session)
    reply = outbound.create_reply(session, case, "We are on it.")
    session.commit()
    with redis_connection.pubsub(ignore_subscribe_messages=True) as pubsub:
        pubsub.subscribe(events.channel(redis_connection))
        pubsub.get_message(timeout=1)  # the subscription's confirmation
        assert twilio.post(f"/twilio/sms/status?message={reply.id}",
                           load_fixture("sms/status_delivered.json")).status_code == 204
        message = pubsub.get_message(timeout=5)
    assert message is not None and b'"kind": "delivery"' in message["data"]
    assert f'"message_id": {reply.id}'.encode() in message["data"]
