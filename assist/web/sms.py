"""Twilio's messaging webhooks: an incoming SMS answered with TwiML, and the delivery status callbacks."""

from flask import Blueprint, Response, abort, request

from assist import db, ingest, outbound
from assist.errors import BadWebhook, UnknownStatus
from assist.web.twilio import verify_twilio_signature
from assist.web.urls import external_url
from channels import sms

bp = Blueprint("sms", __name__)


@bp.post("/twilio/sms")
@verify_twilio_signature
def inbound():
    try:
        message = sms.parse_sms(request.form, request.headers)
    except BadWebhook as exc:
        abort(400, str(exc))
    result = ingest.ingest(db.session(), message)
    status_url = external_url("sms.status", message=result.reply_id) if result.reply else None
    return Response(sms.twiml_reply(result, status_url), mimetype="text/xml")


@bp.post("/twilio/sms/status")
@verify_twilio_signature
def status():
    try:
        report = sms.parse_status(request.form, request.args)
    except (BadWebhook, UnknownStatus) as exc:
        abort(400, str(exc))
    outbound.record_delivery_status(db.session(), report)
    return "", 204
