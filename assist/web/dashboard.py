"""The supervisors' dashboard: queues, service levels, volume over time, agents' load, and case search."""

from collections import Counter
from datetime import date, datetime, time, timedelta, timezone

from flask import Blueprint, abort, render_template, request
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from assist import clock, db
from assist.web.auth import role_required
from assist.models import OPEN_STATUSES, Case, CaseStatus, Contact, Direction, Message, User, UserRole
from assist.triage.labels import CATEGORY, QUEUES, URGENCY

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

DAYS = 7  # the volume charts' window
SEARCH_LIMIT = 100  # cases


@bp.get("/")
@role_required(UserRole.SUPERVISOR)
def index():
    session = db.session()
    now = clock.now()
    open_cases = list(session.scalars(select(Case).where(Case.status.in_(OPEN_STATUSES))
                                      .options(selectinload(Case.assignee))))
    queues = []
    for queue in QUEUES:
        cases = [c for c in open_cases if c.queue == queue]
        waiting = [c for c in cases if c.first_response_at is None and c.last_inbound_at]
        oldest = min(waiting, key=lambda c: c.last_inbound_at, default=None)
        queues.append({"name": queue, "depth": len(cases), "oldest": oldest,
                       "oldest_minutes": int((now - oldest.last_inbound_at).total_seconds() // 60) if oldest else None,
                       "breached": sum(c.sla_breached_at is not None for c in cases)})
    since = datetime.combine(now.date() - timedelta(days=DAYS - 1), time.min, tzinfo=timezone.utc)  # UTC days
    recent = session.execute(select(Message.triage, Message.created_at).where(
        Message.direction == Direction.INBOUND, Message.created_at >= since, Message.triage.is_not(None))).all()
    days = [(since + timedelta(days=i)).date() for i in range(DAYS)]
    by_day = {d: Counter() for d in days}
    by_category = Counter()
    for t, at in recent:
        by_day.setdefault(at.date(), Counter())[t["urgency"]] += 1
        by_category[t["category"]] += 1
    load = dict(session.execute(select(Case.assignee_id, func.count(Case.id))
                                .where(Case.status.in_(OPEN_STATUSES), Case.assignee_id.is_not(None))
                                .group_by(Case.assignee_id)).all())
    agents = [(u, load.get(u.id, 0)) for u in session.scalars(select(User).where(User.active.is_(True))
                                                                  .order_by(User.name))
              if u.queues or load.get(u.id)]
    breaches = sorted((c for c in open_cases if c.sla_breached_at), key=lambda c: c.sla_breached_at, reverse=True)
    peak = max([sum(c.values()) for c in by_day.values()] + [1])
    return render_template("dashboard.html", queues=queues, days=days, by_day=by_day, peak=peak,
                           by_category=[(c, by_category[c]) for c in CATEGORY], urgencies=URGENCY,
                           category_peak=max(list(by_category.values()) + [1]), agents=agents, breaches=breaches)


@bp.get("/search")
@role_required(UserRole.SUPERVISOR)
def search():
    args = request.args
    status, text = args.get("status") or None, (args.get("q") or "").strip()
    if status and status not in {s.value for s in CaseStatus}:
        abort(400, f"unknown status {status!r}")
    try:
        start = date.fromisoformat(args["from"]) if args.get("from") else None
        end = date.fromisoformat(args["to"]) if args.get("to") else None
    except ValueError:
        abort(400, "dates are YYYY-MM-DD")
    query = select(Case).join(Contact).options(selectinload(Case.contact)).order_by(Case.id.desc()).limit(SEARCH_LIMIT)
    if text:
        pattern = f"%{text}%"
        matching = select(Message.case_id).where(Message.text.ilike(pattern))
        query = query.where(or_(Contact.name.ilike(pattern), Contact.phone.ilike(pattern),
                                Contact.email.ilike(pattern), Case.id.in_(matching)))
    if status:
        query = query.where(Case.status == CaseStatus(status))
    if start:
        query = query.where(Case.created_at >= datetime.combine(start, time.min, tzinfo=timezone.utc))
    if end:
        query = query.where(Case.created_at < datetime.combine(end + timedelta(days=1), time.min,
                                                               tzinfo=timezone.utc))
    results = list(db.session().scalars(query)) if (text or status or start or end) else []
    return render_template("search.html", results=results, args=args)
