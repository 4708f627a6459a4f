"""Routing by the playbooks: queue, priority, one auto-reply per case and playbook, the first-response SLA."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ACCOUNT_SID, AFTER_HOURS, AT_ANY_HOUR, IN_HOURS, TEAM_NUMBER, business_time, configure
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from assist import background, cases, outbound, playbook_versions, routing
from assist.ingest import ingest
from assist.models import Case, CaseStatus, Direction, Event, Message, UserRole
from assist.simulate import sms_params
from channels.message import Channel, InboundMessage

pytestmark = [*AT_ANY_HOUR, pytest.mark.both_databases]

CUSTOMER = "+15035550177"


def sms(body: str) -> dict:
    return sms_params(from_=CUSTOMER, to=TEAM_NUMBER, body=body, account_sid=ACCOUNT_SID)


def replies(response) -> list[str]:
    return [m.text for m in ET.fromstring(response.content)]


def test_a_critical_sms_is_routed_to_the_emergency_queue_with_its_playbook_reply(live_server, session):
    response = live_server.post_signed("/twilio/sms", sms("my dog just ate a whole bar of dark chocolate!!"))
    [reply] = replies(response)
    case = session.scalars(select(Case)).one()
    assert (case.queue, case.priority, case.urgency) == ("emergency", 1, "critical")
    bot = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)).one()
    assert bot.playbook_id == case.playbook_id and bot.text == reply
    assert case.first_response_due_at == case.created_at + timedelta(
        minutes=next(p for p in playbook_versions.published(session)
                     if p.id == case.playbook_id).route.first_response_minutes)
    assert session.scalars(select(Event).where(Event.kind == "case.routed")).one().data["queue"] == "emergency"


def test_a_follow_up_on_an_open_case_gets_no_second_auto_reply(live_server, session):
    first = live_server.post_signed("/twilio/sms", sms("the sitter never showed up and my flight leaves in an hour"))
    second = live_server.post_signed("/twilio/sms", sms("still no sign of the sitter, she isn't answering"))
    assert len(replies(first)) == 1
    assert replies(second) == []
    assert len(session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)).all()) == 1


def test_a_worse_follow_up_reroutes_the_case_and_answers_from_the_new_playbook(live_server, session):
    live_server.post_signed("/twilio/sms", sms("quick question about how payouts work"))
    case = session.scalars(select(Case)).one()
    assert case.queue == "support"
    worse = live_server.post_signed("/twilio/sms", sms("wait, the dog just got out the front door and ran off!"))
    session.expire_all()
    case = session.get(Case, case.id)
    assert (case.queue, case.priority, case.urgency) == ("emergency", 1, "critical")
    assert len(replies(worse)) == 1


def test_automated_senders_are_never_answered(session):
    automated = InboundMessage(channel=Channel.SMS, channel_id="SMauto", sender=CUSTOMER, recipient=TEAM_NUMBER,
                               text="Out of office: back Monday", original="Out of office: back Monday",
                               automated=True)
    result = ingest(session, automated)
    assert result.reply is None and result.case_id is not None


def test_templates_get_the_members_context(session):
    from io import StringIO

    from assist import members

    members.import_csv(session, StringIO("member_id,role,name,phone,email,pet_name,pet_species,pet_breed,pet_notes\n"
                                         f"M-9,owner,Rosa Diaz,{CUSTOMER},,Pico,dog,,\n"))
    session.commit()
    message = InboundMessage(channel=Channel.SMS, channel_id="SMctx", sender=CUSTOMER, recipient=TEAM_NUMBER,
                             text="my dog got out", original="my dog got out")
    ingest(session, message)
    case = session.scalars(select(Case)).one()
    context = routing.context_of(session, case)
    assert context["first_name"] == "Rosa" and context["pet_name"] == "Pico" and context["case_id"] == case.id


def scheduled_sla_job(app, case) -> tuple[ScheduledJobRegistry, str, datetime]:
    """The case's scheduled SLA check on the real Redis: its registry, id and (real) run time."""
    with app.app_context():
        registry = ScheduledJobRegistry(queue=background.queue("critical"))
        [job_id] = registry.get_job_ids()
        at = registry.get_scheduled_time(job_id)
    return registry, job_id, at if at.tzinfo else at.replace(tzinfo=UTC)


def run_now(app, registry, job_id) -> None:
    """Make RQ's scheduler take a scheduled job at once (the real time it waits for has come)."""
    from rq.job import Job

    with app.app_context():
        job = Job.fetch(job_id, connection=background.connection())
        registry.schedule(job, datetime.now(UTC) - timedelta(seconds=1))


def test_an_sla_breach_escalates_through_a_real_scheduled_rq_job(app, live_server, session, drain, make_user, clock):
    lead = make_user(UserRole.LEAD)
    live_server.post_signed("/twilio/sms", sms("my dog just got hit by a car, he's not moving"))
    drain()  # the worker routes what follows the webhook's commit, and owes the SLA check
    case = session.scalars(select(Case)).one()
    registry, job_id, at = scheduled_sla_job(app, case)
    assert job_id.startswith(f"sla-{case.id}-")
    # RQ waits in real time: the job runs when the service's clock reaches the due time, never before.
    wait = (case.first_response_due_at - clock.now()).total_seconds()
    assert 0 <= (at - datetime.now(UTC)).total_seconds() - wait <= 2

    clock.set(case.first_response_due_at + timedelta(seconds=1))  # time passes...
    run_now(app, registry, job_id)  # ...for RQ's scheduler too
    drain()

    session.expire_all()
    case = session.get(Case, case.id)
    assert case.status == CaseStatus.ESCALATED and case.sla_breached_at is not None
    assert case.assignee_id == lead.id  # escalated to the lead
    event = session.scalars(select(Event).where(Event.kind == "case.sla_breached")).one()
    assert event.case_id == case.id and event.data["queue"] == "emergency" and event.data["lead_id"] == lead.id
    alert = session.scalars(select(Event).where(Event.kind == "case.lead_alerted")).one()
    assert alert.data["lead_id"] == lead.id  # the emergency playbook escalates at once, too


def test_an_sla_check_that_runs_early_runs_again_and_escalates_at_the_due_time(app, live_server, session, drain,
                                                                                 clock):
    live_server.post_signed("/twilio/sms", sms("my dog just got hit by a car, he's not moving"))
    drain()  # the worker routes what follows the webhook's commit, and owes the SLA check
    case = session.scalars(select(Case)).one()
    registry, job_id, _ = scheduled_sla_job(app, case)
    clock.set(case.first_response_due_at - timedelta(seconds=2))
    run_now(app, registry, job_id)  # RQ's whole seconds: the check runs before the due time
    drain(soon=0)  # the early run only; the check it scheduled is 3 s away
    session.expire_all()
    assert session.get(Case, case.id).status == CaseStatus.NEW

    drain()  # RQ's scheduler runs the new check at the due time
    session.expire_all()
    case = session.get(Case, case.id)
    assert case.status == CaseStatus.ESCALATED and case.sla_breached_at >= case.first_response_due_at


def sweep(app, drain) -> None:
    """Let the worker's periodic jobs (RQ's CronScheduler, as `assist worker` runs them) enqueue, then work."""
    from assist.worker import periodic_jobs

    with app.app_context():
        enqueued = [job.func_name for job in periodic_jobs(background.connection()).enqueue_jobs()]
    assert "assist.jobs.sweep_overdue_cases" in enqueued  # with the daily retention job, which has nothing to do
    drain()


def test_the_sweep_escalates_a_case_whose_sla_check_was_lost(app, live_server, session, drain, clock):
    live_server.post_signed("/twilio/sms", sms("my dog just got hit by a car, he's not moving"))
    drain()  # the worker routes what follows the webhook's commit, and owes the SLA check
    case = session.scalars(select(Case)).one()
    registry, job_id, _ = scheduled_sla_job(app, case)
    with app.app_context():
        registry.remove(job_id, delete_job=True)  # lost: Redis was down when it was to be scheduled
    clock.set(case.first_response_due_at - timedelta(seconds=5))
    sweep(app, drain)
    session.expire_all()
    assert session.get(Case, case.id).status == CaseStatus.NEW  # not due yet

    clock.advance(60)  # the next minute's sweep
    sweep(app, drain)
    session.expire_all()
    case = session.get(Case, case.id)
    assert case.status == CaseStatus.ESCALATED and case.sla_breached_at >= case.first_response_due_at
    assert len(session.scalars(select(Event).where(Event.kind == "case.sla_breached")).all()) == 1
    sweep(app, drain)  # idempotent: a breached case is not escalated again
    assert len(session.scalars(select(Event).where(Event.kind == "case.sla_breached")).all()) == 1


def test_a_case_answered_only_by_a_failed_send_is_escalated(app, live_server, session, drain, clock, make_user):
    from assist import sandbox

    live_server.post_signed("/twilio/sms", sms("my dog just got hit by a car, he's not moving"))
    agent = make_user()
    case = session.scalars(select(Case)).one()
    reply = outbound.create_reply(session, case, "Calling you now.", author=agent)
    cases.done(session, case, send=reply)
    assert not routing.check_first_response(session, case, case.first_response_due_at + timedelta(seconds=1))
    with app.app_context():
        sandbox.fail_next(background.connection(), 10)  # Twilio keeps failing: every try of the send fails
    drain()
    session.expire_all()
    assert session.get(Message, reply.id).delivery_status.value == "failed"
    assert session.get(Case, case.id).first_response_at is None
    clock.set(case.first_response_due_at + timedelta(seconds=1))
    sweep(app, drain)
    session.expire_all()
    assert session.get(Case, case.id).status == CaseStatus.ESCALATED


def test_a_case_answered_in_time_is_not_escalated(app, live_server, session, make_user, drain):
    live_server.post_signed("/twilio/sms", sms("my dog just got hit by a car, he's not moving"))
    agent = make_user()
    case = session.scalars(select(Case)).one()
    reply = outbound.create_reply(session, case, "I'm calling you now.", author=agent)  # the first response
    cases.done(session, case, send=reply)
    drain()
    session.expire_all()
    case = session.get(Case, case.id)
    assert case.first_response_at == reply.created_at  # answered when written, once Twilio took it
    late = case.first_response_due_at + timedelta(seconds=1)
    assert not routing.check_first_response(session, case, late)
    assert case.status != CaseStatus.ESCALATED and case.sla_breached_at is None


def _ingest_sms(session, sid: str, text: str, sender: str = CUSTOMER):
    return ingest(session, InboundMessage(channel=Channel.SMS, channel_id=sid, sender=sender, recipient=TEAM_NUMBER,
                                          text=text, original=text))


def test_cases_go_to_the_least_loaded_member_of_their_queue_with_room(app, session, clock, drain):
    from assist.models import UserRole
    from assist.users import create_user

    clock.set(business_time(IN_HOURS))  # staffed: no on-call rule
    create_user(session, email="busy@team.test", name="Busy", role=UserRole.AGENT, password="x" * 12,
                       queues=["emergency"], capacity=1)
    create_user(session, email="free@team.test", name="Free", role=UserRole.AGENT, password="x" * 12,
                       queues=["emergency"], capacity=2)
    create_user(session, email="claims@team.test", name="Claims", role=UserRole.AGENT, password="x" * 12,
                queues=["claims"], capacity=9)
    session.commit()
    texts = ["my dog just got hit by a car", "the cat ate rat poison", "my dog got out and ran into the road",
             "the puppy is having a seizure"]
    for i, text in enumerate(texts):
        _ingest_sms(session, f"SMa{i}", text, sender=f"+1503555020{i}")
        drain()  # assigning is left to the worker, after the commit
    session.expire_all()
    assignees = [c.assignee.name if c.assignee else None for c in session.scalars(select(Case).order_by(Case.id))]
    assert [c.queue for c in session.scalars(select(Case).order_by(Case.id))] == ["emergency"] * 4
    # Busy holds one (its capacity); Free takes two; the fourth waits in the queue.
    assert assignees == ["Busy", "Free", "Free", None]
    assert session.scalars(select(Event).where(Event.kind == "case.assigned")).first().data["reason"] == "queue"


def test_after_hours_a_critical_case_goes_to_the_on_call_person(app, session, clock, drain):
    from assist.models import UserRole
    from assist.users import create_user

    clock.set(business_time(AFTER_HOURS))
    create_user(session, email="agent@team.test", name="Day Agent", role=UserRole.AGENT, password="x" * 12,
                queues=["emergency", "support"])
    create_user(session, email="oncall@team.test", name="On Call", role=UserRole.LEAD, password="x" * 12,
                on_call=True)
    session.commit()
    _ingest_sms(session, "SMnight", "the dog I'm walking just bit a child, there's blood", sender="+15035550301")
    _ingest_sms(session, "SMday", "how do I change my payout account?", sender="+15035550302")
    drain()
    session.expire_all()
    critical, question = session.scalars(select(Case).order_by(Case.id))
    assert critical.assignee.name == "On Call"
    assert question.assignee.name == "Day Agent"  # not critical: the queue's member, as in the day


def test_after_hours_is_read_in_the_business_time_zone(app):
    configure(app, business_hours="09:00-17:00", business_timezone="America/Chicago")
    with app.app_context():
        noon_chicago = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)  # 12:00 in Chicago
        assert not routing.after_hours(noon_chicago)
        assert routing.after_hours(datetime(2026, 11, 26, 3, 0, tzinfo=UTC))


def test_the_case_list_puts_the_most_urgent_first_then_the_longest_waiting(session, client, login):
    for i, text in enumerate(["how do I change my payout account?", "my dog got out and ran off",
                              "I was charged twice for the booking, please refund",
                              "the cat ate rat poison"]):
        _ingest_sms(session, f"SMo{i}", text, sender=f"+1503555040{i}")
    from assist.cases import queue_page

    cases = queue_page(session).cases
    assert [c.urgency for c in cases][:2] == ["critical", "critical"]
    assert cases[0].last_inbound_at <= cases[1].last_inbound_at
    login(UserRole.LEAD)
    page = client.get("/").get_data(as_text=True)
    assert page.index("my dog got out") < page.index("the cat ate rat poison") < page.index("charged twice")


def test_a_breach_shows_in_the_console(session, client, login):
    _ingest_sms(session, "SMb", "my dog just got hit by a car")
    case = session.scalars(select(Case)).one()
    routing.check_first_response(session, case, case.first_response_due_at + timedelta(minutes=1))
    session.commit()
    login(queues=[case.queue])
    header = client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert '<p class="sla sla-breached" id="sla">' in header and "SLA breached" in header
    assert "SLA breached" in client.get("/?status=escalated").get_data(as_text=True)
