"""Playbooks: schema validation with file/line/field, sandboxed templates, matching order, the defaults."""


import pytest
import yaml
from click.testing import CliRunner

from assist import playbooks
from assist.cli import main
from assist.playbooks import PlaybookError, decide, load_dir, parse, render
from channels.segments import segment_count

VALID = """\
id: lost-pet-now
name: Lost pet, now
priority: 100
when:
  urgency: [critical]
  category: [lost_pet]
route:
  queue: emergency
  priority: 1
  escalate: true
  first_response_minutes: 5
auto_reply:
  sms: "Hi {{ first_name }}, we're on it (case {{ case_id }}). Call out for {{ pet_name }} and check nearby yards."
  voice: "We are on it. Please keep searching nearby and keep your phone close."
  email: |
    Hi {{ first_name }},

    We are on it. Case {{ case_id }}.

    {{ team_name }}
suggestions:
  fear: ["We'll find {{ pet_name }} together{{ comma_name }}. Where was {{ pet_name }} last seen?"]
  default: ["Thanks{{ comma_name }}, we're on it."]
checklist:
  - Last seen where and when
tests:
  - text: my dog got out
    expect: {queue: emergency, priority: 1}
"""


def edited(path: str, value) -> str:
    """VALID with the field at a dotted path set to value (None deletes it)."""
    data = yaml.safe_load(VALID)
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is None:
        del target[last]
    else:
        target[last] = value
    return yaml.safe_dump(data, sort_keys=False)


def test_a_valid_playbook_parses():
    playbook = parse(VALID, "lost.yaml")
    assert playbook.id == "lost-pet-now" and playbook.when.specificity() == 2


@pytest.mark.parametrize("path, value, named", [
    ("id", "Lost Pet!", "id"),
    ("name", None, "name"),
    ("priority", 5000, "priority"),
    ("when.urgency", ["urgent"], "when.urgency.0"),
    ("when.category", ["lost_dog"], "when.category.0"),
    ("when.emotion", ["rage"], "when.emotion.0"),
    ("when.channel", ["fax"], "when.channel.0"),
    ("when.keywords", [" "], "when.keywords"),
    ("when.weather", ["rain"], "when.weather"),
    ("route.queue", "vip", "route.queue"),
    ("route.priority", 0, "route.priority"),
    ("route.first_response_minutes", -5, "route.first_response_minutes"),
    ("route", None, "route"),
    ("auto_reply.voice", None, "auto_reply.voice"),
    ("suggestions.default", [], "suggestions.default"),
    ("suggestions.rage", ["calm down"], "suggestions.rage"),
    ("tests.0.channel", "fax", "tests.0.channel"),
    ("tests.0.expect.queue", "vip", "tests.0.expect.queue"),
    ("auto_reply.sms", "Hi {{ nickname }}", "auto_reply.sms: unknown template value(s): nickname"),
    ("auto_reply.sms", "Hi {{ first_name", "auto_reply.sms: template syntax error"),
    ("auto_reply.sms", "x" * 330, "auto_reply.sms: 3 SMS segments"),
    ("suggestions.fear", ["{{ first_name.upper() }}"], "suggestions.fear.0: template uses"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_schema_errors_name_the_file_line_and_field(path, value, named):
    with pytest.raises(PlaybookError) as error:
        parse(edited(path, value), "bad.yaml")
    message = str(error.value)
    assert named in message
    assert message.startswith("bad.yaml:")
    line = int(message.split(":")[1])
    assert 1 <= line <= len(edited(path, value).splitlines())


def test_the_line_points_at_the_field():
    text = VALID.replace("  queue: emergency", "  queue: vip")
    with pytest.raises(PlaybookError, match=r"^bad.yaml:8:3: route.queue"):
        parse(text, "bad.yaml")


def test_broken_yaml_names_its_line():
    with pytest.raises(PlaybookError, match=r"^bad.yaml:2:8: not valid YAML"):
        parse("id: x\nname: a: b\npriority: 1\n", "bad.yaml")


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__ }}",
    "{{ first_name.__class__.__base__.__subclasses__() }}",
    "{{ pet_name.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ first_name['__class__'] }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{% set x = first_name %}{{ x }}",
    "{{ lipsum.__globals__ }}",
], ids=["mro", "subclasses", "globals", "popen", "getitem", "loop", "assign", "lipsum"])
def test_sandbox_escapes_are_rejected_at_validation(template):
    with pytest.raises(PlaybookError, match="auto_reply.sms"):
        parse(edited("auto_reply.sms", template), "evil.yaml")
    assert playbooks.check_template(template) is not None


REFUSED_TEMPLATES = [
    ("{% include 'fallback.yaml' %}", "template uses {% include %} at line 1"),
    ("{% extends 'base.html' %}", "template uses {% extends %} at line 1"),
    ("{% from 'macros.html' import hello %}{{ hello }}", "template uses {% from ... import %} at line 1"),
    ("Case {{ case_id + 1 }}", "template uses addition (+) at line 1"),
    ("{{ 'x' * 3000000 }}", "template uses multiplication (*) at line 1"),
    ("Hi {{ first_name ~ first_name }}", "template uses concatenation (~) at line 1"),
    ("{{ lipsum }}", "unknown template value(s): lipsum at line 1"),
    ("Hi,\n\n{{ self }}", "unknown template value(s): self at line 3"),
    ("{% for letter in first_name %}{{ letter }}{% endfor %}", "template uses a {% for %} loop at line 1"),
    ("{% if pet_name %}\n{{ first_name|center(1000000) }}{% endif %}", "template uses the filter |center at line 2"),
    ("{% set name = first_name %}{{ name }}", "template uses {% set %} at line 1"),
    ("{% if case_id > 5 %}soon{% endif %}", "template fails with the sample values: TypeError"),
]


@pytest.mark.parametrize("template, reason", REFUSED_TEMPLATES, ids=[
    "include", "extends", "from", "arithmetic", "string-multiplication", "concatenation", "lipsum", "self",
    "for", "unknown-filter", "set", "fails-on-sample"])
def test_a_template_is_refused_with_the_construct_and_its_line(template, reason):
    assert (playbooks.check_template(template) or "").startswith(reason)
    with pytest.raises(PlaybookError) as error:
        parse(edited("auto_reply.email", template), "bad.yaml")
    assert f"auto_reply.email: {reason}" in str(error.value)


def test_a_template_may_use_values_a_few_filters_and_conditions():
    template = ("Hi {{ first_name|title }}{% if pet_name != 'your pet' and not (queue == 'claims') %}, "
                "how is {{ pet_name }}?{% elif case_id %} (case {{ case_id|default('new') }}){% else %}.{% endif %}")
    assert playbooks.check_template(template) is None
    assert render(template, {"first_name": "sam", "pet_name": "Fig"}) == "Hi Sam, how is Fig?"
    assert render(template, {"first_name": "sam", "case_id": 42}) == "Hi Sam (case 42)"


def test_even_an_unvalidated_template_cannot_reach_internals():
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})


def test_a_missing_context_value_renders_its_neutral_word():
    template = "Hi {{ first_name }}, {{ sitter_name }} is with {{ pet_name }} (case {{ case_id }})."
    assert render(template, {}) == "Hi there, your sitter is with your pet (case your case)."
    assert render(template, {"first_name": "", "pet_name": None, "case_id": 42, "unknown": "x"}) == \
        "Hi there, your sitter is with your pet (case 42)."


def playbook(pid: str, priority: int, **when) -> playbooks.Playbook:
    data = yaml.safe_load(VALID)
    data.update(id=pid, priority=priority, when=when, tests=[])
    return playbooks.Playbook.model_validate(data)


def test_matching_order_is_priority_then_specificity_then_id():
    candidates = [
        playbook("broad-high", 50, category=["lost_pet"]),
        playbook("narrow-high", 50, category=["lost_pet"], urgency=["critical"]),
        playbook("top", 90, category=["lost_pet"], keywords=["chocolate"]),
        playbook("b-fallback", 0),
        playbook("a-fallback", 0),
    ]
    order = [p.id for p in playbooks.ordered(candidates)]
    assert order == ["top", "narrow-high", "broad-high", "a-fallback", "b-fallback"]
    def pick(**triage):
        return decide(candidates, channel="sms", **triage).playbook.id
    assert pick(urgency="critical", emotion="fear", category="lost_pet", text="my dog got out") == "narrow-high"
    assert pick(urgency="high", emotion="fear", category="lost_pet", text="still missing") == "broad-high"
    assert pick(urgency="critical", emotion="fear", category="lost_pet", text="ate CHOCOLATE and ran") == "top"
    assert pick(urgency="low", emotion="joy", category="general", text="thanks") == "a-fallback"


def test_a_decision_renders_the_channel_reply_and_the_emotion_suggestions():
    chosen = decide([parse(VALID)], urgency="critical", emotion="fear", category="lost_pet", channel="sms",
                    text="my dog got out", context={"first_name": "Ana", "pet_name": "Nova", "case_id": 7})
    assert chosen.auto_reply.startswith("Hi Ana, we're on it (case 7). Call out for Nova")
    assert chosen.suggestions == ["We'll find Nova together, Ana. Where was Nova last seen?"]
    assert (chosen.queue, chosen.priority, chosen.escalate, chosen.first_response_minutes) == ("emergency", 1, True, 5)
    calm = decide([parse(VALID)], urgency="critical", emotion="neutral", category="lost_pet", channel="voice",
                  text="my dog got out")
    assert calm.suggestions == ["Thanks, we're on it."]
    assert calm.auto_reply.startswith("We are on it.")


def test_without_a_fallback_an_unmatched_message_is_an_error():
    with pytest.raises(PlaybookError, match="no fallback"):
        decide([parse(VALID)], urgency="low", emotion="joy", category="general", channel="sms", text="thanks")


def test_duplicate_ids_in_a_folder_are_refused(tmp_path):
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "b.yaml").write_text(VALID)
    with pytest.raises(PlaybookError, match="b.yaml:1:1: id: 'lost-pet-now' is also the id of"):
        playbooks.load_dir(tmp_path)


def test_check_fails_on_a_failing_playbook_test(tmp_path):
    broken = edited("tests", [{"text": "thanks so much, all good", "expect": {"queue": "emergency"}}])
    (tmp_path / "lost.yaml").write_text(broken)
    fallback = yaml.safe_load(VALID)
    fallback.update(id="fallback", priority=0, when={}, tests=[])
    (tmp_path / "fallback.yaml").write_text(yaml.safe_dump(fallback))
    result = CliRunner().invoke(main, ["playbooks", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert "FAIL lost-pet-now" in result.output and "1 failed" in result.output


@pytest.mark.parametrize("template, problem", [
    ("{{ first_name }}, first make sure you're safe.", "starts with the fallback word 'there'"),
    ("{{ first_name|capitalize }}, first make sure you're safe.", "starts with the fallback word 'there'"),
    ("{{ pet_name }} is safe with us.", "starts with a lowercase word"),
    ("{{ comma_name }}, we're on it.", "starts with ','"),
], ids=["bare-there", "capitalized-there", "lowercase-start", "leading-comma"])
def test_check_fails_a_template_that_reads_wrong_for_a_contact_with_no_name(tmp_path, template, problem):
    (tmp_path / "lost.yaml").write_text(edited("suggestions.fear", [template]))
    fallback = yaml.safe_load(VALID)
    fallback.update(id="fallback", priority=0, when={}, tests=[])
    (tmp_path / "fallback.yaml").write_text(yaml.safe_dump(fallback))
    result = CliRunner().invoke(main, ["playbooks", "check", str(tmp_path)])
    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if "lost.yaml" in line]
    assert "suggestions.fear.0: " + problem in line


def test_comma_name_names_a_known_contact_and_leaves_nothing_for_an_unknown_one():
    template = "Thanks{{ comma_name }}; {{ pet_name }} is safe."
    assert render(template, {"first_name": "Ann", "pet_name": "Nova"}) == "Thanks, Ann; Nova is safe."
    assert render(template, {"first_name": ""}) == "Thanks; your pet is safe."
    assert render("Hola{{ comma_name }}:", {}, "es") == "Hola:"


def test_no_default_template_reads_wrong_for_a_contact_with_no_name():
    """Every shipped reply and suggestion, rendered with no values at all: no "there," where a name was."""
    import re

    texts = [render(text, {}, language)
             for p in load_dir()
             for language, replies in (("en", p.auto_reply), ("es", p.auto_reply.es))
             if replies is not None
             for text in (replies.sms, replies.voice, replies.email) if text is not None]
    texts += [render(text, {}) for p in load_dir() for texts_ in p.suggestions.model_dump().values()
              for text in texts_]
    wrong = [text for text in texts if re.search(r"(^|, )(there|cliente)\b(?!')", text, re.IGNORECASE)
             or not text[0].isupper()]
    assert wrong == []


def test_every_default_playbook_passes_its_tests():
    result = CliRunner().invoke(main, ["playbooks", "check"])
    assert result.exit_code == 0, result.output
    loaded = playbooks.load_dir()
    categories = {c for p in loaded for c in p.when.category}
    from assist.triage.labels import CATEGORY

    assert categories == set(CATEGORY)
    assert any(not p.when.specificity() for p in loaded)
    assert all(p.tests for p in loaded if p.when.specificity())


def test_a_spanish_message_gets_the_playbooks_spanish_reply_and_english_where_there_is_none():
    loaded = load_dir()
    emergency = decide(loaded, urgency="critical", emotion="fear", category="pet_health", channel="sms",
                       text="mi perro se comió chocolate", language="es", context={"case_id": 42})
    assert emergency.playbook.id == "toxin-ingestion"  # its keywords include "chocolate"
    assert emergency.auto_reply.startswith("Hola. Llame ya") and "Caso 42" in emergency.auto_reply
    assert segment_count(emergency.auto_reply) <= 2
    email = decide(loaded, urgency="critical", emotion="fear", category="lost_pet", channel="email", text="x",
                   language="es")
    assert email.auto_reply.startswith("Hola:\n")
    thanks = decide(loaded, urgency="low", emotion="joy", category="general", channel="sms", text="gracias",
                    language="es")
    assert thanks.auto_reply == decide(loaded, urgency="low", emotion="joy", category="general", channel="sms",
                                       text="gracias").auto_reply  # no Spanish text: English, with English words


def test_every_emergency_playbook_has_spanish_on_every_channel():
    emergencies = [p for p in load_dir() if p.route.queue == "emergency"]
    assert len(emergencies) >= 8
    assert {p.id: p.auto_reply.missing("es") for p in emergencies} == {p.id: [] for p in emergencies}


def test_playbooks_check_warns_about_missing_spanish(tmp_path):
    import shutil

    from assist.playbooks import default_dir

    for path in default_dir().glob("*.yaml"):
        shutil.copy(path, tmp_path)
    result = CliRunner().invoke(main, ["playbooks", "check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "warning: thank-you: no auto_reply.es for sms, voice, email; English is used" in result.output
    assert "warning: pet-health-emergency" not in result.output
