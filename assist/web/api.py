"""The JSON API under /api/, authenticated by bearer tokens (`assist users token`).

Lists are paginated by cursor: a page holds `limit` cases (at most MAX_LIMIT) and, when there are
more, a `Link: <...>; rel="next"` header (RFC 8288) points to the next page.
"""

from flask import Blueprint, abort, jsonify, request, url_for

from assist import cases, db
from assist.models import Case, CaseStatus
from assist.web.auth import token_required
from assist.web.helpers import get_or_404, whole_number

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_LIMIT = 200


@bp.get("/cases")
@token_required
def list_cases():
    status, queue = request.args.get("status") or None, request.args.get("queue") or None
    if status and status not in {s.value for s in CaseStatus}:
        abort(400, f"unknown status {status!r}")
    limit = whole_number(request.args.get("limit", str(cases.PAGE_SIZE)), "limit", high=MAX_LIMIT)
    try:
        page = cases.queue_page(db.session(), statuses=[CaseStatus(status)] if status else list(CaseStatus),
                                queues=[queue] if queue else None, after=request.args.get("after"), limit=limit)
    except ValueError as exc:
        abort(400, str(exc))
    response = jsonify([cases.case_to_dict(c, with_messages=False) for c in page.cases])
    if page.next:
        wanted = {k: v for k, v in request.args.items() if k != "after"}
        following = url_for("api.list_cases", **wanted, after=page.next, _external=True)
        response.headers["Link"] = f'<{following}>; rel="next"'
    return response


@bp.get("/cases/<int:case_id>")
@token_required
def case(case_id: int):
    return jsonify(cases.case_to_dict(get_or_404(Case, case_id)))


@bp.get("/cases/<int:case_id>/messages")
@token_required
def messages(case_id: int):
    return jsonify([cases.message_to_dict(m) for m in get_or_404(Case, case_id).messages])


@bp.errorhandler(400)
@bp.errorhandler(401)
@bp.errorhandler(404)
def json_error(error):
    return jsonify(error=error.name, message=error.description), error.code
