"""Who has a case open in the console right now, and who is typing a reply or a note on it, so two people do not
answer one customer at once (not to be confused with an agent's availability for calls, User.presence).

Each open case page says so every HEARTBEAT seconds, and as its user types; an entry lasts VIEWING_FOR seconds
unless renewed, so a closed tab, a crashed browser or a dead web process leaves no ghost behind. Entries live in
Redis (a hash per case, one field per person) and every change is published as a live event (assist.events) that
carries the case's queue and assignee, so only the consoles that may see the case hear of it. Nothing is kept in
the database: with Redis down there is no presence, and nothing else changes.
"""

import json
import time
from dataclasses import asdict, dataclass

from assist import background, events
from assist.models import Case, User

HEARTBEAT = 5  # seconds between a case page's "still here"
VIEWING_FOR = 15  # seconds an entry lasts without a heartbeat: three missed beats
TYPING_FOR = 6  # seconds "typing" lasts after the last keystroke a page reported (it reports at most every 2 s)
DRAFTS = ("reply", "note")  # what someone may be typing
EVENT = "viewers"  # the kind of the live events


@dataclass(frozen=True)
class Viewer:
    """Someone on a case: until when (epoch seconds), and what they are typing until when, if anything."""

    user_id: int
    name: str
    until: float
    typing: str | None = None
    typing_until: float = 0.0

    def typing_at(self, now: float) -> str | None:
        return self.typing if self.typing_until > now else None

    def to_dict(self, now: float) -> dict:
        """What a page needs: who, and for how many more seconds they count as viewing and typing."""
        typing = self.typing_at(now)
        return {"user_id": self.user_id, "name": self.name, "viewing_for": max(0, round(self.until - now)),
                "typing": typing, "typing_for": max(0, round(self.typing_until - now)) if typing else 0}


def _key(case_id: int) -> str:
    return f"case:{case_id}:viewers"


def here(case: Case, user: User, *, typing: str | None = None) -> list[Viewer]:
    """Record that user has case open (and is typing a draft, if given), tell the consoles, and return everyone
    on the case now, user included.

    Raises:
        ValueError: typing is not one of DRAFTS.
        redis.RedisError: Redis is unavailable.
    """
    if typing is not None and typing not in DRAFTS:
        raise ValueError(f"typing must be one of {', '.join(DRAFTS)}")
    connection, key, now = background.connection(), _key(case.id), time.time()
    earlier = _parse(connection.hget(key, user.id))
    if typing is None and earlier is not None and earlier.typing_at(now):  # a heartbeat between two keystrokes
        typing, typing_until = earlier.typing, earlier.typing_until
    else:
        typing_until = now + TYPING_FOR if typing else 0.0
    viewer = Viewer(user.id, user.name, now + VIEWING_FOR, typing, typing_until)
    with connection.pipeline() as pipe:
        pipe.hset(key, str(user.id), json.dumps(asdict(viewer)))
        pipe.expire(key, VIEWING_FOR)  # the case's hash goes with its last viewer
        pipe.hgetall(key)
        *_, fields = pipe.execute()
    _publish(case, viewer.to_dict(now))
    return _current(connection, key, fields, now)


def left(case: Case, user: User) -> None:
    """user closed the case's page: they are off it at once (the heartbeat's expiry catches the rest).

    Raises:
        redis.RedisError: Redis is unavailable.
    """
    background.connection().hdel(_key(case.id), str(user.id))
    _publish(case, {"user_id": user.id, "name": user.name, "viewing_for": 0, "typing": None, "typing_for": 0})


def of(case_id: int) -> list[Viewer]:
    """Everyone on the case now.

    Raises:
        redis.RedisError: Redis is unavailable.
    """
    connection, key = background.connection(), _key(case_id)
    return _current(connection, key, connection.hgetall(key), time.time())


def _current(connection, key: str, fields: dict, now: float) -> list[Viewer]:
    """The unexpired viewers among a case's hash fields, by name; the expired ones are removed."""
    viewers = [v for v in map(_parse, fields.values()) if v is not None]
    gone = [str(v.user_id) for v in viewers if v.until <= now]
    if gone:
        connection.hdel(key, *gone)
    return sorted((v for v in viewers if v.until > now), key=lambda v: (v.name, v.user_id))


def _parse(raw: bytes | str | None) -> Viewer | None:
    return Viewer(**json.loads(raw)) if raw else None


def _publish(case: Case, viewer: dict) -> None:
    events.publish(EVENT, case_id=case.id, queue=case.queue, assignee_id=case.assignee_id, **viewer)
