"""Benchmark triage on the development set: quality and speed beside two baselines, in one process.

Usage: .venv/bin/python bench/triage.py [FILE.jsonl]   (default: ../shared/data/dev.jsonl)
Needs the bench extra for the NRC baseline: pip install -e '.[bench]'.

- pipeline: the shipped spaCy pipeline (rules + classifiers), one message at a time, evidence included;
- keywords: a keyword-list classifier for urgency and category;
- nrclex: the NRC emotion lexicon for emotion.
"""

import re
import statistics
import sys
import time
from pathlib import Path

from assist.triage import classify, classify_many, load
from assist.triage.data import Labelled, read_jsonl
from assist.triage.evaluate import Report
from assist.triage.pipeline import prepare

DEFAULT = Path(__file__).parents[1].parent / "shared" / "data" / "dev.jsonl"

URGENCY_WORDS = [
    ("critical", ["bleeding", "blood", "chocolate", "grapes", "xylitol", "poison", "seizure", "not breathing",
                  "hit by a car", "bit", "bitten", "attacked", "got out", "escaped", "missing", "lost", "threat",
                  "gun", "knife", "unsafe", "fire", "help", "emergency", "died", "dead"]),
    ("high", ["no show", "didn't show", "not here", "late", "limping", "vomit", "not eating", "locked out",
              "hacked", "scam", "cash", "unreachable", "not answering"]),
    ("normal", ["refund", "charge", "charged", "claim", "invoice", "damage", "broken", "review", "complaint"]),
]
CATEGORY_WORDS = [
    ("lost_pet", ["got out", "escaped", "missing", "lost", "ran off", "ran away"]),
    ("bite_attack", ["bit", "bite", "bitten", "attacked", "lunged", "snapped"]),
    ("personal_safety", ["threat", "unsafe", "harass", "gun", "knife", "scared", "drunk", "followed"]),
    ("pet_health", ["vet", "bleeding", "vomit", "chocolate", "grapes", "limping", "sick", "seizure", "poison"]),
    ("vet_claim", ["claim", "reimburse", "invoice", "guarantee"]),
    ("payment", ["refund", "charge", "payout", "fee", "billing", "paid"]),
    ("no_show", ["no show", "didn't show", "did not show", "never came", "cancelled", "not here"]),
    ("property_damage", ["damage", "broke", "broken", "chewed", "stain", "scratch", "flood", "fire"]),
    ("account", ["login", "password", "hacked", "account", "scam", "verify"]),
]
NRC_TO_TAXONOMY = {"anger": "anger", "disgust": "anger", "fear": "fear", "sadness": "sadness", "joy": "joy",
                   "trust": "joy"}


def keyword_label(text: str, table, default: str) -> str:
    lowered = text.lower()
    for label, words in table:
        if any(re.search(rf"\b{re.escape(w)}\b", lowered) for w in words):
            return label
    return default


def nrc_emotion(lexicon, text: str) -> str:
    lexicon.load_token_list(re.findall(r"[a-z']+", text.lower()))
    scores = {NRC_TO_TAXONOMY[k]: 0 for k in NRC_TO_TAXONOMY}
    for emotion, count in lexicon.raw_emotion_scores.items():
        if emotion in NRC_TO_TAXONOMY:
            scores[NRC_TO_TAXONOMY[emotion]] += count
    best = max(scores, key=scores.get)
    return best if scores[best] > 0 else "neutral"


def timed(messages, predict) -> tuple[Report, list[float]]:
    report, latencies = Report(), []
    for m in messages:
        start = time.perf_counter()
        predicted = predict(m)
        latencies.append((time.perf_counter() - start) * 1000)
        report.add({"urgency": m.urgency, "emotion": m.emotion, "category": m.category}, predicted)
    return report, latencies


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    rows = read_jsonl(path)
    messages = [Labelled(id=str(r["id"]), channel=r["channel"], text=r["text"], urgency=r["urgency"],
                         emotion=r["emotion"], category=r["category"]) for r in rows]
    load()
    for m in messages[:20]:  # warm up caches
        classify(m.text, m.channel)

    def pipeline(m):
        r = classify(m.text, m.channel)
        return {"urgency": r.urgency, "emotion": r.emotion, "category": r.category}

    def keywords(m):
        text = prepare(m.text, m.channel)
        return {"urgency": keyword_label(text, URGENCY_WORDS, "low"), "emotion": "neutral",
                "category": keyword_label(text, CATEGORY_WORDS, "general")}

    from nrclex import NRCLex

    lexicon = NRCLex()

    def nrc(m):
        return {"urgency": "low", "emotion": nrc_emotion(lexicon, prepare(m.text, m.channel)), "category": "general"}

    print(f"{len(messages)} messages from {path}\n")
    print(f"{'system':<10} {'urgency F1':>10} {'crit rec':>8} {'crit prec':>9} {'emotion F1':>10} "
          f"{'category F1':>11} {'msg/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for name, predict, heads in (("pipeline", pipeline, "uec"), ("keywords", keywords, "uc"), ("nrclex", nrc, "e")):
        report, latencies = timed(messages, predict)
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]

        def cell(head, value, heads=heads):
            return f"{value:.3f}" if head in heads else "-"

        print(f"{name:<10} {cell('u', report.macro_f1('urgency')):>10} {cell('u', report.critical_recall()):>8} "
              f"{cell('u', report.critical_precision()):>9} {cell('e', report.macro_f1('emotion')):>10} "
              f"{cell('c', report.macro_f1('category')):>11} {len(latencies) / (sum(latencies) / 1000):>8.0f} "
              f"{statistics.median(latencies):>7.2f} {p99:>7.2f}")

    start = time.perf_counter()
    list(classify_many((m.text, m.channel) for m in messages * 5))
    elapsed = time.perf_counter() - start
    print(f"\npipeline batched (classify_many, nlp.pipe): {len(messages) * 5 / elapsed:.0f} msg/s")


if __name__ == "__main__":
    main()
