"""What every view needs: a row or 404, a case its user may see or 404, a bounded parameter or 400, a
same-site redirect target, a message shown after a redirect, and whether to answer JSON."""

import re
import string
from datetime import date
from urllib.parse import urlsplit

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from werkzeug.routing import IntegerConverter
from werkzeug.wrappers import Response

from assist import access, access_log, db
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
    if case is None:
        abort(404)
    if not access.can_see(user or current_user, case):
        session = db.session()  # the refusal is kept (assist/access_log.py), though the answer says nothing
        access_log.record(session, user or current_user._get_current_object(), "case", case.id, allowed=False)
        session.commit()
        abort(404)
    return case


def wants_json() -> bool:
    """Whether the request asks for JSON (a page's own fetch, which updates the page in place) rather than a page."""
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def flash_redirect(message: str, endpoint: str, *, category: str = "info", **values) -> Response:
    """Show message on the page the browser is sent to (Post/Redirect/Get)."""
    flash(message, category)
    return redirect(url_for(endpoint, **values))


MAX_ID = 2**31 - 1  # the largest id a table of the service holds (PostgreSQL's integer)
DIGITS = re.compile(r"[0-9]{1,10}")
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# The days a date parameter may name: the service's data falls well inside them.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)


class IdConverter(IntegerConverter):
    """`<int:...>` in a route: at most MAX_ID, so a longer number is a 404, not a database overflow (a 500)."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def whole_number(raw: str | None, name: str, *, low: int = 1, high: int = MAX_ID) -> int:
    """raw as a whole number from low to high (ASCII digits only), else a 400 naming the parameter."""
    if raw is None or not DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        abort(400, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def day(raw: str | None, name: str) -> date | None:
    """raw as a YYYY-MM-DD date from 2000 to 2100, None if empty, else a 400 naming the parameter."""
    if not raw:
        return None
    try:
        parsed = date.fromisoformat(raw) if ISO_DAY.fullmatch(raw) else None
    except ValueError:
        parsed = None
    if parsed is None:
        abort(400, f"{name} must be a date as YYYY-MM-DD")
    if not FIRST_DAY <= parsed <= LAST_DAY:
        abort(400, f"{name} must be a date from {FIRST_DAY} to {LAST_DAY}")
    return parsed


def same_site(target: str | None, endpoint: str) -> str:
    """target if a browser would read it as a path of this site, else the URL of endpoint (an open redirect
    otherwise).

    Browsers drop tabs and newlines inside a URL and read a backslash as a slash, so "/<tab>/evil.example"
    and "/<backslash>evil.example" lead to another host: whitespace, control characters, backslashes and
    anything outside printable ASCII are refused before the URL is parsed.
    """
    if not target or "\\" in target or any(c not in string.printable or c in string.whitespace for c in target):
        return url_for(endpoint)
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return url_for(endpoint)
    return target
