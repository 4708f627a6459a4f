"""Supervisors' playbook editor: drafts, tests, preview, publish, history with diffs, rollback."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Regexp

from assist import db, playbook_versions, playbook_yaml, playbooks, triage
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


# The emotions a playbook may have suggestions for (the taxonomy's), after the default ones.
SUGGESTION_KEYS = tuple(playbooks.Suggestions.model_fields)


class FieldsForm(FlaskForm):
    """The form view: the fields supervisors change most, written back into the YAML in place."""

    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    priority = IntegerField("Priority (higher first)", validators=[NumberRange(0, 1000)])
    queue = SelectField("Queue", choices=list(QUEUES))
    route_priority = IntegerField("Case priority (1 most urgent)", validators=[NumberRange(1, 4)])
    escalate = BooleanField("Tell the lead at once")
    minutes = IntegerField("First response within (minutes)", validators=[NumberRange(1, 10080)])
    sms = TextAreaField("SMS reply", validators=[DataRequired(), Length(max=1600)])
    voice = TextAreaField("Voice reply", validators=[DataRequired(), Length(max=1000)])
    email = TextAreaField("Email reply", validators=[DataRequired(), Length(max=20000)])
    checklist = TextAreaField("Checklist (one step a line)", validators=[Length(max=20000)])

    @classmethod
    def of(cls, playbook: playbooks.Playbook) -> "FieldsForm":
        r, a = playbook.route, playbook.auto_reply
        suggestions = {f"suggest_{key}": "\n".join(getattr(playbook.suggestions, key)) for key in SUGGESTION_KEYS}
        return cls(data={"name": playbook.name, "priority": playbook.priority, "queue": r.queue,
                         "route_priority": r.priority, "escalate": r.escalate, "minutes": r.first_response_minutes,
                         "sms": a.sms, "voice": a.voice, "email": a.email,
                         "checklist": "\n".join(playbook.checklist), **suggestions})

    def suggestion_fields(self) -> list:
        return [self[f"suggest_{key}"] for key in SUGGESTION_KEYS]

    def applied(self, text: str) -> str:
        """text with this form's values, its comments and key order kept; a list field the request did not
        send is left as it was."""
        return playbook_yaml.replaced(
            text, name=self.name.data, priority=self.priority.data,
            route={"queue": self.queue.data, "priority": self.route_priority.data, "escalate": self.escalate.data,
                   "first_response_minutes": self.minutes.data},
            auto_reply={channel: playbook_versions.normalized(self[channel].data)
                        for channel in ("sms", "voice", "email")},
            suggestions={key: _lines(field.data) for key, field in zip(SUGGESTION_KEYS, self.suggestion_fields())
                         if field.raw_data},
            **({"checklist": _lines(self.checklist.data)} if self.checklist.raw_data else {}))


for _key in SUGGESTION_KEYS:
    setattr(FieldsForm, f"suggest_{_key}", TextAreaField(
        f"Suggestions when {_key} (one a line)" if _key != "default" else "Suggestions by default (one a line)",
        validators=[Length(max=20000)]))


def _lines(text: str | None) -> list[str]:
    """The non-blank lines of a textarea (one item a line)."""
    return [line.strip() for line in playbook_versions.normalized(text or "").split("\n") if line.strip()]


class NewPlaybookForm(FlaskForm):
    playbook_id = StringField("Id (lowercase letters, digits and dashes)", validators=[
        DataRequired(), Regexp(r"^[a-z0-9][a-z0-9-]{1,62}$", message="lowercase letters, digits and dashes")])
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    template = SelectField("Start from a copy of")


# Who a preview is for: a contact whose names are known, or one the team knows nothing about (a new number,
# no member or booking), so the supervisor reads what that contact would get too.
PREVIEW_CONTACTS: dict[str, tuple[str, dict]] = {
    "known": ("a contact we know (Sam, with Biscuit)", {"first_name": "Sam", "pet_name": "Biscuit", "case_id": 1234}),
    "unknown": ("a contact we know nothing about (no name)", {"case_id": 1234}),
}


class PreviewForm(FlaskForm):
    text = TextAreaField("Preview with a message", validators=[DataRequired(), Length(max=5000)])
    channel = SelectField("Channel", choices=[channel.value for channel in Channel])
    contact = SelectField("For", choices=[SelectChoice(key, label) for key, (label, _) in PREVIEW_CONTACTS.items()])


@bp.get("/")
@role_required(UserRole.LEAD)
def index():
    session = db.session()
    live = playbooks.ordered(list(playbook_versions.published(session)))
    rows = [(p, playbook_versions.current(session, p.id), playbook_versions.draft(session, p.id)) for p in live]
    return render_template("playbooks.html", rows=rows, retired=playbook_versions.retired(session),
                           unpublished=playbook_versions.unpublished(session), new_form=_new_form())


@bp.post("/new")
@role_required(UserRole.SUPERVISOR)
def create():
    """Start a new playbook as a draft copied from a published one."""
    session = db.session()
    form = _new_form()
    if not form.validate():
        flash("Not created: " + "; ".join(f"{form[name].label.text}: {', '.join(errors)}"
                                           for name, errors in form.errors.items()), "error")
        return redirect(url_for("playbooks.index")), 400
    template = playbook_versions.current(session, form.template.data)
    try:
        version = playbook_versions.create(session, form.playbook_id.data, form.name.data, template, current_user)
    except playbooks.PlaybookError as exc:
        session.rollback()
        flash(f"Not created: {exc}", "error")
        return redirect(url_for("playbooks.index")), 409
    session.commit()
    return flash_redirect(f"Created {version.playbook_id} as draft version {version.number}: edit its `when` "
                          f"and tests, then publish it.", "playbooks.edit", playbook_id=version.playbook_id)


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
        text = form.applied(shown.yaml)
    except playbooks.PlaybookError:
        flash("The YAML does not parse: fix it in the YAML view first.", "error")
        return _editor(playbook_id, shown.yaml, fields=form, status=422)
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


@bp.post("/<playbook_id>/preview")
@role_required(UserRole.SUPERVISOR)
def preview(playbook_id: str):
    """What the text in the editor, saved or not, would do with a message; the text stays in the editor."""
    text = request.form.get("yaml", "")
    form = PreviewForm()
    if not form.validate():
        return _editor(playbook_id, text, preview_form=form, status=400)
    session = db.session()
    try:
        candidate = playbooks.parse(text, f"{playbook_id} draft")
    except playbooks.PlaybookError:
        return _editor(playbook_id, text, preview_form=form, status=422)
    result = triage.classify(form.text.data, form.channel.data)
    others = [p for p in playbook_versions.published(session) if p.id != playbook_id]
    label, context = PREVIEW_CONTACTS[form.contact.data]
    decision = playbooks.decide([candidate, *others], urgency=result.urgency, emotion=result.emotion,
                                category=result.category, channel=form.channel.data, text=form.text.data,
                                context=context)
    return _editor(playbook_id, text, preview_form=form, preview=(result, decision, label))


@bp.get("/<playbook_id>/publish")
@role_required(UserRole.SUPERVISOR)
def confirm_publish(playbook_id: str):
    """What publishing the saved draft changes, before it does."""
    session = db.session()
    version = playbook_versions.draft(session, playbook_id)
    if version is None:
        return flash_redirect("There is no draft to publish: save one first.", "playbooks.edit", category="error",
                              playbook_id=playbook_id)
    return _confirm(playbook_id, f"Publish draft v{version.number}", version.yaml,
                    url_for("playbooks.publish", playbook_id=playbook_id))


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


@bp.post("/<playbook_id>/retire")
@role_required(UserRole.SUPERVISOR)
def retire(playbook_id: str):
    session = db.session()
    try:
        playbook_versions.retire(session, playbook_id, current_user, triage.classify)
    except LookupError:
        abort(404)
    except PublishBlocked as blocked:
        session.rollback()
        flash(f"Not retired: {blocked}", "error")
        return redirect(url_for("playbooks.edit", playbook_id=playbook_id)), 409
    session.commit()
    return flash_redirect(f"Retired {playbook_id}: it no longer matches, and its tests no longer gate publishing.",
                          "playbooks.index")


@bp.post("/<playbook_id>/restore")
@role_required(UserRole.SUPERVISOR)
def restore(playbook_id: str):
    session = db.session()
    try:
        version = playbook_versions.restore(session, playbook_id, current_user, triage.classify)
    except LookupError:
        abort(404)
    except PublishBlocked as blocked:
        session.rollback()
        flash(f"Not restored: {blocked}", "error")
        return redirect(url_for("playbooks.edit", playbook_id=playbook_id)), 409
    session.commit()
    return flash_redirect(f"Restored {playbook_id} as version {version.number}.", "playbooks.edit",
                          playbook_id=playbook_id)


@bp.get("/<playbook_id>/history")
@role_required(UserRole.LEAD)
def history(playbook_id: str):
    session = db.session()
    rows = playbook_versions.versions(session, playbook_id)
    if not rows:
        abort(404)
    live = playbook_versions.current(session, playbook_id)
    entries = [(v, playbook_versions.diff(rows[i - 1] if i else None, v)) for i, v in enumerate(rows)]
    return render_template("playbook_history.html", playbook_id=playbook_id, entries=entries[::-1], live=live)


@bp.get("/<playbook_id>/rollback/<int:number>")
@role_required(UserRole.SUPERVISOR)
def confirm_rollback(playbook_id: str, number: int):
    """What rolling back to version number changes, before it does."""
    old = playbook_versions.numbered(db.session(), playbook_id, number)
    if old is None:
        abort(404)
    return _confirm(playbook_id, f"Roll back to v{number}", old.yaml,
                    url_for("playbooks.rollback", playbook_id=playbook_id, number=number))


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


def _new_form() -> NewPlaybookForm:
    form = NewPlaybookForm()
    form.template.choices = [(p.id, f"{p.name} ({p.id})")
                             for p in playbooks.ordered(list(playbook_versions.published(db.session())))]
    return form


def _confirm(playbook_id: str, action: str, text: str, target: str):
    """A page showing the diff that action would put in force, with the one button that does it."""
    live = playbook_versions.current(db.session(), playbook_id)
    changes = playbook_versions.text_diff(live.yaml if live else "", text)
    return render_template("playbook_confirm.html", playbook_id=playbook_id, action=action, changes=changes,
                           live=live, target=target, form=FlaskForm())


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


def _editor(playbook_id: str, text: str, *, check=None, preview=None, fields=None, preview_form=None,
            status: int = 200):
    _known(playbook_id)
    session = db.session()
    text = playbook_versions.normalized(text)
    try:
        parsed, problems = playbooks.parse(text, f"{playbook_id} draft"), []
    except playbooks.PlaybookError as exc:
        parsed, problems = None, [playbooks.located(line) for line in str(exc).splitlines()]
    form = EditorForm(data={"yaml": text})
    return render_template(
        "playbook.html", playbook_id=playbook_id, form=form, preview_form=preview_form or PreviewForm(),
        parsed=parsed, fields=fields or (FieldsForm.of(parsed) if parsed else None), problems=problems,
        marked={p.line for p in problems}, line_count=text.count("\n") + 1, check=check, preview=preview,
        editable=current_user.has_role(UserRole.SUPERVISOR),
        live=playbook_versions.current(session, playbook_id), draft=playbook_versions.draft(session, playbook_id),
    ), status
