"""The leadership summary page (leads and up): a period's one-page summary on screen, and as a PDF to send on.
Customers' names and contact details appear only when asked for, and asking is audited."""

from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, render_template, request
from flask_login import current_user

from assist import audit, clock, db, runtime, summary, summary_document
from assist.errors import BadPeriod
from assist.models import UserRole
from assist.web.auth import role_required
from assist.web.helpers import day

bp = Blueprint("summary", __name__, url_prefix="/summary")

DEFAULT_DAYS = 7  # the week that ended yesterday, when no days are chosen


@bp.get("/")
@role_required(UserRole.LEAD)
def index():
    found = _summary()
    return render_template("summary.html", summary=found, with_names=found.with_names)


@bp.get("/pdf")
@role_required(UserRole.LEAD)
def pdf():
    found = _summary()
    document = summary_document.pdf(summary_document.html(found))
    name = f"summary-{found.period.first}-{found.period.last}.pdf"
    return Response(document, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _summary() -> summary.Summary:
    """The summary of the days the query names (from, to; default the last full week), names only with
    with_names=1 (audited)."""
    settings, now = runtime.settings(), clock.now()
    yesterday = now.astimezone(ZoneInfo(settings.business_timezone)).date() - timedelta(days=1)
    last = day(request.args.get("to"), "to") or yesterday
    first = day(request.args.get("from"), "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    try:
        chosen = summary.period(first, last, settings.business_timezone)
    except BadPeriod as exc:
        abort(400, str(exc))
    with_names = request.args.get("with_names") == "1"
    session = db.session()
    if with_names:
        audit.record(session, "summary.with_names", actor=current_user._get_current_object(),
                     first=chosen.first.isoformat(), last=chosen.last.isoformat(), via="console")
    found = summary.build(session, settings, chosen, now, with_names=with_names)
    session.commit()
    return found

