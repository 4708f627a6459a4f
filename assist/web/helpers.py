"""What every view needs: a row or 404, and a message shown after a redirect."""

from flask import abort, flash, redirect, url_for
from werkzeug.wrappers import Response

from assist import db


def get_or_404(model, key: int):
    """The row of model with this primary key, or a 404."""
    found = db.session().get(model, key)
    if found is None:
        abort(404)
    return found


def flash_redirect(message: str, endpoint: str, *, category: str = "info", **values) -> Response:
    """Show message on the page the browser is sent to (Post/Redirect/Get)."""
    flash(message, category)
    return redirect(url_for(endpoint, **values))
