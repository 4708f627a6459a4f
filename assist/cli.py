"""The `assist` command: run, migrate, manage users and members, simulate customers, inspect cases."""

import json
import logging
import os
import re
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, ScriptInfo, with_appcontext

from channels.message import Channel

# Who started this process, read before anything slow (the app, the triage model): a worker whose starter dies
# while it is still loading stops all the same (assist.worker.Ticker).
STARTED_BY = os.getppid()

log = logging.getLogger(__name__)


def _create_app():
    from assist.errors import ConfigError
    from assist.web.app import create_app

    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _runtime():
    """The runtime the app bound for this command (the ORM loads only for commands that need it)."""
    from assist import runtime

    return runtime.current()


@click.group()
@click.version_option(package_name="pawtrust-assist", prog_name="assist")
@click.pass_context
def main(ctx):
    """The incident team's contact bot and agent-assist service.

    Settings come from the environment (see the README's Configuration table);
    with none set, everything runs on the embedded defaults.
    """
    if ctx.obj is None:  # commands that need the app create it on first use; tests pass their own
        ctx.obj = ScriptInfo(create_app=_create_app, set_debug_flag=False)


def init_app(app) -> None:
    """Add the service's app commands to app.cli too, where Flask's test runner finds them."""
    for command in APP_COMMANDS:
        app.cli.add_command(command)


# Triage commands need no app, database or Redis: they are on the top-level group only.
@main.command()
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("data/triage"), show_default=True, help="Folder of labelled *.jsonl files.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the model (default: the shipped model in assist/triage/model).")
def train(data_dir, output):
    """Train the triage classifiers reproducibly (fixed seed) and write the versioned model."""
    try:
        from tqdm import tqdm
    except ImportError:
        raise click.ClickException("training shows its progress with tqdm: pip install 'pawtrust-assist[train]'") \
            from None

    from assist.triage import training

    report = training.train(data_dir, output or training.MODEL_DIR, on_progress=tqdm.write,
                            progress_bar=lambda it, **kw: tqdm(it, **kw))
    click.echo("held-out test split:")
    click.echo(report.format())


@main.command()
@click.argument("file", type=click.File("r", encoding="utf-8"), required=False)
@click.option("--text", help="Classify this one message instead of a file.")
@click.option("--channel", type=click.Choice([channel.value for channel in Channel]), default="sms", show_default=True,
              help="The channel of --text.")
def classify(file, text, channel):
    """Triage FILE.jsonl (id, channel, text per line) or --text; print one JSON object per line."""
    from assist.triage import classify_many

    if (file is None) == (text is None):
        raise click.UsageError("give a FILE or --text, not both")
    rows = [{"id": None, "channel": channel, "text": text}] if text is not None else _read_rows(file)
    results = classify_many((row["text"], row["channel"]) for row in rows)
    for row, result in zip(rows, results):
        out = {"id": row["id"], **result.to_dict()}
        click.echo(json.dumps(out, ensure_ascii=False))


@main.command()
@click.argument("file", type=click.File("r", encoding="utf-8"))
def evaluate(file):
    """Score triage on a labelled FILE.jsonl: per-label P/R/F1, macro-F1, critical recall, confusion."""
    from assist.triage import load
    from assist.triage.data import Labelled
    from assist.triage.evaluate import evaluate as score

    rows = _read_rows(file, labelled=True)
    messages = [Labelled(id=str(r["id"]), channel=r["channel"], text=r["text"], urgency=r["urgency"],
                         emotion=r["emotion"], category=r["category"]) for r in rows]
    click.echo(f"{len(messages)} messages from {file.name}")
    click.echo(score(load(), messages).format())


@main.command()
@click.option("--table", is_flag=True, help="Print the README's configuration table (every setting, its default).")
def settings(table):
    """Check the settings in the environment as the service does at startup and print them (secrets masked)."""
    from assist.errors import ConfigError
    from assist.settings import Settings, markdown_table

    if table:
        click.echo(markdown_table())
        return
    try:
        current = Settings.from_environ()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    for name, value in current.model_dump().items():
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
        if name in SECRETS and value:
            shown = "(set)"
        elif name.endswith("_url") and "@" in str(value):  # a password in a URL
            shown = re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", str(value))
        click.echo(f"{name.upper()}={shown}")


SECRETS = ("twilio_auth_token", "secret_key", "smtp_relay_password", "smtp_auth_password", "redaction_key")


@main.group()
def playbooks():
    """Playbooks: validate and test them, export, retire and restore the published ones."""


@playbooks.command("check")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path), required=False)
def playbooks_check(folder):
    """Validate every playbook of FOLDER (default: PLAYBOOKS_DIR, else the shipped ones) and run all their tests."""
    from assist import playbooks as playbook_engine
    from assist.errors import ConfigError
    from assist.settings import Settings
    from assist.triage import classify

    try:
        configured = Settings.from_environ().playbooks_dir
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    folder = folder or Path(configured or playbook_engine.default_dir())
    try:
        loaded = playbook_engine.load_dir(folder)
    except playbook_engine.PlaybookError as exc:
        click.echo(str(exc), err=True)
        raise click.ClickException(f"{folder}: invalid playbooks") from None
    for playbook in loaded:
        for language in playbook_engine.LANGUAGES:
            missing = playbook.auto_reply.missing(language)
            if missing:
                click.echo(f"warning: {playbook.id}: no auto_reply.{language} for {', '.join(missing)}; "
                           "English is used", err=True)
    results = playbook_engine.run_tests(loaded, classify)
    for result in results:
        if not result.passed:
            click.echo(f"FAIL {result.playbook}: {result.text!r}: {result.detail}")
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(loaded)} playbooks valid; {len(results) - failed} passed, {failed} failed")
    if failed:
        sys.exit(1)
    if not any(not p.when.specificity() for p in loaded):
        raise click.ClickException("no fallback: one playbook needs an empty `when`")


@playbooks.command("export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=Path("playbooks"))
@with_appcontext
def playbooks_export(folder):
    """Write the published playbooks from the database to FOLDER (default: playbooks/) as YAML."""
    from assist import db as database
    from assist import playbook_versions

    session = database.session()
    playbook_versions.published(session)  # seeds an empty database first
    written = playbook_versions.export(session, folder)
    click.echo(f"wrote {len(written)} playbooks to {folder}")


@playbooks.command("retire")
@click.argument("playbook_id")
@with_appcontext
def playbooks_retire(playbook_id):
    """Take PLAYBOOK_ID out of the published set (it stops matching; its tests leave the publish gate)."""
    _change_playbook(playbook_id, "retire")
    click.echo(f"retired {playbook_id}")


@playbooks.command("restore")
@click.argument("playbook_id")
@with_appcontext
def playbooks_restore(playbook_id):
    """Put a retired PLAYBOOK_ID back, behind every playbook's tests."""
    _change_playbook(playbook_id, "restore")
    click.echo(f"restored {playbook_id}")


def _change_playbook(playbook_id: str, change: str) -> None:
    """Retire or restore a playbook as the console does (audited, with no user: the command line)."""
    from assist import db as database
    from assist import playbook_versions
    from assist.triage import classify

    session = database.session()
    playbook_versions.published(session)  # seeds an empty database first
    try:
        getattr(playbook_versions, change)(session, playbook_id, None, classify)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    except playbook_versions.PublishBlocked as blocked:
        session.rollback()
        for result in blocked.results:
            if not result.passed:
                click.echo(f"FAIL {result.playbook}: {result.text!r}: {result.detail}", err=True)
        raise click.ClickException(f"{playbook_id}: not changed: {blocked}") from None
    session.commit()


def _read_rows(file, *, labelled: bool = False) -> list[dict]:
    """Read JSON lines with id, channel and text (and the labels), naming a bad line."""
    from assist.triage.data import numbered_jsonl
    from assist.triage.labels import LABELS

    required = ("id", "channel", "text") + (tuple(LABELS) if labelled else ())
    rows = []
    try:
        numbered = list(numbered_jsonl(file, file.name))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for number, row in numbered:
        where = f"{file.name}:{number}"
        missing = [k for k in required if k not in row]
        if missing:
            raise click.ClickException(f"{where}: missing {', '.join(missing)}")
        if row["channel"] not in set(Channel):
            raise click.ClickException(f"{where}: unknown channel {row['channel']!r}")
        if labelled:
            for head, labels in LABELS.items():
                if row[head] not in labels:
                    raise click.ClickException(f"{where}: {head} {row[head]!r} is not in the taxonomy")
        rows.append(row)
    return rows


@click.group(cls=AppGroup)
def db():
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision):
    """Migrate the database to REVISION (default: the newest)."""
    from assist import db as database

    database.upgrade(_runtime().settings.database_url, revision)
    click.echo(f"database at {revision}")


@click.group(cls=AppGroup)
def users():
    """Users of the console."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["agent", "lead", "supervisor", "admin"]), default="agent", show_default=True)
@click.option("--queue", "queue_names", multiple=True, help="A queue whose cases they take (repeatable).")
@click.option("--capacity", type=click.IntRange(0, 100), default=5, show_default=True,
              help="How many open cases they can hold.")
@click.option("--on-call", is_flag=True, help="Takes critical cases outside business hours.")
@click.option("--phone", help="The phone (E.164) that calls waiting in their queues ring.")
@click.option("--presence", type=click.Choice(["available", "busy", "offline"]), default="offline", show_default=True,
              help="Whether calls ring their phone now.")
@click.password_option(help="Prompted for when not given.")
def users_create(email, name, role, queue_names, capacity, on_call, phone, presence, password):
    """Add a user who can log in."""
    from assist import audit, users
    from assist import db as database
    from assist.models import Presence, UserRole

    session = database.session()
    try:
        user = users.create_user(session, email=email, name=name, role=UserRole(role), password=password,
                                queues=list(queue_names), capacity=capacity, on_call=on_call, phone=phone,
                                presence=Presence(presence))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    session.flush()
    audit.record(session, "user.created", user_id=user.id, role=role, queues=user.queues, capacity=capacity,
                 on_call=on_call)
    session.commit()
    click.echo(f"created user {user.id} {user.email} ({role})")


@users.command("set")
@click.argument("email")
@click.option("--phone", help="The phone (E.164) calls ring; \"\" removes it.")
@click.option("--presence", type=click.Choice(["available", "busy", "offline"]), help="Whether calls ring now.")
@click.option("--queue", "queue_names", multiple=True, help="Replace their queues (repeatable).")
@click.option("--on-call/--not-on-call", default=None, help="Takes critical calls when nobody else can.")
def users_set(email, phone, presence, queue_names, on_call):
    """Change a user's phone, presence, queues or on-call duty."""
    from sqlalchemy import select

    from assist import audit, users
    from assist import db as database
    from assist.models import Presence, User
    from assist.triage.labels import QUEUES

    session = database.session()
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        raise click.ClickException(f"no user {email}")
    try:
        if phone is not None:
            user.phone = users.agent_phone(phone)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if queue_names:
        unknown = set(queue_names) - set(QUEUES)
        if unknown:
            raise click.ClickException(f"unknown queue(s): {', '.join(sorted(unknown))} (queues: {', '.join(QUEUES)})")
        user.queues = list(queue_names)
    if on_call is not None:
        user.on_call = on_call
    if presence is not None:
        if presence == "available" and not user.phone:
            raise click.ClickException("give them a phone (--phone) before making them available")
        user.presence, user.skip_calls_until = Presence(presence), None
    audit.record(session, "user.changed", user_id=user.id, presence=user.presence.value, on_call=user.on_call)
    session.commit()
    click.echo(f"{user.email}: {user.presence.value}, phone {user.phone or '-'}, queues {', '.join(user.queues) or '-'}"
               f"{', on call' if user.on_call else ''}")


def _user(session, email: str):
    from assist import users as accounts

    user = accounts.by_email(session, email)
    if user is None:
        raise click.ClickException(f"no user {email}")
    return user


@users.command("edit")
@click.argument("email")
@click.option("--name", help="Their name as the console shows it.")
@click.option("--role", type=click.Choice(["agent", "lead", "supervisor", "admin"]))
@click.option("--queues", help="The queues whose cases they take, comma-separated (\"\" for none).")
@click.option("--capacity", type=int, help="How many open cases they can hold.")
@click.option("--phone", help="The phone (E.164) calls ring; \"\" removes it.")
@click.option("--on-call/--no-on-call", default=None, help="Takes critical cases outside business hours.")
@click.option("--active/--inactive", default=None, help="--inactive shuts them out as `users deactivate` does.")
def users_edit(email, name, role, queues, capacity, phone, on_call, active):
    """Change EMAIL's name, role, queues, capacity, phone, on-call duty or whether they are active."""
    from assist import cases
    from assist import db as database
    from assist import users as accounts

    given = {"name": name, "role": role, "capacity": capacity, "phone": phone, "on_call": on_call,
             "queues": None if queues is None else [q.strip() for q in queues.split(",") if q.strip()]}
    session = database.session()
    user = _user(session, email)
    try:
        released = accounts.edit(session, user, active=active,
                                 **{field: value for field, value in given.items() if value is not None})
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    cases.done(session, *released)
    click.echo(f"{user.email}: {user.role.value}, {'active' if user.active else 'inactive'}, "
               f"queues {', '.join(user.queues) or '-'}, capacity {user.capacity}, phone {user.phone or '-'}"
               f"{', on call' if user.on_call else ''}")
    if released:
        click.echo(f"{len(released)} open case(s) back in their queues unassigned")


@users.command("reset-password")
@click.argument("email")
def users_reset_password(email):
    """Print a one-time link for EMAIL to set a new password (their earlier links stop working)."""
    from assist import db as database
    from assist import users as accounts

    session = database.session()
    user = _user(session, email)
    try:
        secret = accounts.issue_reset_link(session, user)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    session.commit()
    click.echo(f"works once, for {accounts.RESET_LINK_HOURS} hours:", err=True)
    click.echo(_runtime().url("auth.reset_password", token=secret))


@users.command("deactivate")
@click.argument("email")
def users_deactivate(email):
    """Shut EMAIL out: no login, tokens revoked, no new cases or calls; their open cases back to their queues."""
    from assist import cases
    from assist import db as database
    from assist import users as accounts

    session = database.session()
    user = _user(session, email)
    if not user.active:
        raise click.ClickException(f"{user.email} is already deactivated")
    released = accounts.deactivate(session, user)
    cases.done(session, *released)
    click.echo(f"deactivated {user.email}; {len(released)} open case(s) back in their queues unassigned")


@users.command("reactivate")
@click.argument("email")
def users_reactivate(email):
    """Let EMAIL log in again (their revoked tokens stay revoked)."""
    from assist import db as database
    from assist import users as accounts

    session = database.session()
    user = _user(session, email)
    accounts.reactivate(session, user)
    session.commit()
    click.echo(f"reactivated {user.email}")


@users.group("token")
def users_token():
    """API tokens: create, list, revoke."""


@users_token.command("create")
@click.argument("email")
@click.option("--name", required=True, help="What the token is for.")
@click.option("--scope", type=click.Choice(["read", "write"]), default="read", show_default=True,
              help="read: see cases; write: also add notes.")
@click.option("--days", type=int, default=90, show_default=True, help="How long it lasts (at most 365).")
def users_token_create(email, name, scope, days):
    """Issue an API token for EMAIL (printed once: only its hash is kept)."""
    from assist import db as database
    from assist import tokens
    from assist.models import TokenScope

    session = database.session()
    user = _user(session, email)
    try:
        token, secret = tokens.issue(session, user, name=name, scope=TokenScope(scope), days=days)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    session.commit()
    click.echo(f"token {token.id} ({token.scope.value}) expires {token.expires_at:%Y-%m-%d %H:%M} UTC", err=True)
    click.echo(secret)


@users_token.command("list")
@click.argument("email", required=False)
def users_token_list(email):
    """List the API tokens of EMAIL (default: everyone's)."""
    from assist import clock, tokens
    from assist import db as database

    session = database.session()
    now = clock.now()
    for t in tokens.listed(session, _user(session, email) if email else None):
        used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
        click.echo(f"{t.id}\t{t.user.email}\t{t.name}\t{t.scope.value}\t{tokens.state(t, now)}\t"
                   f"expires {t.expires_at:%Y-%m-%d %H:%M}\tlast used {used}")


@users_token.command("revoke")
@click.argument("token_id", type=int)
def users_token_revoke(token_id):
    """Revoke the API token TOKEN_ID (see `assist users token list`)."""
    from assist import db as database
    from assist import tokens
    from assist.models import ApiToken

    session = database.session()
    token = session.get(ApiToken, token_id)
    if token is None:
        raise click.ClickException(f"no token {token_id}")
    if not tokens.revoke(session, token):
        raise click.ClickException(f"token {token_id} was already revoked")
    session.commit()
    click.echo(f"revoked token {token_id} ({token.name}) of {token.user.email}")


@click.group(cls=AppGroup)
def members():
    """Marketplace members, pets and bookings."""


@members.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
def members_import(file):
    """Import members (with pets) or bookings from a CSV FILE."""
    from assist import db as database
    from assist import members as member_data
    from assist.errors import ImportFailed

    session = database.session()
    try:
        report = member_data.import_csv(session, file)
    except ImportFailed as exc:
        session.rollback()
        raise click.ClickException(f"{file.name}: {exc}; nothing was imported") from None
    session.commit()
    click.echo(f"{report.kind}: {report.rows} rows, {report.created} created, {report.updated} updated")


@click.group(cls=AppGroup)
def retention():
    """Retention of closed cases' message bodies, voicemails and mails (RETENTION_DAYS)."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would be removed; change nothing.")
def retention_run(dry_run):
    """Remove what RETENTION_DAYS says resolved cases no longer keep, and print the counts."""
    from assist import clock
    from assist import db as database
    from assist import retention as policy

    days = _runtime().settings.retention_days
    if days <= 0:
        click.echo("RETENTION_DAYS is 0: everything is kept")
        return
    report = policy.run(database.session(), clock.now(), days, dry_run=dry_run)
    said = "would remove" if dry_run else "removed"
    click.echo(f"{said} from {report.cases} case(s) resolved over {days} days ago: {report.messages} message "
               f"bodies, {report.attachments} attachments, {report.mails} stored mails, {report.recordings} "
               "recordings")


@click.group(cls=AppGroup)
def cases():
    """Cases and their messages."""


@cases.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--status", type=click.Choice(["new", "open", "pending", "escalated", "resolved"]))
def cases_list(as_json, status):
    """List cases with their messages."""
    from assist import cases as case_service
    from assist import db as database
    from assist.models import CaseStatus

    statuses = [CaseStatus(status)] if status else list(CaseStatus)
    found = [case_service.case_to_dict(c) for c in case_service.every(database.session(), statuses=statuses)]
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    for case in found:
        who = case["contact"]["name"] or case["contact"]["phone"] or case["contact"]["email"]
        click.echo(f"#{case['id']:<5} {case['status']:<9} {case['queue']:<9} {case['urgency'] or '-':<8} "
                   f"{who}  ({len(case['messages'])} messages)")


@click.command()
@with_appcontext
@click.option("--burst", is_flag=True, help="Quit when the queues are empty.")
def worker(burst):
    """Run an RQ worker on the critical, default and low queues, with RQ's scheduler and the periodic sweeps."""
    from assist import worker as workers

    workers.run(_runtime(), burst=burst, logging_level=_runtime().settings.log_level, parent=STARTED_BY)


@click.command()
@with_appcontext
def smtp():
    """Run the inbound SMTP server on SMTP_LISTEN until interrupted."""
    import signal

    from assist import mail
    from assist.errors import PortBusy

    try:
        controller = mail.start_server(_runtime())
    except PortBusy as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"SMTP on {controller.hostname}:{controller.port} for {', '.join(_runtime().settings.inbound_email)}")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly on SIGTERM too
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@click.group(cls=AppGroup)
def simulate():
    """Play a customer against the running service (`assist demo` or your own).

    It reads the same settings as the service: the web app at PUBLIC_BASE_URL (else
    http://127.0.0.1:$PORT), webhooks signed with TWILIO_AUTH_TOKEN, mail to SMTP_LISTEN.
    Give it the same PORT / SMTP_LISTEN you gave the service.
    """


@simulate.command("sms")
@click.option("--from", "from_", required=True, help="The customer's number, E.164.")
@click.option("--to", default=None, help="The team's number (default: TWILIO_FROM_NUMBER).")
@click.option("--media", multiple=True, help="An MMS media URL (repeatable).")
@click.argument("text")
def simulate_sms(from_, to, media, text):
    """Post TEXT as a signed Twilio SMS webhook to the running service and print its TwiML answer."""
    from assist.simulate import deliver_twiml_replies, post_signed, sms_params

    settings, base = _runtime().settings, _runtime().base_url()
    params = sms_params(from_=from_, to=to or settings.twilio_from_number, body=text, account_sid=settings.account_sid,
                        media=tuple((url, "image/jpeg") for url in media))
    url = f"{base}/twilio/sms"
    try:
        response = post_signed(url, params, settings.auth_token)
    except OSError as exc:
        raise click.ClickException(f"cannot reach {url} ({exc}); is the service running (assist demo)?") from None
    click.echo(f"{response.status_code} {params['MessageSid']}")
    click.echo(response.text)
    if response.status_code != 200:
        sys.exit(1)
    # Sandbox: act out the carrier delivering the TwiML reply, so its status is recorded.
    if settings.sandbox:
        deliver_twiml_replies(response.text, params, settings.auth_token)


@simulate.command("call")
@click.option("--from", "from_", required=True, help="The caller's number, E.164 (or anonymous).")
@click.option("--press", "digits", default=None, help="Press these keys at the greeting instead of speaking "
                                                     "(0 a person, 2 Spanish).")
@click.option("--nobody-answers", is_flag=True, help="No agent or on-call phone picks up.")
@click.argument("speech", required=False, default="")
def simulate_call(from_, digits, nobody_answers, speech):
    """Play a whole call as Twilio would: the caller says SPEECH; every phone the service rings (the
    agents', the on-call one) picks up and presses 1 unless --nobody-answers. Prints each webhook with
    its TwiML, and the seconds of prompts the caller heard before a person's phone rang."""
    from assist import db as database
    from assist import simulate as player
    from assist.phone_network import CallFailed
    from channels.voice import WORDS_PER_MINUTE

    try:
        caller = player.play_call(database.session(), _runtime(), from_=from_, digits=digits, speech=speech,
                                  answers=not nobody_answers, echo=click.echo)
    except CallFailed as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot reach {_runtime().base_url()} ({exc}); is the service running?") \
            from None
    if caller.words_before_person is not None:
        seconds = caller.words_before_person * 60 / WORDS_PER_MINUTE
        click.echo(f"prompts before a person's phone rang: {caller.words_before_person} words, {seconds:.1f} s "
                   f"at {WORDS_PER_MINUTE} words a minute")
    click.echo(f"the caller heard: {' / '.join(text for text, _ in caller.heard)}")


@simulate.command("email")
@click.option("--from", "from_", required=True, help="The customer's address.")
@click.option("--subject", default="", help="The subject line.")
@click.option("--to", default=None, help="The team's address (default: TEAM_EMAIL).")
@click.argument("text")
def simulate_email(from_, subject, to, text):
    """Send TEXT as an email over a real SMTP session to the running SMTP server."""
    import smtplib

    from assist import simulate as player

    settings = _runtime().settings
    try:
        message_id = player.send_email(settings.smtp_listen, from_=from_, to=to or settings.team_email,
                                       subject=subject, text=text)
    except (OSError, smtplib.SMTPException) as exc:
        raise click.ClickException(f"the SMTP server at {settings.smtp_listen} refused or is down: {exc}") from None
    click.echo(f"sent {message_id}")


@click.command()
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the console listens on.")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port of the console (default: PORT, else 5000). Give the same PORT to `assist simulate`.")
def demo(host, port):
    """Migrate, seed demo data and run the web app, the SMTP server and a worker on the embedded defaults.

    Ctrl-C (or SIGTERM) stops everything it started, the embedded Redis included.
    """
    from assist import demo as demo_run
    from assist.errors import PortBusy

    if port is not None:
        _runtime().configure(port=port)
    try:
        demo_run.run(current_app._get_current_object(), host=host, echo=click.echo)
    except PortBusy as exc:
        raise click.ClickException(str(exc)) from None


def _report_day(ctx, param, value: str):
    """A day as YYYY-MM-DD (Python's own parser takes 20260603 too, which here is more likely a typo)."""
    from datetime import date

    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise click.BadParameter(f"{value!r} is not a date as YYYY-MM-DD")


@click.command()
@with_appcontext
@click.option("--from", "first", required=True, callback=_report_day, help="The first day, YYYY-MM-DD.")
@click.option("--to", "last", required=True, callback=_report_day, help="The last day (included), YYYY-MM-DD.")
@click.option("--format", "form", type=click.Choice(["html", "pdf"]), default="html", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Where to write it (default: summary-FROM-TO.html or .pdf in the current folder).")
@click.option("--with-names", is_flag=True, help="Include customers' names and contact details (audited).")
def report(first, last, form, output, with_names):
    """Write the leadership summary of the days FROM..TO (in BUSINESS_TIMEZONE): volumes against the period
    before, critical incidents, SLA misses and their causes, open risks."""
    from assist import audit, clock, summary, summary_document
    from assist import db as database
    from assist.errors import BadPeriod

    settings, session = _runtime().settings, database.session()
    try:
        chosen = summary.period(first, last, settings.business_timezone)
    except BadPeriod as exc:
        raise click.BadParameter(str(exc), param_hint="'--from' / '--to'") from None
    if with_names:
        audit.record(session, "summary.with_names", first=first.isoformat(), last=last.isoformat(), via="cli")
    document = summary_document.html(summary.build(session, settings, chosen, clock.now(), with_names=with_names))
    session.commit()
    output = output or Path(f"summary-{first}-{last}.{form}")
    if form == "pdf":
        output.write_bytes(summary_document.pdf(document))
    else:
        output.write_text(document, encoding="utf-8")
    click.echo(f"wrote {output}")


@click.group(cls=AppGroup)
def sandbox():
    """Sandbox mode: what the service would have sent."""


@sandbox.command("outbox")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {messages: [...], emails: [...], calls: [...]}.")
def sandbox_outbox(as_json):
    """List every outbound message, newest first: how it left (twiml, rest, smtp), to whom, and its status."""
    from assist import db as database
    from assist import sandbox as sandbox_outbox_data

    listed = sandbox_outbox_data.outbox(database.session())
    if as_json:
        click.echo(json.dumps(listed, indent=2, ensure_ascii=False))
        return
    calls = listed.pop("calls")
    for kind, rows in listed.items():
        click.echo(f"{kind}: {len(rows)}")
        for m in rows:
            click.echo(f"  #{m['id']:<5} case {m['case_id'] or '-':<5} {m['channel']:<5} {m['via']:<5} "
                       f"{m['to']:<28} {m['status'] or '-':<11} {m['body'][:60]!r}")
    click.echo(f"calls: {len(calls)}")
    for c in calls:
        click.echo(f"  {c['sid']} to {c['to']:<16} {c['status']:<11} {c['url'] or c['twiml']}")


APP_COMMANDS = (db, users, members, cases, retention, worker, simulate, demo, smtp, sandbox, report)
for _command in APP_COMMANDS:
    main.add_command(_command)
