"""The agents' console: the live queue, and a case with its timeline, triage, suggestions, notes and escalation."""

from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from assist import (
    audit,
    briefs,
    calls,
    cases,
    clock,
    contacts,
    db,
    outbound,
    playbook_versions,
    playbooks,
    routing,
    users,
)
from assist.access import can_see, may_see, sees_all
from assist.errors import NotSendable, StaleReply, Taken
from assist.models import OPEN_STATUSES, Call, CallState, Case, CaseStatus, Presence, UserRole
from assist.triage.labels import QUEUES
from assist.web.auth import role_required
from assist.web.helpers import flash_redirect, get_or_404, same_site, visible_case_or_404, whole_number

bp = Blueprint("web", __name__)

MAX_REPLY_LENGTH = 1600  # characters: Twilio's limit for one SMS body
MAX_NOTE_LENGTH = cases.MAX_NOTE_LENGTH

class ReplyForm(FlaskForm):
    text = TextAreaField("Reply", validators=[DataRequired(), Length(max=MAX_REPLY_LENGTH)])


class NoteForm(FlaskForm):
    text = TextAreaField("Internal note", validators=[DataRequired(), Length(max=MAX_NOTE_LENGTH)])


class StatusForm(FlaskForm):
    status = SelectField("Status", choices=[s.value for s in CaseStatus])


class BriefForm(FlaskForm):
    text = TextAreaField("Brief for the lead", validators=[DataRequired(), Length(max=MAX_NOTE_LENGTH)])


# -- the queue -----------------------------------------------------------------------------------

@bp.get("/")
@role_required(UserRole.AGENT)
def index():
    status = request.args.get("status") or None
    if status and status not in {s.value for s in CaseStatus}:
        abort(400, f"unknown status {status!r}")
    queue = request.args.get("queue", "mine")
    if queue not in {"mine", "all", *QUEUES}:
        abort(400, f"unknown queue {queue!r}")
    assignee = request.args.get("assignee", "any")
    if assignee not in ("any", "me", "none"):
        abort(400, f"unknown assignee {assignee!r}")
    # Whatever the filters, an agent sees their queues' cases and their own (assist.access): "mine" and "all"
    # are those (an agent of no queue has only the cases given to them); a lead's "mine" is their queues.
    everything = sees_all(current_user)
    mine = (current_user.queues or list(QUEUES)) if everything else None
    shown = None if queue == "all" else mine if queue == "mine" else [queue]
    session = db.session()
    try:
        page = cases.queue_page(session, statuses=[CaseStatus(status)] if status else OPEN_STATUSES,
                                queues=shown, assignee_id=current_user.id if assignee == "me" else None,
                                unassigned=assignee == "none", seen_by=current_user,
                                after=request.args.get("after"))
    except ValueError as exc:
        abort(400, str(exc))
    # Calls waiting are in a queue and nobody's yet: an agent sees those of their queues.
    if everything:
        call_queues = mine if queue in ("mine", "all") else [queue]
    else:
        call_queues = [q for q in current_user.queues or [] if queue in ("mine", "all", q)]
    waiting = session.scalars(select(Call).where(Call.state == CallState.WAITING, Call.queue.in_(call_queues))
                              .order_by(Call.waiting_since)).all() if status is None else []
    template = "queue_rows.html" if request.args.get("partial") else "cases.html"
    return render_template(template, cases=page.cases, next_page=page.next, first_page=not request.args.get("after"),
                           calls=waiting, status=status, queue=queue, assignee=assignee, queues=QUEUES,
                           now=clock.now(), form=FlaskForm())


@bp.post("/calls/<int:call_id>/take")
@role_required(UserRole.AGENT)
def take_call(call_id: int):
    """Ring my phone with a waiting call's screening prompt; pressing 1 there takes the caller."""
    call = get_or_404(Call, call_id)
    if not may_see(current_user, call.queue, None):
        abort(404)  # another queue's call: as if there were none
    try:
        calls.take(db.session(), call.id, current_user)
    except (LookupError, ValueError) as exc:
        return flash_redirect(str(exc), "web.index", category="error")
    return flash_redirect(f"Your phone ({current_user.phone}) is ringing: press 1 to take the call.", "web.index")


@bp.post("/cases/<int:case_id>/call-back")
@role_required(UserRole.AGENT)
def call_back(case_id: int):
    """Ring my phone, then dial the customer from the team's number."""
    case = visible_case_or_404(case_id)
    try:
        calls.call_back(db.session(), case, current_user)
    except ValueError as exc:
        return flash_redirect(str(exc), "web.case", category="error", case_id=case.id)
    return flash_redirect(f"Your phone ({current_user.phone}) is ringing; answer it and we dial {case.contact.phone}.",
                          "web.case", case_id=case.id)


class PresenceForm(FlaskForm):
    presence = SelectField("Status", choices=[p.value for p in Presence])
    phone = StringField("Phone (E.164)", validators=[Optional(), Length(max=20)])


@bp.route("/me", methods=["GET", "POST"])
@role_required(UserRole.AGENT)
def me():
    """My presence (available for calls or not) and the phone calls ring."""
    form = PresenceForm(obj=current_user) if request.method == "GET" else PresenceForm()
    if request.method == "GET":
        form.presence.data = current_user.presence.value
    elif form.validate():
        try:
            phone = users.agent_phone(form.phone.data)
        except ValueError as exc:
            form.phone.errors.append(str(exc))
        else:
            if form.presence.data == Presence.AVAILABLE and not phone:
                form.phone.errors.append("add the phone calls should ring before becoming available")
            else:
                current_user.phone, current_user.presence = phone, Presence(form.presence.data)
                current_user.skip_calls_until = None
                audit.record(db.session(), "user.presence", actor=current_user, presence=form.presence.data)
                db.session().commit()
                flash(f"You are {form.presence.data}.", "info")
                return redirect(same_site(request.args.get("back"), "web.index"))
    return render_template("me.html", form=form), 400 if form.errors else 200


@bp.post("/cases/<int:case_id>/claim")
@role_required(UserRole.AGENT)
def claim(case_id: int):
    """Assign the case to me; a colleague's case only with take_over=1 (the case page asks first)."""
    case = visible_case_or_404(case_id)
    session = db.session()
    try:
        cases.claim(session, case, current_user, take_over=request.form.get("take_over") == "1")
    except Taken as exc:
        session.rollback()
        flash(f"Not assigned to you: {exc.assignee} has this case. Take it over only if you mean to.", "error")
        return _case_page(case, status=409)
    cases.done(session, case)
    return redirect(url_for("web.case", case_id=case.id))


@bp.post("/cases/<int:case_id>/assign")
@role_required(UserRole.LEAD)
def assign(case_id: int):
    """A lead gives the case to a teammate of its queue."""
    case = visible_case_or_404(case_id)
    session = db.session()
    user_id = whole_number(request.form.get("user_id"), "user_id")
    teammate = next((u for u in cases.teammates(session, case.queue) if u.id == user_id), None)
    if teammate is None:
        abort(400, f"user_id must be an active member of the {case.queue} queue")
    cases.assign(session, case, teammate, reason="lead", actor=current_user)
    cases.done(session, case)
    return flash_redirect(f"Assigned to {teammate.name}.", "web.case", case_id=case.id)


# -- a case --------------------------------------------------------------------------------------

@bp.get("/cases/<int:case_id>")
@role_required(UserRole.AGENT)
def case(case_id: int):
    return _case_page(visible_case_or_404(case_id))


@bp.post("/cases/<int:case_id>/reply")
@role_required(UserRole.AGENT)
def reply(case_id: int):
    case = visible_case_or_404(case_id)
    # The newest message the agent's page showed: a reply sent by someone else since refuses this one.
    seen = whole_number(request.form.get("seen"), "seen", low=0)
    form = ReplyForm()
    if not form.validate():
        return _case_page(case, reply_form=form, status=400)
    session = db.session()
    try:
        message = cases.reply(session, case, form.text.data, author=current_user, seen=seen)
    except NotSendable as exc:
        form.text.errors.append(f"Cannot reply: {exc}.")
        return _case_page(case, reply_form=form, status=400)
    except StaleReply as exc:
        session.rollback()  # ends the case's lock; the page shows the reply sent meanwhile
        form.text.errors.append(f"{exc.author or 'The bot'} replied {ago(exc.at)} ago — review before sending.")
        return _case_page(case, reply_form=form, status=409)
    cases.done(session, case, send=message)
    return flash_redirect("Reply queued." if message.delivery_status.value == "pending" else
                          "Not sent: the contact has opted out.", "web.case", case_id=case.id)


@bp.post("/cases/<int:case_id>/note")
@role_required(UserRole.AGENT)
def note(case_id: int):
    case = visible_case_or_404(case_id)
    form = NoteForm()
    if not form.validate():
        return _case_page(case, note_form=form, status=400)
    cases.note(db.session(), case, form.text.data, author=current_user)
    cases.done(db.session(), case)
    return redirect(url_for("web.case", case_id=case.id))


@bp.post("/cases/<int:case_id>/status")
@role_required(UserRole.AGENT)
def change_status(case_id: int):
    case = visible_case_or_404(case_id)
    form = StatusForm()
    if not form.validate():
        abort(400)
    cases.set_status(db.session(), case, CaseStatus(form.status.data), actor=current_user)
    cases.done(db.session(), case)
    return redirect(url_for("web.case", case_id=case.id))


@bp.post("/cases/<int:case_id>/merge-contact")
@role_required(UserRole.AGENT)
def merge_contact(case_id: int):
    """Give an unverified sender's case to the address they claim, once the agent has checked it is them."""
    case = visible_case_or_404(case_id)
    session = db.session()
    try:
        contact = contacts.merge_unverified(session, case.contact, actor=current_user)
    except ValueError as exc:
        return flash_redirect(f"Not merged: {exc}.", "web.case", category="error", case_id=case.id)
    cases.done(session, case)
    return flash_redirect(f"Merged into the contact of {contact.email}: replies go there now.", "web.case",
                          case_id=case.id)


@bp.post("/cases/<int:case_id>/checklist/<int:item>")
@role_required(UserRole.AGENT)
def tick(case_id: int, item: int):
    case = visible_case_or_404(case_id)
    cases.tick(db.session(), case, item, actor=current_user)
    cases.done(db.session(), case)
    return redirect(url_for("web.case", case_id=case.id))


@bp.route("/cases/<int:case_id>/escalate", methods=["GET", "POST"])
@role_required(UserRole.AGENT)
def escalate(case_id: int):
    case = visible_case_or_404(case_id)
    session = db.session()
    form = BriefForm()
    if request.method == "GET":
        decision = _decision(case)
        form.text.data = briefs.draft(session, case, decision.checklist if decision else [])
        return render_template("escalate.html", case=case, form=form)
    if not form.validate():
        return render_template("escalate.html", case=case, form=form), 400
    lead = cases.escalate(session, case, reason="agent", actor=current_user, brief=form.text.data)
    cases.done(session, case)
    return flash_redirect(f"Escalated to {lead.name if lead else 'the leads'} with the brief.", "web.case",
                          case_id=case.id)


def _decision(case: Case) -> playbooks.Decision | None:
    """The playbook's view of the case now: suggestions for the customer's emotion, the checklist."""
    latest = case.latest_inbound
    if latest is None or not latest.triage:
        return None
    session = db.session()
    t = latest.triage
    return playbooks.decide(list(playbook_versions.published(session)), urgency=t["urgency"], emotion=t["emotion"],
                            category=t["category"], channel=latest.channel, text=latest.text,
                            role=case.contact.member.role.value if case.contact.member else None,
                            context=routing.context_of(session, case))


def ago(at: datetime) -> str:
    """How long ago at was by the app's clock, roughly: "2 s", "5 min", "3 h"."""
    seconds = max(0, round((clock.now() - at).total_seconds()))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"


def _case_page(case: Case, *, reply_form=None, note_form=None, status: int = 200):
    session = db.session()
    notes = briefs.notes_of(session, case)
    timeline = sorted([("message", m.created_at, m) for m in case.messages]
                      + [("note", n.created_at, n) for n in notes]
                      + [("call", c.created_at, c) for c in calls.of_case(session, case)], key=lambda entry: entry[1])
    member = case.contact.member
    booking = None
    if member is not None:
        booking = routing.current_booking(session, member.id)
    others = [c for c in case.contact.cases if c.id != case.id and can_see(current_user, c)]
    return render_template(
        "case.html", case=case, reply_channel=outbound.reply_channel(case), timeline=timeline,
        decision=_decision(case),
        member=member, booking=booking, others=others, form=reply_form or ReplyForm(),
        seen=cases.newest_message_id(case), note_form=note_form or NoteForm(),
        status_form=StatusForm(data={"status": case.status.value}),
        csrf_form=FlaskForm(),
        teammates=cases.teammates(session, case.queue) if current_user.has_role(UserRole.LEAD) else [],
    ), status
