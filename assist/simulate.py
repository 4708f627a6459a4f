"""Play the customer: post correctly signed Twilio webhooks to a running service."""

import secrets
import socket
import xml.etree.ElementTree as ET

import requests
from twilio.request_validator import RequestValidator

from channels.sms import segment_count

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
    for element in ET.fromstring(twiml).iter("Message"):
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
