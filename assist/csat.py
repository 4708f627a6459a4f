"""Customer satisfaction: one question (1–5) after a case is resolved, and its answer filed on the case.

Resolving a case owes the question CSAT_DELAY_MINUTES later (owe_question, in the resolving transaction). The
job (jobs.ask_csat, then ask() here) asks only if the case is still resolved by then, never an opted-out
contact or one without an address, on the customer's channel and in their language, through the outbox: so
it survives failures, and the survey's unique case_id makes a second question for a case fail in the
database whatever runs twice. A reply that is a digit 1–5 (and maybe a comment) within CSAT_ANSWER_HOURS is
the rating: ingest files it on its case, which stays resolved, and nobody answers it.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assist import audit, outbound, outbox, runtime
from assist.errors import NotSendable
from assist.models import OPEN_STATUSES, Case, CaseStatus, Contact, CsatSurvey, Direction, Message

QUESTION = {
    "en": "Your case #{case_id} is resolved. How did we do? Reply with a number from 1 (poor) to 5 (great).",
    "es": "Su caso #{case_id} está resuelto. ¿Cómo lo hicimos? Responda con un número del 1 (mal) al 5 "
          "(excelente).",
}
FALLBACK_LANGUAGE = "en"
# "4", "4/5", "5 thanks!", "3 - slow at first": the digit alone, then whatever the customer added.
RATING = re.compile(r"\s*([1-5])(?![0-9])(?:\s*/\s*5)?[\s.,;:!)-]*(.*)", re.DOTALL)
MAX_COMMENT = 1000  # characters of a rating's comment kept


@dataclass(frozen=True)
class Rating:
    score: int
    comment: str | None


def owe_question(session: Session, case: Case, *, resolved_at: datetime) -> None:
    """Owe the question of a case resolved at resolved_at, CSAT_DELAY_MINUTES from then."""
    outbox.job(session, "assist.jobs.ask_csat", case.id, at=resolved_at + _delay())


def _delay() -> timedelta:
    return timedelta(minutes=runtime.settings().csat_delay_minutes)


def ask(session: Session, case_id: int, now: datetime) -> Message | None:
    """Store the question of a resolved case and owe its send (committed); return it, or None when the case
    is not to be asked (anymore): reopened, asked already, opted out, or nobody to write to."""
    case = session.get(Case, case_id, with_for_update=True)  # two runs at once: the second sees the first's
    if case is None or case.status != CaseStatus.RESOLVED or case.resolved_at is None or case.contact.opted_out \
            or _asked(session, case):
        session.commit()
        return None
    due = case.resolved_at + _delay()
    if due > now:  # resolved again since this run was owed, or RQ's whole seconds ran it early
        outbox.job(session, "assist.jobs.ask_csat", case.id, at=due)
        outbox.commit(session)
        return None
    language = language_of(case)
    try:
        question = outbound.create_reply(session, case, QUESTION[language].format(case_id=case.id))
    except NotSendable:  # a caller who withheld their number: no channel to ask on
        session.commit()
        return None
    question.meta = {"csat": True}
    session.add(CsatSurvey(case=case, contact_id=case.contact_id, question=question, language=language,
                           asked_at=now))
    audit.record(session, "case.csat_asked", case=case, message=question, language=language)
    outbound.queue_send(session, question)
    try:
        session.flush()
    except IntegrityError:  # another run asked in the meantime (SQLite takes no row lock)
        session.rollback()
        return None
    outbox.commit(session)
    return question


def _asked(session: Session, case: Case) -> bool:
    return session.scalar(select(CsatSurvey.id).where(CsatSurvey.case_id == case.id)) is not None


def language_of(case: Case) -> str:
    """The language of the customer's latest message that triage gave one, if the question has it."""
    spoken = next((m.language for m in reversed(case.messages) if m.direction == Direction.INBOUND and m.language),
                  None)
    return spoken if spoken in QUESTION else FALLBACK_LANGUAGE


def rating_in(text: str) -> Rating | None:
    """The rating a reply gives, if it starts with a digit 1–5 (and is not, say, "10 minutes ago")."""
    found = RATING.fullmatch(text)
    if found is None:
        return None
    comment = " ".join(found.group(2).split())[:MAX_COMMENT]
    return Rating(int(found.group(1)), comment or None)


def waiting(session: Session, contact: Contact, now: datetime) -> CsatSurvey | None:
    """The contact's latest unanswered question, asked within CSAT_ANSWER_HOURS, of a case still resolved;
    none while another case of theirs is open (their "2" then answers an agent's "how many dogs?")."""
    since = now - timedelta(hours=runtime.settings().csat_answer_hours)
    busy = select(Case.id).where(Case.contact_id == contact.id, Case.status.in_(OPEN_STATUSES)).exists()
    return session.scalars(select(CsatSurvey).join(Case, CsatSurvey.case_id == Case.id)
                           .where(CsatSurvey.contact_id == contact.id, CsatSurvey.answered_at.is_(None),
                                  CsatSurvey.asked_at >= since, Case.status == CaseStatus.RESOLVED, ~busy)
                           .order_by(CsatSurvey.asked_at.desc()).limit(1)).first()


def record_answer(session: Session, survey: CsatSurvey, answer: Message, rating: Rating, now: datetime) -> None:
    """File the customer's rating on the survey and in the case's activity trail."""
    survey.score, survey.comment, survey.answer_id, survey.answered_at = rating.score, rating.comment, answer.id, now
    audit.record(session, "case.csat_answered", case=survey.case, message=answer, score=rating.score,
                 comment=rating.comment)
