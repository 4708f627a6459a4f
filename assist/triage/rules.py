"""The rule layer: danger signals of the taxonomy, and whether each one is live.

A spaCy Matcher finds the signals (a toxin eaten, bleeding, not breathing, a seizure,
hit by a car, a dog fight, a bite, an escaped or missing pet, a threat, a weapon, feeling
unsafe, fire, gas, flooding, a person's medical emergency, a death, a bare cry for help)
in English and Spanish. Each signal then gets a context from the words around it:

- ``negated``: "she is NOT bleeding", "didn't eat any", "no sign of blood";
- ``hypothetical``: "what should I do if a dog I walk gets loose";
- ``figurative``: "this refund is killing me", "bleeding us dry";
- ``resolved``: "... but we found him, he's fine now, vet cleared him";
- ``past``: over and now about money or paperwork ("last month", "here is the invoice");
- ``active``: none of these; an active signal makes the message critical.

The signals, their patterns and the cues are data in assist/triage/knowledge/ (signals.yaml,
signals.jsonl with an example and a near miss per pattern, the veterinary knowledge base
toxins.yaml and signs.yaml with a public source per entry, cues.yaml); this module applies them.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span

from assist.triage.data import read_jsonl

SPAN_KEY = "danger"
CONTEXTS = ("active", "negated", "hypothetical", "figurative", "resolved", "past")
KNOWLEDGE = Path(__file__).with_name("knowledge")
GAP = {"OP": "{0,6}"}  # up to six words between the parts of a signal (a toxin and eating it)


@dataclass(frozen=True)
class Signal:
    name: str
    category: str  # the category it usually points to (a hint shown as evidence)
    patterns: list  # Matcher token patterns
    strong: bool = True  # an active match makes the message critical by itself
    negation_inside: bool = False  # the pattern itself says "not" ("not breathing")
    worsens: bool = False  # gets worse with time: a duration ("for two days") makes it no past event


@dataclass(frozen=True)
class Pattern:
    """One line of signals.jsonl: a signal's pattern, an example it must fire on and a near miss."""

    signal: str
    tokens: list
    fires: str
    misses: str
    source: str = "signals.jsonl"


def _load_yaml(name: str):
    return yaml.safe_load((KNOWLEDGE / name).read_text(encoding="utf-8"))


def _expand(token: dict, vocabulary: dict[str, list[str]]) -> dict:
    """Replace "@NAME" word lists of a token pattern by the vocabulary's words."""
    out = {}
    for key, value in token.items():
        if isinstance(value, dict) and "IN" in value:
            words = value["IN"] if isinstance(value["IN"], list) else [value["IN"]]
            value = {"IN": [w for item in words
                            for w in (vocabulary[item[1:]] if item.startswith("@") else [item])]}
        out[key] = value
    return out


def _phrase(text: str) -> list[dict]:
    """A phrase as lower-cased token patterns, split as the tokenizer splits text ("can't" -> ca, n't)."""
    return [{"LOWER": token.lower_} for token in _tokenizer()(text)]


@cache
def _tokenizer():
    import spacy

    return spacy.blank("en").tokenizer


@dataclass(frozen=True)
class Knowledge:
    signals: list[Signal]  # with their Matcher patterns (the knowledge base's signs have phrases instead)
    patterns: list[Pattern]  # signals.jsonl, with the examples each must fire on and miss
    signs: dict[str, list[str]]  # sign id -> its phrases (signs.yaml)
    toxins: dict[str, list[str]]  # toxin id -> its names (toxins.yaml)
    ingest: frozenset[str]  # the words of eating (a toxin named near one of them was eaten)
    cues: dict


@cache
def knowledge() -> Knowledge:
    """The signals with their patterns, the hand-written patterns with their examples, the knowledge base and
    the cues, from assist/triage/knowledge/."""
    meta = _load_yaml("signals.yaml")
    vocabulary = {name: list(words) for name, words in meta["vocabulary"].items()}
    toxins, signs = _load_yaml("toxins.yaml"), _load_yaml("signs.yaml")
    written = []
    for row in read_jsonl(KNOWLEDGE / "signals.jsonl"):
        tokens = _phrase(row["phrase"]) if "phrase" in row else [_expand(t, vocabulary) for t in row["pattern"]]
        written.append(Pattern(row["signal"], tokens, row["fires"], row["misses"]))
    patterns: dict[str, list] = {}
    for pattern in written:
        patterns.setdefault(pattern.signal, []).append(pattern.tokens)
    signals = [Signal(s["name"], s["category"], patterns.get(s["name"], []), s["strong"], s["negation_inside"],
                      s.get("worsens", False)) for s in meta["signals"]]
    signals += [Signal(sign["id"], sign.get("category", "pet_health"), [], worsens=sign.get("worsens", False))
                for sign in signs]
    return Knowledge(signals, written, {sign["id"]: sign["en"] + sign["es"] for sign in signs},
                     {entry["id"]: entry["en"] + entry["es"] for entry in toxins},
                     frozenset(vocabulary["INGEST"]), _load_yaml("cues.yaml"))


KNOWN = knowledge()
SIGNALS, PATTERNS, CUES = KNOWN.signals, KNOWN.patterns, KNOWN.cues
TOXIN_REACH = 6  # tokens between a toxin's name and the word of eating it


@cache
def vocabulary_words() -> frozenset[str]:
    """Every word the signals' patterns name: a misspelling of one of them is worth mending."""
    words: set[str] = set()
    for signal in SIGNALS:
        for pattern in signal.patterns:
            for token in pattern:
                value = token.get("LOWER")
                words.update(value["IN"] if isinstance(value, dict) else [value] if value else [])
    for phrases in (*KNOWN.signs.values(), *KNOWN.toxins.values()):
        words.update(w for p in phrases for w in p.lower().split())
    return frozenset(w for w in words if w.isalpha())
WEAK_SIGNALS = frozenset(s.name for s in SIGNALS if not s.strong)
WORSENING = frozenset(s.name for s in SIGNALS if s.worsens)
_WORDS = CUES["words"]
HELP_WORDS = set(_WORDS["help_words"])
SHORT_CRY = 6  # tokens: a message this short that only asks for help is a cry for help
CRY_FILLERS = set(_WORDS["cry_fillers"])  # may stand beside "help" ("pls help me now"); "thanks for your help" not
CRIES = set(_WORDS["cries"])
NEGATIONS = set(_WORDS["negations"])
CLAUSE_BREAKS = set(_WORDS["clause_breaks"])
NEGATION_WINDOW = 3  # tokens before a signal that may negate it
MONTHS, WEEKDAYS, ORDINALS = _WORDS["months"], _WORDS["weekdays"], _WORDS["ordinals"]
TIME_PATTERNS = CUES["time_patterns"]
FOLLOW_UP_SUBJECT = set(_WORDS["follow_up_subject"])  # "Re:" ...: a reply's subject names an earlier incident
NOW_CUES = set(_WORDS["now"])
PETS = _load_yaml("signals.yaml")["vocabulary"]["PETS"]


class DangerRules:
    """Mark danger signals in doc.spans["danger"], each with a context (span._.danger_context)."""

    def __init__(self, nlp: Language, name: str = "danger_rules"):
        self.name = name
        # One matcher per signal, run only when the text has one of the signal's anchor words:
        # the Matcher checks set predicates in Python, and most messages name few signals.
        self.matchers: list[tuple[frozenset | None, Matcher]] = []
        self.negation_inside = set()
        self.signs = PhraseMatcher(nlp.vocab, attr="LOWER")
        for sign, phrases in KNOWN.signs.items():
            self.signs.add(sign, [nlp.make_doc(p) for p in phrases])
        self.toxins = PhraseMatcher(nlp.vocab, attr="LOWER")
        for toxin, names in KNOWN.toxins.items():
            self.toxins.add(toxin, [nlp.make_doc(n) for n in names])
        for signal in SIGNALS:
            patterns = signal.patterns
            if not patterns:
                continue
            matcher = Matcher(nlp.vocab)
            matcher.add(signal.name, patterns)
            self.matchers.append((_anchors(patterns), matcher))
            if signal.negation_inside:
                self.negation_inside.add(signal.name)
        self.categories = {s.name: s.category for s in SIGNALS}
        self.times = Matcher(nlp.vocab)
        self.times.add("past", TIME_PATTERNS)
        self.cues = PhraseMatcher(nlp.vocab, attr="LOWER")
        for label, phrases in CUES["cues"].items():
            self.cues.add(label, [nlp.make_doc(p) for p in phrases])

    def __call__(self, doc: Doc) -> Doc:
        strings = doc.vocab.strings
        lowers = [strings[key] for key in doc.to_array("LOWER").tolist()]
        words = set(lowers)
        matches = []
        for anchors, matcher in self.matchers:
            if anchors is None:
                matches += matcher(doc, as_spans=True)
            elif words & anchors:
                # Match only around the anchor words: the Matcher's cost grows with the tokens it walks.
                for start, end in _windows([i for i, w in enumerate(lowers) if w in anchors], len(doc)):
                    matches += matcher(doc[start:end], as_spans=True)
        matches += self.signs(doc, as_spans=True)
        matches += _eaten(doc, self.toxins(doc, as_spans=True), lowers)
        spans = _longest_first(matches)
        if len(doc) <= 3 * SHORT_CRY:  # a cry for help is a short message (punctuation aside)
            tokens = [t for t in doc if not (t.is_punct or t.is_space)]
            said = {t.lower_ for t in tokens}
            if len(tokens) <= SHORT_CRY and (doc.text.strip().lower().strip(".!¡ ") in CRIES
                                             or (said & HELP_WORDS and said <= HELP_WORDS | CRY_FILLERS)):
                spans.append(Span(doc, 0, len(doc), label="cry_for_help"))
        doc.spans[SPAN_KEY] = spans
        if not spans:
            return doc  # no signal: no context to weigh
        cues: dict[str, list[Span]] = {}
        for span in self.cues(doc, as_spans=True):
            cues.setdefault(span.label_, []).append(span)
        when = [i for i, w in enumerate(lowers) if w in TIME_WORDS or w[:1].isdigit()]
        for start, end in _windows(when, len(doc), radius=TIME_WINDOW):
            cues.setdefault("past", []).extend(t for t in self.times(doc[start:end], as_spans=True)
                                               if not _clock_time(t))
        if len(lowers) > 1 and lowers[0] in FOLLOW_UP_SUBJECT and lowers[1] == ":":
            first_line = doc.text.split("\n", 1)[0]
            cues["subject"] = [doc.char_span(0, len(first_line), alignment_mode="expand")]
        sentences = _sentence_bounds(doc)
        for span in doc.spans[SPAN_KEY]:
            span._.danger_context = self._context(doc, span, cues, lowers, sentences[span.start])
        return doc

    def category_hint(self, span: Span) -> str:
        return self.categories.get(span.label_, "general")

    def _context(self, doc: Doc, span: Span, cues: dict[str, list[Span]], lowers: list[str],
                 sentence: tuple[int, int]) -> str:
        # A figure of speech over the signal's words ("my blood pressure"), not one inside a toxin's name
        # ("blood pressure pills").
        if any(_overlaps(span, cue) and not _inside(cue, span) for cue in cues.get("figurative", ())):
            return "figurative"
        if span.label_ not in self.negation_inside and _negated(doc, span):
            return "negated"
        if any(cue.end <= span.start and cue.start >= sentence[0] for cue in cues.get("hypothetical", ())):
            return "hypothetical"
        undone_by = {"escaped": "found", "bleeding": "stopped"}.get(span.label_)
        resolving = cues.get("resolved", []) + cues.get(undone_by, [])
        # A cue inside the signal's own words ("no lo encontramos" holds "lo encontramos") resolves nothing.
        if any((cue.start >= span.start or _overlaps(span, cue)) and not _inside(cue, span) for cue in resolving):
            return "resolved"
        if any(_overlaps(span, cue) for cue in cues.get("subject", ())):
            return "past"
        says_now = any(word in NOW_CUES for word in lowers[sentence[0]:sentence[1]])
        # Pets left without water or food only get worse with time: a duration makes it no past event.
        if span.label_ not in WORSENING and (cues.get("past") or (cues.get("paperwork") and not says_now)):
            return "past"
        return "active"


def is_strong(signal: str) -> bool:
    """Whether an active signal of this name makes a message critical by itself."""
    return signal not in WEAK_SIGNALS


# Words too frequent in this domain's messages to be worth prefiltering on.
COMMON = frozenset({"is", "was", "are", "the", "a", "an", "my", "our", "his", "her", "got", "get", "to", "in", "on",
                    "for", "of", "i", "he", "she", "it", "they", "me", "him", "them", "no", "not", "n't", "nt",
                    "can", "ca", "could", "'s", "has", "been", "just", "with", "out", "off", "away", "at", "you",
                    "us", "up", "man", "people", "person", "woman", "see", "saw", *PETS})
TIME_WORDS = frozenset(["days", "weeks", "months", "years", "día", "días", "dias", "semanas", "meses", "años", "day",
                        "dia", "week", "semana", "last", "pasado", "pasada"] + MONTHS + WEEKDAYS + ORDINALS)


def _anchors(patterns: list[list[dict]]) -> frozenset | None:
    """Words one of which every match must contain (None: a pattern has no word it must contain).

    Each pattern contributes the word set of one token it cannot match without: the one with
    the fewest domain-common words, then the smallest.
    """
    anchors: set[str] = set()
    for pattern in patterns:
        choices = []
        for token in pattern:
            if token.get("OP") not in (None, "+") or "LOWER" not in token:
                continue
            value = token["LOWER"]
            words = set(value["IN"]) if isinstance(value, dict) else {value}
            choices.append((len(words & COMMON), len(words), sorted(words)))
        if not choices:
            return None
        anchors |= set(min(choices)[2])
    return frozenset(anchors)


WINDOW = 12  # tokens on each side of an anchor word that a signal's match can reach
TIME_WINDOW = 4  # the same for a date or a duration


def _windows(positions: list[int], size: int, radius: int = WINDOW) -> list[tuple[int, int]]:
    """Merge [anchor - radius, anchor + radius] ranges into disjoint token ranges of the doc."""
    merged: list[list[int]] = []
    for i in positions:
        start, end = max(0, i - radius), min(size, i + radius + 1)
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _eaten(doc: Doc, names: list[Span], lowers: list[str]) -> list[Span]:
    """A toxin named within TOXIN_REACH tokens of a word of eating, as a "toxin" span over both."""
    found = []
    for name in names:
        low, high = max(0, name.start - TOXIN_REACH - 1), min(len(doc), name.end + TOXIN_REACH + 1)
        eating = [i for i in range(low, high) if lowers[i] in KNOWN.ingest and not name.start <= i < name.end]
        if eating:
            nearest = min(eating, key=lambda i: abs(i - name.start))
            found.append(Span(doc, min(nearest, name.start), max(nearest + 1, name.end), label="toxin"))
    return found


def _clock_time(span: Span) -> bool:
    """Whether a date-like match is no date: a time of day ("since 7 am") or an age ("80 years old")."""
    after = span.doc[span.end] if span.end < len(span.doc) else None
    return after is not None and after.lower_ in {"am", "pm", "a.m.", "p.m.", ":", "o'clock", "hrs", "h", "old"}


def _inside(inner: Span, outer: Span) -> bool:
    return outer.start <= inner.start and inner.end <= outer.end


def _overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def _longest_first(spans: list[Span]) -> list[Span]:
    """Keep the longest of overlapping matches of one signal; different signals may overlap."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (-(s.end - s.start), s.start)):
        if not any(k.label_ == span.label_ and _overlaps(k, span) for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: (s.start, s.end))


def _sentence_bounds(doc: Doc) -> list[tuple[int, int]]:
    """For each token, the (start, end) of its sentence; one sentence when none were set."""
    starts = [i for i, flag in enumerate(doc.to_array("SENT_START").tolist()) if flag == 1 or i == 0]
    bounds = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(doc)
        bounds += [(start, end)] * (end - start)
    return bounds


def _negated(doc: Doc, span: Span) -> bool:
    """Whether a negation word stands just before span, in the same clause."""
    for i in range(span.start - 1, max(span.start - 1 - NEGATION_WINDOW, -1), -1):
        token = doc[i]
        if token.lower_ in CLAUSE_BREAKS or token.is_sent_end:
            return False
        if token.lower_ in NEGATIONS or token.norm_ == "not":
            return True
    return False


if not Span.has_extension("danger_context"):
    Span.set_extension("danger_context", default=None)


@Language.factory("danger_rules")
def make_danger_rules(nlp: Language, name: str) -> DangerRules:
    return DangerRules(nlp, name)
