"""The dashboard (leads and up, read-only): queues, service levels, volume over time, agents' load, each table
also as CSV; and case search, for everyone over the cases they may see (assist.access)."""

import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta

from flask import Blueprint, Response, abort, render_template, request
from flask_login import current_user
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from assist import access, clock, db, metrics, reports
from assist.models import Case, CaseStatus, Contact, Message, UserRole
from assist.triage.labels import CATEGORY, CATEGORY_NAMES, QUEUES, URGENCY
from assist.web.auth import role_required
from assist.web.helpers import day
from channels.message import Channel

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

SEARCH_LIMIT = 100  # cases
MAX_SEARCH_TEXT = 200  # characters
DEFAULT_DAYS = 28  # the service levels' range when the lead chose none


@bp.get("/")
@role_required(UserRole.LEAD)
def index():
    return render_template("dashboard.html", **_figures())


@bp.get("/figures")
@role_required(UserRole.LEAD)
def figures():
    """The figures alone, which the page fetches again every minute (dashboard.js)."""
    return render_template("_dashboard_figures.html", **_figures())


def _figures() -> dict:
    """What the dashboard's template shows: the queues now, and the service levels of the chosen range."""
    session, now = db.session(), clock.now()
    figures = reports.figures(session, now)
    levels = metrics.metrics(session, chosen_filters(now), now)
    peak = max([sum(counts.values()) for counts in figures.by_day.values()] + [1])
    return dict(figures=figures, levels=levels, peak=peak, urgencies=URGENCY, queues=QUEUES, categories=CATEGORY,
                category_names=CATEGORY_NAMES, channels=[c.value for c in Channel], periods=metrics.PERIODS,
                category_peak=max([n for _, n in figures.by_category] + [1]), minutes=minutes, hours=hours,
                percent=percent, cases_axis=axis(max([lv.cases for _, lv in levels.periods] + [1])),
                satisfaction=reports.satisfaction(session, levels.filters.start, levels.filters.end),
                response_axis=axis(max([(lv.first_response_p90 or 0) / 60 for _, lv in levels.periods] + [1])))


def axis(peak: float) -> list[int]:
    """A chart's y-axis ticks from 0: round steps, the last at or above peak."""
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10**4, 10**5, 10**6, 10**9)
                if s * 4 >= peak)
    return [step * i for i in range(int(-(-peak // step)) + 1)]


def chosen_filters(now: datetime) -> metrics.Filters:
    """The range, period, queue, category and channel in the query string, else a 400 naming the wrong one."""
    args = request.args
    end = day(args.get("to"), "to") or now.astimezone(UTC).date()
    start = day(args.get("from"), "from") or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        abort(400, "from must not be after to")
    chosen = metrics.Filters(start, end, period=_one_of(args.get("period"), metrics.PERIODS, "period") or "day",
                             queue=_one_of(args.get("queue"), QUEUES, "queue"),
                             category=_one_of(args.get("category"), CATEGORY, "category"),
                             channel=_one_of(args.get("channel"), tuple(Channel), "channel"))
    if len(chosen.periods()) > metrics.MAX_PERIODS:
        abort(400, f"the range holds more than {metrics.MAX_PERIODS} periods: choose weeks or a shorter range")
    return chosen


def _one_of(raw: str | None, known: Iterable[str], name: str) -> str | None:
    """raw if it is one of known, None if empty (all of them), else a 400 naming the parameter."""
    if raw and raw not in known:
        abort(400, f"unknown {name} {raw!r}")
    return raw or None


# -- CSV ------------------------------------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell starting so as a formula


@bp.get("/export/<table>.csv")
@role_required(UserRole.LEAD)
def export(table: str):
    """One table of the dashboard as CSV, with the filters the page had."""
    if table not in TABLES:
        abort(404)
    session, now = db.session(), clock.now()
    chosen = chosen_filters(now)
    body = io.StringIO()
    writer = csv.writer(body)
    for row in TABLES[table](session, chosen, now):
        writer.writerow([_inert(cell) for cell in row])
    name = f"{table}-{chosen.start}-{chosen.end}.csv"
    return Response(body.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _inert(cell) -> str:
    """A cell a spreadsheet shows as text (a leading quote keeps =, +, - and @ from starting a formula)."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


LEVEL_COLUMNS = ["cases", "first response median (min)", "first response p90 (min)", "resolution median (h)",
                 "SLA attainment (%)", "escalations", "reopened"]


def level_cells(levels: metrics.Levels) -> list:
    return [levels.cases, minutes(levels.first_response_median), minutes(levels.first_response_p90),
            hours(levels.resolution_median), percent(levels.sla_attainment), levels.escalations, levels.reopened]


def minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def hours(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 3600:.1f}"


def percent(share: float | None) -> str:
    return "" if share is None else f"{share * 100:.0f}"


def _periods_rows(session, chosen: metrics.Filters, now: datetime):
    figures = metrics.metrics(session, chosen, now)
    yield [chosen.period, *LEVEL_COLUMNS]
    for start, levels in figures.periods:
        yield [start.isoformat(), *level_cells(levels)]
    yield ["total", *level_cells(figures.total)]


def _agents_rows(session, chosen: metrics.Filters, now: datetime):
    yield ["agent", "cases handled", "first response median (min)", "open cases", "capacity"]
    for agent in metrics.agent_levels(session, chosen, now):
        yield [agent.user.name, agent.levels.cases, minutes(agent.levels.first_response_median), agent.open_cases,
               agent.user.capacity]


def _queues_rows(session, _chosen: metrics.Filters, now: datetime):
    yield ["queue", "open cases", "SLA breaches", "oldest waiting (min)"]
    for queue in reports.queue_figures(session, now):
        yield [queue.name, queue.depth, queue.breached, queue.oldest_minutes]


def _categories_rows(session, _chosen: metrics.Filters, now: datetime):
    yield ["category", f"messages, last {reports.DAYS} days"]
    for label, n in reports.volume_by_category(session, reports.window(now)[0]):
        yield [CATEGORY_NAMES[label], n]


TABLES = {"periods": _periods_rows, "agents": _agents_rows, "queues": _queues_rows, "categories": _categories_rows}


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
