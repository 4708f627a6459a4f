"""Whole calls, played as Twilio plays them (assist.phone_network) against the live app: the caller, the
agents' phones the service rings through the (sandboxed) Calls API, and the on-call phone.

Every TwiML document the service answers is checked against the verbs, nouns, attributes and nesting
Twilio documents, in the context it is fetched in (TWIML below, with the doc page of each)."""

import xml.etree.ElementTree as ET

import pytest
from conftest import ACCOUNT_SID, AUTH_TOKEN, IN_HOURS, TEAM_NUMBER, business_time
from sqlalchemy import select

from assist import background, cases, sandbox
from assist.models import Call, CallLeg, Case, Contact, Event, LegStatus, Message, Note, Presence, User, UserRole
from assist.phone_network import Network, Phone

CALLER = "+15035550800"
AGENT_A, AGENT_B, ON_CALL = "+15035551001", "+15035551002", "+15035551999"
DOCS = "https://www.twilio.com/docs/voice/twiml/"

# verb -> (its attributes, the nouns/verbs it may hold, Twilio's page for it)
TWIML = {
    "Say": ({"voice", "language", "loop"}, set(), DOCS + "say"),
    "Play": ({"loop", "digits"}, set(), DOCS + "play"),
    "Pause": ({"length"}, set(), DOCS + "pause"),
    "Gather": ({"action", "method", "input", "timeout", "speechTimeout", "numDigits", "finishOnKey", "hints",
                "language", "profanityFilter", "speechModel", "enhanced", "actionOnEmptyResult",
                "partialResultCallback"},
               {"Say", "Play", "Pause"}, DOCS + "gather"),
    "Redirect": ({"method"}, set(), DOCS + "redirect"),
    "Record": ({"action", "method", "timeout", "finishOnKey", "maxLength", "playBeep", "trim",
                "recordingStatusCallback", "recordingStatusCallbackMethod", "recordingStatusCallbackEvent",
                "transcribe", "transcribeCallback"}, set(), DOCS + "record"),
    "Hangup": (set(), set(), DOCS + "hangup"),
    "Leave": (set(), set(), DOCS + "leave"),
    "Enqueue": ({"action", "method", "waitUrl", "waitUrlMethod", "workflowSid"}, {"Task"}, DOCS + "enqueue"),
    "Dial": ({"action", "method", "timeout", "hangupOnStar", "timeLimit", "callerId", "record", "trim",
              "answerOnBridge", "ringTone", "recordingStatusCallback"}, {"Number", "Queue", "Client", "Sip",
                                                                         "Conference"}, DOCS + "dial"),
    "Number": ({"url", "method", "sendDigits", "statusCallback", "statusCallbackEvent", "statusCallbackMethod"},
               set(), DOCS + "number"),
    "Queue": ({"url", "method", "reservationSid", "postWorkActivitySid"}, set(), DOCS + "queue"),
}
# Where a document runs decides which verbs Twilio allows in it.
CONTEXTS = {
    "call": {"Say", "Play", "Pause", "Gather", "Redirect", "Record", "Hangup", "Enqueue", "Dial"},
    "wait": {"Play", "Say", "Pause", "Hangup", "Redirect", "Leave", "Gather"},  # Enqueue's waitUrl
    "announce": {"Play", "Say", "Pause", "Redirect"},  # Queue's url
    "screen": {"Play", "Say", "Pause", "Gather", "Hangup", "Redirect", "Dial"},  # Number's url / a placed call
}
URL_ATTRIBUTES = {"action", "url", "waitUrl", "recordingStatusCallback", "transcribeCallback"}


class TwimlChecker:
    def __init__(self, base_url: str):
        self.base_url, self.checked = base_url, 0

    def __call__(self, text: str, context: str) -> None:
        root = ET.fromstring(text)
        assert root.tag == "Response", text
        for verb in root:
            assert verb.tag in CONTEXTS[context], f"<{verb.tag}> is not allowed in a {context} document: {text}"
            self.element(verb, text)
        self.checked += 1

    def element(self, element, text: str) -> None:
        attributes, children, page = TWIML[element.tag]
        unknown = set(element.attrib) - attributes
        assert not unknown, f"<{element.tag}> has {unknown}, not in {page}: {text}"
        for name, value in element.attrib.items():
            if name in URL_ATTRIBUTES:
                assert value.startswith(self.base_url + "/twilio/voice/"), (name, value)
        if element.tag == "Redirect":
            assert element.text.startswith(self.base_url + "/twilio/voice/")
        for child in element:
            assert child.tag in children, f"<{child.tag}> inside <{element.tag}> ({page}): {text}"
            self.element(child, text)


@pytest.fixture
def network(app, live_server, drain, clock):
    clock.set(business_time(IN_HOURS))
    checker = TwimlChecker(live_server.url)
    net = Network(live_server.url, auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID, team_number=TEAM_NUMBER,
                  check=checker)
    net.checker = checker
    net.drain = drain
    yield net
    assert checker.checked > 0


@pytest.fixture
def agents(make_user):
    """Two available emergency agents with phones, and a lead on call."""
    a = make_user(email="ana@team.test", queues=["emergency", "support"], phone=AGENT_A, presence=Presence.AVAILABLE)
    b = make_user(email="ben@team.test", queues=["emergency", "support"], phone=AGENT_B, presence=Presence.AVAILABLE)
    lead = make_user(UserRole.LEAD, email="lee@team.test", on_call=True, phone=ON_CALL)
    return a, b, lead


def said(leg) -> str:
    return " ".join(text for text, _ in leg.heard)


def the_call(session) -> Call:
    session.expire_all()
    return session.scalars(select(Call).where(Call.call_sid.is_not(None))).one()


def callback_notes(session) -> list[Note]:
    session.expire_all()
    return session.scalars(select(Note).where(Note.kind == "callback")).all()


EMERGENCY = "my dog just got hit by a car and he's bleeding a lot"


def test_a_critical_caller_is_bridged_to_the_first_agent_who_presses_1(network, agents, session):
    ana, ben, _ = agents
    network.add_phone(Phone(AGENT_A, presses="1"))
    network.add_phone(Phone(AGENT_B, answers=False))
    caller = network.incoming(CALLER)
    caller.say(EMERGENCY)
    assert caller.state == "queued"
    assert caller.words_before_person * 60 / 150 <= 15  # a person is being rung within 15 s of prompts
    assert "number 1 in line" in said(caller) and "emergency vet" in said(caller)  # the safety advice, waiting
    assert "call you back" not in said(caller)  # no promise of a later call while a person is being rung

    network.drain()  # the job rings both agents at once
    placed = {c["to"]: c for c in sandbox.placed_calls(background.connection())}
    assert set(placed) == {AGENT_A, AGENT_B}
    [agent] = network.ring(AGENT_A)  # Ana picks up first and presses 1; Ben's phone is still ringing
    assert "Emergency call: critical, pet health, caller" in said(agent)
    assert caller.state == agent.state == "bridged" and said(caller).endswith("Connecting you now.")
    network.drain()  # the other offer is cancelled through the Calls API
    assert {c["to"]: c["status"] for c in sandbox.placed_calls(background.connection())}[AGENT_B] == "canceled"
    assert network.ring() == []  # Ben's phone stops ringing

    caller.hang_up()
    call = the_call(session)
    assert (call.state.value, call.outcome, call.answered_by_id) == ("ended", "answered", ana.id)
    legs = {leg.number: leg.status for leg in session.scalars(select(CallLeg))}
    assert legs == {AGENT_A: LegStatus.ENDED, AGENT_B: LegStatus.CANCELED}
    case = session.get(Case, call.case_id)
    assert case.first_response_at is not None and case.assignee_id == ana.id
    assert session.get(User, ana.id).presence == Presence.AVAILABLE  # back from the call
    assert callback_notes(session) == []


def test_nobody_answers_the_on_call_phone_is_dialled_then_voicemail_and_a_callback_task(network, agents, session,
                                                                                       clock):
    network.add_phone(Phone(AGENT_A, answers=False))
    network.add_phone(Phone(AGENT_B, answers=False))
    network.add_phone(Phone(ON_CALL, answers=False))
    caller = network.incoming(CALLER)
    caller.say(EMERGENCY)
    network.drain()
    network.ring()  # both agents let it ring out
    network.drain()
    skipped = session.scalars(select(User).where(User.phone.in_([AGENT_A, AGENT_B]))).all()
    assert all(u.skip_calls_until is not None for u in skipped)  # skipped for a while
    caller.wait(120)  # past EMERGENCY_MAX_WAIT: the call leaves the queue for the on-call phone
    assert caller.state == "recording"  # on call did not answer either: voicemail
    assert "Nobody could take your call" in said(caller)
    caller.leave_message(20, "please call me back my dog was hit by a car")
    [note] = callback_notes(session)
    assert CALLER in note.text and "critical" in note.text
    call = the_call(session)
    case = session.get(Case, call.case_id)
    assert case.urgency == "critical" and call.outcome == "callback"
    assert case.first_response_due_at <= clock.now()  # the callback is due now
    dials = [s for s in network.steps if s.url.startswith(network.base_url + "/twilio/voice/dialed")]
    assert dials and dials[0].params["DialCallStatus"] == "no-answer"


def test_the_on_call_phones_own_voicemail_cannot_take_the_call(network, agents, session):
    network.add_phone(Phone(AGENT_A, answers=False))
    network.add_phone(Phone(AGENT_B, answers=False))
    network.add_phone(Phone(ON_CALL, voicemail=True))
    caller = network.incoming(CALLER)
    caller.say(EMERGENCY)
    network.drain()
    network.ring()
    network.drain()
    caller.wait(120)
    assert caller.state == "recording"  # the screening was never passed: voicemail and a callback task
    [dialed] = [s for s in network.steps if s.url.startswith(network.base_url + "/twilio/voice/dialed")]
    assert dialed.params["DialCallStatus"] == "completed"  # answered by a machine, never bridged
    assert len(callback_notes(session)) == 1


def test_a_caller_who_hangs_up_in_the_queue_gets_a_callback_task_at_the_top(network, agents, session):
    caller = network.incoming(CALLER)
    caller.say(EMERGENCY)
    network.drain()  # both agents' phones ring
    caller.hang_up()
    network.drain()
    [note] = callback_notes(session)
    assert "hung up" in note.text
    call = the_call(session)
    case = session.get(Case, call.case_id)
    assert (case.queue, case.priority, case.urgency) == ("emergency", 1, "critical")
    from assist.cases import queue_page

    assert queue_page(session).cases[0].id == case.id
    statuses = {c["to"]: c["status"] for c in sandbox.placed_calls(background.connection())}
    assert statuses == {AGENT_A: "canceled", AGENT_B: "canceled"}  # the offers stopped ringing
    assert network.ring() == []


def test_pressing_0_reaches_a_person_from_the_greeting(network, agents, session):
    network.add_phone(Phone(AGENT_A))
    caller = network.incoming(CALLER)
    caller.press("0")
    assert caller.state == "queued"
    network.drain()
    placed = sandbox.placed_calls(background.connection())
    assert len(placed) == 1  # support: one agent at a time
    [agent] = network.ring()
    assert "asked for a person" in said(agent) and caller.state == "bridged"
    caller.hang_up()
    assert the_call(session).outcome == "answered"


def test_silence_twice_is_voicemail(network, session):
    caller = network.incoming(CALLER)
    caller.silence()
    assert "didn't catch that" in said(caller) and caller.state == "gathering"
    caller.silence()
    assert caller.state == "recording"
    caller.leave_message(0, absent=True)
    notes = session.scalars(select(Note).where(Note.kind == "voicemail")).all()
    assert [n.text for n in notes] == ["The caller left no message (no recording)."]
    assert session.scalars(select(Message)).all() == []  # nothing said: nothing triaged


def test_dtmf_only_menu_then_voicemail_with_transcript(network, session, clock):
    caller = network.incoming(CALLER)
    caller.say("i have a question about my refund")
    assert caller.state == "gathering"  # the menu
    caller.press("1")
    assert caller.state == "recording"
    caller.leave_message(14, "I was charged twice for the drop-ins last week, please refund one.")
    messages = session.scalars(select(Message).order_by(Message.id)).all()
    assert [m.text for m in messages][-1].startswith("I was charged twice")
    assert messages[-1].attachments[0]["content_type"] == "audio/x-wav"
    assert all(m.direction.value == "inbound" for m in messages)  # no bot voice "replies" stored


def test_a_spanish_caller_hears_spanish(network, agents, session):
    network.add_phone(Phone(AGENT_A))
    caller = network.incoming(CALLER)
    assert ("Para español, oprima dos.", "es-US") in caller.heard
    caller.press("2")
    assert caller.heard[-1][1] == "es-US"
    caller.say("mi perro se comió una barra de chocolate y está vomitando")
    assert caller.state == "queued"
    spanish = [text for text, language in caller.heard[3:]]
    assert all(language == "es-US" for _, language in caller.heard[3:]), caller.heard
    assert any("fila" in text for text in spanish)
    gathers = [s for s in network.steps if "<Gather" in s.answer]
    assert 'language="es-US"' in gathers[-1].answer


def test_speech_recognised_as_spanish_switches_the_call(network, agents, session):
    caller = network.incoming(CALLER)
    caller.say("se escapó mi perrita por el portón y no la encuentro")
    assert caller.state == "queued" and all(lang == "es-US" for _, lang in caller.heard[2:])


def test_a_withheld_caller_with_an_emergency_is_triaged_on_a_case_of_their_own(network, agents, session):
    network.add_phone(Phone(AGENT_A))
    caller = network.incoming("+266696687")  # Twilio's caller ID for "anonymous"
    caller.say(EMERGENCY)
    assert caller.state == "queued" and "emergency vet" in said(caller)
    caller.hang_up()
    call = the_call(session)
    case = session.get(Case, call.case_id)
    assert case.contact.phone is None and case.contact.name.startswith("Unknown caller")
    assert case.urgency == "critical" and case.queue == "emergency"
    [note] = callback_notes(session)
    assert "withheld" in note.text


def test_a_recording_callback_carries_no_from_and_still_lands_on_the_case(network, session):
    caller = network.incoming(CALLER)
    caller.say("question about my payout schedule")
    caller.press("1")
    caller.leave_message(9, "when do I get paid")
    [recording] = [s for s in network.steps if s.url.startswith(network.base_url + "/twilio/voice/recording")]
    assert "From" not in recording.params and recording.status == 204
    note = session.scalars(select(Note).where(Note.kind == "voicemail")).one()
    assert "Voicemail, 9 s" in note.text


def test_every_callback_delivered_twice_changes_things_once(network, agents, session):
    network.add_phone(Phone(AGENT_A, answers=False))
    network.add_phone(Phone(AGENT_B, answers=False))
    original = network.post

    def twice(url, params, token):
        first = original(url, params, token)
        if any(url.split("?")[0].endswith(p) for p in ("/recording", "/transcription", "/status", "/leg-status")):
            again = original(url, params, token)
            assert again.status_code == first.status_code
        return first

    network.post = twice
    caller = network.incoming(CALLER)
    caller.say("my cat ate lily leaves and is drooling")
    network.drain()
    network.ring()
    network.drain()
    caller.hang_up()
    network.drain()
    assert len(callback_notes(session)) == 1
    assert len(session.scalars(select(Event).where(Event.kind == "call.ended")).all()) == 1
    assert len(session.scalars(select(Event).where(Event.kind == "call.offer_missed")).all()) == 2


def test_an_opted_out_caller_still_hears_the_safety_line(network, agents, session):
    from assist.models import Contact

    session.add(Contact(phone=CALLER, opted_out=True))
    session.commit()
    caller = network.incoming(CALLER)
    caller.say(EMERGENCY)
    assert "emergency vet" in said(caller)


def test_after_hours_nothing_claims_a_text_was_sent_to_an_opted_out_caller(network, session, clock):
    from conftest import AFTER_HOURS

    clock.set(business_time(AFTER_HOURS))
    session.add(Contact(phone=CALLER, opted_out=True))
    session.commit()
    caller = network.incoming(CALLER)
    caller.say("question about my payout schedule")
    assert "We've sent you a text" not in said(caller) and "leave a message" in said(caller)
    network.drain()
    assert sandbox.sent_messages(background.connection()) == []


def test_the_sandbox_calls_api_creates_updates_and_lists_calls_with_the_real_sdk(app, live_server, runner):
    import json

    from assist import outbound

    with app.app_context():
        client = outbound.twilio_client()
        created = client.calls.create(to=AGENT_A, from_=TEAM_NUMBER, url=live_server.url + "/twilio/voice/screen?leg=1")
        assert created.status == "queued" and created.sid.startswith("CA")
        assert client.calls(created.sid).update(status="canceled").status == "canceled"
        other = client.calls.create(to=AGENT_B, from_=TEAM_NUMBER, twiml="<Response><Say>hi</Say></Response>")
        client.calls(other.sid).update(url=live_server.url + "/twilio/voice/screen?leg=2")
        assert {c.sid for c in client.calls.list()} == {created.sid, other.sid}
        assert client.calls(other.sid).fetch().to == AGENT_B
    listed = json.loads(runner.invoke(args=["sandbox", "outbox", "--json"]).output)["calls"]
    assert {(c["to"], c["status"]) for c in listed} == {(AGENT_A, "canceled"), (AGENT_B, "queued")}
    assert listed[0]["url"].endswith("/twilio/voice/screen?leg=2")


@pytest.mark.parametrize("path, params, status", [
    ("/twilio/voice/gather?attempt=abc", {}, 400),
    ("/twilio/voice/gather?attempt=1", {"Confidence": "high", "SpeechResult": "my cat is fine thanks"}, 200),
    ("/twilio/voice/wait?call=99999999999999999999", {}, 400),
    ("/twilio/voice/queued?call=1", {"QueueResult": "exploded"}, 400),
    ("/twilio/voice/status", {"CallStatus": "vaporised"}, 400),
    ("/twilio/voice/recording", {"CallSid": ""}, 400),
    ("/twilio/voice/gather?attempt=%C2%B2", {}, 400),
    ("/twilio/voice/gather?attempt=0", {}, 400),
    ("/twilio/voice/gather?attempt=10", {}, 400),
    ("/twilio/voice/gather?attempt=1&silent=yes", {}, 400),
    ("/twilio/voice/wait?call=%D9%A3", {}, 400),
    ("/twilio/voice/status", {"CallSid": "%", "CallStatus": "completed"}, 400),
    ("/twilio/voice/gather?attempt=1", {"CallSid": "CA" + "9" * 31 + "%", "SpeechResult": "hello"}, 400),
    ("/twilio/voice/recording", {"CallSid": "CA" + "z" * 32}, 400),
    ("/twilio/voice/status", {"CallSid": "CA" + "9" * 32 + "0", "CallStatus": "completed"}, 400),
], ids=["attempt", "confidence", "call-id", "queue-result", "call-status", "no-call-sid", "superscript-attempt",
        "attempt-0", "attempt-10", "silent-word", "arabic-indic-call-id", "call-sid-percent", "call-sid-wildcard",
        "call-sid-not-hex", "call-sid-too-long"])
def test_bad_parameters_get_400_not_500(twilio, session, path, params, status):
    base = {"CallSid": "CA" + "9" * 32, "AccountSid": ACCOUNT_SID, "From": CALLER, "To": TEAM_NUMBER}
    response = twilio.post(path, {**base, **params})
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 200:  # a confidence that is not a number is stored as unknown
        assert session.scalars(select(Message)).one().meta["speech_confidence"] is None


def test_simulate_call_plays_the_agents_phone_and_prints_the_seconds_before_it_rang(runner, live_server, drain,
                                                                                  agents, session, clock):
    import threading
    import time

    from assist.cli import main

    clock.set(business_time(IN_HOURS))
    results = []
    call = threading.Thread(target=lambda: results.append(
        runner.invoke(main, ["simulate", "call", "--from", CALLER, "my dog ate a bag of raisins"])), daemon=True)
    call.start()
    deadline = time.monotonic() + 30
    while call.is_alive() and time.monotonic() < deadline:  # the worker runs beside the call, as in the demo
        drain(soon=0)
        time.sleep(0.2)
    call.join(timeout=5)
    [result] = results
    assert result.exit_code == 0, result.output
    assert "/twilio/voice/screen" in result.output and "Press 1 to take it." in result.output
    [line] = [out for out in result.output.splitlines() if out.startswith("prompts before a person's phone rang")]
    seconds = float(line.split(", ")[1].split(" s")[0])
    assert seconds <= 15
    assert the_call(session).outcome == "answered"


def test_take_call_and_call_back_from_the_console_ring_the_agents_phone(network, agents, client, session):
    from conftest import PASSWORD, csrf_token

    ana = agents[0]
    caller = network.incoming(CALLER)
    caller.say(EMERGENCY)
    page = client.get("/login")
    client.post("/login", data={"email": ana.email, "password": PASSWORD,
                                "csrf_token": csrf_token(page.get_data(as_text=True))})
    queue = client.get("/").get_data(as_text=True)
    assert "waiting on the phone" in queue and "Take call" in queue
    call = the_call(session)
    token = csrf_token(queue)
    assert client.post(f"/calls/{call.id}/take", data={"csrf_token": token}).status_code == 302
    network.drain()
    placed = [c for c in sandbox.placed_calls(background.connection()) if c["to"] == AGENT_A]
    assert len(placed) == 2  # the automatic offer, and the one Ana asked for

    case_page = client.get(f"/cases/{call.case_id}").get_data(as_text=True)
    assert "Reply by SMS to " + CALLER in case_page and "goes out as a text" in case_page
    called_back = client.post(f"/cases/{call.case_id}/call-back", data={"csrf_token": csrf_token(case_page)})
    assert called_back.status_code == 302
    network.drain()
    [callback] = [leg for leg in session.scalars(select(CallLeg).where(CallLeg.kind == "callback"))]
    assert callback.status == LegStatus.RINGING and callback.leg_sid
    network.add_phone(Phone(AGENT_A))
    [leg] = [leg for leg in network.ring() if leg.sid == callback.leg_sid]
    [dial] = [s for s in network.steps if s.url.startswith(network.base_url + "/twilio/voice/screen")
              and f"leg={callback.id}" in s.url]
    assert f"<Number>{CALLER}</Number>" in dial.answer and f'callerId="{TEAM_NUMBER}"' in dial.answer


def test_a_reply_on_a_voice_case_goes_out_as_sms(network, session, make_user):
    from assist import outbound

    caller = network.incoming(CALLER)
    caller.say("question about my payout schedule")
    call = the_call(session)
    case = session.get(Case, call.case_id)
    agent = make_user()
    reply = outbound.create_reply(session, case, "Payouts go out every Friday.", author=agent)
    cases.done(session, case, send=reply)
    assert (reply.channel, reply.recipient, reply.sender) == ("sms", CALLER, TEAM_NUMBER)
    network.drain()
    session.expire_all()
    assert session.get(Message, reply.id).delivery_status.value in ("queued", "delivered")  # Twilio took it
    assert session.get(Case, case.id).first_response_at is not None


def test_presence_and_phone_are_set_in_the_console(client, login, session):
    from conftest import csrf_token

    user = login()
    page = client.get("/me").get_data(as_text=True)
    bad = client.post("/me", data={"csrf_token": csrf_token(page), "presence": "available", "phone": ""})
    assert bad.status_code == 400 and "add the phone" in bad.get_data(as_text=True)
    ok = client.post("/me", data={"csrf_token": csrf_token(page), "presence": "available", "phone": "503 555 0123"})
    assert ok.status_code == 302
    session.expire_all()
    user = session.get(User, user.id)
    assert (user.presence, user.phone) == (Presence.AVAILABLE, "+15035550123")


@pytest.mark.parametrize("back, location", [("/cases/7", "/cases/7"), ("//evil.example/", "/"),
                                            ("https://evil.example/", "/")], ids=["path", "scheme-relative", "url"])
def test_the_presence_form_goes_back_only_to_a_page_of_this_site(client, login, back, location):
    from conftest import csrf_token

    login()
    page = client.get("/me").get_data(as_text=True)
    answer = client.post("/me", query_string={"back": back},
                         data={"csrf_token": csrf_token(page), "presence": "offline", "phone": ""})
    assert answer.status_code == 302 and answer.headers["Location"] == location


def test_users_set_gives_a_phone_and_presence(runner, make_user, session):
    user = make_user()
    result = runner.invoke(args=["users", "set", user.email, "--phone", "+15035550155", "--presence", "available",
                                 "--queue", "emergency"])
    assert result.exit_code == 0, result.output
    session.expire_all()
    user = session.get(User, user.id)
    assert (user.phone, user.presence, user.queues) == ("+15035550155", Presence.AVAILABLE, ["emergency"])
    refused = runner.invoke(args=["users", "set", user.email, "--phone", "not a phone"])
    assert refused.exit_code == 1 and "not a phone number" in refused.output
