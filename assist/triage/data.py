"""The triage training data (data/triage/*.jsonl) and its fixed train / dev / test split."""

import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from assist.triage.labels import LABELS

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Labelled:
    id: str
    channel: str
    text: str
    urgency: str
    emotion: str
    category: str
    lang: str = "en"
    hard: str = "none"
    writer: str = ""  # the file it came from: each file is one writer's (see data/triage/README.md)

    def label(self, head: str) -> str:
        return getattr(self, head)


def split_of(message_id: str, test_share: float, dev_share: float) -> str:
    """The split a message belongs to, by a stable hash of its id (the same on every machine)."""
    bucket = zlib.crc32(message_id.encode()) % 1000 / 1000
    if bucket < test_share:
        return "test"
    if bucket < test_share + dev_share:
        return "dev"
    return "train"


def numbered_jsonl(lines: Iterable[str], name: str) -> Iterator[tuple[int, dict]]:
    """Each JSON object of JSON lines with its line number (blank lines skipped); a ValueError names the file
    and line of a bad one."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name}:{number}: not JSON ({exc.msg})") from None


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a JSON-lines file."""
    with path.open(encoding="utf-8") as f:
        return [row for _, row in numbered_jsonl(f, str(path))]


def load(folder: Path) -> list[Labelled]:
    """Load every labelled message of folder's *.jsonl (not of its subfolders: frozen/ is never trained
    on), checking its labels against the taxonomy."""
    messages = []
    for path in sorted(folder.glob("*.jsonl")):
        for row in read_jsonl(path):
            for head, labels in LABELS.items():
                if row.get(head) not in labels:
                    raise ValueError(f"{path}: {row.get('id')}: {head} {row.get(head)!r} is not in the taxonomy")
            messages.append(Labelled(id=row["id"], channel=row["channel"], text=row["text"], urgency=row["urgency"],
                                     emotion=row["emotion"], category=row["category"], lang=row.get("lang", "en"),
                                     hard=row.get("hard", "none"), writer=path.stem))
    return messages


def split(messages: list[Labelled], test_share: float, dev_share: float) -> dict[str, list[Labelled]]:
    parts: dict[str, list[Labelled]] = {name: [] for name in SPLITS}
    for message in messages:
        parts[split_of(message.id, test_share, dev_share)].append(message)
    return parts
