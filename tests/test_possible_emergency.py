"""Triage's uncertain band: a possible emergency is not silently normal — the bot asks one question, the SLA is
as for high urgency, the console shows it, and a YES raises the case to critical at once."""

import dataclasses
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from conftest import ACCOUNT_SID, TEAM_NUMBER
from sqlalchemy import select

from assist import ingest, triage
from assist.models import Case, Event, Message
from assist.simulate import sms_params

CUSTOMER = "+15035550166"
UNSURE = "the cat has been hiding under the bed since this morning and won't come out"


@pytest.fixture
def unsure(monkeypatch):
    """Triage as it is, except that this one message lands in the uncertain band (which messages do depends
    on the trained model; the flow after it does not)."""
    real = triage.classify

    def classify(text, channel="sms"):
        result = real(text, channel)
        if text == UNSURE:
            return dataclasses.replace(result, urgency="normal", possible_emergency=True, critical_probability=0.04)
        return result

    monkeypatch.setattr(ingest.triage, "classify", classify)


def sms(live_server, body: str):
    return live_server.post_signed("/twilio/sms", sms_params(from_=CUSTOMER, to=TEAM_NUMBER, body=body,
                                                             account_sid=ACCOUNT_SID))


def test_a_possible_emergency_gets_one_question_and_a_high_urgency_sla(unsure, live_server, session, clock):
    [reply] = ET.fromstring(sms(live_server, UNSURE).content)
    assert reply.text == ingest.DANGER_QUESTION["en"]
    case = session.scalars(select(Case)).one()
    assert case.danger_asked_at is not None and case.urgency == "normal"
    assert case.first_response_due_at <= clock.now() + timedelta(minutes=30)
    assert session.scalars(select(Event).where(Event.kind == "case.danger_asked")).one()
    again = sms(live_server, "also she hasn't eaten")
    assert ingest.DANGER_QUESTION["en"] not in again.text  # asked once per case


def test_yes_raises_the_case_to_critical_and_routes_it_to_emergency(unsure, live_server, session):
    sms(live_server, UNSURE)
    answer = sms(live_server, "YES")
    case = session.scalars(select(Case)).one()
    assert (case.urgency, case.queue, case.priority) == ("critical", "emergency", 1)
    yes = session.scalars(select(Message).where(Message.text == "YES")).one()
    assert yes.keyword is None and yes.triage["urgency"] == "critical"
    assert yes.triage["evidence"][0]["source"] == "answer"
    assert session.scalars(select(Event).where(Event.kind == "case.danger_confirmed")).one()
    [reply] = ET.fromstring(answer.content)
    assert "call" in reply.text.lower()  # the emergency playbook's answer, not the help or opt-in text


def test_a_spanish_possible_emergency_is_asked_in_spanish_and_si_confirms(monkeypatch, live_server, session):
    real = triage.classify
    unsure_es = "la gata está escondida debajo de la cama desde la mañana y no quiere salir"

    def classify(text, channel="sms"):
        result = real(text, channel)
        return dataclasses.replace(result, urgency="normal", possible_emergency=True) if text == unsure_es else result

    monkeypatch.setattr(ingest.triage, "classify", classify)
    [reply] = ET.fromstring(sms(live_server, unsure_es).content)
    assert reply.text == ingest.DANGER_QUESTION["es"]
    sms(live_server, "Sí")
    assert session.scalars(select(Case)).one().urgency == "critical"


def test_yes_without_a_question_is_the_carriers_opt_in(live_server, session):
    sms(live_server, "my sitter cancelled for next week, can you find another?")
    sms(live_server, "YES")
    case = session.scalars(select(Case)).one()
    assert case.urgency != "critical"
    assert session.scalars(select(Message).where(Message.text == "YES")).one().keyword == "opt_in"


def test_the_console_shows_a_possible_emergency(unsure, live_server, session, client, login):
    sms(live_server, UNSURE)
    case = session.scalars(select(Case)).one()
    login(queues=[case.queue])
    assert "possible emergency" in client.get("/").get_data(as_text=True)
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "possible emergency" in page and "asked whether anyone is in danger" in page
