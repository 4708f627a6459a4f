"""The rule layer's knowledge (assist/triage/knowledge/): every pattern fires on its example and not on its
near miss; every sign and toxin of the knowledge base has a source and is found where it should be."""

import json
from urllib.parse import urlparse

import pytest
import spacy
import yaml

from assist.triage import rules

KNOWLEDGE = rules.KNOWLEDGE
PATTERN_LINES = [json.loads(line) for line in (KNOWLEDGE / "signals.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def nlp():
    pipeline = spacy.blank("en")
    pipeline.add_pipe("sentencizer")
    pipeline.add_pipe("danger_rules")
    return pipeline


def active(nlp, text: str) -> set[str]:
    doc = nlp(text)
    return {s.label_ for s in doc.spans[rules.SPAN_KEY] if s._.danger_context == "active"}


@pytest.fixture(scope="module")
def lone():
    """A pipeline whose rules hold just one pattern at a time (so a test shows that pattern, not another)."""
    from spacy.matcher import Matcher, PhraseMatcher

    pipeline = spacy.blank("en")
    pipeline.add_pipe("sentencizer")
    rules_pipe = rules.DangerRules(pipeline)
    rules_pipe.signs = rules_pipe.toxins = PhraseMatcher(pipeline.vocab)

    def with_pattern(signal: str, pattern):
        matcher = Matcher(pipeline.vocab)
        matcher.add(signal, [pattern])
        rules_pipe.matchers = [(None, matcher)]
        meta = next(s for s in rules.SIGNALS if s.name == signal)
        rules_pipe.negation_inside = {signal} if meta.negation_inside else set()

        def fired(text: str) -> bool:
            doc = rules_pipe(pipeline(text))
            return any(s._.danger_context == "active" for s in doc.spans[rules.SPAN_KEY])

        return fired

    return with_pattern


@pytest.mark.parametrize("number", range(len(PATTERN_LINES)), ids=lambda n: f"line{n + 1}")
def test_each_pattern_fires_on_its_example_and_not_on_its_near_miss(lone, number):
    line = PATTERN_LINES[number]
    pattern = rules.PATTERNS[number]
    assert line["fires"] and line["misses"], f"signals.jsonl line {number + 1} needs an example and a near miss"
    fired = lone(pattern.signal, pattern.tokens)

    assert fired(line["fires"]), f"line {number + 1} ({pattern.signal}) does not fire on {line['fires']!r}"
    assert not fired(line["misses"]), f"line {number + 1} ({pattern.signal}) fires on its near miss {line['misses']!r}"


def test_the_knowledge_base_names_a_public_source_for_every_entry():
    for name in ("toxins.yaml", "signs.yaml"):
        for entry in yaml.safe_load((KNOWLEDGE / name).read_text()):
            assert urlparse(entry["source"]).scheme == "https", (name, entry["id"])
            assert entry["en"] and entry["es"], (name, entry["id"])


SIGN_IDS = list(rules.KNOWN.signs)


@pytest.mark.parametrize("sign", SIGN_IDS)
def test_each_sign_is_found_live_and_not_when_asked_about_or_denied(nlp, sign):
    for phrase in rules.KNOWN.signs[sign][:3] + rules.KNOWN.signs[sign][-3:]:
        assert sign in active(nlp, f"the dog I'm watching: {phrase}, please call me"), phrase
        assert sign not in active(nlp, f"what should I do if a dog is {phrase}?"), phrase


@pytest.mark.parametrize("toxin", list(rules.KNOWN.toxins))
def test_each_toxin_eaten_is_found_and_one_only_mentioned_is_not(nlp, toxin):
    name = rules.KNOWN.toxins[toxin][0]
    assert "toxin" in active(nlp, f"my dog just ate some {name}"), name
    assert "toxin" not in active(nlp, f"we keep the {name} on the top shelf"), name
    assert "toxin" not in active(nlp, f"he didn't eat any {name}, he only sniffed it"), name


def test_no_pattern_is_left_that_the_training_data_never_needs():
    """The hand-written patterns were pruned of those that matched no training message (see the note in
    signals.yaml); this keeps the file from growing patterns written for one message."""
    assert len(PATTERN_LINES) <= 160
