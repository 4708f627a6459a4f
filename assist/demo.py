"""The demo: a team with logins, members with pets and bookings, a few cases, and every process in one."""

import contextlib
import io
import os
import signal
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import WSGIRequestHandler, make_server

from assist import clock, members, users
from assist.errors import PortBusy
from assist.models import Presence, User, UserRole

# The demo agent's and lead's phones: `assist simulate call` plays them picking up and pressing 1.
DEMO_PHONES = {"agent@demo.test": "+15550100901", "lead@demo.test": "+15550100902"}
# Local demo logins, printed by `assist demo`; they exist only in a demo database.
ALL_QUEUES = ["emergency", "safety", "claims", "support"]
DEMO_USERS = (
    ("agent@demo.test", "Alex Agent", UserRole.AGENT, "demo-agent-pass"),
    ("lead@demo.test", "Lee Lead", UserRole.LEAD, "demo-lead-pass"),
    ("supervisor@demo.test", "Sam Supervisor", UserRole.SUPERVISOR, "demo-supervisor-pass"),
    ("admin@demo.test", "Ada Admin", UserRole.ADMIN, "demo-admin-pass"),
)

MEMBERS_CSV = """member_id,role,name,phone,email,pet_name,pet_species,pet_breed,pet_notes
M-1001,owner,Priya Raman,+15550100101,priya.raman@example.com,Fig,dog,miniature dachshund,10 lb; allergic to chicken
M-1001,owner,Priya Raman,+15550100101,priya.raman@example.com,Olive,cat,domestic shorthair,
M-1002,owner,Tomás Ortega,+15550100102,tomas.ortega@example.com,Nova,dog,siberian husky,\
escape artist: double-clip the harness
M-1003,owner,Grace Whitfield,+15550100103,grace.w@example.com,Biscuit,rabbit,holland lop,
M-2001,sitter,Jordan Lee,+15550100201,jordan.lee@example.com,,,,
M-2002,sitter,Marisol Vega,+15550100202,marisol.vega@example.com,,,,
"""


def bookings_csv(now: datetime) -> str:
    day = timedelta(days=1)
    rows = [
        ("B-5001", "M-1001", "M-2001", "house sitting", now - day, now + 3 * day,
         "Harrow Lane, Millbourne", "Fig;Olive"),
        ("B-5002", "M-1002", "M-2002", "dog walking", now - timedelta(hours=1), now + timedelta(hours=1),
         "Fenwick Ave", "Nova"),
        ("B-5003", "M-1003", "M-2001", "drop-in visits", now - 10 * day, now - 7 * day, "Quarry Rd", "Biscuit"),
    ]
    lines = ["booking_id,owner_id,sitter_id,service,starts_at,ends_at,location,pets"]
    lines += [",".join([b, o, s, svc, st.isoformat(), en.isoformat(), f'"{loc}"', pets])
              for b, o, s, svc, st, en, loc, pets in rows]
    return "\n".join(lines) + "\n"


# What the demo customers text once the service is up, through the signed webhook.
DEMO_MESSAGES = (
    ("+15550100201", "The dachshund I'm sitting (Fig) just ate half a bar of dark chocolate off the counter. "
                     "What do I do?"),
    ("+15550100102", "Hi, my walker says Nova slipped her harness on Fenwick Ave. Is anyone looking for her??"),
    ("+15550100103", "I was charged twice for the drop-in visits last week, can you refund one of them?"),
)


class RequestHandler(WSGIRequestHandler):
    """Werkzeug's handler, its access log showing each request's path without the query string
    (a dashboard search carries phone numbers and email addresses there)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        full_path, full_line = getattr(self, "path", None), self.requestline
        if full_path is not None:
            self.path = full_path.split("?", 1)[0]
        self.requestline = full_line.split("?", 1)[0]  # what is logged for a request line that did not parse
        try:
            super().log_request(code, size)
        finally:
            if full_path is not None:
                self.path = full_path
            self.requestline = full_line


def seed(session: Session) -> bool:
    """Add the demo team, members, pets and bookings unless there are users; return whether it seeded."""
    if session.scalars(select(User).limit(1)).first() is not None:
        return False
    for email, name, role, password in DEMO_USERS:
        takes_calls = role in (UserRole.AGENT, UserRole.LEAD)
        users.create_user(session, email=email, name=name, role=role, password=password,
                         queues=ALL_QUEUES if takes_calls else [], on_call=role == UserRole.LEAD,
                         phone=DEMO_PHONES.get(email), presence=Presence.AVAILABLE if takes_calls else Presence.OFFLINE)
    members.import_csv(session, io.StringIO(MEMBERS_CSV))
    members.import_csv(session, io.StringIO(bookings_csv(clock.now())))
    session.commit()
    return True


def run(app: Flask, *, host: str, echo: Callable[[str], None]) -> None:
    """Run the console, the SMTP server and a worker with its scheduler until Ctrl-C or SIGTERM.

    Everything started here is stopped on the way out, the embedded Redis included.

    Raises:
        PortBusy: the console's or the SMTP server's port is taken.
    """
    from aiosmtpd.controller import Controller

    from assist import background, db, mail, runtime, sandbox, worker
    from assist.simulate import deliver_twiml_replies, free_port, post_signed, sms_params

    rt: runtime.Runtime = app.extensions["runtime"]
    # SIGTERM stops the demo the way Ctrl-C does, also before the worker takes over the signals.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.ExitStack() as running, runtime.bind(rt):
        running.callback(rt.close)  # last: the embedded Redis outlives everything that uses it
        port = rt.settings.port
        try:  # bound first, so a busy port fails before anything starts
            listener = socket.create_server((host, port))
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise PortBusy(f"port {port} is busy ({reason}): pick another with --port") from None
        running.callback(listener.close)
        server = make_server(host, port, app, threaded=True, fd=listener.fileno(), request_handler=RequestHandler)
        db.upgrade(rt.settings.database_url)
        seeded = seed(db.session())
        db.session().commit()
        threading.Thread(target=server.serve_forever, name="web", daemon=True).start()
        running.callback(server.shutdown)
        if not rt.settings.smtp_relay:  # replies go to a local sink the sandbox outbox shows
            sink = Controller(sandbox.MailSink(background.connection()), hostname="127.0.0.1", port=free_port())
            sink.start()
            running.callback(sink.stop)
            rt.configure(smtp_relay=f"127.0.0.1:{sink.port}")
        running.callback(mail.start_server(rt).stop)
        settings, base = rt.settings, rt.base_url()
        if seeded:
            from assist import triage

            triage.load()  # before the demo's own webhooks: the first would wait for the model, under Twilio's 15 s
            for sender, text in DEMO_MESSAGES:
                params = sms_params(from_=sender, to=settings.twilio_from_number, body=text,
                                    account_sid=settings.account_sid)
                response = post_signed(f"{base}/twilio/sms", params, settings.auth_token)
                response.raise_for_status()
                deliver_twiml_replies(response.text, params, settings.auth_token)
        echo(_banner(settings, base))
        worker.run(rt, logging_level="WARNING")


def _banner(settings, base: str) -> str:
    redis_where = settings.redis_url or f"embedded ({settings.embedded_redis_path})"
    # `assist simulate` reads the same settings: a port or SMTP address other than the default must be given again.
    changed = (("PORT", settings.port, 5000), ("SMTP_LISTEN", settings.smtp_listen, "127.0.0.1:8025"))
    env = " ".join(f"{name}={value}" for name, value, default in changed
                   if value != default and not settings.public_base_url)
    prefix = f"{env} " if env else ""
    logins = "\n".join(f"  {role.value:<11} {email:<22} {password}" for email, _name, role, password in DEMO_USERS)
    twilio = f"sandbox (what is sent appears at {base}/sandbox/twilio/)" if settings.sandbox else "live"
    return f"""
Incident console: {base}/
  database: {settings.database_url}
  redis:    {redis_where}
  twilio:   {twilio}
  email:    SMTP on {settings.smtp_listen} for {', '.join(settings.inbound_email)}; replies via {settings.smtp_relay}
Demo logins:
{logins}
Play a customer:  {prefix}assist simulate sms --from +15551234567 "my dog got out"
                  {prefix}assist simulate email --from ann@example.com --subject "Sitter no-show" "nobody came"
                  {prefix}assist simulate call --from +15551234567 "my dog just got hit by a car"
See the cases:    {prefix}assist cases list --json
What was sent:    {prefix}assist sandbox outbox
Ctrl-C stops the service.
"""
