"""The console in a real browser: Debian's Chromium driven by Playwright against a live server."""

import io
import re
import smtplib
from email.message import EmailMessage

from conftest import ACCOUNT_SID, ARTIFACTS, TEAM_NUMBER, configure, runtime_of
from sqlalchemy import select

from assist import background, mail, members, sandbox
from assist.models import Case, Note, UserRole
from assist.simulate import free_port, sms_params

CUSTOMER = "+15035550700"
TEAM_EMAIL = "incidents@incident-team.test"


def sms(live_server, body: str, sender: str = CUSTOMER):
    return live_server.post_signed("/twilio/sms", sms_params(from_=sender, to=TEAM_NUMBER, body=body,
                                                             account_sid=ACCOUNT_SID))


def test_an_agent_works_a_case_from_a_live_queue(open_page, live_server, make_user, session, drain, app):
    ARTIFACTS.mkdir(exist_ok=True)
    members.import_csv(session, io.StringIO("member_id,role,name,phone,email,pet_name,pet_species,pet_breed,pet_notes\n"
                                            f"M-7,owner,Rosa Diaz,{CUSTOMER},,Pico,dog,beagle,\n"))
    session.commit()
    agent = make_user(UserRole.AGENT, queues=["emergency"])  # the stream carries only their queues' cases
    make_user(UserRole.LEAD)
    page = open_page(agent)
    page.wait_for_function("document.getElementById('live-state').textContent === 'live'")
    page.evaluate("window.stillTheSamePage = true")
    page.wait_for_timeout(300)  # the event stream is subscribed

    sms(live_server, "Pico just got hit by a car on Elm St, he's bleeding from his leg")
    drain()  # the worker routes the case and tells the consoles
    first = page.locator("tr.case-row").first
    first.get_by_text("hit by a car").wait_for(timeout=2000)  # live, within 2 seconds
    assert page.evaluate("window.stillTheSamePage") is True  # no reload
    badges = first.locator(".badge").all_inner_texts()
    assert "critical" in badges and "pet_health" in badges
    page.screenshot(path=str(ARTIFACTS / "queue.png"), full_page=True)

    page.keyboard.press("Enter")
    page.wait_for_url("**/cases/*")
    evidence = page.locator("ol.timeline mark.evidence").all_inner_texts()
    assert any("hit by a car" in e for e in evidence)  # the rule signal, highlighted in the message
    suggestion = page.locator("button.suggestion").first
    suggestion_text = suggestion.get_attribute("data-text")
    suggestion.click()
    assert page.input_value("#reply-text") == suggestion_text
    page.keyboard.press("End")
    page.type("#reply-text", " I'm calling you now.")
    sent_text = suggestion_text + " I'm calling you now."
    assert "segment" in page.inner_text("#segments")
    page.click("#reply-form button[type=submit]")
    page.wait_for_selector("text=Reply queued.")
    drain()
    with app.app_context():
        bodies = [m["body"] for m in sandbox.sent_messages(background.connection())]
    assert bodies == [sent_text]

    page.keyboard.press("n")
    page.keyboard.type("Called Rosa; going to the emergency vet on 5th")
    page.click("#note-form button[type=submit]")
    page.wait_for_selector("li.note >> text=emergency vet on 5th")
    drain()
    with app.app_context():
        assert [m["body"] for m in sandbox.sent_messages(background.connection())] == [sent_text]
    page.screenshot(path=str(ARTIFACTS / "case.png"), full_page=True)

    item = page.locator("form.tick input[type=checkbox]").first
    item.check()  # saved at once and in place, by case.js (the CSP allows no inline handler)
    page.wait_for_selector("#case-feedback >> text=is ticked now.")
    assert page.locator("form.tick input[type=checkbox]").first.is_checked()
    session.refresh(session.scalars(select(Case)).one())
    assert session.scalars(select(Case)).one().checklist_done == [0]

    page.evaluate("document.activeElement.blur()")  # the tick kept the focus on its box, where keys are not keys
    page.keyboard.press("e")
    page.wait_for_url("**/escalate")
    brief = page.input_value("#brief-text")
    assert "Pico" in brief and "critical" in brief and "Timeline:" in brief and "hit by a car" in brief
    page.fill("#brief-text", brief + "\nVet: Elm St emergency clinic.")
    page.click("#escalate-form button[type=submit]")
    page.wait_for_selector("li.note.brief")
    case = session.scalars(select(Case)).one()
    session.refresh(case)
    assert case.status.value == "escalated"
    assert session.scalars(select(Note).where(Note.kind == "brief")).one().text.endswith("emergency clinic.")


def test_script_payloads_render_as_text_and_never_run(open_page, live_server, make_user, session):
    from assist.ingest import ingest
    from channels.message import Channel, InboundMessage

    payload = '<script>alert("sms")</script><img src=x onerror="alert(1)">'
    sms(live_server, f"my dog got out {payload}")
    email_text = 'Subject: <img src=x onerror="alert(2)">\n\n<script>alert("email")</script> the sitter never came'
    html = ('<p onclick="alert(4)">The <b>sitter</b> never came.</p><script>alert("html")</script>'
            '<img src=x onerror="alert(5)"><a href="javascript:alert(6)">invoice</a><iframe src="/"></iframe>')
    ingest(session, InboundMessage(channel=Channel.EMAIL, channel_id="<xss@example.com>", sender="ann@example.com",
                                   recipient="team@example.com", text=email_text, original=email_text,
                                   subject='<img src=x onerror="alert(3)">', html=html))
    page = open_page(make_user(UserRole.SUPERVISOR))
    assert page.get_by_text('<script>alert("sms")</script>', exact=False).count() >= 1
    for case in session.scalars(select(Case)):
        page.goto(f"{live_server.url}/cases/{case.id}")
        for details in page.locator("details.html-part").all():
            details.locator("summary").click()  # open the sanitized HTML part
        assert "<script>alert(" in page.inner_text("ol.timeline")  # shown as text
        assert page.locator("ol.timeline img, ol.timeline iframe, ol.timeline script").count() == 0
        assert page.locator("ol.timeline [onclick], ol.timeline [onerror]").count() == 0
        for link in page.locator("ol.timeline a").all():
            assert not (link.get_attribute("href") or "").startswith("javascript:")
    page.locator("details.html-part b").first.wait_for()  # the harmless formatting survives
    page.goto(f"{live_server.url}/dashboard/")
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)


def test_suggestions_read_right_for_an_unknown_number_and_an_emails_display_name(
        open_page, live_server, make_user, session, drain, app):
    configure(app, smtp_listen=f"127.0.0.1:{free_port()}", inbound_email=(TEAM_EMAIL,), team_email=TEAM_EMAIL)
    server = mail.start_server(runtime_of(app))
    try:
        sms(live_server, "I'm so scared, my dog got out of the yard and ran off", sender="+15035550799")
        mail_from_ann = EmailMessage()
        mail_from_ann["From"], mail_from_ann["To"], mail_from_ann["Subject"] = (
            '"Ann Peters" <ann@example.com>', TEAM_EMAIL, "Sitter no-show")
        mail_from_ann.set_content("I'm so worried and scared. Nobody came to walk Bella today, she is alone since 8.")
        with smtplib.SMTP(server.hostname, server.port, timeout=10) as smtp:
            smtp.send_message(mail_from_ann)
    finally:
        server.stop()
    drain()
    page = open_page(make_user(UserRole.LEAD))
    by_channel = {}
    for case in session.scalars(select(Case)).all():
        page.goto(f"{live_server.url}/cases/{case.id}")
        buttons = page.locator("button.suggestion").all()
        by_channel[case.contact.email and "email" or "sms"] = [b.get_attribute("data-text") for b in buttons]
    assert by_channel["sms"] and by_channel["email"]
    for text in by_channel["sms"] + by_channel["email"]:
        assert text[0].isupper(), text
        assert not re.search(r"\bthere,|, there\b|\s,|,,|,\.", text), text
    assert any("Ann" in text for text in by_channel["email"])  # the display name, not "there"
    assert not any("Ann" in text for text in by_channel["sms"])
