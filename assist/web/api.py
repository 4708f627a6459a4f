"""The JSON API under /api/, authenticated by bearer tokens (`assist users token`)."""

from flask import Blueprint, abort, jsonify, request

from assist import db
from assist.web.auth import token_required
from assist.cases import case_to_dict, list_cases, message_to_dict
from assist.models import Case, CaseStatus

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/cases")
@token_required
def cases():
    status = request.args.get("status") or None
    if status and status not in {s.value for s in CaseStatus}:
        abort(400, f"unknown status {status!r}")
    found = list_cases(db.session(), status=status, queue=request.args.get("queue") or None)
    return jsonify([case_to_dict(c, with_messages=False) for c in found])


@bp.get("/cases/<int:case_id>")
@token_required
def case(case_id: int):
    return jsonify(case_to_dict(_get(case_id)))


@bp.get("/cases/<int:case_id>/messages")
@token_required
def messages(case_id: int):
    return jsonify([message_to_dict(m) for m in _get(case_id).messages])


def _get(case_id: int) -> Case:
    found = db.session().get(Case, case_id)
    if found is None:
        abort(404)
    return found


@bp.errorhandler(400)
@bp.errorhandler(401)
@bp.errorhandler(404)
def json_error(error):
    return jsonify(error=error.name, message=error.description), error.code
