"""Retention: a case resolved longer ago than RETENTION_DAYS loses its message bodies, its voicemails, the
mails stored for it and the encrypted originals of its redactions; it keeps its structure (contact, status,
times, messages as rows, notes) and its labels (urgency, emotion, category), so the figures and the history of
who did what stay whole.

Run daily by the worker (assist.jobs.apply_retention) and by `assist retention run [--dry-run]`.
"""

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assist import audit
from assist.models import Call, Case, CaseStatus, Message, RawEmail, Redaction

log = logging.getLogger(__name__)

BATCH = 200  # cases per transaction
REMOVED = "[removed: retention]"  # what a message's text says once its body is gone


@dataclass
class Report:
    """What a run removed, or would remove (dry_run): counts only, never content."""

    dry_run: bool = False
    cases: int = 0
    messages: int = 0  # message bodies
    attachments: int = 0  # attachments listed on those messages
    mails: int = 0  # raw mails stored for threading and attachments
    recordings: int = 0  # voicemails of the cases' calls
    case_ids: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k not in ("dry_run", "case_ids")}


def due(now: datetime, days: int):
    """A WHERE clause on Case: resolved before the retention window and not yet emptied."""
    return ((Case.status == CaseStatus.RESOLVED) & (Case.resolved_at < now - timedelta(days=days))
            & Case.bodies_removed_at.is_(None))


def run(session: Session, now: datetime, days: int, *, dry_run: bool = False) -> Report:
    """Remove (or with dry_run, count) what retention takes from every case due; commits batch by batch.

    days of 0 keeps everything: nothing is due.
    """
    report = Report(dry_run=dry_run)
    if days <= 0:
        return report
    last = 0
    while True:
        batch = session.scalars(select(Case).where(due(now, days), Case.id > last).order_by(Case.id)
                                .limit(BATCH)).all()
        if not batch:
            break
        for case in batch:
            _empty(session, case, now, report, dry_run=dry_run)
        last = batch[-1].id
        if dry_run:
            session.rollback()
        else:
            session.commit()
    if not dry_run and report.cases:
        audit.record(session, "retention.applied", days=days, **report.counts())
        session.commit()
    log.info("retention (%s days)%s: %s", days, " dry run" if dry_run else "",
             ", ".join(f"{k} {v}" for k, v in report.counts().items()))
    return report


def _empty(session: Session, case: Case, now: datetime, report: Report, *, dry_run: bool) -> None:
    messages = session.scalars(select(Message).where(Message.case_id == case.id)).all()
    ids = [m.id for m in messages]
    calls = session.scalars(select(Call).where(Call.case_id == case.id, Call.recording_sid.is_not(None))).all()
    mails = session.scalar(select(func.count(RawEmail.id)).where(RawEmail.message_id.in_(ids))) if ids else 0
    report.cases += 1
    report.case_ids.append(case.id)
    report.messages += len(messages)
    report.attachments += sum(len(m.attachments or []) for m in messages)
    report.mails += mails or 0
    report.recordings += len(calls)
    if dry_run:
        return
    for message in messages:
        message.text = message.original = REMOVED
        message.html = message.subject = message.meta = None
        message.attachments = []
        if message.triage:  # the labels stay; the evidence quotes the customer
            message.triage = {**message.triage, "evidence": []}
    for call in calls:
        call.recording_sid = None  # the console can no longer fetch it from Twilio
    if ids:
        for raw in session.scalars(select(RawEmail).where(RawEmail.message_id.in_(ids))):
            session.delete(raw)
        for kept in session.scalars(select(Redaction).where(Redaction.message_id.in_(ids),
                                                            Redaction.original.is_not(None))):
            kept.original = None  # an encrypted span is the customer's words too
    case.bodies_removed_at = now
