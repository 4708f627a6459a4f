"""The dashboard (leads and up, read-only): queues, service levels, volume over time, agents' load; and case
search, for everyone over the cases they may see (assist.access)."""

from datetime import UTC, datetime, time, timedelta

from flask import Blueprint, abort, render_template, request
from flask_login import current_user
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from assist import access, clock, db, reports
from assist.models import Case, CaseStatus, Contact, Message, UserRole
from assist.triage.labels import URGENCY
from assist.web.auth import role_required
from assist.web.helpers import day

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

SEARCH_LIMIT = 100  # cases
MAX_SEARCH_TEXT = 200  # characters


@bp.get("/")
@role_required(UserRole.LEAD)
def index():
    figures = reports.figures(db.session(), clock.now())
    peak = max([sum(counts.values()) for counts in figures.by_day.values()] + [1])
    return render_template("dashboard.html", figures=figures, peak=peak, urgencies=URGENCY,
                           category_peak=max([n for _, n in figures.by_category] + [1]),
                           satisfaction=reports.satisfaction(db.session(), figures.days[0], figures.days[-1]))


@bp.get("/search")
@role_required(UserRole.AGENT)
def search():
    args = request.args
    status, text = args.get("status") or None, (args.get("q") or "").strip()
    if status and status not in {s.value for s in CaseStatus}:
        abort(400, f"unknown status {status!r}")
    if len(text) > MAX_SEARCH_TEXT:
        abort(400, f"the search text is longer than {MAX_SEARCH_TEXT} characters")
    start, end = day(args.get("from"), "from"), day(args.get("to"), "to")
    query = (select(Case).join(Contact).where(access.visible_cases(current_user)).options(selectinload(Case.contact))
             .order_by(Case.id.desc()).limit(SEARCH_LIMIT))
    if text:  # the text as typed: % and _ are matched as themselves, not as LIKE wildcards
        matching = select(Message.case_id).where(Message.text.icontains(text, autoescape=True))
        query = query.where(or_(Contact.name.icontains(text, autoescape=True),
                                Contact.phone.icontains(text, autoescape=True),
                                Contact.email.icontains(text, autoescape=True), Case.id.in_(matching)))
    if status:
        query = query.where(Case.status == CaseStatus(status))
    if start:
        query = query.where(Case.created_at >= datetime.combine(start, time.min, tzinfo=UTC))
    if end:
        query = query.where(Case.created_at < datetime.combine(end + timedelta(days=1), time.min,
                                                               tzinfo=UTC))
    results = list(db.session().scalars(query)) if (text or status or start or end) else []
    return render_template("search.html", results=results, args=args)
