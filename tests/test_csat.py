"""The satisfaction question after a case is resolved, on real parts: signed webhooks, an RQ worker on the real
Redis, the sandbox's fake Twilio API, a local SMTP relay; and the answer on the case page and in the metrics."""

import xml.etree.ElementTree as ET

import pytest
from conftest import ACCOUNT_SID, TEAM_NUMBER, configure, count
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from test_email import ANN, TEAM, Sink, email, sink  # noqa: F401  (sink: the relay fixture)

from assist import background, cases, csat, db, ingest, outbox, reports, sandbox
from assist.models import Case, CaseStatus, CsatSurvey, Message, OutboxEntry, UserRole
from assist.simulate import sms_params
from channels.email import parse_email

CUSTOMER = "+15035550142"
DELAY = 30 * 60  # seconds: the default CSAT_DELAY_MINUTES


def text_in(server, body: str, sender: str = CUSTOMER):
    return server.post_signed("/twilio/sms", sms_params(from_=sender, to=TEAM_NUMBER, body=body,
                                                        account_sid=ACCOUNT_SID))


def questions(app) -> list[dict]:
    """The SMS the fake Twilio API was asked to send, oldest first: the bot answers in the webhook's TwiML, so
    these are the questions."""
    with app.app_context():
        return list(reversed(sandbox.sent_messages(background.connection())))


def the_case(session) -> Case:
    session.expire_all()
    return session.scalars(select(Case)).one()


def resolve(session, agent) -> Case:
    case = the_case(session)
    cases.set_status(session, case, CaseStatus.RESOLVED, actor=agent)
    cases.done(session, case)
    return case


def run_owed_questions(app) -> list[int | None]:
    """Run, as RQ would, every question job owed so far (whatever its time), oldest first."""
    with app.app_context():
        owed = db.session().scalars(select(OutboxEntry.id).where(OutboxEntry.target == "assist.jobs.ask_csat",
                                                                 OutboxEntry.done_at.is_(None))
                                    .order_by(OutboxEntry.id)).all()
        return [outbox.run(entry_id) for entry_id in owed]


@pytest.fixture
def agent(make_user):
    return make_user(UserRole.AGENT)


def test_the_question_goes_once_after_the_delay_however_often_the_case_is_resolved(app, live_server, session, agent,
                                                                                   clock, drain):
    text_in(live_server, "The sitter never showed up this morning and the dogs are alone")
    resolve(session, agent)
    assert run_owed_questions(app) == [None]  # too early: owed again at its time
    cases.reopen(session, the_case(session), reason="status", actor=agent)
    resolve(session, agent)  # resolved again: a second question owed
    clock.advance(DELAY)
    run_owed_questions(app)
    assert run_owed_questions(app) == []  # every run is done
    with app.app_context():
        assert csat.ask(db.session(), the_case(session).id, clock.now()) is None  # the job run once more
    drain()
    [question] = questions(app)
    assert question["to"] == CUSTOMER and question["body"].startswith(f"Your case #{the_case(session).id} is resolved")
    assert count(session, CsatSurvey) == 1


def test_a_case_reopened_before_the_delay_is_not_asked(app, live_server, session, agent, clock, drain):
    text_in(live_server, "My dog was bitten at the park by another dog, she is bleeding")
    case = resolve(session, agent)
    cases.set_status(session, case, CaseStatus.OPEN, actor=agent)  # the wound looks worse after all
    cases.done(session, case)
    clock.advance(DELAY)
    assert run_owed_questions(app) == [None]
    drain()
    assert questions(app) == [] and count(session, CsatSurvey) == 0


def test_an_opted_out_contact_is_never_asked(app, live_server, session, agent, clock, drain):
    text_in(live_server, "Our sitter never came and the cat has no food")
    resolve(session, agent)
    text_in(live_server, "STOP")
    clock.advance(DELAY)
    assert run_owed_questions(app) == [None]
    drain()
    assert questions(app) == [] and count(session, CsatSurvey) == 0


@pytest.mark.both_databases
def test_an_answer_lands_on_the_case_and_in_the_metrics_without_reopening_it(app, live_server, session, agent, clock,
                                                                             drain, client, login):
    configure(app, csat_delay_minutes=0)
    text_in(live_server, "The sitter never showed up this morning and the dogs are alone")
    case_id = resolve(session, agent).id
    drain()
    assert len(questions(app)) == 1
    before = count(session, Message)

    answer = sms_params(from_=CUSTOMER, to=TEAM_NUMBER, body="4 thanks, quick help", account_sid=ACCOUNT_SID)
    for _ in ("delivered", "redelivered"):
        reply = live_server.post_signed("/twilio/sms", answer)
        assert list(ET.fromstring(reply.content)) == []  # nobody answers a rating
    drain()
    case = the_case(session)  # still the only case
    assert case.status == CaseStatus.RESOLVED and count(session, Message) == before + 1
    survey = session.scalars(select(CsatSurvey)).one()
    rating = case.messages[-1]
    assert (survey.score, survey.comment, survey.answer_id) == (4, "thanks, quick help", rating.id)
    assert rating.triage is None and case.latest_inbound.text.startswith("The sitter")  # not an incident's words

    today = clock.now().date()
    by_queue = {s.queue: s for s in reports.satisfaction(session, today, today)}
    assert (by_queue[case.queue].asked, by_queue[case.queue].average) == (1, 4.0)
    assert (by_queue[None].answered, by_queue[None].response_rate) == (1, 1.0)

    login(UserRole.LEAD, email="lead@team.test")
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "The customer</span> rated the case 4 out of 5: “thanks, quick help”" in page
    dashboard = client.get("/dashboard/").get_data(as_text=True)
    assert f'<tr data-queue="{case.queue}"><td class="card-title">{case.queue}</td><td data-label="Asked">1</td>' \
           '<td data-label="Answered">1 (100%)</td><td data-label="Average (1–5)">4.00</td>' in dashboard


@pytest.mark.parametrize("meanwhile", ["past the answer window", "a new case open"])
def test_a_digit_is_a_message_after_the_window_or_while_another_case_is_open(app, live_server, session, agent,
                                                                              clock, drain, meanwhile):
    configure(app, csat_delay_minutes=0)
    text_in(live_server, "The sitter never showed up this morning and the dogs are alone")
    resolve(session, agent)
    drain()
    if meanwhile == "past the answer window":
        clock.advance(73 * 3600)  # CSAT_ANSWER_HOURS is 72
    else:
        text_in(live_server, "A different problem: the sitter broke a vase, how do I claim?")
    text_in(live_server, "2")
    session.expire_all()
    newer = session.scalars(select(Case).order_by(Case.id.desc())).first()
    assert count(session, Case) == 2 and newer.latest_inbound.text == "2" and newer.is_open
    assert session.scalars(select(CsatSurvey)).one().score is None


def test_a_spanish_speaking_customer_is_asked_in_spanish(app, live_server, session, agent, drain):
    configure(app, csat_delay_minutes=0)
    text_in(live_server, "Hola, la cuidadora no vino esta mañana y los perros están solos en casa")
    resolve(session, agent)
    drain()
    [question] = questions(app)
    assert question["body"].startswith("Su caso #") and "Responda con un número del 1" in question["body"]


def test_an_email_customer_is_asked_by_email_on_the_case_thread(app, session, agent, drain, sink):  # noqa: F811
    configure(app, csat_delay_minutes=0, team_email=TEAM)
    first = email("Sitter no-show", "Nobody came to walk Bella today and she has been alone since 8.")
    inbound = parse_email(first, recipient=TEAM)
    ingest.ingest(session, inbound)
    resolve(session, agent)
    drain()
    [question] = [m for m in sink.messages if "How did we do?" in m.get_content()]
    assert question["To"] == ANN and question["In-Reply-To"] == inbound.channel_id
    assert question["Subject"] == f"Re: Sitter no-show [Case #{the_case(session).id}]"


@pytest.mark.parametrize(("text", "rating"), [
    ("4", csat.Rating(4, None)),
    (" 5 thanks!", csat.Rating(5, "thanks!")),
    ("3/5 - slow at first", csat.Rating(3, "slow at first")),
    ("1.", csat.Rating(1, None)),
    ("10 minutes ago the dog ran off", None),
    ("6", None),
    ("thanks 5", None),
    ("", None),
], ids=["digit", "with-comment", "out-of-five", "full-stop", "a-number", "out-of-range", "digit-later", "empty"])
def test_a_rating_is_a_digit_1_to_5_first(text, rating):
    assert csat.rating_in(text) == rating


@pytest.mark.both_databases
def test_the_database_refuses_a_second_question_for_a_case(app, live_server, session, agent, drain):
    configure(app, csat_delay_minutes=0)
    text_in(live_server, "The sitter never showed up this morning and the dogs are alone")
    resolve(session, agent)
    drain()
    first = session.scalars(select(CsatSurvey)).one()
    session.add(CsatSurvey(case_id=first.case_id, contact_id=first.contact_id, question_id=first.question_id,
                           language="en"))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
