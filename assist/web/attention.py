"""Mail that needs attention: stored over SMTP but not turned into a case (no usable sender, a parse
failure), listed for leads with what went wrong, and tried again after a fix."""

from flask import Blueprint, render_template
from flask_wtf import FlaskForm

from assist import db, mail, runtime
from assist.models import RawEmail, UserRole
from assist.web.auth import role_required
from assist.web.helpers import flash_redirect, get_or_404

bp = Blueprint("attention", __name__, url_prefix="/attention")


@bp.get("/")
@role_required(UserRole.LEAD)
def index():
    raws = mail.needing_attention(db.session())
    return render_template("attention.html", raws=raws, preview=mail.preview, csrf_form=FlaskForm())


@bp.post("/<int:raw_id>/retry")
@role_required(UserRole.LEAD)
def retry(raw_id: int):  # CSRFProtect checks the form's token
    raw = get_or_404(RawEmail, raw_id)
    raw = mail.ingest_raw(db.session(), raw, runtime.settings().team_email)
    if raw.message_id is None:
        return flash_redirect(f"Still not readable: {raw.error}", "attention.index", category="error")
    return flash_redirect("Ingested: it is a case now.", "attention.index")
