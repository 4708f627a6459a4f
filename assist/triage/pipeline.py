"""Run the triage pipeline and turn its rules and models into one decision with evidence."""

import functools
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import spacy
from spacy.tokens import Doc

from assist.triage import features, rules  # noqa: F401  (they register the model and the rules)
from assist.triage.labels import CATEGORY, EMOTION, LABELS, URGENCY
from channels.email_text import split_subject, triage_text

MODEL_DIR = Path(__file__).with_name("model")
HEADS = {"urgency": "textcat_urgency", "emotion": "textcat_emotion", "category": "textcat_category"}
RULE_CONFIDENCE = 0.9  # the probability of critical reported when an active danger signal forces it
WEAK_SUPPORT = 0.2  # a weak signal (a bite, blood...) raises urgency only if the model gives critical this much
# Without an active danger signal the model alone calls a message critical only with this much
# probability; below it the next label wins (the rule layer carries the recall).
MODEL_CRITICAL = 0.5
# A message with no words (an MMS photo alone) gets a person's look at normal urgency.
NO_TEXT = {"urgency": "normal", "emotion": "neutral", "category": "general"}
EVIDENCE_TOKENS = 3  # the model evidence: at most this many words per label
EVIDENCE_MIN_DROP = 0.02  # a word counts as evidence if removing it lowers the label's probability this much
EVIDENCE_MAX_WORDS = 80  # longer texts: only the first words are probed
SHORT_TEXT = 12  # characters; shorter texts are taken as English without asking the detector

_lock = threading.Lock()


@dataclass(frozen=True)
class Triage:
    urgency: str
    emotion: str
    category: str
    scores: dict[str, dict[str, float]]
    evidence: list[dict] = field(default_factory=list)
    language: str = "en"
    model_version: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@functools.cache
def _nlp():
    return spacy.load(MODEL_DIR)


@functools.cache
def _language_detector():
    from lingua import Language, LanguageDetectorBuilder

    return (LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.SPANISH)
            .with_preloaded_language_models().build())


def load() -> spacy.Language:
    """Load the pipeline and the language detector once per process (thread-safe)."""
    with _lock:
        _language_detector()
        return _nlp()


def model_version() -> str:
    meta = load().meta
    return f"{meta['name']}-{meta['version']}"


def prepare(text: str, channel: str) -> str:
    """The text triage reads: for email, the subject and the new part of the body."""
    if channel == "email":
        subject, body = split_subject(text)
        return triage_text(subject, body)
    return text


def classify(text: str, channel: str = "sms") -> Triage:
    """Triage one message; for email, text may be "Subject: ...\\n\\nbody" with quoted history."""
    return next(classify_many([(text, channel)]))


def classify_many(items: Iterable[tuple[str, str]], batch_size: int = 64) -> Iterator[Triage]:
    """Triage (text, channel) pairs, in order."""
    nlp = load()
    version = f"{nlp.meta['name']}-{nlp.meta['version']}"
    originals: list[str] = []

    def prepared():
        for text, channel in items:
            originals.append(text)
            yield prepare(text, channel)

    for i, doc in enumerate(nlp.pipe(prepared(), batch_size=batch_size)):
        result = decide(nlp, doc, version)
        if doc.text != originals[i]:
            result = replace(result, evidence=_locate(result.evidence, doc.text, originals[i]))
        originals[i] = ""  # keep no more than the batch in memory
        yield result


def detect_language(text: str) -> str:
    if len(text.strip()) < SHORT_TEXT:
        return "en"
    language = _language_detector().detect_language_of(text)
    return language.iso_code_639_1.name.lower() if language else "en"


def decide(nlp: spacy.Language, doc: Doc, version: str, *, evidence: bool = True) -> Triage:
    """Combine the models' probabilities with the rule layer: an active danger signal makes it critical."""
    if all(t.is_space for t in doc):
        scores = {head: {label: round(1 / len(labels), 4) for label in labels} for head, labels in LABELS.items()}
        return Triage(**NO_TEXT, scores=scores, language="", model_version=version)
    scores = {head: {label: round(float(doc.cats[label]), 4) for label in labels} for head, labels in LABELS.items()}
    chosen = {head: max(labels, key=lambda label: scores[head][label]) for head, labels in LABELS.items()}
    if chosen["urgency"] == "critical" and scores["urgency"]["critical"] < MODEL_CRITICAL:
        chosen["urgency"] = max(URGENCY[1:], key=lambda label: scores["urgency"][label])
    found = [_rule_evidence(span) for span in doc.spans[rules.SPAN_KEY]]
    supported = scores["urgency"]["critical"] >= WEAK_SUPPORT
    active = [e for e in found if e["context"] == "active" and (e["strong"] or supported)]
    if active and chosen["urgency"] != "critical":
        scores["urgency"] = _raise_to_critical(scores["urgency"])
        chosen["urgency"] = "critical"
        for e in active:
            e["effect"] = "raised urgency to critical"
    if evidence:
        found.extend(_model_evidence(nlp, doc, chosen))
    return Triage(urgency=chosen["urgency"], emotion=chosen["emotion"], category=chosen["category"],
                  scores=scores, evidence=found, language=detect_language(doc.text) if evidence else "",
                  model_version=version)


def _raise_to_critical(urgency: dict[str, float]) -> dict[str, float]:
    rest = sum(p for label, p in urgency.items() if label != "critical") or 1.0
    share = 1 - RULE_CONFIDENCE
    return {label: RULE_CONFIDENCE if label == "critical" else round(p / rest * share, 4)
            for label, p in urgency.items()}


def _rule_evidence(span) -> dict:
    context = span._.danger_context
    return {"start": span.start_char, "end": span.end_char, "text": span.text, "source": f"rule:{span.label_}",
            "label": "urgency", "value": "critical", "context": context, "strong": rules.is_strong(span.label_),
            "effect": "danger signal" if context == "active" else f"ignored: {context}"}


def _model_evidence(nlp: spacy.Language, doc: Doc, chosen: dict[str, str]) -> list[dict]:
    """The words whose removal lowers each chosen label's probability most (occlusion), as spans.

    The probes (the text without one word each) are featurized once and scored by all
    three classifiers, whose models share the featurizer's design (assist/triage/features.py).
    """
    candidates = [t for t in doc[:EVIDENCE_MAX_WORDS] if not (t.is_punct or t.is_space or t.is_stop)]
    if len(doc) < 2 or not candidates:
        return []  # a one-word message is its own evidence: the rules say what it means
    words = [t.text for t in doc]
    spaces = [bool(t.whitespace_) for t in doc]
    probes = [Doc(nlp.vocab, words=words[:t.i] + words[t.i + 1:], spaces=spaces[:t.i] + spaces[t.i + 1:])
              for t in candidates]
    signals = doc.spans[rules.SPAN_KEY]
    for probe, token in zip(probes, candidates):  # the probe keeps the signals that do not cover the word
        kept = [(s.start - (s.start > token.i), s.end - (s.end > token.i), s.label_, s._.danger_context)
                for s in signals if not (s.start <= token.i < s.end)]
        probe.spans[rules.SPAN_KEY] = [probe[a:b] for a, b, _, _ in kept]
        for span, (_, _, signal, context) in zip(probe.spans[rules.SPAN_KEY], kept):
            span.label_ = signal
            span._.danger_context = context
    featurizer, *_ = nlp.get_pipe(HEADS["urgency"]).model.layers
    features = featurizer.predict(probes)
    found = []
    for head, label in chosen.items():
        textcat = nlp.get_pipe(HEADS[head])
        _, linear, output = textcat.model.layers
        probabilities = output.predict(linear.predict(features))
        index = textcat.labels.index(label)
        base = float(doc.cats[label])
        drops = sorted(((base - float(row[index]), token) for row, token in zip(probabilities, candidates)),
                       key=lambda pair: -pair[0])
        found += [{"start": token.idx, "end": token.idx + len(token.text), "text": token.text, "source": "model",
                   "label": head, "value": label, "weight": round(drop, 4)}
                  for drop, token in drops[:EVIDENCE_TOKENS] if drop >= EVIDENCE_MIN_DROP]
    return found


def _locate(evidence: list[dict], read: str, original: str) -> list[dict]:
    """Move evidence offsets from the text triage read (an email's new part) to the original text."""
    located = []
    for item in evidence:
        # The new part keeps the original's order, so the occurrence nearest the same share of the text is it.
        expected = item["start"] / max(len(read), 1) * len(original)
        starts, at = [], original.find(item["text"])
        while at != -1:
            starts.append(at)
            at = original.find(item["text"], at + 1)
        if starts:
            start = min(starts, key=lambda s: abs(s - expected))
            located.append({**item, "start": start, "end": start + len(item["text"])})
    return located
