"""Run the triage pipeline and turn its rules and models into one decision with evidence."""

import functools
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import spacy
from spacy.attrs import IS_PUNCT, IS_SPACE, IS_STOP
from spacy.tokens import Doc

from assist.triage import features, rules  # noqa: F401  (they register the model and the rules)
from assist.triage.labels import LABELS, URGENCY
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
EVIDENCE_MIN_SHARE = 0.5  # a word counts as evidence if it adds this much to the label's score (logits)
EVIDENCE_MAX_WORDS = 80  # longer texts: only the first words are probed
SHORT_TEXT = 12  # characters; shorter texts are taken as English without asking the detector
# Spanish letters or very common Spanish words; a text without any is English for triage.
SPANISH_HINT = re.compile(r"[áéíóúñ¿¡]|\b(el|la|los|las|que|qué|de|del|por|para|con|una?|es|está|mi|mis|se|no|y|"
                          r"hola|perro|gato|cuidadora?|ayuda)\b", re.IGNORECASE)

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


def classify_many(items: Iterable[tuple[str, str]], batch_size: int = 256) -> Iterator[Triage]:
    """Triage (text, channel) pairs, in order."""
    nlp = load()
    version = f"{nlp.meta['name']}-{nlp.meta['version']}"
    originals: list[str] = []

    def prepared():
        for text, channel in items:
            originals.append(text)
            yield prepare(text, channel)

    for i, doc in enumerate(nlp.pipe(prepared(), batch_size=batch_size)):
        read = doc.text
        result = decide(nlp, doc, version, text=read)
        if read != originals[i]:
            result = replace(result, evidence=_locate(result.evidence, read, originals[i]))
        originals[i] = ""  # keep no more than the batch in memory
        yield result


def detect_language(text: str) -> str:
    """"es" or "en". Only a text with some sign of Spanish is put to the detector (it costs most)."""
    if len(text.strip()) < SHORT_TEXT or not SPANISH_HINT.search(text):
        return "en"
    language = _language_detector().detect_language_of(text)
    return language.iso_code_639_1.name.lower() if language else "en"


def decide(nlp: spacy.Language, doc: Doc, version: str, *, evidence: bool = True, text: str | None = None) -> Triage:
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
                  scores=scores, evidence=found, language=detect_language(doc.text if text is None else text) if evidence else "",
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
    """For each chosen label, the words that add most to its score.

    The classifiers are linear, so a word's share of a label's score is exact: the weights
    of the features it takes part in (its word, suffix and word pairs), for that label,
    less their mean over the labels. One batched call per classifier computes them all.
    """
    flags = doc.to_array([IS_PUNCT, IS_SPACE, IS_STOP])[:EVIDENCE_MAX_WORDS]
    candidates = [i for i, row in enumerate(flags.tolist()) if not any(row)]
    if not candidates:
        return []
    featurizer = nlp.get_pipe(HEADS["urgency"]).model.layers[0]
    keys, values, lengths = features.token_features(featurizer.ops, doc, featurizer.attrs["ngram_size"],
                                                    candidates)
    found = []
    for head, label in chosen.items():
        textcat = nlp.get_pipe(HEADS[head])
        linear = textcat.model.layers[1]
        scores = linear.predict((keys, values, lengths)) - linear.get_param("b")
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
