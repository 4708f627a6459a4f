"""Run the triage pipeline and turn its rules and models into one decision with evidence."""

import functools
import math
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import spacy
from spacy.attrs import IS_PUNCT, IS_SPACE, IS_STOP
from spacy.pipeline import TextCategorizer
from spacy.tokens import Doc

from assist.triage import features, rules
from assist.triage.labels import LABELS, URGENCY
from assist.triage.normalize import MAX_CHARS, Normalized, Speller, normalize
from assist.triage.result import Triage
from channels.email_text import split_subject, triage_text

MODEL_DIR = Path(__file__).with_name("model")
KNOWN_WORDS = "known_words.txt"  # beside the model: words seen in training, never "mended" as typos
HEADS = {"urgency": "textcat_urgency", "emotion": "textcat_emotion", "category": "textcat_category"}
# A message with no words (an MMS photo alone) gets a person's look at normal urgency.
NO_TEXT: dict[str, Any] = {"urgency": "normal", "emotion": "neutral", "category": "general"}
EVIDENCE_TOKENS = 3  # the model evidence: at most this many words per label
EVIDENCE_MIN_SHARE = 0.5  # a word counts as evidence if it adds this much to the label's score (logits)
EVIDENCE_MAX_WORDS = 80  # longer texts: only the first words are probed
SHORT_TEXT = 12  # characters; shorter texts are taken as English without asking the detector
# Spanish letters or very common Spanish words; a text without any is English for triage.
SPANISH_HINT = re.compile(r"[áéíóúñ¿¡]|\b(el|la|los|las|que|qué|de|del|por|para|con|una?|es|está|mi|mis|se|no|y|"
                          r"hola|perro|gato|cuidadora?|ayuda)\b", re.IGNORECASE)

_lock = threading.Lock()


@dataclass(frozen=True)
class Decision:
    """How the probability of critical is calibrated and where its thresholds are (fit by training on
    held-out data; see assist/triage/training.py: calibrate)."""

    weights: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0)  # for FEATURES below
    bias: float = 0.0
    critical: float = 0.5  # calibrated P(critical) at or above it: critical
    ask: float = 0.5  # at or above it (and below critical): a possible emergency

    FEATURES = ("model logit", "strong signal active", "weak signal active", "signal not active")

    def probability(self, model_p: float, signals: tuple[int, int, int]) -> float:
        p = min(max(model_p, 1e-6), 1 - 1e-6)
        z = self.bias + self.weights[0] * math.log(p / (1 - p)) + sum(w * x for w, x in zip(self.weights[1:], signals))
        return 1 / (1 + math.exp(-max(min(z, 40), -40)))


@functools.cache
def _nlp():
    return spacy.load(MODEL_DIR)


@functools.cache
def _speller() -> Speller:
    known = (MODEL_DIR / KNOWN_WORDS)
    return speller_for(known.read_text(encoding="utf-8").split() if known.exists() else ())


def speller_for(known: Iterable[str]) -> Speller:
    """Mend words one letter away from a word of the rules' vocabulary, unless the word itself is known."""
    return Speller(rules.vocabulary_words(), known)


def decision_of(nlp: spacy.Language) -> Decision:
    found = nlp.meta.get("assist", {}).get("decision")
    if not found:
        return Decision()
    fields: dict[str, Any] = {k: tuple(v) if k == "weights" else v for k, v in found.items()}
    return Decision(**fields)


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


READ_AHEAD = 5  # times MAX_CHARS of an email's body searched for its new part (the rest is older history)


def prepare(text: str, channel: str) -> str:
    """The text triage reads: for email, the subject and the new part of the body; never more than it reads
    (long input costs no more than MAX_CHARS, and the message keeps all of it)."""
    if channel == "email":
        subject, body = split_subject(text[:MAX_CHARS * READ_AHEAD])
        return triage_text(subject, body)[:MAX_CHARS]
    return text[:MAX_CHARS]


def read(text: str, channel: str, speller: Speller | None = None) -> tuple[str, Normalized]:
    """The text triage reads (prepared), and its normalized form with a map back to it."""
    prepared = prepare(text, channel)
    return prepared, normalize(prepared, _speller() if speller is None else speller)


def classify(text: str, channel: str = "sms") -> Triage:
    """Triage one message; for email, text may be "Subject: ...\\n\\nbody" with quoted history."""
    return next(classify_many([(text, channel)]))


def classify_many(items: Iterable[tuple[str, str]], batch_size: int = 256) -> Iterator[Triage]:
    """Triage (text, channel) pairs, in order."""
    nlp = load()
    version = f"{nlp.meta['name']}-{nlp.meta['version']}"
    decision = decision_of(nlp)
    pending: list[tuple[str, str, Normalized]] = []

    def normalized():
        for text, channel in items:
            prepared, norm = read(text, channel)
            pending.append((text, prepared, norm))
            yield norm.text

    for i, doc in enumerate(nlp.pipe(normalized(), batch_size=batch_size)):
        original, prepared, norm = pending[i]
        result = decide(nlp, doc, version, text=prepared, decision=decision)
        evidence = [_back(item, norm, prepared) for item in result.evidence]
        if prepared != original:
            evidence = _locate(evidence, prepared, original)
        yield replace(result, evidence=evidence)
        pending[i] = ("", "", Normalized("", []))  # keep no more than the batch in memory


def _back(item: dict, norm: Normalized, prepared: str) -> dict:
    """Evidence found in the normalized text, as a span of the customer's own words."""
    start, end = norm.original_span(item["start"], item["end"])
    return {**item, "start": start, "end": end, "text": prepared[start:end]}


def detect_language(text: str) -> str:
    """"es" or "en". Only a text with some sign of Spanish is put to the detector (it costs most)."""
    if len(text.strip()) < SHORT_TEXT or not SPANISH_HINT.search(text):
        return "en"
    language = _language_detector().detect_language_of(text)
    return language.iso_code_639_1.name.lower() if language else "en"


def signal_features(doc: Doc) -> tuple[int, int, int]:
    """(a strong signal is active, a weak one is, a signal is there but not active): for calibration."""
    spans = doc.spans.get(rules.SPAN_KEY, ())
    active = [s for s in spans if s._.danger_context == "active"]
    return (int(any(rules.is_strong(s.label_) for s in active)),
            int(any(not rules.is_strong(s.label_) for s in active)),
            int(len(active) < len(spans)))


def decide(nlp: spacy.Language, doc: Doc, version: str, *, evidence: bool = True, text: str | None = None,
           decision: Decision | None = None) -> Triage:
    """Combine the classifiers' probabilities with the rule layer into a calibrated probability of
    critical; above its threshold the message is critical, in the band below it a possible emergency."""
    if all(t.is_space for t in doc):
        scores = {head: {label: round(1 / len(labels), 4) for label in labels} for head, labels in LABELS.items()}
        return Triage(**NO_TEXT, scores=scores, language="", model_version=version)
    decision = decision or decision_of(nlp)
    scores = {head: {label: round(float(doc.cats[label]), 4) for label in labels} for head, labels in LABELS.items()}
    chosen = {head: max(labels, key=lambda label: scores[head][label]) for head, labels in LABELS.items()}
    p_critical = decision.probability(float(doc.cats["critical"]), signal_features(doc))
    critical = p_critical >= decision.critical
    if critical and _few_words(doc) and not any(signal_features(doc)[:2]):
        # A message of a few words and no danger signal ("hello", "ok thanks") gets a probability near the
        # training data's share of emergencies: critical only if its words themselves point there.
        critical = bool(_model_evidence(nlp, doc, {"urgency": "critical"}))
    chosen["urgency"] = "critical" if critical else max(URGENCY[1:], key=lambda label: scores["urgency"][label])
    found = [_rule_evidence(span) for span in doc.spans[rules.SPAN_KEY]]
    # Uncertain about danger, not merely short of words: the band asks only about messages that name a
    # danger signal (live or not) or that the classifier finds urgent ("thanks!" is never asked).
    dangerous = bool(found) or chosen["urgency"] == "high"
    if critical:
        for e in found:
            if e["context"] == "active":
                e["effect"] = "critical"
    if evidence:
        found.extend(_model_evidence(nlp, doc, chosen))
    return Triage(urgency=chosen["urgency"], emotion=chosen["emotion"], category=chosen["category"],
                  scores=scores, evidence=found,
                  language=detect_language(doc.text if text is None else text) if evidence else "",
                  model_version=version, critical_probability=round(p_critical, 4),
                  possible_emergency=not critical and p_critical >= decision.ask and dangerous)


FEW_WORDS = 3  # content words: a message this short says too little for its probability to mean much


def _few_words(doc: Doc) -> bool:
    return sum(1 for t in doc if t.is_alpha and not t.is_stop) <= FEW_WORDS


def _rule_evidence(span) -> dict:
    context = span._.danger_context
    return {"start": span.start_char, "end": span.end_char, "text": span.text, "source": f"rule:{span.label_}",
            "label": "urgency", "value": "critical", "context": context, "strong": rules.is_strong(span.label_),
            "effect": "danger signal" if context == "active" else f"ignored: {context}"}


def _model_evidence(nlp: spacy.Language, doc: Doc, chosen: dict[str, str]) -> list[dict]:
    """For each chosen label, the words that add most to its score.

    The classifiers are linear, so a word's share of a label's score is exact: the weights
    of the features it takes part in (its word, suffix and word pairs), for that label,
    less their mean over the labels. One batched call per classifier computes them all.
    """
    flags = doc.to_array([IS_PUNCT, IS_SPACE, IS_STOP])[:EVIDENCE_MAX_WORDS]
    candidates = [i for i, row in enumerate(flags.tolist()) if not any(row)]
    if not candidates:
        return []
    found = []
    for head, label in chosen.items():
        textcat = cast(TextCategorizer, nlp.get_pipe(HEADS[head]))
        scores = features.token_scores(textcat.model, doc, candidates)
        index = textcat.labels.index(label)
        shares = scores[:, index] - scores.mean(axis=1)
        ranked = sorted(zip(shares.tolist(), candidates), key=lambda pair: -pair[0])
        found += [{"start": doc[i].idx, "end": doc[i].idx + len(doc[i].text), "text": doc[i].text,
                   "source": "model", "label": head, "value": label, "weight": round(share, 3)}
                  for share, i in ranked[:EVIDENCE_TOKENS] if share >= EVIDENCE_MIN_SHARE]
    return found


def _locate(evidence: list[dict], read: str, original: str) -> list[dict]:
    """Move evidence offsets from the text triage read (an email's new part) to the original text."""
    located = []
    original = original[:MAX_CHARS * READ_AHEAD]  # what prepare() read from
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
