"""What every view needs: a row or 404, a case its user may see or 404, and a message shown after a redirect."""

from flask import abort, flash, redirect, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from assist import access, db
from assist.models import Case, User


def get_or_404(model, key: int):
    """The row of model with this primary key, or a 404."""
    found = db.session().get(model, key)
    if found is None:
        abort(404)
    return found


def visible_case_or_404(case_id: int, user: User | None = None) -> Case:
    """The case with this id if user (default: the logged-in user) may see it (assist.access), else a 404:
    a case out of sight answers as one that does not exist, so its id tells nothing."""
    case = db.session().get(Case, case_id)
    if case is None or not access.can_see(user or current_user, case):
        abort(404)
    return case


def flash_redirect(message: str, endpoint: str, *, category: str = "info", **values) -> Response:
    """Show message on the page the browser is sent to (Post/Redirect/Get)."""
    flash(message, category)
    return redirect(url_for(endpoint, **values))
