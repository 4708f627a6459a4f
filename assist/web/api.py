"""The JSON API under /api/, authenticated by bearer tokens (`assist users token create`, or the console's
API tokens page). A token sees what its owner sees (assist.access); writing needs a token of scope write.

Lists are paginated by cursor: a page holds `limit` cases (at most MAX_LIMIT) and, when there are
more, a `Link: <...>; rel="next"` header (RFC 8288) points to the next page.
"""

from flask import Blueprint, abort, g, jsonify, request, url_for

from assist import cases, db
from assist.models import CaseStatus, TokenScope
from assist.web.auth import token_required
from assist.web.helpers import visible_case_or_404, whole_number

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
                                queues=[queue] if queue else None, seen_by=g.api_user, after=request.args.get("after"),
                                limit=limit)
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
    return jsonify(cases.case_to_dict(visible_case_or_404(case_id, g.api_user)))


@bp.get("/cases/<int:case_id>/messages")
@token_required
def messages(case_id: int):
    return jsonify([cases.message_to_dict(m) for m in visible_case_or_404(case_id, g.api_user).messages])


@bp.post("/cases/<int:case_id>/notes")
@token_required(scope=TokenScope.WRITE)
def add_note(case_id: int):
    """Add an internal note to a case, as the token's owner: JSON {"text": "..."}, with "restricted": true for one
    only leads and supervisors read."""
    case = visible_case_or_404(case_id, g.api_user)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        body = {}
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        abort(400, 'send JSON {"text": "..."} with the note\'s text')
    if len(text) > cases.MAX_NOTE_LENGTH:
        abort(400, f"a note has at most {cases.MAX_NOTE_LENGTH} characters")
    restricted = body.get("restricted", False)
    if not isinstance(restricted, bool):
        abort(400, '"restricted" is true or false')
    session = db.session()
    note = cases.note(session, case, text, author=g.api_user, restricted=restricted)
    cases.done(session, case)
    return jsonify(id=note.id, case_id=case.id, author_id=g.api_user.id, kind=note.kind, text=note.text,
                   restricted=note.restricted, created_at=note.created_at.isoformat()), 201


@bp.errorhandler(400)
@bp.errorhandler(401)
@bp.errorhandler(403)
@bp.errorhandler(404)
def json_error(error):
    return jsonify(error=error.name, message=error.description), error.code
