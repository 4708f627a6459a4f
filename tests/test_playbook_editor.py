"""The playbook editor over HTTP: drafts, blocked and successful publishing, live effect, rollback, roles."""

import html
import re
import xml.etree.ElementTree as ET

import pytest
import yaml
from conftest import ACCOUNT_SID, TEAM_NUMBER, csrf_token

from assist import playbook_versions
from assist.models import Event, PlaybookVersion, UserRole
from assist.simulate import sms_params

PLAYBOOK = "lost-pet-now"


def sms_reply(live_server, sender: str, body: str = "my dog got out and ran off down the street") -> str:
    """The bot's answer to a new customer's SMS, its case number left out."""
    response = live_server.post_signed("/twilio/sms", sms_params(from_=sender, to=TEAM_NUMBER, body=body,
                                                                 account_sid=ACCOUNT_SID))
    [message] = ET.fromstring(response.content)
    return re.sub(r"\d+", "N", message.text)


def edited_yaml(session, **changes) -> str:
    data = yaml.safe_load(playbook_versions.current(session, PLAYBOOK).yaml)
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = data
        for key in parents:
            target = target[key]
        target[last] = value
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def test_draft_failing_test_blocks_publish_fix_publish_takes_effect_and_rollback_restores(
        client, login, live_server, session):
    original = sms_reply(live_server, "+15035550001")  # seeds the database from playbooks/
    supervisor = login(UserRole.SUPERVISOR)
    token = csrf_token(client.get(f"/playbooks/{PLAYBOOK}").get_data(as_text=True))

    new_reply = "NEW: we are searching with you now, {{ first_name }}. Case {{ case_id }}"
    failing_test = {"text": "my dog got out", "expect": {"queue": "support"}}
    tests = yaml.safe_load(playbook_versions.current(session, PLAYBOOK).yaml)["tests"]
    draft = edited_yaml(session, auto_reply__sms=new_reply, tests=tests + [failing_test])
    assert client.post(f"/playbooks/{PLAYBOOK}/draft", data={"yaml": draft, "csrf_token": token}).status_code == 302
    blocked = client.post(f"/playbooks/{PLAYBOOK}/publish", data={"csrf_token": token})
    assert blocked.status_code == 409
    assert "expected support" in blocked.get_data(as_text=True)
    assert sms_reply(live_server, "+15035550002") == original  # nothing changed

    fixed = edited_yaml(session, auto_reply__sms=new_reply)
    tested = client.post(f"/playbooks/{PLAYBOOK}/test", data={"yaml": fixed, "csrf_token": token})
    assert tested.status_code == 200 and "0 failed" in tested.get_data(as_text=True)
    client.post(f"/playbooks/{PLAYBOOK}/draft", data={"yaml": fixed, "csrf_token": token})
    assert client.post(f"/playbooks/{PLAYBOOK}/publish", data={"csrf_token": token}).status_code == 302
    assert sms_reply(live_server, "+15035550003").startswith("NEW: we are searching with you now")

    history = client.get(f"/playbooks/{PLAYBOOK}/history").get_data(as_text=True)
    assert "v3" in history and "in force" in history and "NEW: we are searching" in history
    assert client.post(f"/playbooks/{PLAYBOOK}/rollback/1", data={"csrf_token": token}).status_code == 302
    assert sms_reply(live_server, "+15035550004") == original

    kinds = [(e.kind, e.actor_id) for e in session.query(Event).filter(Event.kind.like("playbook.%"))]
    assert ("playbook.draft_saved", supervisor.id) in kinds
    assert ("playbook.published", supervisor.id) in kinds and ("playbook.rolled_back", supervisor.id) in kinds


def test_preview_renders_the_drafts_reply_and_route_for_a_message(client, login, live_server, session):
    sms_reply(live_server, "+15035550005")
    login(UserRole.SUPERVISOR)
    page = client.get(f"/playbooks/{PLAYBOOK}").get_data(as_text=True)
    draft = edited_yaml(session, auto_reply__sms="Preview check: is {{ pet_name }} chipped{{ comma_name }}?",
                        route__first_response_minutes=7)
    previews = {}
    for contact in ("known", "unknown"):
        response = client.post(f"/playbooks/{PLAYBOOK}/preview", data={
            "yaml": draft, "text": "the husky slipped her collar and ran off", "channel": "sms",
            "contact": contact, "csrf_token": csrf_token(page)})
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        previews[contact] = body[body.index("<h2>Preview</h2>"):]
        assert "Preview check" in body[body.index('<textarea'):]  # the previewed text stays in the editor
    known, unknown = previews["known"], previews["unknown"]
    assert "Triage: critical · " in known and " · lost_pet</p>" in known
    assert f"Playbook: <b>{PLAYBOOK}</b> → emergency, P1, 7 min" in known  # the draft's route, not the published
    assert "Reply: Preview check: is Biscuit chipped, Sam?" in known  # rendered with the sample context
    assert "Reply: Preview check: is your pet chipped?" in unknown  # and for a contact we know nothing about
    assert "Suggestions for a" in unknown and "there," not in html.unescape(unknown)
    published = playbook_versions.current(session, PLAYBOOK).yaml
    assert "Preview check" not in published  # a preview changes nothing


def test_an_invalid_draft_is_saved_but_shows_its_errors(client, login, live_server, session):
    sms_reply(live_server, "+15035550006")
    login(UserRole.SUPERVISOR)
    token = csrf_token(client.get(f"/playbooks/{PLAYBOOK}").get_data(as_text=True))
    broken = edited_yaml(session, route__queue="vip")
    client.post(f"/playbooks/{PLAYBOOK}/draft", data={"yaml": broken, "csrf_token": token})
    page = client.get(f"/playbooks/{PLAYBOOK}").get_data(as_text=True)
    assert "route.queue" in page and "draft v2" in page
    assert client.post(f"/playbooks/{PLAYBOOK}/publish", data={"csrf_token": token}).status_code == 409


@pytest.mark.parametrize("template, reason", [
    ("{% include 'fallback.yaml' %}", "template uses {% include %} at line 1"),
    ("case {{ case_id + 1 }}", "template uses addition (+) at line 1"),
], ids=["include", "arithmetic"])
def test_a_stored_draft_with_a_refused_template_shows_its_error_everywhere_instead_of_500(
        client, login, live_server, session, template, reason):
    sms_reply(live_server, "+15035550007")
    supervisor = login(UserRole.SUPERVISOR)
    draft = edited_yaml(session, auto_reply__sms=f"Hi {{{{ first_name }}}}, {template}")
    # saved before templates were checked this way: straight into the table
    session.add(PlaybookVersion(playbook_id=PLAYBOOK, number=2, yaml=draft, created_by_id=supervisor.id))
    session.commit()
    page = client.get(f"/playbooks/{PLAYBOOK}")
    assert page.status_code == 200
    assert f"auto_reply.sms: {reason}" in html.unescape(page.get_data(as_text=True))
    token = csrf_token(page.get_data(as_text=True))
    answers = {
        "test": client.post(f"/playbooks/{PLAYBOOK}/test", data={"yaml": draft, "csrf_token": token}),
        "preview": client.post(f"/playbooks/{PLAYBOOK}/preview", data={
            "yaml": draft, "text": "my dog got out", "channel": "sms", "contact": "known", "csrf_token": token}),
        "publish": client.post(f"/playbooks/{PLAYBOOK}/publish", data={"csrf_token": token}),
    }
    assert {name: answer.status_code for name, answer in answers.items()} == \
        {"test": 422, "preview": 422, "publish": 409}
    for answer in answers.values():
        assert reason in html.unescape(answer.get_data(as_text=True))
    assert playbook_versions.current(session, PLAYBOOK).number == 1


def test_publishing_a_template_that_reads_wrong_without_a_name_is_refused_with_the_reason(
        client, login, live_server, session):
    sms_reply(live_server, "+15035550008")
    supervisor = login(UserRole.SUPERVISOR)
    old_wording = edited_yaml(session, suggestions__fear=["{{ first_name }}, we'll find {{ pet_name }} together."])
    # published before the wording was checked: still in force, still answering
    session.add(PlaybookVersion(playbook_id=PLAYBOOK, number=2, yaml=old_wording, created_by_id=supervisor.id,
                                published_at=playbook_versions.current(session, PLAYBOOK).published_at))
    session.commit()
    assert sms_reply(live_server, "+15035550009").startswith("Hi there")
    token = csrf_token(client.get(f"/playbooks/{PLAYBOOK}").get_data(as_text=True))
    client.post(f"/playbooks/{PLAYBOOK}/draft", data={"yaml": old_wording, "csrf_token": token})
    refused = client.post(f"/playbooks/{PLAYBOOK}/publish", data={"csrf_token": token})
    assert refused.status_code == 409
    assert "suggestions.fear.0: starts with the fallback word 'there' when the contact's name is unknown" in \
        html.unescape(refused.get_data(as_text=True))
    assert playbook_versions.current(session, PLAYBOOK).number == 2


EDIT_ENDPOINTS = [
    ("post", f"/playbooks/{PLAYBOOK}/draft"),
    ("post", f"/playbooks/{PLAYBOOK}/test"),
    ("post", f"/playbooks/{PLAYBOOK}/preview"),
    ("post", f"/playbooks/{PLAYBOOK}/publish"),
    ("post", f"/playbooks/{PLAYBOOK}/rollback/1"),
    ("get", "/playbooks/"),
    ("get", f"/playbooks/{PLAYBOOK}"),
    ("get", f"/playbooks/{PLAYBOOK}/history"),
]


@pytest.mark.parametrize("method, path", EDIT_ENDPOINTS, ids=[f"{m}-{p.rsplit('/', 1)[-1] or 'list'}"
                                                              for m, p in EDIT_ENDPOINTS])
def test_an_agent_gets_403_on_every_playbook_endpoint(client, login, live_server, method, path):
    sms_reply(live_server, "+15035550007")
    login(UserRole.AGENT)
    token = csrf_token(client.get("/").get_data(as_text=True))
    response = getattr(client, method)(path, data={"csrf_token": token, "yaml": "id: x"})
    assert response.status_code == 403


@pytest.mark.parametrize("method, path", [m for m in EDIT_ENDPOINTS if m[0] == "post"],
                         ids=lambda v: v.rsplit("/", 1)[-1] if "/" in v else v)
def test_a_lead_may_read_but_not_edit(client, login, live_server, method, path):
    sms_reply(live_server, "+15035550008")
    login(UserRole.LEAD)
    page = client.get(f"/playbooks/{PLAYBOOK}")
    assert page.status_code == 200
    response = client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)), "yaml": "id: x"})
    assert response.status_code == 403


def test_export_writes_the_published_set(runner, session, tmp_path):
    from assist.cli import main

    result = runner.invoke(main, ["playbooks", "export", str(tmp_path)])  # the test app, via ScriptInfo
    assert result.exit_code == 0, result.output
    assert f"wrote {len(playbook_versions.published(session))} playbooks" in result.output
    from assist.playbooks import load_dir

    assert {p.id for p in load_dir(tmp_path)} == {p.id for p in playbook_versions.published(session)}


def test_the_form_view_saves_a_draft_that_can_be_published(client, login, live_server, session):
    sms_reply(live_server, "+15035550010")
    login(UserRole.SUPERVISOR)
    page = client.get(f"/playbooks/{PLAYBOOK}").get_data(as_text=True)
    assert "Form view" in page
    live = playbook_versions.current(session, PLAYBOOK)
    current = yaml.safe_load(live.yaml)
    fields = {"name": "Lost pet right now", "priority": current["priority"], "queue": "emergency",
              "route_priority": 1, "escalate": "y", "minutes": 3,
              "sms": "FORM: keep calling {{ pet_name }}, we are on it. Case {{ case_id }}",
              "voice": current["auto_reply"]["voice"], "email": current["auto_reply"]["email"],
              "csrf_token": csrf_token(page[page.index("Form view"):])}
    assert client.post(f"/playbooks/{PLAYBOOK}/fields", data=fields).status_code == 302
    draft = playbook_versions.draft(session, PLAYBOOK)
    saved = yaml.safe_load(draft.yaml)
    assert saved["name"] == "Lost pet right now" and saved["route"]["first_response_minutes"] == 3
    assert saved["tests"] == current["tests"]  # the rest of the playbook is kept
    assert client.post(f"/playbooks/{PLAYBOOK}/publish", data={"csrf_token": fields["csrf_token"]}).status_code == 302
    assert sms_reply(live_server, "+15035550011").startswith("FORM: keep calling")


def test_a_crlf_draft_is_stored_with_newlines_and_its_diff_shows_only_the_changed_line(
        client, login, live_server, session):
    sms_reply(live_server, "+15035550012")
    supervisor = login(UserRole.SUPERVISOR)
    token = csrf_token(client.get(f"/playbooks/{PLAYBOOK}").get_data(as_text=True))
    seeded = playbook_versions.current(session, PLAYBOOK).yaml
    # a version saved from a browser before line ends were normalized
    session.add(PlaybookVersion(playbook_id=PLAYBOOK, number=2, yaml=seeded.replace("\n", "\r\n"),
                                created_by_id=supervisor.id))
    session.commit()
    changed = seeded.replace("first_response_minutes: 5", "first_response_minutes: 4").replace("\n", "\r\n")
    assert client.post(f"/playbooks/{PLAYBOOK}/draft", data={"yaml": changed, "csrf_token": token}).status_code == 302
    stored = playbook_versions.draft(session, PLAYBOOK).yaml
    assert "\r" not in stored and stored == seeded.replace("first_response_minutes: 5", "first_response_minutes: 4")

    history = client.get(f"/playbooks/{PLAYBOOK}/history").get_data(as_text=True)
    newest = history[history.index("<h2>v3"):history.index("<h2>v2")]
    assert re.findall(r'class="diff-line diff-(added|removed)">.*?</span>(.*?)</span>', newest) == [
        ("removed", "  first_response_minutes: 5"), ("added", "  first_response_minutes: 4")]


def test_publish_and_rollback_are_confirmed_with_the_diff_that_takes_effect(client, login, live_server, session):
    sms_reply(live_server, "+15035550013")
    login(UserRole.SUPERVISOR)
    token = csrf_token(client.get(f"/playbooks/{PLAYBOOK}").get_data(as_text=True))
    draft = playbook_versions.current(session, PLAYBOOK).yaml.replace("priority: 800", "priority: 801")
    client.post(f"/playbooks/{PLAYBOOK}/draft", data={"yaml": draft, "csrf_token": token})

    editor = client.get(f"/playbooks/{PLAYBOOK}").get_data(as_text=True)
    assert f'href="/playbooks/{PLAYBOOK}/publish"' in editor  # a link to the confirmation, not a direct post
    confirm = client.get(f"/playbooks/{PLAYBOOK}/publish").get_data(as_text=True)
    assert re.findall(r"diff-(added|removed)\">.*?</span>(.*?)</span>", confirm) == [
        ("removed", "priority: 800"), ("added", "priority: 801")]
    assert f'action="/playbooks/{PLAYBOOK}/publish"' in confirm
    assert playbook_versions.current(session, PLAYBOOK).number == 1  # looking changes nothing
    client.post(f"/playbooks/{PLAYBOOK}/publish", data={"csrf_token": token})

    confirm = client.get(f"/playbooks/{PLAYBOOK}/rollback/1").get_data(as_text=True)
    assert re.findall(r"diff-(added|removed)\">.*?</span>(.*?)</span>", confirm) == [
        ("removed", "priority: 801"), ("added", "priority: 800")]
    assert f'action="/playbooks/{PLAYBOOK}/rollback/1"' in confirm
    assert client.get(f"/playbooks/{PLAYBOOK}/rollback/9").status_code == 404


def test_an_error_names_its_line_and_column_and_marks_the_line(client, login, live_server, session):
    sms_reply(live_server, "+15035550014")
    login(UserRole.SUPERVISOR)
    token = csrf_token(client.get(f"/playbooks/{PLAYBOOK}").get_data(as_text=True))
    broken = playbook_versions.current(session, PLAYBOOK).yaml.replace("  queue: emergency", "  queue: vip")
    line = broken.splitlines().index("  queue: vip") + 1
    page = client.post(f"/playbooks/{PLAYBOOK}/test", data={"yaml": broken, "csrf_token": token})
    assert page.status_code == 422
    body = page.get_data(as_text=True)
    assert f'data-line="{line}">line {line}, column 3</a>: <code>route.queue:' in body
    assert re.findall(r'<li class="marked">(\d+)</li>', body) == [str(line)]


def test_the_form_view_edits_suggestions_and_the_checklist_and_keeps_comments(client, login, live_server, session):
    sms_reply(live_server, "+15035550015")
    login(UserRole.SUPERVISOR)
    token = csrf_token(client.get(f"/playbooks/{PLAYBOOK}").get_data(as_text=True))
    commented = playbook_versions.current(session, PLAYBOOK).yaml.replace(
        "priority: 800\n", "priority: 800  # above the other lost-pet playbooks\n", 1).replace(
        "checklist:\n", "# the agent ticks these off on the case page\nchecklist:\n")
    client.post(f"/playbooks/{PLAYBOOK}/draft", data={"yaml": commented, "csrf_token": token})
    page = client.get(f"/playbooks/{PLAYBOOK}").get_data(as_text=True)
    form = page[page.index("<h2>Form view</h2>"):]
    assert "Suggestions when fear" in form and "Checklist (one step a line)" in form
    current = yaml.safe_load(commented)
    fields = {"name": current["name"], "priority": current["priority"], "queue": "emergency", "route_priority": 1,
              "escalate": "y", "minutes": 5, **{f: current["auto_reply"][f] for f in ("sms", "voice", "email")},
              "suggest_default": "\r\n".join(current["suggestions"]["default"]),
              "suggest_fear": "\r\n".join(current["suggestions"]["fear"] + ["Is {{ pet_name }} wearing a tag?"]),
              "suggest_joy": "", "checklist": "Ask where the pet was last seen\r\n\r\nAsk for a photo\r\n",
              "csrf_token": csrf_token(form)}
    assert client.post(f"/playbooks/{PLAYBOOK}/fields", data=fields).status_code == 302
    saved = playbook_versions.draft(session, PLAYBOOK).yaml
    assert "priority: 800  # above the other lost-pet playbooks\n" in saved
    assert "# the agent ticks these off on the case page\nchecklist:\n" in saved
    document = yaml.safe_load(saved)
    assert list(document) == list(current)  # the key order too
    assert document["suggestions"]["fear"][-1] == "Is {{ pet_name }} wearing a tag?"
    assert "joy" not in document["suggestions"]
    assert document["checklist"] == ["Ask where the pet was last seen", "Ask for a photo"]
    assert document["suggestions"]["anger"] == current["suggestions"]["anger"]  # not sent: left as it was


def test_a_playbook_is_created_from_a_copy_and_a_retired_one_leaves_matching_and_the_gate(
        client, login, live_server, session):
    original = sms_reply(live_server, "+15035550016")
    supervisor = login(UserRole.SUPERVISOR)
    token = csrf_token(client.get("/playbooks/").get_data(as_text=True))
    created = client.post("/playbooks/new", data={"playbook_id": "lost-pet-night", "name": "Lost pet at night",
                                                  "template": PLAYBOOK, "csrf_token": token})
    assert created.status_code == 302 and created.location.endswith("/playbooks/lost-pet-night")
    first = playbook_versions.draft(session, "lost-pet-night")
    assert first.number == 1 and first.published_at is None
    assert "lost-pet-night" in client.get("/playbooks/").get_data(as_text=True)  # listed though never published
    taken = client.post("/playbooks/new", data={"playbook_id": PLAYBOOK, "name": "Again", "template": PLAYBOOK,
                                                "csrf_token": token})
    assert taken.status_code == 409

    # the copy, first in order: the original's tests now reach it, so the gate refuses it
    copy = first.yaml.replace("priority: 800", "priority: 900").replace("Search nearby now", "NIGHT: search now")
    client.post("/playbooks/lost-pet-night/draft", data={"yaml": copy, "csrf_token": token})
    blocked = client.post("/playbooks/lost-pet-night/publish", data={"csrf_token": token})
    assert blocked.status_code == 409 and "playbook: expected lost-pet-now, got lost-pet-night" in \
        blocked.get_data(as_text=True)

    assert client.post(f"/playbooks/{PLAYBOOK}/retire", data={"csrf_token": token}).status_code == 302
    assert PLAYBOOK not in {p.id for p in playbook_versions.published(session)}
    assert f"<code>{PLAYBOOK}</code></a> · retired" in client.get("/playbooks/").get_data(as_text=True)
    assert client.post("/playbooks/lost-pet-night/publish", data={"csrf_token": token}).status_code == 302
    assert sms_reply(live_server, "+15035550017").startswith("Hi there. NIGHT: search now")

    assert client.post("/playbooks/lost-pet-night/retire", data={"csrf_token": token}).status_code == 302
    assert client.post(f"/playbooks/{PLAYBOOK}/restore", data={"csrf_token": token}).status_code == 302
    assert sms_reply(live_server, "+15035550018") == original
    kinds = {(e.kind, e.data.get("playbook")) for e in session.query(Event).filter(Event.actor_id == supervisor.id)}
    assert {("playbook.created", "lost-pet-night"), ("playbook.retired", PLAYBOOK),
            ("playbook.retired", "lost-pet-night"), ("playbook.restored", PLAYBOOK)} <= kinds


def test_the_last_fallback_cannot_be_retired(client, login, live_server, session):
    sms_reply(live_server, "+15035550019")
    login(UserRole.SUPERVISOR)
    token = csrf_token(client.get("/playbooks/").get_data(as_text=True))
    refused = client.post("/playbooks/fallback/retire", data={"csrf_token": token})
    assert refused.status_code == 409
    assert "fallback" in {p.id for p in playbook_versions.published(session)}


def test_a_lead_reads_playbooks_without_any_edit_control(client, login, live_server, session):
    sms_reply(live_server, "+15035550020")
    login(UserRole.LEAD)
    pages = [client.get(path).get_data(as_text=True)
             for path in ("/playbooks/", f"/playbooks/{PLAYBOOK}", f"/playbooks/{PLAYBOOK}/history")]
    for page in pages:
        content = page[page.index('<main'):]
        assert "<form" not in content and "<button" not in content and "/rollback/" not in content
    assert re.search(r'<textarea[^>]*readonly[^>]*name="yaml"|<textarea[^>]*name="yaml"[^>]*readonly', pages[1])
    assert client.get(f"/playbooks/{PLAYBOOK}/publish").status_code == 403


def test_the_command_line_retires_and_restores_a_playbook_audited(runner, session):
    from assist.cli import main

    retired = runner.invoke(main, ["playbooks", "retire", PLAYBOOK])
    assert retired.exit_code == 0, retired.output
    assert PLAYBOOK not in {p.id for p in playbook_versions.published(session)}
    assert runner.invoke(main, ["playbooks", "retire", PLAYBOOK]).exit_code == 1  # not in force any more
    assert runner.invoke(main, ["playbooks", "retire", "fallback"]).exit_code == 1  # the only fallback stays
    restored = runner.invoke(main, ["playbooks", "restore", PLAYBOOK])
    assert restored.exit_code == 0, restored.output
    assert PLAYBOOK in {p.id for p in playbook_versions.published(session)}
    events = [(e.kind, e.data["playbook"], e.actor_id)
              for e in session.query(Event).filter(Event.kind.in_(["playbook.retired", "playbook.restored"]))
              .order_by(Event.id)]
    assert events == [("playbook.retired", PLAYBOOK, None), ("playbook.restored", PLAYBOOK, None)]
