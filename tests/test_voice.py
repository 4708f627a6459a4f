"""The voice IVR: whole calls as signed webhook sequences, every TwiML answer checked structurally."""

import xml.etree.ElementTree as ET

import pytest
from conftest import AFTER_HOURS, AT_ANY_HOUR, IN_HOURS, business_time, configure, runtime_of
from sqlalchemy import select

from assist.models import Call, Case, Direction, Message, Note

pytestmark = AT_ANY_HOUR

CALLER = "+15035550800"
CALL = {"CallSid": "CA" + "1" * 32, "AccountSid": "AC0123456789abcdef0123456789abcdef", "From": CALLER,
        "To": "+15005550006", "CallStatus": "in-progress", "ApiVersion": "2010-04-01", "Direction": "inbound",
        "Caller": CALLER, "Called": "+15005550006", "CallerCountry": "US", "CalledCountry": "US"}
VERBS = {"Say", "Gather", "Redirect", "Dial", "Enqueue", "Record", "Hangup", "Pause", "Leave"}
NESTED = {"Gather": {"Say", "Pause"}, "Dial": {"Number", "Queue"}, "Say": set(), "Record": set(), "Enqueue": set(),
          "Redirect": set(), "Hangup": set(), "Pause": set(), "Number": set(), "Queue": set(), "Leave": set()}
URL_ATTRIBUTES = {"action", "url", "waitUrl", "recordingStatusCallback", "transcribeCallback"}


def twiml(response, base: str) -> ET.Element:
    """Parse a TwiML answer and check its verbs, their nesting and that every callback URL is absolute."""
    assert response.status_code == 200 and response.mimetype == "text/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    for verb in root:
        assert verb.tag in VERBS, verb.tag
        for child in verb:
            assert child.tag in NESTED[verb.tag], f"{child.tag} inside {verb.tag}"
    for element in root.iter():
        for name, value in element.attrib.items():
            if name in URL_ATTRIBUTES:
                assert value.startswith(base + "/twilio/voice"), (name, value)
        if element.tag == "Redirect":
            assert element.text.startswith(base + "/twilio/voice")
    return root


@pytest.fixture
def call(twilio):
    def post(path: str, **params):
        return twiml(twilio.post(path, {**CALL, **params}), twilio.base_url)

    return post


def tags(root) -> list[str]:
    return [verb.tag for verb in root]


def test_the_greeting_gathers_speech_and_digits(call):
    root = call("/twilio/voice")
    gather = root.find("Gather")
    assert gather.get("input") == "speech dtmf" and gather.get("speechTimeout") == "auto"
    assert "bleeding" in gather.get("hints") and "press 0" in gather.find("Say").text
    assert tags(root) == ["Gather", "Redirect"]


def test_a_critical_caller_hears_one_short_line_and_waits_in_a_queue_of_their_own(call, session):
    call("/twilio/voice")
    root = call("/twilio/voice/gather?attempt=1", SpeechResult="my dog just got hit by a car and he is bleeding",
                Confidence="0.91")
    assert tags(root) == ["Say", "Enqueue"]
    assert len(root.find("Say").text.split()) <= 15  # the safety advice plays while they wait
    enqueue = root.find("Enqueue")
    assert enqueue.text == f"emergency-{CALL['CallSid']}" and "/twilio/voice/wait" in enqueue.get("waitUrl")
    assert "/twilio/voice/queued" in enqueue.get("action")
    message = session.scalars(select(Message).where(Message.direction == Direction.INBOUND)).one()
    assert message.channel == "voice" and message.channel_id == f"{CALL['CallSid']}:gather1"
    assert message.triage["urgency"] == "critical" and message.meta["speech_confidence"] == 0.91
    assert "emergency vet" in message.meta["said"]  # the playbook's spoken advice, kept for the wait
    assert session.scalars(select(Case)).one().queue == "emergency"
    wait = call(enqueue.get("waitUrl").removeprefix("http://localhost"), QueueTime="0", QueuePosition="1")
    assert [verb.tag for verb in wait] == ["Say", "Say", "Pause"] and "emergency vet" in wait[1].text


def test_with_nobody_to_ring_a_critical_call_goes_to_the_on_call_phone_screened(app, call, twilio):
    configure(app, on_call_number="+15035550999")
    root = call("/twilio/voice/gather?attempt=1", SpeechResult="the dog i'm walking bit a child and there is blood")
    dial = root.find("Dial")
    assert dial.get("answerOnBridge") == "true" and dial.get("timeout") == "20" and "/twilio/voice/dialed" in \
        dial.get("action")
    number = root.find("Dial/Number")
    assert number.text == "+15035550999"
    screen = twiml(twilio.post(number.get("url").removeprefix(twilio.base_url), CALL), twilio.base_url)
    assert [verb.tag for verb in screen] == ["Gather", "Hangup"]  # no key pressed: it hangs up
    assert screen.find("Gather/Say").text.startswith("Emergency call: critical, bite attack, caller")


def test_the_callers_environment_does_not_reach_the_app(app, noisy_environment):
    import os

    assert os.environ["BUSINESS_HOURS"] == noisy_environment["BUSINESS_HOURS"]
    for name in noisy_environment:
        assert getattr(runtime_of(app).settings, name.lower()) != noisy_environment[name], name


def test_a_calm_caller_gets_the_playbook_reply_a_menu_and_voicemail(call, clock):
    clock.set(business_time(IN_HOURS))
    root = call("/twilio/voice/gather?attempt=1", SpeechResult="i'd like to ask about a refund for last week")
    assert tags(root) == ["Say", "Gather", "Say", "Record"]
    assert root.find("Gather").get("input") == "dtmf"
    record = root.find("Record")
    assert record.get("transcribe") == "true" and record.get("maxLength") == "120"


def post_callback(twilio, path: str, **params):
    response = twilio.post(path, {**CALL, **params})
    assert response.status_code == 204
    return response


def test_recording_and_transcription_callbacks_update_the_case_once(call, twilio, session):
    call("/twilio/voice/gather?attempt=1", SpeechResult="i'd like to ask about a refund for last week")
    recording = {"RecordingSid": "RE" + "2" * 32, "RecordingUrl": "https://api.twilio.com/recordings/RE2",
                 "RecordingDuration": "14", "RecordingStatus": "completed"}
    transcription = {"TranscriptionSid": "TR" + "3" * 32, "TranscriptionStatus": "completed",
                     "TranscriptionText": "I was charged twice for the drop-ins last week, please refund one.",
                     "RecordingSid": recording["RecordingSid"], "RecordingUrl": recording["RecordingUrl"]}
    for _ in range(2):  # Twilio retries callbacks: the second of each changes nothing
        post_callback(twilio, "/twilio/voice/recording", **recording)
        post_callback(twilio, "/twilio/voice/transcription", **transcription)
    session.expire_all()
    first, transcript = session.scalars(select(Message).where(Message.direction == Direction.INBOUND)
                                        .order_by(Message.id)).all()
    recorded = session.scalars(select(Call)).one()
    assert (recorded.recording_sid, recorded.recording_duration) == (recording["RecordingSid"], 14)
    assert first.attachments == []  # the caller's words at the greeting are not the voicemail
    assert [a["ref"] for a in transcript.attachments] == [recording["RecordingUrl"]]
    assert transcript.text.startswith("I was charged twice") and transcript.case_id == first.case_id
    assert transcript.triage is not None


def test_silence_is_asked_once_more_then_goes_to_voicemail(call):
    again = call("/twilio/voice/gather?attempt=1&silent=1")
    assert tags(again) == ["Gather", "Redirect"] and "attempt=2" in again.find("Gather").get("action")
    voicemail = call("/twilio/voice/gather?attempt=2&silent=1")
    assert tags(voicemail) == ["Say", "Record"]


@pytest.mark.parametrize("path", ["/twilio/voice/gather?attempt=1", "/twilio/voice/menu"])
def test_pressing_0_reaches_a_person_at_any_point(call, path):
    root = call(path, Digits="0")
    assert tags(root) == ["Say", "Enqueue"] and root.find("Enqueue").text == f"support-{CALL['CallSid']}"


def test_a_text_back_is_sent_by_sms(live_server, session, drain, app, clock):
    from assist import background, sandbox

    clock.set(business_time(IN_HOURS))
    live_server.post_signed("/twilio/voice/gather?attempt=1", {**CALL, "SpeechResult": "question about a payout"})
    response = live_server.post_signed("/twilio/voice/menu", {**CALL, "Digits": "2"})
    assert [verb.tag for verb in ET.fromstring(response.content)] == ["Say", "Hangup"]
    drain()
    with app.app_context():
        [sent] = sandbox.sent_messages(background.connection())
    assert sent["to"] == CALLER and "following up on your call" in sent["body"]


def test_a_missed_call_leaves_a_callback_task(twilio, session):
    post_callback(twilio, "/twilio/voice/status", CallStatus="no-answer", CallDuration="0")
    post_callback(twilio, "/twilio/voice/status", CallStatus="no-answer", CallDuration="0")
    [note] = session.scalars(select(Note).where(Note.kind == "callback")).all()
    assert CALLER in note.text


def test_a_completed_call_records_its_duration(call, twilio, session):
    from assist.models import Call, Event

    call("/twilio/voice/gather?attempt=1", SpeechResult="just wanted to say thanks, all good now")
    post_callback(twilio, "/twilio/voice/status", CallStatus="completed", CallDuration="42")
    event = session.scalars(select(Event).where(Event.kind == "call.ended")).one()
    assert event.data["duration"] == 42 and session.scalars(select(Call)).one().duration == 42


def test_a_forged_signature_gets_403(twilio, session):
    assert twilio.post("/twilio/voice", CALL, signature="forged").status_code == 403
    response = twilio.post("/twilio/voice/gather?attempt=1", {**CALL, "SpeechResult": "help"}, signature="bad")
    assert response.status_code == 403
    assert session.scalars(select(Message)).all() == []


def posted_paths(output: str) -> list[str]:
    return [line.split()[2].split("?")[0] for line in output.splitlines() if line.startswith("--> POST")]


def test_simulate_call_plays_a_whole_call_and_prints_each_twiml(runner, live_server, session, clock):
    from assist.cli import main

    clock.set(business_time(IN_HOURS))
    result = runner.invoke(main, ["simulate", "call", "--from", CALLER, "i have a question about my refund"])
    assert result.exit_code == 0, result.output
    assert posted_paths(result.output) == ["/twilio/voice", "/twilio/voice/gather", "/twilio/voice/menu",
                                           "/twilio/voice/recorded", "/twilio/voice/status",  # the call ends,
                                           "/twilio/voice/recording", "/twilio/voice/transcription"]  # then these
    assert "<Gather" in result.output and "<Record" in result.output
    messages = session.scalars(select(Message).where(Message.direction == Direction.INBOUND)).all()
    assert {m.channel for m in messages} == {"voice"} and len(messages) == 2  # the words and the transcript
    assert messages[1].attachments[0]["content_type"] == "audio/x-wav"


def test_simulate_call_for_an_emergency_with_nobody_to_take_it_ends_in_voicemail_and_a_callback(runner, live_server,
                                                                                                  session):
    from assist.cli import main

    result = runner.invoke(main, ["simulate", "call", "--from", "+15035550801", "my dog is having a seizure"])
    assert result.exit_code == 0, result.output
    paths = posted_paths(result.output)
    assert paths[:4] == ["/twilio/voice", "/twilio/voice/gather", "/twilio/voice/wait", "/twilio/voice/wait"]
    assert "/twilio/voice/queued" in paths and "<Enqueue" in result.output and "<Leave" in result.output
    assert "prompts before a person's phone rang: " in result.output
    assert session.scalars(select(Note).where(Note.kind == "callback")).one()


def test_after_hours_critical_calls_still_reach_the_on_call_person_and_the_rest_get_voicemail_and_a_text(
        app, live_server, session, drain, clock):
    from assist import background, sandbox

    clock.set(business_time(AFTER_HOURS))
    configure(app, on_call_number="+15035550999")
    critical = live_server.post_signed("/twilio/voice/gather?attempt=1",
                                       {**CALL, "SpeechResult": "my cat ate lilies and is drooling"})
    assert ET.fromstring(critical.content).find("Dial/Number").text == "+15035550999"
    calm = live_server.post_signed("/twilio/voice/gather?attempt=1",
                                   {**CALL, "CallSid": "CA" + "4" * 32, "From": "+15035550802",
                                    "SpeechResult": "question about my payout schedule"})
    assert [verb.tag for verb in ET.fromstring(calm.content)] == ["Say", "Say", "Say", "Record"]
    assert "We've sent you a text" in calm.text
    drain()
    with app.app_context():
        assert [m["to"] for m in sandbox.sent_messages(background.connection())] == ["+15035550802"]
