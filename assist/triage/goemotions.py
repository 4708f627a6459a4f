"""GoEmotions (data/goemotions, Apache-2.0) mapped to the taxonomy's five emotions.

Reddit comments are not customer messages, but they hold far more ways of being angry, afraid,
sad or glad than the team's own data: the emotion head learns from both, the comments down-weighted.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

# GoEmotions label -> the taxonomy's emotion (the team's mapping, data/goemotions/README.md).
MAPPING = {
    **dict.fromkeys(["anger", "annoyance", "disapproval", "disgust"], "anger"),
    **dict.fromkeys(["fear", "nervousness"], "fear"),
    **dict.fromkeys(["sadness", "disappointment", "embarrassment", "grief", "remorse"], "sadness"),
    **dict.fromkeys(["joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism", "relief",
                     "pride", "admiration", "desire", "caring"], "joy"),
    "neutral": "neutral",
}  # surprise, realization, confusion, curiosity: no emotion of the taxonomy (the row is dropped)


@dataclass(frozen=True)
class Comment:
    text: str
    emotion: str


def load(path: Path) -> list[Comment]:
    """The rows of a GoEmotions TSV whose labels all map to one emotion of the taxonomy."""
    names = (path.parent / "labels.txt").read_text(encoding="utf-8").split()
    comments = []
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) < 2:
                continue
            emotions = {MAPPING.get(names[int(i)]) for i in row[1].split(",")}
            if len(emotions) == 1 and None not in emotions:
                comments.append(Comment(row[0], emotions.pop()))
    return comments
