"""Play the customer against a running service: signed Twilio webhooks (SMS, a whole call through the
phone network player) and email over SMTP."""

import secrets
import smtplib
import socket
import time
import xml.etree.ElementTree as ET  # nosec B405  # parses only the service's own TwiML answers
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from assist.models import User
from assist.settings import host_and_port
from channels.segments import segment_count

TIMEOUT = 15  # seconds: Twilio gives up on a webhook after 15 s too


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sms_params(*, from_: str, to: str, body: str, account_sid: str, media: tuple[tuple[str, str], ...] = ()) -> dict:
    """Return the form Twilio posts for an incoming SMS/MMS, with its documented parameters."""
    sid = ("MM" if media else "SM") + secrets.token_hex(16)
    params = {
        "ToCountry": "US", "ToState": "CA", "ToCity": "", "ToZip": "",
        "FromCountry": "US", "FromState": "", "FromCity": "", "FromZip": "",
        "SmsMessageSid": sid, "SmsSid": sid, "MessageSid": sid, "SmsStatus": "received",
        "AccountSid": account_sid, "MessagingServiceSid": "",
        "From": from_, "To": to, "Body": body,
        "NumMedia": str(len(media)), "NumSegments": str(segment_count(body)),
        "ReferralNumMedia": "0", "ApiVersion": "2010-04-01", "MessageType": "sms",
    }
    for i, (url, content_type) in enumerate(media):
        params[f"MediaUrl{i}"], params[f"MediaContentType{i}"] = url, content_type
    return params


def post_signed(url: str, params: dict, auth_token: str, **headers) -> requests.Response:
    """POST params to url with the X-Twilio-Signature Twilio would compute."""
    signature = RequestValidator(auth_token).compute_signature(url, params)
    return requests.post(url, data=params, headers={"X-Twilio-Signature": signature, **headers}, timeout=TIMEOUT)


def deliver_twiml_replies(twiml: str, inbound: dict, auth_token: str) -> list[str]:
    """Do what Twilio does with <Message> replies in a TwiML answer: report them sent and delivered.

    Returns the reply texts. Each <Message action="..."> gets signed status callbacks,
    as Twilio posts them to a Message's action URL.
    """
    texts = []
    for element in ET.fromstring(twiml).iter("Message"):  # nosec B314  # the TwiML the service answered
        texts.append(element.text or "")
        if not element.get("action"):
            continue
        sid = "SM" + secrets.token_hex(16)
        for status in ("sent", "delivered"):
            params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                      "AccountSid": inbound["AccountSid"], "From": inbound["To"], "To": inbound["From"],
                      "ApiVersion": "2010-04-01"}
            post_signed(element.get("action"), params, auth_token).raise_for_status()
    return texts


def send_email(smtp_listen: str, *, from_: str, to: str, subject: str, text: str) -> str:
    """Send text as an email over a real SMTP session to the server at smtp_listen; return its Message-ID.

    Raises:
        OSError, smtplib.SMTPException: the server is down or refused it.
    """
    message = EmailMessage()
    message["From"], message["To"] = from_, to
    message["Subject"], message["Message-ID"] = subject, make_msgid(domain="customer.example")
    message.set_content(text)
    host, port = host_and_port(smtp_listen)
    with smtplib.SMTP(host, port, timeout=30) as session:
        session.send_message(message)
    return message["Message-ID"]


CALL_PATIENCE = 15  # seconds a simulated caller waits in a queue for the phones to pick up


def play_call(session: Session, rt, *, from_: str, digits: str | None, speech: str, answers: bool,
              echo: Callable[[str], None]):
    """Play a whole call as Twilio would: the caller presses digits or says speech, every phone the service
    rings (the agents' with a phone, the on-call one) picks up and presses 1 when answers. Each webhook and
    its TwiML goes to echo. Returns the caller (phone_network.Caller: what they heard, when a person rang).

    Raises:
        phone_network.CallFailed: the service answered a webhook with an error.
        OSError: the service cannot be reached.
    """
    from assist.phone_network import Network, Phone

    settings, base = rt.settings, rt.base_url()

    def post(url, params, token):
        response = post_signed(url, params, token)
        shown = {k: v for k, v in params.items() if k not in ("AccountSid", "ApiVersion", "Caller", "Called")}
        echo(f"--> POST {url.removeprefix(base)} {shown}\n<-- {response.status_code} {response.text}")
        return response

    network = Network(base, auth_token=settings.auth_token, account_sid=settings.account_sid,
                      team_number=settings.twilio_from_number, post=post)
    numbers = list(session.scalars(select(User.phone).where(User.phone.is_not(None))))
    for number in numbers + [settings.on_call_number] * bool(settings.on_call_number):
        network.add_phone(Phone(number, answers=answers))
    caller = network.incoming(from_)
    if digits:
        caller.press(digits)
    told = bool(speech) and caller.state == "gathering"
    if told:
        caller.say(speech)
    if caller.state == "gathering":  # the menu: leave a message
        caller.press("1")
    deadline = time.monotonic() + CALL_PATIENCE
    while caller.state == "queued" and time.monotonic() < deadline:
        network.ring()  # the phones the worker rang pick up (or not)
        if caller.state == "queued":
            caller.wait(10)
            time.sleep(0.3)
    if caller.state == "recording":
        # A caller who told the greeting what happened asks for a call back; one who did not, tells it now.
        caller.leave_message(12, speech if speech and not told else "please call me back")
    elif caller.state == "bridged":
        network.hang_up_bridge(caller) if not caller.waiting else caller.hang_up()
    elif caller.state != "ended":
        caller.hang_up()
    return caller
