"""The agents' console: the live queue, and a case with its timeline, triage, suggestions, notes and escalation."""

import logging
import time
from datetime import datetime

import redis
from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from assist import (
    access_log,
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
    reviews,
    routing,
    timeline,
    users,
    viewers,
)
from assist.access import can_see, may_read_restricted, may_see, sees_all
from assist.errors import NotSendable, StaleReply, Taken
from assist.models import OPEN_STATUSES, Call, CallState, Case, CaseStatus, Presence, UserRole
from assist.triage.labels import QUEUES
from assist.web.auth import passive, role_required
from assist.web.helpers import flash_redirect, get_or_404, same_site, visible_case_or_404, wants_json, whole_number

log = logging.getLogger(__name__)

bp = Blueprint("web", __name__)

MAX_REPLY_LENGTH = 1600  # characters: Twilio's limit for one SMS body
MAX_NOTE_LENGTH = cases.MAX_NOTE_LENGTH

class ReplyForm(FlaskForm):
    text = TextAreaField("Reply", validators=[DataRequired(), Length(max=MAX_REPLY_LENGTH)])


class NoteForm(FlaskForm):
    text = TextAreaField("Internal note", validators=[DataRequired(), Length(max=MAX_NOTE_LENGTH)])
    restricted = BooleanField("Restricted: leads and supervisors only")


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
                           now=clock.now(), sla_state=routing.sla_state, form=FlaskForm())


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
        error = f"Not assigned to you: {exc.assignee} has this case. Take it over only if you mean to."
        if wants_json():
            return jsonify(error=error), 409  # the page shows the take-over button once it has updated
        flash(error, "error")
        return _case_page(case, status=409)
    cases.done(session, case)
    return _done(case, "The case is yours.")


@bp.post("/cases/<int:case_id>/assign")
@role_required(UserRole.LEAD)
def assign(case_id: int):
    """A lead gives the case to a teammate of its queue."""
    case = visible_case_or_404(case_id)
    session = db.session()
    user_id = whole_number(request.form.get("user_id"), "user_id")
    teammate = next((u for u in cases.teammates(session, case.queue) if u.id == user_id), None)
    if teammate is None:
        return _refused(f"user_id must be an active member of the {case.queue} queue")
    try:
        cases.assign(session, case, teammate, reason="lead", actor=current_user,
                     take_over=request.form.get("take_over") == "1")
    except Taken as exc:
        session.rollback()
        return _refused(f"Not assigned: {exc.assignee} has this case. Tick “take it from {exc.assignee}” "
                        "only if you mean to.", 409)
    cases.done(session, case)
    return _done(case, f"Assigned to {teammate.name}.")


# -- a case --------------------------------------------------------------------------------------

@bp.get("/cases/<int:case_id>")
@role_required(UserRole.AGENT)
def case(case_id: int):
    case = visible_case_or_404(case_id)
    session, user = db.session(), current_user._get_current_object()
    access_log.record(session, user, "case", case.id, allowed=True)
    # Each restricted note is logged as read by whoever may read it, and as refused to whoever may not.
    allowed = may_read_restricted(user, case)
    for note_id in cases.restricted_note_ids(session, case):
        access_log.record(session, user, "note", note_id, allowed=allowed)
    session.commit()
    return _case_page(case)


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
        if wants_json():
            return _refused(" ".join(f"{form[name].label.text}: {error}" for name, errors in form.errors.items()
                                     for error in errors))
        return _case_page(case, note_form=form, status=400)
    cases.note(db.session(), case, form.text.data, author=current_user, restricted=form.restricted.data)
    cases.done(db.session(), case)
    return _done(case, "Note added.")


@bp.post("/cases/<int:case_id>/status")
@role_required(UserRole.AGENT)
def change_status(case_id: int):
    case = visible_case_or_404(case_id)
    form = StatusForm()
    if not form.validate():
        return _refused(f"status must be one of {', '.join(s.value for s in CaseStatus)}")
    cases.set_status(db.session(), case, CaseStatus(form.status.data), actor=current_user)
    cases.done(db.session(), case)
    return _done(case, f"Status: {case.status.value}.")


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
    """Set a checklist item ticked or not as the agent's box shows it (done=1 or 0), never toggled: a colleague's
    tick of an item already ticked leaves it ticked."""
    case = visible_case_or_404(case_id)
    # A box's form sends a hidden done=0 and, when ticked, done=1 after it: the last one is the box's state.
    sent = request.form.getlist("done")[-1:]
    if sent not in (["0"], ["1"]):
        return _refused("done must be 0 or 1")
    decision = _decision(case)
    checklist = decision.checklist if decision else []
    if item >= len(checklist):
        return _refused(f"the checklist of this case has {len(checklist)} items, numbered from 0")
    done = sent == ["1"]
    changed = cases.tick(db.session(), case, item, done=done, actor=current_user)
    cases.done(db.session(), case)
    state = "ticked" if done else "not ticked"
    said = f"“{checklist[item]}” is {state} now." if changed else f"“{checklist[item]}” was {state} already."
    return _done(case, said, checklist=case.checklist_done)


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


def _done(case: Case, message: str, **data):
    """Answer an action done on case: JSON for the page's own fetch (the page updates in place, drafts kept),
    else the case page again, showing message."""
    if wants_json():
        return jsonify(message=message, **data)
    return flash_redirect(message, "web.case", case_id=case.id)


def _refused(error: str, status: int = 400):
    """Refuse an action: JSON for the page's own fetch, else the error page."""
    if wants_json():
        return jsonify(error=error), status
    abort(status, error)


def _teammates(case: Case) -> list:
    """Whom the user may assign case to: its queue's people for a lead, nobody for an agent."""
    return cases.teammates(db.session(), case.queue) if current_user.has_role(UserRole.LEAD) else []


def _case_page(case: Case, *, reply_form=None, note_form=None, status: int = 200):
    session = db.session()
    decision = _decision(case)
    entries, cursor = timeline.of(session, case, decision.checklist if decision else [],
                                  restricted=may_read_restricted(current_user, case))
    member = case.contact.member
    booking = None
    if member is not None:
        booking = routing.current_booking(session, member.id)
    others = [c for c in case.contact.cases if c.id != case.id and can_see(current_user, c)]
    # The sender's standing after a safety review (no findings), and whether a message came while it applied.
    standing = reviews.standing(session, member)
    flagged = next((m.meta[reviews.FLAG] for m in case.messages if (m.meta or {}).get(reviews.FLAG)), None)
    now = clock.now()
    return render_template(
        "case.html", case=case, now=now, sla=routing.sla_state(case, now),
        reply_channel=outbound.reply_channel(case), timeline=entries, after=str(cursor),
        decision=decision,
        member=member, booking=booking, others=others, form=reply_form or ReplyForm(),
        seen=cases.newest_message_id(case), note_form=note_form or NoteForm(),
        status_form=StatusForm(data={"status": case.status.value}),
        csrf_form=FlaskForm(), teammates=_teammates(case), standing=standing, flagged=flagged,
    ), status


# -- the live case page: who else is on it, and what changed -------------------------------------------------

VIEWER_STATES = ("viewing", "left", *viewers.DRAFTS)


@bp.post("/cases/<int:case_id>/viewers")
@passive
@role_required(UserRole.AGENT)
def viewing(case_id: int):
    """A case page says its user is on the case (state "viewing"), typing a "reply" or a "note", or has "left";
    the answer lists the others on it. Without Redis there is no presence: 503, and the page works on."""
    case = visible_case_or_404(case_id)
    state = request.form.get("state", "viewing")
    if state not in VIEWER_STATES:
        abort(400, f"state must be one of {', '.join(VIEWER_STATES)}")
    try:
        if state == "left":
            viewers.left(case, current_user)
            here = []
        else:
            here = viewers.here(case, current_user, typing=None if state == "viewing" else state)
    except redis.RedisError as exc:
        log.warning("who is on a case is unknown: Redis failed (%s)", type(exc).__name__)
        return jsonify(error="presence is unavailable"), 503
    now = time.time()
    return jsonify(others=[v.to_dict(now) for v in here if v.user_id != current_user.id],
                   heartbeat=viewers.HEARTBEAT)


@bp.get("/cases/<int:case_id>/updates")
@passive
@role_required(UserRole.AGENT)
def updates(case_id: int):
    """What a page that has shown the case up to the cursor `after` lacks: the timeline entries added and the
    messages changed since (rendered as the page renders them), the next cursor, and the case's status, assignee,
    checklist and claim buttons now."""
    case = visible_case_or_404(case_id)
    try:
        cursor = timeline.Cursor.parse(request.args.get("after", ""))
    except ValueError as exc:
        abort(400, str(exc))
    decision = _decision(case)
    session, user = db.session(), current_user._get_current_object()
    new, changed, cursor = timeline.since(session, case, cursor, decision.checklist if decision else [],
                                          restricted=may_read_restricted(user, case))
    arrived = [e.item.id for e in new if e.kind == "note" and e.item.restricted]
    for note_id in arrived:  # a restricted note that came in live is read as surely as one on the page
        access_log.record(session, user, "note", note_id, allowed=True)
    if arrived:
        session.commit()

    def rendered(entry: timeline.Entry) -> str:
        return render_template("_timeline_item.html", kind=entry.kind, at=entry.at, item=entry.item, case=case)

    return jsonify(
        entries=[{"html": rendered(e), "message": None} for e in new]
        + [{"html": rendered(e), "message": e.item.id} for e in changed],
        after=str(cursor), status=case.status.value, assignee=case.assignee.name if case.assignee else None,
        checklist=case.checklist_done or [],
        claim=render_template("_case_claim.html", case=case, csrf_form=FlaskForm(), teammates=_teammates(case)))
