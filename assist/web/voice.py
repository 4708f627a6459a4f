"""Twilio's voice webhooks: every request signature-checked, every answer TwiML from assist.calls.

Set the number's "A call comes in" to POST <PUBLIC_BASE_URL>/twilio/voice and "Call status changes"
to POST <PUBLIC_BASE_URL>/twilio/voice/status. Every other URL is given to Twilio in the TwiML.
"""

from flask import Blueprint, Response, abort, request

from assist import calls, db, runtime
from assist.errors import BadWebhook
from assist.web.helpers import whole_number
from assist.web.twilio import verify_twilio_signature
from assist.web.urls import external_url

bp = Blueprint("voice", __name__, url_prefix="/twilio/voice")

MAX_ATTEMPT = 9


def _urls(step: str, **params) -> str:
    return external_url(f"voice.{step}", **params)


def _twiml(text: str) -> Response:
    return Response(text, mimetype="text/xml")


def _number(name: str, *, high: int | None = None) -> int:
    """A whole-number query parameter of the service's own step URLs (attempt, call, leg): 400 for anything else."""
    return whole_number(request.args.get(name), name, **({"high": high} if high else {}))


@bp.errorhandler(BadWebhook)
def bad_webhook(error: BadWebhook):
    return Response(str(error), status=400, mimetype="text/plain")


@bp.post("")
@verify_twilio_signature
def incoming():
    return _twiml(calls.greet(db.session(), request.form, _urls))


@bp.post("/gather")
@verify_twilio_signature
def gather():
    attempt = _number("attempt", high=MAX_ATTEMPT)
    silent = request.args.get("silent")
    if silent not in (None, "1"):
        abort(400, "silent must be 1 or absent")
    return _twiml(calls.gather(db.session(), request.form, attempt=attempt, silent=silent == "1",
                               settings=runtime.settings(), urls=_urls))


@bp.post("/menu")
@verify_twilio_signature
def menu():
    return _twiml(calls.menu(db.session(), request.form, runtime.settings(), _urls))


@bp.post("/recorded")
@verify_twilio_signature
def recorded():
    return _twiml(calls.recorded(db.session(), request.form, _urls))


@bp.post("/wait")
@verify_twilio_signature
def wait():
    return _twiml(calls.hold(db.session(), _number("call"), request.form, runtime.settings(), _urls))


@bp.post("/queued")
@verify_twilio_signature
def queued():
    return _twiml(calls.queued(db.session(), _number("call"), request.form, runtime.settings(), _urls))


@bp.post("/dialed")
@verify_twilio_signature
def dialed():
    return _twiml(calls.dialed(db.session(), _number("call"), _number("leg"), request.form, runtime.settings(), _urls))


@bp.post("/screen")
@verify_twilio_signature
def screen():
    return _twiml(calls.screen(db.session(), _number("leg"), runtime.settings(), _urls))


@bp.post("/screened")
@verify_twilio_signature
def screened():
    return _twiml(calls.screened(db.session(), _number("leg"), request.form, _urls))


@bp.post("/bridging")
@verify_twilio_signature
def bridging():
    return _twiml(calls.bridging(db.session(), _number("call"), _urls))


@bp.post("/leg-ended")
@verify_twilio_signature
def leg_ended():
    return _twiml(calls.leg_ended(db.session(), _number("leg"), request.form))


@bp.post("/leg-status")
@verify_twilio_signature
def leg_status():
    calls.leg_status(db.session(), _number("leg"), request.form, runtime.settings())
    return "", 204


# Twilio's reports after the fact: applied once, answered with no TwiML.
REPORTS = {"recording": calls.recording, "transcription": calls.transcription, "status": calls.status}


def _report(event: str):
    REPORTS[event](db.session(), request.form)
    return "", 204


for _event in REPORTS:
    bp.add_url_rule(f"/{_event}", endpoint=_event, view_func=verify_twilio_signature(_report), methods=["POST"],
                    defaults={"event": _event})
