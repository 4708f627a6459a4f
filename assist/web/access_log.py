"""The access log for supervisors: who opened which case, claim, review or restricted note, when, and whether it
was allowed; filtered by user and object, page by page, and as CSV."""

import csv
import io

from flask import Blueprint, Response, abort, render_template, request
from sqlalchemy import select

from assist import access_log, db
from assist.models import AccessEntry, User, UserRole
from assist.web.auth import role_required
from assist.web.helpers import whole_number

bp = Blueprint("access_log", __name__, url_prefix="/access-log")

CSV_ROWS = 10000  # entries in one export: narrow it by user or object for more


def _filters() -> dict:
    """The filters the query string asks for: user, kind, object id (each optional, each checked)."""
    args = request.args
    kind = args.get("kind") or None
    if kind is not None and kind not in access_log.KINDS:
        abort(400, f"kind must be one of {', '.join(access_log.KINDS)}")
    return {"user_id": whole_number(args["user"], "user") if args.get("user") else None, "kind": kind,
            "object_id": whole_number(args["object"], "object") if args.get("object") else None}


@bp.get("/")
@role_required(UserRole.SUPERVISOR)
def index():
    filters = _filters()
    before = whole_number(request.args["before"], "before") if request.args.get("before") else None
    session = db.session()
    shown = access_log.entries(session, **filters, before=before, limit=access_log.PAGE + 1)
    following = shown[access_log.PAGE - 1].id if len(shown) > access_log.PAGE else None
    people = session.scalars(select(User).order_by(User.name)).all()
    return render_template("access_log.html", entries=shown[:access_log.PAGE], following=following,
                           people=people, kinds=access_log.KINDS, filters=filters)


@bp.get("/export.csv")
@role_required(UserRole.SUPERVISOR)
def export():
    rows = access_log.entries(db.session(), **_filters(), limit=CSV_ROWS)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at", "user_id", "user", "kind", "object_id", "allowed"])
    writer.writerows(_row(e) for e in rows)
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=access-log.csv"})


def _row(entry: AccessEntry) -> list:
    # A name starting with = + - @ would run as a formula in a spreadsheet: quote it as text.
    name = entry.user.name
    safe = "'" + name if name[:1] in ("=", "+", "-", "@", "\t", "\r") else name
    return [entry.at.isoformat(), entry.user_id, safe, entry.kind, entry.object_id,
            "allowed" if entry.allowed else "refused"]
