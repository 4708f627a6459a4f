"""Normalize what people type and what speech recognition returns, before triage reads it.

- Fillers are dropped ("um", "uh", "eh", "ehm"…), so "hit by um a car" is "hit by a car".
- A word or a two-word phrase said twice in a row is kept once ("he's he's not", "could be could be").
- A misspelled domain word is mended when it is one letter away from a word of the domain's
  vocabulary and the word as written is not itself known ("bleedng", "siezure", "poisen").
- Text beyond MAX_CHARS is not read (triage cost stays linear; the rest of the message is kept).

The normalized text comes with a map from each of its characters to the original text, so the
evidence spans found in it point at the customer's own words.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

FILLERS = frozenset({"um", "umm", "uh", "uhh", "uhm", "er", "erm", "hmm", "hm", "mm", "mmm", "ehm", "eh", "ehh", "em"})
MAX_CHARS = 4000  # characters of a message's new part that triage reads
MIN_FIX = 5  # shorter words are never mended ("bit" / "but")
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\d+|[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class Normalized:
    text: str
    origin: list[int]  # origin[i]: the index in the original text of the normalized text's character i

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original text's span behind the normalized text's [start, end)."""
        if not self.origin:
            return start, end
        start = min(start, len(self.origin) - 1)
        last = min(max(end - 1, start), len(self.origin) - 1)
        return self.origin[start], self.origin[last] + 1


class Speller:
    """Mend a word one edit away from a domain word (by the deletion neighbourhoods of both)."""

    def __init__(self, domain: Iterable[str], known: Iterable[str] = ()):
        self.domain = {w.lower() for w in domain if len(w) >= MIN_FIX and w.isalpha()}
        self.known = {w.lower() for w in known} | self.domain
        self.index: dict[str, set[str]] = {}
        for word in self.domain:
            for variant in _deletions(word) | {word}:
                self.index.setdefault(variant, set()).add(word)

    def mend(self, word: str) -> str | None:
        lower = word.lower()
        if lower in self.known or len(lower) < MIN_FIX or not lower.isalpha():
            return None
        candidates: set[str] = set()
        for variant in _deletions(lower) | {lower}:
            candidates |= self.index.get(variant, set())
        candidates = {c for c in candidates if _one_edit(lower, c)}
        return next(iter(candidates)) if len(candidates) == 1 else None


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def _one_edit(a: str, b: str) -> bool:
    """Whether a and b differ by one insertion, deletion, substitution or swap of neighbours."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                   and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


def normalize(text: str, speller: Speller | None = None) -> Normalized:
    """The text triage reads, and where each of its characters came from."""
    text = text[:MAX_CHARS]
    kept: list[tuple[str, int]] = []
    for match in WORD.finditer(text):
        word, start = match.group(), match.start()
        if word.lower() in FILLERS:
            continue
        if kept and word.isalnum() and kept[-1][0].lower() == word.lower():
            continue  # "the the" is one "the"
        kept.append((word, start))
        if len(kept) >= 4 and kept[-1][0].lower() == kept[-3][0].lower() \
                and kept[-2][0].lower() == kept[-4][0].lower() and all(w.isalnum() for w, _ in kept[-4:]):
            del kept[-2:]  # "could be could be" is one "could be"
    pieces: list[str] = []
    origin: list[int] = []
    previous_end = None
    for word, start in kept:
        if previous_end is not None:
            gap = text[previous_end:start]
            sep = "" if not gap else ("\n" if "\n" in gap else " ")  # a dropped word leaves one space
            pieces.append(sep)
            origin.extend([previous_end] * len(sep))
        mended = speller.mend(word) if speller is not None and len(word) >= MIN_FIX else None
        if mended is None:
            pieces.append(word)
            origin.extend(range(start, start + len(word)))
        else:  # a mended word maps, letter by letter, onto the word as written
            pieces.append(mended)
            origin.extend(min(start + i, start + len(word) - 1) for i in range(len(mended)))
        previous_end = start + len(word)
    return Normalized("".join(pieces), origin)


