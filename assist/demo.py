"""Demo data: a team with logins, members with pets and bookings, and a few cases."""

import io
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from assist import auth, members
from assist.models import User, UserRole

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
M-1002,owner,Tomás Ortega,+15550100102,tomas.ortega@example.com,Nova,dog,siberian husky,escape artist: double-clip the harness
M-1003,owner,Grace Whitfield,+15550100103,grace.w@example.com,Biscuit,rabbit,holland lop,
M-2001,sitter,Jordan Lee,+15550100201,jordan.lee@example.com,,,,
M-2002,sitter,Marisol Vega,+15550100202,marisol.vega@example.com,,,,
"""


def bookings_csv(now: datetime) -> str:
    day = timedelta(days=1)
    rows = [
        ("B-5001", "M-1001", "M-2001", "house sitting", now - day, now + 3 * day, "Harrow Lane, Millbourne", "Fig;Olive"),
        ("B-5002", "M-1002", "M-2002", "dog walking", now - timedelta(hours=1), now + timedelta(hours=1), "Fenwick Ave", "Nova"),
        ("B-5003", "M-1003", "M-2001", "drop-in visits", now - 10 * day, now - 7 * day, "Quarry Rd", "Biscuit"),
    ]
    lines = ["booking_id,owner_id,sitter_id,service,starts_at,ends_at,location,pets"]
    lines += [",".join([b, o, s, svc, st.isoformat(), en.isoformat(), f'"{loc}"', pets])
              for b, o, s, svc, st, en, loc, pets in rows]
    return "\n".join(lines) + "\n"


# What the demo customers text once the service is up, through the signed webhook.
DEMO_MESSAGES = (
    ("+15550100201", "The dachshund I'm sitting (Fig) just ate half a bar of dark chocolate off the counter. What do I do?"),
    ("+15550100102", "Hi, my walker says Nova slipped her harness on Fenwick Ave. Is anyone looking for her??"),
    ("+15550100103", "I was charged twice for the drop-in visits last week, can you refund one of them?"),
)


def seed(session: Session) -> bool:
    """Add the demo team, members, pets and bookings unless there are users; return whether it seeded."""
    if session.scalars(select(User).limit(1)).first() is not None:
        return False
    for email, name, role, password in DEMO_USERS:
        auth.create_user(session, email=email, name=name, role=role, password=password,
                         queues=ALL_QUEUES if role in (UserRole.AGENT, UserRole.LEAD) else [],
                         on_call=role == UserRole.LEAD)
    members.import_csv(session, io.StringIO(MEMBERS_CSV))
    members.import_csv(session, io.StringIO(bookings_csv(datetime.now(timezone.utc))))
    session.commit()
    return True
