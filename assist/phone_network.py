"""Play Twilio's voice engine against the service, and the phones it rings.

`assist simulate call` and the tests use it: it executes the service's TwiML as Twilio's
documentation describes each verb, posting every webhook signed exactly as Twilio signs it, with
only the parameters Twilio sends at that step. It plays the caller (words, keys, silence, hanging
up) and the phones the service rings through Twilio's Calls API (its sandbox fake records them):
an agent who picks up and presses 1, one who never answers, a phone whose voicemail picks up.

Time is simulated: waiting in a queue advances by the seconds of what the caller hears.
"""

import io
import json
import math
import secrets
import struct
import wave
import xml.etree.ElementTree as ET  # nosec B405  # parses only the service's own TwiML answers
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from twilio.rest import Client

from assist.sandbox import own_url
from assist.simulate import post_signed
from channels.voice import seconds_of_speech

API_VERSION = "2010-04-01"
WAIT_LOOPS = 200  # a waitUrl that never ends the wait is a bug: stop after this many answers
RECORDING_TIMEOUT = 15  # seconds
# A recording as Twilio keeps it: WAV, 8 kHz, 16-bit, mono.
RECORDING_RATE, TONE_HZ, TONE_LOUDNESS = 8000, 400, 3000


def tone(seconds: int) -> bytes:
    """A quiet 400 Hz tone of seconds as Twilio's WAV: what a simulated caller says into the voicemail."""
    samples = RECORDING_RATE // TONE_HZ
    period = b"".join(struct.pack("<h", round(TONE_LOUDNESS * math.sin(2 * math.pi * i / samples)))
                      for i in range(samples))
    out = io.BytesIO()
    with wave.open(out, "wb") as recording:
        recording.setnchannels(1)
        recording.setsampwidth(2)
        recording.setframerate(RECORDING_RATE)
        recording.writeframes(period * (TONE_HZ * max(seconds, 1)))
    return out.getvalue()


@dataclass
class Phone:
    """A phone the service may ring: whether it is picked up and what is pressed at a prompt."""

    number: str
    answers: bool = True
    presses: str | None = "1"  # digits pressed at a <Gather>; None: nothing (a person who hangs up)
    voicemail: bool = False  # its own voicemail picks up: it answers and never presses anything
    busy: bool = False

    def picks_up(self) -> bool:
        return (self.answers or self.voicemail) and not self.busy


@dataclass
class Step:
    """One webhook Twilio made and the service's answer."""

    leg: str  # "caller" or the called phone's number
    url: str
    params: dict
    status: int
    answer: str
    context: str  # call, wait, announce, screen, callback


class CallFailed(AssertionError):
    """The service answered a webhook with an error, or with TwiML Twilio would refuse."""


@dataclass
class Leg:
    """One call leg being played: the verbs of its current TwiML document and where it is in them."""

    network: "Network"
    sid: str
    name: str
    base: dict
    doc: list = field(default_factory=list)
    at: int = 0
    state: str = "running"  # running, gathering, recording, queued, bridged, ended
    heard: list = field(default_factory=list)  # (text, language) said to this leg
    waiting: dict = field(default_factory=dict)  # the <Enqueue> being waited in
    bridged_to: "Leg | None" = None
    queue_time: float = 0.0
    dial_action: str | None = None  # a bridged leg's <Dial action>
    status_callback: str | None = None  # a placed call's StatusCallback
    spoke_at: int | None = None  # len(heard) when the caller last spoke
    words_before_person: int | None = None  # words said to the caller from their words to <Enqueue>/<Dial>

    # -- webhooks --------------------------------------------------------------------------------------------

    def fetch(self, url: str, extra: dict | None = None, *, context: str = "call", run: bool = True) -> ET.Element:
        root = self.network.request(self, url, {**self.base, **(extra or {})}, context)
        if run:
            self.doc, self.at = list(root), 0
            self.state = "running"
            self.run()
        return root

    def report(self, url: str | None, params: dict) -> None:
        """A callback Twilio makes whose answer is not TwiML to execute (status, recording, transcription)."""
        if url:
            self.network.request(self, url, params, "report")

    # -- verbs -----------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Execute verbs until the call needs something from outside (words, a key, an agent) or ends."""
        while self.state == "running":
            if self.at >= len(self.doc):
                self.end()
                return
            verb = self.doc[self.at]
            self.at += 1
            getattr(self, f"_{verb.tag.lower()}")(verb)

    def _say(self, verb) -> None:
        self.heard.append((verb.text or "", verb.get("language", "en-US")))

    def _pause(self, verb) -> None:
        self.queue_time += int(verb.get("length", 1))

    def _play(self, verb) -> None:
        pass

    def _gather(self, verb) -> None:
        for child in verb:
            self._say(child) if child.tag == "Say" else None
        self.state, self.gathering = "gathering", verb

    def _redirect(self, verb) -> None:
        self.fetch(verb.text)

    def _hangup(self, verb) -> None:
        self.end()

    def _record(self, verb) -> None:
        self.state, self.recording = "recording", verb

    def _leave(self, verb) -> None:
        self.state = "left"

    def _connecting(self) -> None:
        """The caller is put through to people (queue or dial): count what they heard since their words."""
        if self.spoke_at is not None and self.words_before_person is None:
            self.words_before_person = sum(len(text.split()) for text, _ in self.heard[self.spoke_at:])

    def _enqueue(self, verb) -> None:
        self._connecting()
        self.state, self.waiting = "queued", {"name": verb.text, "action": verb.get("action"),
                                              "wait_url": verb.get("waitUrl")}
        self.network.queues.setdefault(verb.text, []).append(self)
        self.queue_time = 0.0
        self.hold()

    def _dial(self, verb) -> None:
        self._connecting()
        number = verb.find("Number")
        queue = verb.find("Queue")
        if queue is not None:
            self.network.dequeue(self, queue, verb)
        elif number is not None:
            self.network.dial(self, verb, number)
        else:
            raise CallFailed(f"<Dial> without a Number or Queue: {ET.tostring(verb, encoding='unicode')}")

    # -- what the caller does ---------------------------------------------------------------------------------

    def say(self, words: str, confidence: str = "0.91") -> None:
        self.spoke_at = len(self.heard)
        self._answer_gather({"SpeechResult": words, "Confidence": confidence})

    def press(self, digits: str) -> None:
        self.spoke_at = len(self.heard)
        self._answer_gather({"Digits": digits})

    def silence(self) -> None:
        """Say nothing: the <Gather> times out and the document goes on after it."""
        self._expect("gathering")
        self.state = "running"
        self.run()

    def _answer_gather(self, extra: dict) -> None:
        self._expect("gathering")
        action = self.gathering.get("action")
        self.fetch(action, extra)

    def leave_message(self, seconds: int = 14, transcript: str | None = "", *, transcription_fails: bool = False,
                      absent: bool = False, audio: bytes | None = None) -> None:
        """Record a message (audio, else a tone of seconds) and hang up; Twilio keeps the recording, then posts
        the recording and transcription callbacks."""
        self._expect("recording")
        verb = self.recording
        rec_sid = "RE" + secrets.token_hex(16)
        rec_url = f"https://api.twilio.com/{API_VERSION}/Accounts/{self.base['AccountSid']}/Recordings/{rec_sid}"
        duration = "0" if absent else str(seconds)
        if not absent:
            self.network.keep_recording(rec_sid, tone(seconds) if audio is None else audio)
        self.fetch(verb.get("action"), {"RecordingUrl": rec_url, "RecordingDuration": duration,
                                        "RecordingSid": rec_sid, "Digits": "hangup"}, run=False)
        self.end()
        # The recording status callback carries no From or To (Twilio's documented parameters).
        self.report(verb.get("recordingStatusCallback"), {
            "AccountSid": self.base["AccountSid"], "CallSid": self.sid, "RecordingSid": rec_sid,
            "RecordingUrl": rec_url, "RecordingStatus": "absent" if absent else "completed",
            "RecordingDuration": duration, "RecordingChannels": "1", "RecordingSource": "RecordVerb"})
        if verb.get("transcribe") == "true" and not absent:
            status = "failed" if transcription_fails else "completed"
            self.report(verb.get("transcribeCallback"), {**self.base,
                "TranscriptionSid": "TR" + secrets.token_hex(16), "TranscriptionStatus": status,
                "TranscriptionText": "" if transcription_fails else (transcript or ""),
                "TranscriptionUrl": f"{rec_url}/Transcriptions", "RecordingSid": rec_sid, "RecordingUrl": rec_url})

    def hang_up(self) -> None:
        """The caller hangs up wherever they are."""
        if self.state == "queued":
            self.network.leave_queue(self, "hangup")
        elif self.state == "bridged":
            self.network.unbridge(self)
        self.end()

    def end(self) -> None:
        if self.state == "ended":
            return
        self.state = "ended"
        self.network.ended(self)

    def _expect(self, state: str) -> None:
        if self.state != state:
            raise CallFailed(f"{self.name}: expected the call to be {state}, it is {self.state}")

    # -- waiting in a queue -------------------------------------------------------------------------------------

    def hold(self) -> None:
        """Play the waitUrl's answer once (Twilio asks for it again each time it has played)."""
        root = self.network.request(self, self.waiting["wait_url"], {
            **self.base, "QueueSid": "QU" + self.waiting["name"][-32:].rjust(32, "0"),
            "QueuePosition": "1", "QueueTime": str(int(self.queue_time)), "AvgQueueTime": "0",
            "CurrentQueueSize": str(len(self.network.queues.get(self.waiting["name"], []))),
            "MaxQueueSize": "100"}, "wait")
        for verb in root:
            if verb.tag == "Leave":
                self.network.leave_queue(self, "leave")
                return
            if verb.tag == "Hangup":
                self.network.leave_queue(self, "hangup")
                self.end()
                return
            if verb.tag == "Say":
                self._say(verb)
                self.queue_time += seconds_of_speech(verb.text or "")
            elif verb.tag == "Pause":
                self._pause(verb)

    def wait(self, seconds: float) -> None:
        """Stay in the queue for seconds (or until taken or sent on)."""
        until = self.queue_time + seconds
        for _ in range(WAIT_LOOPS):
            if self.state != "queued" or self.queue_time >= until:
                return
            self.hold()
        raise CallFailed(f"{self.name}: the waitUrl never let the caller out of the queue")


class Network:
    """Twilio's voice side for one test or simulation: calls, queues, and the phones it can ring."""

    def __init__(self, base_url: str, *, auth_token: str, account_sid: str, team_number: str,
                 check: Callable[[str, str], None] | None = None, post=post_signed):
        self.base_url, self.auth_token, self.account_sid = base_url.rstrip("/"), auth_token, account_sid
        self.team_number, self.check, self.post = team_number, check, post
        self.phones: dict[str, Phone] = {}
        self.queues: dict[str, list[Leg]] = {}
        self.steps: list[Step] = []
        self.played: set[str] = set()  # REST-placed call sids already played
        self.legs: dict[str, Leg] = {}

    def add_phone(self, phone: Phone) -> Phone:
        self.phones[phone.number] = phone
        return phone

    # -- requests ------------------------------------------------------------------------------------------------

    def request(self, leg: Leg, url: str, params: dict, context: str) -> ET.Element:
        """POST a signed webhook; its answer is TwiML (checked) unless it is a report."""
        if not url or not own_url(url, self.base_url):
            raise CallFailed(f"{leg.name}: a callback URL outside the service: {url!r}")
        response = self.post(url, params, self.auth_token)
        answer = response.text
        self.steps.append(Step(leg.name, url, dict(params), response.status_code, answer, context))
        if response.status_code >= 400:
            raise CallFailed(f"{leg.name}: POST {url} answered {response.status_code}: {answer[:300]}")
        if context == "report":
            return ET.Element("Response")
        if self.check is not None:
            self.check(answer, context)
        # The service's own TwiML (request() posts only to its base URL); expat limits entity expansion
        # and ElementTree fetches no external entity.
        return ET.fromstring(answer)  # nosec B314  # TwiML answered by the service itself

    # -- calls -----------------------------------------------------------------------------------------------------

    def incoming(self, from_: str, to: str | None = None, path: str = "/twilio/voice") -> Leg:
        """A caller dials the team's number: Twilio asks the service what to do."""
        sid = "CA" + secrets.token_hex(16)
        to = to or self.team_number
        base = {"CallSid": sid, "AccountSid": self.account_sid, "From": from_, "To": to, "Caller": from_,
                "Called": to, "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": API_VERSION}
        leg = Leg(self, sid, "caller", base)
        self.legs[sid] = leg
        leg.fetch(self.base_url + path)
        return leg

    def ended(self, leg: Leg) -> None:
        """A leg hung up or its TwiML ran out: Twilio posts the final status callback (inbound calls:
        to the number's "Call status changes" URL; placed calls: to their StatusCallback)."""
        url = getattr(leg, "status_callback", None)
        if leg.name == "caller":
            url = self.base_url + "/twilio/voice/status"
        if url:
            self.request(leg, url, {**leg.base, "CallStatus": "completed", "CallDuration": "60"}, "report")

    def leave_queue(self, leg: Leg, result: str) -> None:
        """The caller leaves its queue (hung up, <Leave>, or bridged): Enqueue's action is requested."""
        members = self.queues.get(leg.waiting["name"], [])
        if leg in members:
            members.remove(leg)
        action = leg.waiting["action"]
        params = {"QueueResult": result, "QueueSid": "QU" + "0" * 32, "QueueTime": str(int(leg.queue_time))}
        if result in ("hangup", "bridged", "bridging-in-process"):
            # The caller is gone, or the bridged call is over (Twilio asks then): the answer is not played.
            leg.report(action, {**leg.base, **params})
            return
        leg.fetch(action, params)

    def dequeue(self, agent: Leg, queue, verb) -> None:
        """An agent's <Dial><Queue>: connect them to the first caller waiting in that queue."""
        members = self.queues.get(queue.text, [])
        if not members:
            agent.fetch(verb.get("action"), {"DialCallStatus": "no-answer", "DialCallDuration": "0",
                                             "DialBridged": "false"})
            return
        caller = members[0]
        if queue.get("url"):
            announce = self.request(caller, queue.get("url"), {
                **caller.base, "QueueSid": "QU" + "0" * 32, "QueueTime": str(int(caller.queue_time)),
                "DequeingCallSid": agent.sid}, "announce")
            for say in announce.iter("Say"):
                caller._say(say)
        members.remove(caller)
        caller.state, agent.state = "bridged", "bridged"
        caller.bridged_to, agent.bridged_to = agent, caller
        agent.dial_action = verb.get("action")

    def unbridge(self, leg: Leg) -> None:
        """One side of a bridge hangs up: the caller's Enqueue action says bridged, the agent's Dial action
        completed; both legs end."""
        other = leg.bridged_to
        caller, agent = (leg, other) if leg.waiting else (other, leg)
        caller.bridged_to = agent.bridged_to = None
        self.leave_queue(caller, "bridged")
        if agent.dial_action:
            agent.fetch(agent.dial_action, {"DialCallStatus": "completed", "DialCallDuration": "60",
                                            "DialBridged": "true", "DialCallSid": caller.sid}, run=False)
        for side in (caller, agent):
            side.state = "running"
            side.end()

    def dial(self, leg: Leg, verb, number) -> None:
        """<Dial><Number url>: ring a phone; its answer hears the url's TwiML before the parties connect."""
        phone = self.phones.get(number.text)
        params = {"DialCallSid": "CA" + secrets.token_hex(16), "DialCallDuration": "0"}
        if phone is None or not phone.picks_up():
            status = "busy" if phone is not None and phone.busy else "no-answer"
            leg.fetch(verb.get("action"), {**params, "DialCallStatus": status, "DialBridged": "false"})
            return
        called = Leg(self, params["DialCallSid"], phone.number,
                     {"CallSid": params["DialCallSid"], "ParentCallSid": leg.sid, "AccountSid": self.account_sid,
                      "From": leg.base["From"], "To": phone.number, "CallStatus": "in-progress",
                      "Direction": "outbound-dial", "ApiVersion": API_VERSION})
        accepted = self.screen(called, number.get("url"), phone) if number.get("url") else True
        if accepted:
            leg.state, called.state = "bridged", "bridged"
            leg.bridged_to, called.bridged_to = called, leg
            leg.dial_action = verb.get("action")
            return
        # Screening hung up: the called leg ended; Twilio goes on with the <Dial>'s action.
        leg.fetch(verb.get("action"), {**params, "DialCallStatus": "completed", "DialBridged": "false"})

    def screen(self, called: Leg, url: str, phone: Phone) -> bool:
        """Run a <Number url> document on the called phone; whether it let the parties connect."""
        root = self.request(called, url, called.base, "screen")
        verbs = list(root)
        while verbs:
            verb = verbs.pop(0)
            if verb.tag == "Say":
                called._say(verb)
            elif verb.tag == "Hangup":
                return False
            elif verb.tag == "Gather":
                for say in verb.iter("Say"):
                    called._say(say)
                if phone.voicemail or phone.presses is None:
                    continue  # nothing pressed: the Gather times out, the next verb runs
                verbs = list(self.request(called, verb.get("action"), {**called.base, "Digits": phone.presses},
                                          "screen"))
        return True

    def hang_up_bridge(self, leg: Leg) -> None:
        """Whoever is on a bridged call hangs up (a Dial to a number, or an agent's Dial to a queue)."""
        if leg.state != "bridged":
            raise CallFailed(f"{leg.name} is not on a bridged call")
        other = leg.bridged_to
        if leg.waiting or (other is not None and other.waiting):
            self.unbridge(leg)
            return
        caller = leg if leg.name == "caller" else other
        caller.bridged_to = other.bridged_to = None
        caller.fetch(caller.dial_action, {"DialCallStatus": "completed", "DialCallDuration": "60",
                                          "DialBridged": "true"})

    def keep_recording(self, sid: str, audio: bytes) -> None:
        """Keep a caller's recording where Twilio keeps it: the sandbox's fake API, which serves it to the
        service as Twilio's API does."""
        url = f"{self.base_url}/sandbox/twilio/{API_VERSION}/Accounts/{self.account_sid}/Recordings/{sid}.wav"
        response = requests.put(url, data=audio, auth=(self.account_sid, self.auth_token),
                                headers={"Content-Type": "audio/x-wav"}, timeout=RECORDING_TIMEOUT)
        if response.status_code != 201:
            raise CallFailed(f"the sandbox did not keep the recording: {response.status_code} {response.text[:300]}")

    # -- calls the service placed through the REST API -----------------------------------------------------------

    def client(self) -> Client:
        client = Client(self.account_sid, self.auth_token)
        client.api.base_url = self.base_url + "/sandbox/twilio"
        return client

    def ring(self, *numbers: str) -> list[Leg]:
        """Play the calls the service placed (Twilio's Calls API) that were not played yet — to numbers
        only, if given (the others keep ringing): each phone picks up or not as it is set. Returns the
        legs that picked up."""
        answered = []
        for placed in reversed(self.client().calls.list()):
            if placed.sid in self.played or (numbers and placed.to not in numbers):
                continue
            self.played.add(placed.sid)
            raw = self._placed(placed.sid)
            base = {"CallSid": placed.sid, "AccountSid": self.account_sid, "From": raw["from"], "To": raw["to"],
                    "Direction": "outbound-api", "ApiVersion": API_VERSION}
            leg = Leg(self, placed.sid, raw["to"], base)
            leg.status_callback = raw.get("status_callback")
            self.legs[placed.sid] = leg
            phone = self.phones.get(raw["to"])
            if raw["status"] == "canceled":
                leg.state = "ended"
                leg.report(leg.status_callback, {**base, "CallStatus": "canceled"})
                continue
            if phone is None or not phone.picks_up():
                leg.state = "ended"
                leg.report(leg.status_callback, {**base, "CallStatus": "busy" if phone and phone.busy else "no-answer"})
                continue
            leg.base["CallStatus"] = "in-progress"
            leg.report(leg.status_callback, {**leg.base, "CallStatus": "ringing"})
            root = leg.fetch(raw["url"], context="screen", run=False)
            leg.doc, leg.at = list(root), 0
            self._answer_screen(leg, phone)
            answered.append(leg)
        return answered

    def _answer_screen(self, leg: Leg, phone: Phone) -> None:
        leg.state = "running"
        while leg.state == "running" and leg.at < len(leg.doc):
            verb = leg.doc[leg.at]
            leg.at += 1
            if verb.tag == "Gather":
                for say in verb.iter("Say"):
                    leg._say(say)
                if phone.voicemail or phone.presses is None:
                    continue
                root = self.request(leg, verb.get("action"), {**leg.base, "Digits": phone.presses}, "call")
                leg.doc, leg.at = list(root), 0
            else:
                getattr(leg, f"_{verb.tag.lower()}")(verb)
        if leg.state == "running":
            leg.end()

    def _placed(self, sid: str) -> dict:
        """The fake API's record of a placed call (it keeps the Url the service gave)."""
        response = self.client().request("GET", f"{self.base_url}/sandbox/twilio/{API_VERSION}/Accounts/"
                                                f"{self.account_sid}/Calls/{sid}.json")
        return json.loads(response.text)
