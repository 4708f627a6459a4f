"""Supervisors' playbook editor: drafts, tests, preview, publish, history with diffs, rollback."""

import yaml
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange

from assist import db, playbook_versions, playbooks, triage
from assist.models import UserRole
from assist.playbook_versions import PublishBlocked
from assist.triage.labels import QUEUES
from assist.web.auth import role_required
from assist.web.helpers import flash_redirect
from channels.message import Channel

bp = Blueprint("playbooks", __name__, url_prefix="/playbooks")

MAX_YAML = 100_000  # characters


class EditorForm(FlaskForm):
    yaml = TextAreaField("YAML", validators=[DataRequired(), Length(max=MAX_YAML)])


class FieldsForm(FlaskForm):
    """The form view: the fields supervisors change most, written back into the YAML."""

    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    priority = IntegerField("Priority (higher first)", validators=[NumberRange(0, 1000)])
    queue = SelectField("Queue", choices=list(QUEUES))
    route_priority = IntegerField("Case priority (1 most urgent)", validators=[NumberRange(1, 4)])
    escalate = BooleanField("Tell the lead at once")
    minutes = IntegerField("First response within (minutes)", validators=[NumberRange(1, 10080)])
    sms = TextAreaField("SMS reply", validators=[DataRequired(), Length(max=1600)])
    voice = TextAreaField("Voice reply", validators=[DataRequired(), Length(max=1000)])
    email = TextAreaField("Email reply", validators=[DataRequired(), Length(max=20000)])

    @classmethod
    def of(cls, playbook: playbooks.Playbook) -> "FieldsForm":
        r, a = playbook.route, playbook.auto_reply
        return cls(data={"name": playbook.name, "priority": playbook.priority, "queue": r.queue,
                         "route_priority": r.priority, "escalate": r.escalate, "minutes": r.first_response_minutes,
                         "sms": a.sms, "voice": a.voice, "email": a.email})

    def apply(self, document: dict) -> dict:
        document.update(name=self.name.data, priority=self.priority.data)
        document["route"] = {**document.get("route", {}), "queue": self.queue.data,
                             "priority": self.route_priority.data, "escalate": self.escalate.data,
                             "first_response_minutes": self.minutes.data}
        document["auto_reply"] = {"sms": self.sms.data, "voice": self.voice.data,
                                  "email": self.email.data.replace("\r\n", "\n")}
        return document


class PreviewForm(FlaskForm):
    text = TextAreaField("Message", validators=[DataRequired(), Length(max=5000)])
    channel = SelectField("Channel", choices=[channel.value for channel in Channel])


@bp.get("/")
@role_required(UserRole.LEAD)
def index():
    session = db.session()
    live = playbooks.ordered(list(playbook_versions.published(session)))
    rows = [(p, playbook_versions.current(session, p.id), playbook_versions.draft(session, p.id)) for p in live]
    return render_template("playbooks.html", rows=rows)


@bp.get("/<playbook_id>")
@role_required(UserRole.LEAD)
def edit(playbook_id: str):
    return _editor(playbook_id, _shown(playbook_id).yaml)


@bp.post("/<playbook_id>/draft")
@role_required(UserRole.SUPERVISOR)
def save(playbook_id: str):
    form = EditorForm()
    if not form.validate():
        return _editor(playbook_id, request.form.get("yaml", ""), status=400)
    session = db.session()
    _known(playbook_id)
    version = playbook_versions.save_draft(session, playbook_id, form.yaml.data, current_user)
    session.commit()
    return flash_redirect(f"Saved draft version {version.number}.", "playbooks.edit", playbook_id=playbook_id)


@bp.post("/<playbook_id>/fields")
@role_required(UserRole.SUPERVISOR)
def save_fields(playbook_id: str):
    """Save the form view's fields into a new draft of the YAML shown in the editor."""
    session = db.session()
    shown = _shown(playbook_id)
    form = FieldsForm()
    if not form.validate():
        return _editor(playbook_id, shown.yaml, fields=form, status=400)
    try:
        document = yaml.safe_load(shown.yaml)
    except yaml.YAMLError:
        document = None
    if not isinstance(document, dict):
        flash("The YAML does not parse: fix it in the YAML view first.", "error")
        return _editor(playbook_id, shown.yaml, fields=form, status=422)
    text = yaml.safe_dump(form.apply(document), sort_keys=False, allow_unicode=True, width=110)
    version = playbook_versions.save_draft(session, playbook_id, text, current_user)
    session.commit()
    return flash_redirect(f"Saved draft version {version.number} from the form.", "playbooks.edit",
                          playbook_id=playbook_id)


@bp.post("/<playbook_id>/test")
@role_required(UserRole.SUPERVISOR)
def test(playbook_id: str):
    form = EditorForm()
    if not form.validate():
        return _editor(playbook_id, request.form.get("yaml", ""), status=400)
    result = playbook_versions.check(db.session(), playbook_id, form.yaml.data, triage.classify)
    return _editor(playbook_id, form.yaml.data, check=result, status=200 if result.ok else 422)


PREVIEW_KNOWN = {"first_name": "Sam", "pet_name": "Biscuit", "case_id": 1234}
PREVIEW_UNKNOWN = {"case_id": 1234}  # a contact with no name, member or booking


@bp.post("/<playbook_id>/preview")
@role_required(UserRole.SUPERVISOR)
def preview(playbook_id: str):
    text = request.form.get("yaml", "")
    form = PreviewForm()
    if not form.validate():
        return _editor(playbook_id, text, status=400)
    session = db.session()
    try:
        candidate = playbooks.parse(text, f"{playbook_id} draft")
    except playbooks.PlaybookError as exc:
        return _editor(playbook_id, text, errors=str(exc).splitlines(), status=422)
    result = triage.classify(form.text.data, form.channel.data)
    others = [p for p in playbook_versions.published(session) if p.id != playbook_id]
    # Twice: for a contact whose names are known, and for one the team knows nothing about (a new number),
    # so the supervisor reads what that contact would get too.
    decisions = [playbooks.decide([candidate, *others], urgency=result.urgency, emotion=result.emotion,
                                  category=result.category, channel=form.channel.data, text=form.text.data,
                                  context=context)
                 for context in (PREVIEW_KNOWN, PREVIEW_UNKNOWN)]
    return _editor(playbook_id, text, preview=(result, *decisions))


@bp.post("/<playbook_id>/publish")
@role_required(UserRole.SUPERVISOR)
def publish(playbook_id: str):
    session = db.session()
    version = playbook_versions.draft(session, playbook_id)
    if version is None:
        return flash_redirect("There is no draft to publish: save one first.", "playbooks.edit", category="error",
                              playbook_id=playbook_id)
    try:
        playbook_versions.publish(session, version, current_user, triage.classify)
    except PublishBlocked as blocked:
        session.rollback()
        check = playbook_versions.Check(None, blocked.errors, blocked.results)
        flash("Not published: fix what is listed below.", "error")
        return _editor(playbook_id, version.yaml, check=check, status=409)
    session.commit()
    return flash_redirect(f"Published version {version.number}; it applies from the next message.",
                          "playbooks.edit", playbook_id=playbook_id)


@bp.get("/<playbook_id>/history")
@role_required(UserRole.LEAD)
def history(playbook_id: str):
    session = db.session()
    rows = playbook_versions.versions(session, playbook_id)
    if not rows:
        abort(404)
    live = playbook_versions.current(session, playbook_id)
    entries = [(v, playbook_versions.diff(rows[i - 1] if i else None, v)) for i, v in enumerate(rows)]
    return render_template("playbook_history.html", playbook_id=playbook_id, entries=entries[::-1], live=live,
                           form=FlaskForm())


@bp.post("/<playbook_id>/rollback/<int:number>")
@role_required(UserRole.SUPERVISOR)
def rollback(playbook_id: str, number: int):
    session = db.session()
    try:
        version = playbook_versions.rollback(session, playbook_id, number, current_user, triage.classify)
    except LookupError:
        abort(404)
    except PublishBlocked as blocked:
        session.rollback()
        flash(f"Version {number} cannot be put back: {blocked}", "error")
        return redirect(url_for("playbooks.history", playbook_id=playbook_id)), 409
    session.commit()
    flash(f"Rolled back to version {number} (published as version {version.number}).", "info")
    return redirect(url_for("playbooks.history", playbook_id=playbook_id))


def _shown(playbook_id: str):
    """The version the editor shows: the unpublished draft if there is one, else the one in force."""
    session = db.session()
    shown = playbook_versions.draft(session, playbook_id) or playbook_versions.current(session, playbook_id)
    if shown is None:
        abort(404)
    return shown


def _known(playbook_id: str) -> None:
    if not playbook_versions.versions(db.session(), playbook_id):
        abort(404)


def _editor(playbook_id: str, text: str, *, check=None, errors=None, preview=None, fields=None,
            status: int = 200):
    _known(playbook_id)
    session = db.session()
    try:
        parsed, problems = playbooks.parse(text, f"{playbook_id} draft"), []
    except playbooks.PlaybookError as exc:
        parsed, problems = None, str(exc).splitlines()
    form = EditorForm(data={"yaml": text})
    return render_template(
        "playbook.html", playbook_id=playbook_id, form=form, preview_form=PreviewForm(), parsed=parsed,
        fields=fields or (FieldsForm.of(parsed) if parsed else None),
        problems=errors or problems, check=check, preview=preview,
        live=playbook_versions.current(session, playbook_id), draft=playbook_versions.draft(session, playbook_id),
    ), status
