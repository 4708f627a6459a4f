"""Playbook versions in the database: drafts, publishing behind the tests, history and rollback.

`playbooks/` seeds the database; after that the newest published version of each playbook is in
force, in every process, from the next message on (the set is re-read when a publish changes it).
"""

import difflib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assist import audit, clock, db, playbook_yaml, playbooks, runtime
from assist.models import PlaybookVersion, User
from assist.playbooks import Playbook, PlaybookError, TestResult


class PublishBlocked(Exception):
    """A version cannot be published: it is invalid or a playbook test fails with it."""

    def __init__(self, errors: list[str], results: list[TestResult]):
        super().__init__("; ".join(errors) or f"{sum(not r.passed for r in results)} playbook test(s) fail")
        self.errors, self.results = errors, results


@dataclass(frozen=True)
class Check:
    playbook: Playbook | None
    errors: list[str]
    results: list[TestResult]

    @property
    def ok(self) -> bool:
        return self.playbook is not None and not self.errors and all(r.passed for r in self.results)


_cache: dict = {"key": None, "set": ()}
_cache_lock = threading.Lock()


def _published_rows(session: Session) -> dict[str, PlaybookVersion]:
    """The version in force of each playbook: its newest published one."""
    rows = session.scalars(select(PlaybookVersion).where(PlaybookVersion.published_at.is_not(None))
                           .order_by(PlaybookVersion.playbook_id, PlaybookVersion.published_at,
                                     PlaybookVersion.id)).all()
    return {row.playbook_id: row for row in rows}  # later rows win


def _revision(session: Session) -> tuple:
    """What identifies the published set: the database, and its newest publish."""
    newest = session.execute(select(func.max(PlaybookVersion.id), func.max(PlaybookVersion.published_at))
                             .where(PlaybookVersion.published_at.is_not(None))).one()
    return (str(session.get_bind().engine.url), *newest)


def published(session: Session) -> tuple[Playbook, ...]:
    """The playbooks in force (not retired), re-read only when a publish has changed them (any process may
    publish)."""
    key = _revision(session)
    if key[1] is None:
        seed(session)
        key = _revision(session)
    with _cache_lock:
        if _cache["key"] != key:
            rows = _published_rows(session)
            # Versions in force keep answering even if published before a newer rule about their wording:
            # the editor shows the problem, and their next publish must fix it.
            _cache["set"] = tuple(playbooks.parse(row.yaml, f"{row.playbook_id} v{row.number}", wording=False)
                                  for row in rows.values() if not row.retired)
            _cache["key"] = key
        return _cache["set"]


def seed(session: Session, folder: Path | None = None) -> int:
    """Publish the shipped playbooks as version 1 when the database has none; return how many.

    Part of the caller's transaction (the first message's, often), which commits it; concurrent first
    messages seed once.
    """
    db.lane(session, "playbooks:seed")
    if session.scalar(select(func.count(PlaybookVersion.id))):
        return 0
    folder = folder or _seed_dir()
    loaded = playbooks.load_dir(folder)
    now = clock.now()
    for playbook in loaded:
        text = (folder / f"{playbook.id}.yaml").read_text(encoding="utf-8") \
            if (folder / f"{playbook.id}.yaml").exists() else _find_text(folder, playbook.id)
        session.add(PlaybookVersion(playbook_id=playbook.id, number=1, yaml=text, published_at=now,
                                    note=f"seeded from {folder.name}/"))
    audit.record(session, "playbooks.seeded", count=len(loaded))
    session.flush()
    return len(loaded)


def _seed_dir() -> Path:
    """PLAYBOOKS_DIR of the bound runtime, else the shipped playbooks."""
    configured = runtime.settings().playbooks_dir if runtime.bound() else None
    return Path(configured) if configured else playbooks.default_dir()


def _find_text(folder: Path, playbook_id: str) -> str:
    for path in sorted(folder.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if playbooks.parse(text, str(path)).id == playbook_id:
            return text
    raise PlaybookError(f"{folder}: no file holds playbook {playbook_id}")


def versions(session: Session, playbook_id: str) -> list[PlaybookVersion]:
    return list(session.scalars(select(PlaybookVersion).where(PlaybookVersion.playbook_id == playbook_id)
                                .order_by(PlaybookVersion.number)))


def numbered(session: Session, playbook_id: str, number: int) -> PlaybookVersion | None:
    return session.scalar(select(PlaybookVersion).where(PlaybookVersion.playbook_id == playbook_id,
                                                        PlaybookVersion.number == number))


def unpublished(session: Session) -> list[str]:
    """The ids of playbooks created in the editor and never published."""
    live = _published_rows(session)
    return sorted(set(session.scalars(select(PlaybookVersion.playbook_id)).all()) - set(live))


def current(session: Session, playbook_id: str) -> PlaybookVersion | None:
    return _published_rows(session).get(playbook_id)


def draft(session: Session, playbook_id: str) -> PlaybookVersion | None:
    """The newest version saved after the one in force and never published, if any."""
    rows = versions(session, playbook_id)
    live = current(session, playbook_id)
    newest = rows[-1] if rows else None
    if newest is not None and newest.published_at is None and (live is None or newest.number > live.number):
        return newest
    return None


def normalized(text: str) -> str:
    """text with "\n" line ends: browsers send a textarea's lines with "\r\n", which would make every line of
    a diff against a stored version differ."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def retired(session: Session) -> list[PlaybookVersion]:
    """The versions in force that retire their playbook, by playbook id."""
    return sorted((row for row in _published_rows(session).values() if row.retired), key=lambda r: r.playbook_id)


def save_draft(session: Session, playbook_id: str, text: str, actor: User | None) -> PlaybookVersion:
    """Store text as the playbook's new draft version (saved even if invalid, so no edit is lost); actor None is
    the command line."""
    text = normalized(text)
    number = (session.scalar(select(func.max(PlaybookVersion.number))
                             .where(PlaybookVersion.playbook_id == playbook_id)) or 0) + 1
    version = PlaybookVersion(playbook_id=playbook_id, number=number, yaml=text, created_by=actor)
    session.add(version)
    session.flush()
    audit.record(session, "playbook.draft_saved", actor=actor, playbook=playbook_id, version=number)
    return version


def check(session: Session, playbook_id: str, text: str, classify: Callable) -> Check:
    """Validate text as playbook_id and run every test of the published set with it in place."""
    try:
        candidate = playbooks.parse(text, f"{playbook_id} draft")
    except PlaybookError as exc:
        return Check(None, str(exc).splitlines(), [])
    if candidate.id != playbook_id:
        return Check(None, [f"id: the draft says {candidate.id!r}; this playbook is {playbook_id!r}"], [])
    others = [p for p in published(session) if p.id != playbook_id]
    results = playbooks.run_tests([candidate, *others], classify)
    if not any(not p.when.specificity() for p in [candidate, *others]):
        return Check(candidate, ["no fallback: one playbook needs an empty `when`"], results)
    return Check(candidate, [], results)


def publish(session: Session, version: PlaybookVersion, actor: User | None, classify: Callable,
            *, event: str = "playbook.published") -> PlaybookVersion:
    """Put version in force if it is valid and every playbook test passes with it.

    Raises:
        PublishBlocked: with the errors and the test results.
    """
    result = check(session, version.playbook_id, version.yaml, classify)
    if not result.ok:
        raise PublishBlocked(result.errors, result.results)
    version.published_at, version.published_by = clock.now(), actor
    audit.record(session, event, actor=actor, playbook=version.playbook_id, version=version.number)
    session.flush()
    return version


def rollback(session: Session, playbook_id: str, number: int, actor: User, classify: Callable) -> PlaybookVersion:
    """Publish a new version holding the text of an earlier one (the history stays as it was)."""
    old = numbered(session, playbook_id, number)
    if old is None:
        raise LookupError(f"{playbook_id} has no version {number}")
    copy = save_draft(session, playbook_id, old.yaml, actor)
    copy.note = f"rollback to version {number}"
    return publish(session, copy, actor, classify, event="playbook.rolled_back")


def create(session: Session, playbook_id: str, name: str, template: PlaybookVersion, actor: User) -> PlaybookVersion:
    """Start a new playbook as a draft: a copy of template's text under a new id and name, without its tests
    (they name the template's messages).

    Raises:
        PlaybookError: the id is taken or invalid.
    """
    if versions(session, playbook_id):
        raise PlaybookError(f"id: a playbook {playbook_id!r} exists already")
    text = playbook_yaml.replaced(template.yaml, id=playbook_id, name=name, tests=[])
    playbooks.parse(text, f"{playbook_id} new")
    version = save_draft(session, playbook_id, text, actor)
    version.note = f"created from {template.playbook_id}"
    audit.record(session, "playbook.created", actor=actor, playbook=playbook_id, template=template.playbook_id)
    return version


def retire(session: Session, playbook_id: str, actor: User | None, classify: Callable) -> PlaybookVersion:
    """Take a playbook out of the set: it stops matching and its tests leave the publish gate.

    Raises:
        LookupError: the playbook is not in force.
        PublishBlocked: the set without it fails (no fallback left, or another playbook's test needs it).
    """
    live = current(session, playbook_id)
    if live is None or live.retired:
        raise LookupError(f"{playbook_id} is not in force")
    others = [p for p in published(session) if p.id != playbook_id]
    if not any(not p.when.specificity() for p in others):
        raise PublishBlocked([f"{playbook_id} is the only fallback: another playbook needs an empty `when`"], [])
    results = playbooks.run_tests(others, classify)
    if not all(r.passed for r in results):
        raise PublishBlocked([], results)
    version = save_draft(session, playbook_id, live.yaml, actor)
    version.note, version.retired = "retired", True
    version.published_at, version.published_by = clock.now(), actor
    audit.record(session, "playbook.retired", actor=actor, playbook=playbook_id, version=version.number)
    session.flush()
    return version


def restore(session: Session, playbook_id: str, actor: User | None, classify: Callable) -> PlaybookVersion:
    """Put a retired playbook back in force, behind the tests like any publish.

    Raises:
        LookupError: the playbook is not retired.
        PublishBlocked: it fails validation or a test with it back in the set.
    """
    live = current(session, playbook_id)
    if live is None or not live.retired:
        raise LookupError(f"{playbook_id} is not retired")
    copy = save_draft(session, playbook_id, live.yaml, actor)
    copy.note = "restored"
    return publish(session, copy, actor, classify, event="playbook.restored")


@dataclass(frozen=True)
class DiffLine:
    """One line of a diff: its mark (+ added, - removed, space kept, @ a hunk's header) and its text."""

    mark: str
    text: str

    @property
    def kind(self) -> str:
        return {"+": "added", "-": "removed", "@": "hunk"}.get(self.mark, "kept")


def diff(older: PlaybookVersion | None, newer: PlaybookVersion) -> list[DiffLine]:
    """The lines of a unified diff of two versions' YAML (either may have been stored with "\r\n")."""
    return text_diff(older.yaml if older else "", newer.yaml)


def text_diff(before: str, after: str) -> list[DiffLine]:
    """The lines of a unified diff of two texts, their line ends normalized."""
    lines = list(difflib.unified_diff(normalized(before).splitlines(), normalized(after).splitlines(),
                                      lineterm="", n=2))[2:]  # without the ---/+++ header
    return [DiffLine(line[0], line[1:]) if line[0] != "@" else DiffLine("@", line) for line in lines]


def export(session: Session, folder: Path) -> list[Path]:
    """Write the published set to folder as one YAML file per playbook."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for playbook_id, row in sorted(_published_rows(session).items()):
        if row.retired:
            continue
        path = folder / f"{playbook_id}.yaml"
        path.write_text(row.yaml, encoding="utf-8")
        written.append(path)
    return written
