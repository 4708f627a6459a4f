"""Playbooks: validated YAML rules that choose the bot's first reply, agents' suggestions and the route."""

import functools
import importlib.resources
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assist.triage.labels import Category, Emotion, Queue, Urgency
from channels.message import Channel
from channels.segments import segment_count


def default_dir() -> Path:
    """The playbooks shipped with the package (the checkout's playbooks/ in an editable install)."""
    return Path(str(importlib.resources.files("assist.default_playbooks")))


SMS_MAX_SEGMENTS = 2
# The values templates may use, with the neutral word a missing one renders as.
NEUTRAL = {
    "first_name": "there",
    "pet_name": "your pet",
    "sitter_name": "your sitter",
    "owner_name": "the owner",
    "booking_service": "your booking",
    "case_id": "your case",
    "queue": "our team",
    "sla_minutes": "a few",
    "team_name": "the incident team",
    # ", Ann" after a word ("Thanks{{ comma_name }}."), nothing when the name is unknown: a sentence that names
    # the contact reads right either way, where "Thanks, there." would not.
    "comma_name": "",
}
# The same neutral words in Spanish, for a Spanish reply.
NEUTRAL_ES = {
    "first_name": "cliente",
    "pet_name": "su mascota",
    "sitter_name": "su cuidador",
    "owner_name": "el dueño",
    "booking_service": "su reserva",
    "case_id": "su caso",
    "queue": "nuestro equipo",
    "sla_minutes": "unos",
    "team_name": "el equipo de incidentes",
    "comma_name": "",
}
NEUTRAL_WORDS = {"en": NEUTRAL, "es": NEUTRAL_ES}
# Long but plausible values: an SMS reply must fit its segments with them too.
SAMPLE = {**NEUTRAL, "first_name": "Alexandria", "pet_name": "Mr Biscuit", "sitter_name": "Jordan Livingstone",
          "owner_name": "Priyanka Raman", "case_id": "123456", "sla_minutes": "240"}

Role = Literal["owner", "sitter"]


class PlaybookError(ValueError):
    """A playbook file is invalid; the message names the file, line and field."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class When(Strict):
    urgency: list[Urgency] = []
    emotion: list[Emotion] = []
    category: list[Category] = []
    channel: list[Channel] = []
    role: list[Role] = []
    keywords: list[str] = []

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, words: list[str]) -> list[str]:
        if any(not w.strip() for w in words):
            raise ValueError("a keyword is empty")
        return [w.strip().lower() for w in words]

    def specificity(self) -> int:
        """How many conditions narrow this `when` (a tie-breaker after priority)."""
        return sum(bool(getattr(self, name)) for name in type(self).model_fields)


class Route(Strict):
    queue: Queue
    priority: int = Field(ge=1, le=4)
    escalate: bool = False
    first_response_minutes: int = Field(gt=0, le=10080)


class Translation(Strict):
    """An auto reply in another language; a channel left out falls back to English."""

    sms: str | None = None
    voice: str | None = None
    email: str | None = None


class AutoReply(Strict):
    sms: str
    voice: str
    email: str
    es: Translation | None = None  # Spanish (triage detects the language of each message)

    def text(self, channel: str, language: str = "en") -> str:
        translated = getattr(self, language, None) if language != "en" else None
        return (getattr(translated, channel, None) if translated else None) or getattr(self, channel)

    def languages(self, channel: str) -> set[str]:
        """The languages with a text for channel."""
        return {"en"} | {lang for lang in LANGUAGES if getattr(getattr(self, lang), channel, None) is not None}

    def missing(self, language: str) -> list[str]:
        """The channels without a text in language (they fall back to English)."""
        translated = getattr(self, language, None)
        return [ch for ch in CHANNELS if translated is None or getattr(translated, ch) is None]


LANGUAGES = ("es",)  # besides English
CHANNELS = tuple(Channel)


class Suggestions(Strict):
    default: list[str] = Field(min_length=1)
    anger: list[str] = []
    fear: list[str] = []
    sadness: list[str] = []
    joy: list[str] = []
    neutral: list[str] = []


class Expect(Strict):
    queue: Queue | None = None
    priority: int | None = Field(default=None, ge=1, le=4)
    playbook: str | None = None


class Sample(Strict):
    text: str = Field(min_length=1)
    channel: Channel = Channel.SMS
    role: Role | None = None
    expect: Expect = Expect()


class Playbook(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(min_length=1)
    priority: int = Field(ge=0, le=1000)
    when: When = When()
    route: Route
    auto_reply: AutoReply
    suggestions: Suggestions
    checklist: list[str] = []
    tests: list[Sample] = []

    def matches(self, *, urgency: str, emotion: str, category: str, channel: str, role: str | None,
                text: str) -> bool:
        w = self.when
        return ((not w.urgency or urgency in w.urgency) and (not w.emotion or emotion in w.emotion)
                and (not w.category or category in w.category) and (not w.channel or channel in w.channel)
                and (not w.role or role in w.role)
                and (not w.keywords or any(_has_phrase(text, k) for k in w.keywords)))


def _has_phrase(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text, re.IGNORECASE) is not None


# -- templates ----------------------------------------------------------------------------------

class _Neutral(dict):
    """A template context where a missing or empty value is its neutral word (in the reply's language).

    Every value is a string, as in the sample context a template is checked against, so a condition
    that passed validation cannot meet another type at run time.
    """

    def __init__(self, values: dict, language: str = "en"):
        super().__init__(NEUTRAL_WORDS.get(language, NEUTRAL))
        self.update({k: str(v) for k, v in values.items() if k in NEUTRAL and v not in (None, "")})
        first_name = values.get("first_name")
        self["comma_name"] = f", {first_name}" if first_name not in (None, "") else ""


_env = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)


@functools.lru_cache(maxsize=2048)
def _compiled(template: str):
    """A template compiled once per process (the texts of the published playbooks, and drafts)."""
    return _env.from_string(template)


def render(template: str, context: dict, language: str = "en") -> str:
    """Render a validated template in the sandbox; unknown or empty values become neutral words."""
    return _compiled(template).render(_Neutral(context, language)).strip()


# Filters a template may apply to a value: they change its case or spaces, or give a fallback, and never
# make the text much longer than the value.
FILTERS = frozenset({"capitalize", "lower", "upper", "title", "trim", "default", "d"})
COMPARISONS = frozenset({"eq", "ne", "lt", "gt", "lteq", "gteq", "in", "notin"})
ALLOWED = "only text, values like {{ first_name }} and {% if %}/{% elif %}/{% else %} are allowed"
# What each refused statement is called in a template.
STATEMENTS: dict[type[nodes.Node], str] = {
    nodes.Include: "{% include %}", nodes.Extends: "{% extends %}", nodes.FromImport: "{% from ... import %}",
    nodes.Import: "{% import %}", nodes.For: "a {% for %} loop", nodes.Assign: "{% set %}",
    nodes.AssignBlock: "{% set %}", nodes.Macro: "{% macro %}", nodes.CallBlock: "{% call %}",
    nodes.Block: "{% block %}", nodes.FilterBlock: "a {% filter %} block", nodes.With: "{% with %}",
    nodes.ExprStmt: "{% do %}", nodes.ScopedEvalContextModifier: "{% autoescape %}",
}
OPERATORS: dict[type[nodes.Node], str] = {
    nodes.Add: "addition (+)", nodes.Sub: "subtraction (-)", nodes.Mul: "multiplication (*)",
    nodes.Div: "division (/)", nodes.FloorDiv: "division (//)", nodes.Mod: "the % operator",
    nodes.Pow: "a power (**)", nodes.Neg: "a minus sign", nodes.Pos: "a plus sign", nodes.Concat: "concatenation (~)",
    nodes.Getattr: "an attribute (.)", nodes.Getitem: "an index ([])", nodes.Call: "a call ()",
    nodes.CondExpr: "an inline if", nodes.Test: "a test (is)", nodes.Slice: "a slice",
    nodes.Tuple: "a tuple", nodes.List: "a list", nodes.Dict: "a dict",
}


class _Refused(Exception):
    """A template construct outside what playbook templates may use."""


def _refuse(node: nodes.Node, what: str, why: str = ALLOWED) -> _Refused:
    return _Refused(f"template uses {what} at line {node.lineno}: {why}")


def _check_statements(body: list[nodes.Node]) -> None:
    for node in body:
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if not isinstance(child, nodes.TemplateData):
                    _check_value(child)
        elif isinstance(node, nodes.If):
            _check_condition(node.test)
            _check_statements(node.body)
            for branch in node.elif_:
                _check_condition(branch.test)
                _check_statements(branch.body)
            _check_statements(node.else_)
        else:
            raise _refuse(node, STATEMENTS.get(type(node), f"{{% {type(node).__name__.lower()} %}}"))


def _check_value(node: nodes.Node) -> None:
    """A value: a known name, a constant, or an allowed filter of a value with constant arguments."""
    if isinstance(node, nodes.Name):
        if node.name not in NEUTRAL:
            raise _Refused(f"unknown template value(s): {node.name} at line {node.lineno} "
                           f"(allowed: {', '.join(NEUTRAL)})")
    elif isinstance(node, nodes.Const):
        if not isinstance(node.value, str | int | float | bool | None):
            raise _refuse(node, f"the constant {type(node.value).__name__}")
    elif isinstance(node, nodes.Filter):
        if node.name not in FILTERS:
            raise _refuse(node, f"the filter |{node.name}", f"the filters allowed are {', '.join(sorted(FILTERS))}")
        if node.dyn_args is not None or node.dyn_kwargs is not None or \
                not all(isinstance(arg, nodes.Const) for arg in [*node.args, *(kw.value for kw in node.kwargs)]):
            raise _refuse(node, f"the filter |{node.name} with an argument that is not a constant")
        if node.node is not None:
            _check_value(node.node)
    else:
        raise _refuse(node, OPERATORS.get(type(node), type(node).__name__.lower()))


def _check_condition(node: nodes.Node) -> None:
    """An {% if %} test: values compared with each other, joined by and, or, not."""
    if isinstance(node, nodes.And | nodes.Or):
        _check_condition(node.left)
        _check_condition(node.right)
    elif isinstance(node, nodes.Not):
        _check_condition(node.node)
    elif isinstance(node, nodes.Compare):
        _check_value(node.expr)
        for operand in node.ops:
            if operand.op not in COMPARISONS:
                raise _refuse(node, f"the comparison {operand.op}")
            _check_value(operand.expr)
    else:
        _check_value(node)


def _reads_wrong(template: str, language: str) -> str | None:
    """Why template, rendered for a contact whose values are all unknown, reads wrong at its start, or None:
    a neutral word in place of a name ("there, first make sure..."), a stray comma, or a value that starts
    the text in lowercase ("your pet is...")."""
    text = render(template, {}, language)
    if not text:
        return None
    if text[0] in ",;:.":
        return f"starts with {text[0]!r} when the contact's name is unknown"
    lead = text.split(",", 1)[0].strip().lower() if "," in text else ""
    if lead and lead in {word.lower() for word in NEUTRAL_WORDS.get(language, NEUTRAL).values() if word}:
        return (f"starts with the fallback word {lead!r} when the contact's name is unknown "
                f"({text[:40]!r}...): put the name after a greeting (Hi {{{{ first_name }}}},) or use "
                f"{{{{ comma_name }}}}")
    if text[0].islower() and template.lstrip().startswith("{"):
        return (f"starts with a lowercase word when the contact's values are unknown ({text[:40]!r}...): "
                f"start with a greeting or a word of the sentence")
    return None


def check_template(template: str, language: str = "en", *, wording: bool = True) -> str | None:
    """Return why a template is refused, naming the construct and its line (within the template), or None.

    A template is text, values of the sample context and {% if %} conditions on them: no other
    statement (include, extends, import, for, set, macro...), no operator (output that grows), no
    other name (lipsum, self, range...), and a few filters. It must also render with the sample values, and
    (wording) read right for a contact whose name (and every other value) is unknown.
    """
    try:
        tree = _env.parse(template)
    except TemplateSyntaxError as exc:
        return f"template syntax error at line {exc.lineno}: {exc.message}"
    try:
        _check_statements(tree.body)
    except _Refused as refused:
        return str(refused)
    try:
        _env.from_string(template).render(_Neutral(SAMPLE))
    # Any error while rendering the sample refuses the template: it would fail the same way on a message.
    except Exception as exc:
        return f"template fails with the sample values: {type(exc).__name__}: {exc}"
    return _reads_wrong(template, language) if wording else None


# -- loading and validation ------------------------------------------------------------------------

def _line_map(node, path=(), lines=None) -> dict[tuple, str]:
    """Map each field path of a YAML document to its 1-based line and column."""
    lines = {} if lines is None else lines
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            here = path + (key.value,)
            lines[here] = _position(key.start_mark)
            _line_map(value, here, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = _position(item.start_mark)
            _line_map(item, path + (i,), lines)
    return lines


def _position(mark) -> str:
    """The "line:column" of a YAML mark, both counted from 1."""
    return f"{mark.line + 1}:{mark.column + 1}"


def _line_of(lines: dict[tuple, str], loc: tuple) -> str:
    """The "line:column" of the deepest field of loc that the document has (a missing one points at its parent)."""
    for end in range(len(loc), 0, -1):
        if tuple(loc[:end]) in lines:
            return lines[tuple(loc[:end])]
    return "1:1"


@dataclass(frozen=True)
class Problem:
    """One problem of a playbook's text, where the editor marks it."""

    line: int
    column: int
    text: str


_LOCATED = re.compile(r":(\d+):(\d+): ")


def located(problem: str) -> Problem:
    """Split "source:line:column: what" (a line of a PlaybookError) into where and what."""
    found = _LOCATED.search(problem)
    if found is None:
        return Problem(1, 1, problem)
    return Problem(int(found[1]), int(found[2]), problem[found.end():])


def parse(text: str, source: str = "<playbook>", *, wording: bool = True) -> Playbook:
    """Parse and validate one playbook document; wording=False skips the check that each template reads
    right for an unknown contact (a version published before that check must still load).

    Raises:
        PlaybookError: "source:line:column: field: what is wrong" for the first problems found.
    """
    playbook, problems = _parse(text, wording)
    if problems:
        raise PlaybookError("\n".join(p.replace(SOURCE, source, 1) for p in problems))
    return playbook


SOURCE = "\0source"  # stands for the file name in cached problems


@functools.lru_cache(maxsize=1024)
def _parse(text: str, wording: bool = True) -> tuple[Playbook | None, tuple[str, ...]]:
    """Validate text once (templates are compiled and rendered): every process re-reads the same texts."""
    source = SOURCE
    try:
        return _validate(text, source, wording), ()
    except PlaybookError as exc:
        return None, tuple(str(exc).splitlines())


def _validate(text: str, source: str, wording: bool = True) -> Playbook:
    """The checks behind parse(): YAML, the schema, every template, the SMS length."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise PlaybookError(f"{source}:{_position(mark) if mark else '1:1'}: not valid YAML: "
                            f"{getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise PlaybookError(f"{source}:1:1: a playbook is a mapping of fields (id, name, when, route, ...)")
    lines = _line_map(node)
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        problems = [f"{source}:{_line_of(lines, e['loc'])}: {'.'.join(map(str, e['loc'])) or 'playbook'}: {e['msg']}"
                    for e in exc.errors()]
        raise PlaybookError("\n".join(problems)) from None
    problems = []
    templates: list[tuple[tuple[str | int, ...], str]] = [(("auto_reply", ch), getattr(playbook.auto_reply, ch))
                                                         for ch in CHANNELS]
    templates += [(("auto_reply", lang, ch), getattr(getattr(playbook.auto_reply, lang), ch))
                  for lang in LANGUAGES if getattr(playbook.auto_reply, lang) is not None
                  for ch in CHANNELS if getattr(getattr(playbook.auto_reply, lang), ch) is not None]
    templates += [(("suggestions", emotion, i), text)
                  for emotion in type(playbook.suggestions).model_fields
                  for i, text in enumerate(getattr(playbook.suggestions, emotion))]
    for loc, template in templates:
        reason = check_template(template, "es" if "es" in loc else "en", wording=wording)
        if reason:
            problems.append(f"{source}:{_line_of(lines, loc)}: {'.'.join(map(str, loc))}: {reason}")
    if not problems:
        sms_texts = [("en", ("auto_reply", "sms")), *((lang, ("auto_reply", lang, "sms")) for lang in LANGUAGES)]
        for language, where in sms_texts:
            if language != "en" and "sms" in playbook.auto_reply.missing(language):
                continue
            segments = segment_count(render(playbook.auto_reply.text("sms", language), SAMPLE))
            if segments > SMS_MAX_SEGMENTS:
                problems.append(f"{source}:{_line_of(lines, where)}: {'.'.join(where)}: {segments} SMS "
                                f"segments with long names; at most {SMS_MAX_SEGMENTS}")
    if problems:
        raise PlaybookError("\n".join(problems))
    return playbook


def load_dir(folder: Path | None = None) -> list[Playbook]:
    """Load and validate every *.yaml playbook of folder; ids must be unique.

    Raises:
        PlaybookError: every problem of every file, one per line.
    """
    folder = folder or default_dir()
    playbooks, problems, seen = [], [], dict[str, Path]()
    for path in sorted(folder.glob("*.yaml")):
        try:
            playbook = parse(path.read_text(encoding="utf-8"), str(path))
        except PlaybookError as exc:
            problems.append(str(exc))
            continue
        if playbook.id in seen:
            problems.append(f"{path}:1:1: id: {playbook.id!r} is also the id of {seen[playbook.id]}")
        seen[playbook.id] = path
        playbooks.append(playbook)
    if problems:
        raise PlaybookError("\n".join(problems))
    return playbooks


# -- matching ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    playbook: Playbook
    auto_reply: str
    suggestions: list[str]
    checklist: list[str]
    queue: str
    priority: int
    escalate: bool
    first_response_minutes: int
    context: dict = field(default_factory=dict)


def ordered(playbooks: list[Playbook]) -> list[Playbook]:
    """Matching order: priority, then specificity, then id (so the order never depends on file order)."""
    return sorted(playbooks, key=lambda p: (-p.priority, -p.when.specificity(), p.id))


def decide(playbooks: list[Playbook], *, urgency: str, emotion: str, category: str, channel: str, text: str,
           role: str | None = None, context: dict | None = None, language: str = "en") -> Decision:
    """Match the first playbook in order and render its reply (in the message's language when the
    playbook has it) and suggestions.

    Raises:
        PlaybookError: no playbook matches (the published set lacks a fallback).
    """
    for playbook in ordered(playbooks):
        if playbook.matches(urgency=urgency, emotion=emotion, category=category, channel=channel, role=role,
                            text=text):
            break
    else:
        raise PlaybookError("no playbook matches and there is no fallback (a playbook with an empty `when`)")
    route = playbook.route
    values = {"queue": route.queue, "sla_minutes": route.first_response_minutes, **(context or {})}
    emotion_suggestions = getattr(playbook.suggestions, emotion, []) or playbook.suggestions.default
    return Decision(
        playbook=playbook,
        auto_reply=render(playbook.auto_reply.text(channel, language), values,
                          language if language in playbook.auto_reply.languages(channel) else "en"),
        suggestions=[render(s, values) for s in emotion_suggestions],
        checklist=list(playbook.checklist),
        queue=route.queue, priority=route.priority, escalate=route.escalate,
        first_response_minutes=route.first_response_minutes, context=values,
    )


@dataclass(frozen=True)
class TestResult:
    playbook: str
    text: str
    passed: bool
    detail: str


def run_tests(playbooks: list[Playbook], classify) -> list[TestResult]:
    """Run every playbook's samples through triage and matching against the whole set."""
    results = []
    for playbook in playbooks:
        for sample in playbook.tests:
            triage = classify(sample.text, sample.channel)
            decision = decide(playbooks, urgency=triage.urgency, emotion=triage.emotion, category=triage.category,
                              channel=sample.channel, text=sample.text, role=sample.role)
            expected = {"playbook": sample.expect.playbook or playbook.id, "queue": sample.expect.queue,
                        "priority": sample.expect.priority}
            actual = {"playbook": decision.playbook.id, "queue": decision.queue, "priority": decision.priority}
            wrong = [f"{k}: expected {v}, got {actual[k]}" for k, v in expected.items() if v is not None
                     and actual[k] != v]
            detail = "; ".join(wrong) + (f" (triage: {triage.urgency}/{triage.emotion}/{triage.category})"
                                         if wrong else "")
            results.append(TestResult(playbook.id, sample.text, not wrong, detail))
    return results
