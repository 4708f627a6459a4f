"""Triage quality on text the model never saw: held-out split, leave-one-writer-out, frozen hard cases,
per language, GoEmotions' test split beside the NRC lexicon, and calibration.

Usage: .venv/bin/python bench/triage_quality.py [--skip-lowo]
Needs the bench extra for the NRC baseline: pip install -e '.[bench]'.

- held-out: the shipped model (trained on the train split) on the test split;
- leave-one-writer-out: for each writer (a data file), a model trained without them (the same recipe,
  `training.train(exclude=…)`), scored on every message they wrote; its own dev split of the other writers
  chose the epoch, the calibration and the thresholds;
- frozen: data/triage/frozen/hard_cases.jsonl, a writer who never saw the rules (never trained on);
- GoEmotions test (mapped to the five emotions): the emotion head beside the NRC emotion lexicon.
The thresholds are never chosen on any set reported here.
"""

import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import spacy

from assist.triage import data, goemotions, training
from assist.triage.evaluate import Report, evaluate
from assist.triage.labels import LABELS
from assist.triage.pipeline import KNOWN_WORDS, MODEL_DIR, decision_of, speller_for

ROOT = Path(__file__).parents[1]
DATA = ROOT / "data" / "triage"
FROZEN = DATA / "frozen" / "hard_cases.jsonl"
GOEMOTIONS = ROOT / "data" / "goemotions"
NRC_TO_TAXONOMY = {"anger": "anger", "disgust": "anger", "fear": "fear", "sadness": "sadness", "joy": "joy",
                   "trust": "joy"}


def line(name: str, report: Report, n: int) -> str:
    return (f"{name:<28} {n:>5}  crit R {report.critical_recall():.3f}  P {report.critical_precision():.3f}  "
            f"urgency {report.macro_f1('urgency'):.3f}  category {report.macro_f1('category'):.3f}  "
            f"emotion {report.macro_f1('emotion'):.3f}")


def scored(model: Path, messages: list[data.Labelled]) -> Report:
    nlp = spacy.load(model)
    known = (model / KNOWN_WORDS).read_text(encoding="utf-8").split()
    return evaluate(nlp, messages, speller=speller_for(known), decision=decision_of(nlp))


def by_language(model: Path, messages: list[data.Labelled], name: str) -> list[str]:
    out = []
    for language in ("en", "es"):
        subset = [m for m in messages if m.lang == language]
        if subset:
            out.append(line(f"{name} · {language}", scored(model, subset), len(subset)))
    return out


def merge(reports: list[Report]) -> Report:
    merged = Report()
    for report in reports:
        for head in LABELS:
            merged.gold[head] += report.gold[head]
            merged.predicted[head] += report.predicted[head]
        merged.critical_probability += report.critical_probability
    return merged


def goemotions_scores() -> list[str]:
    from assist.triage import classify_many

    comments = goemotions.load(GOEMOTIONS / "test.tsv")
    report = Report()
    for comment, result in zip(comments, classify_many((c.text, "sms") for c in comments)):
        report.gold["emotion"].append(comment.emotion)
        report.predicted["emotion"].append(result.emotion)
    out = [f"GoEmotions test (mapped, {len(comments)} comments): emotion macro-F1 {report.macro_f1('emotion'):.3f}"]
    try:
        from nrclex import NRCLex
    except ImportError:
        return out + ["  NRC lexicon: not installed (pip install -e '.[bench]')"]
    import re

    lexicon = NRCLex()
    nrc = Report()
    for comment in comments:
        lexicon.load_token_list(re.findall(r"[a-z']+", comment.text.lower()))
        scores = {NRC_TO_TAXONOMY[k]: 0 for k in NRC_TO_TAXONOMY}
        for emotion, count in lexicon.raw_emotion_scores.items():
            if emotion in NRC_TO_TAXONOMY:
                scores[NRC_TO_TAXONOMY[emotion]] += count
        best = max(scores, key=scores.get)
        nrc.gold["emotion"].append(comment.emotion)
        nrc.predicted["emotion"].append(best if scores[best] else "neutral")
    return out + [f"  NRC emotion lexicon on the same comments: emotion macro-F1 {nrc.macro_f1('emotion'):.3f}"]


def main() -> None:
    started = time.perf_counter()
    messages = data.load(DATA)
    config = training.load_config(training.CONFIG, interpolate=True)["assist_training"]
    test = data.split(messages, config["test_share"], config["dev_share"])["test"]
    print(f"data: {len(messages)} messages by {len({m.writer for m in messages})} writers; "
          f"{sum(m.lang == 'es' for m in messages) / len(messages):.0%} Spanish, "
          f"{sum(m.hard != 'none' for m in messages) / len(messages):.0%} hard cases\n")

    held_out = scored(MODEL_DIR, test)
    print("== the shipped model ==")
    print(line("held-out test split", held_out, len(test)))
    print(f"{'':<28}        calibration error of P(critical) (ECE, 10 bins): {held_out.calibration_error():.3f}")
    print("\n".join(by_language(MODEL_DIR, test, "held-out")))
    frozen = [data.Labelled(**{k: r[k] for k in ("id", "channel", "text", "urgency", "emotion", "category")},
                            lang=r["lang"], hard=r["hard"], writer="frozen") for r in data.read_jsonl(FROZEN)]
    print(line("frozen hard cases", scored(MODEL_DIR, frozen), len(frozen)))
    print("\n".join(by_language(MODEL_DIR, frozen, "frozen")))
    print()
    print("\n".join(goemotions_scores()))

    if "--skip-lowo" in sys.argv:
        return
    print("\n== leave one writer out (a model trained without them, scored on all they wrote) ==")
    writers = sorted({m.writer for m in messages})
    reports, by_lang = [], defaultdict(list)
    for writer in writers:
        theirs = [m for m in messages if m.writer == writer]
        with tempfile.TemporaryDirectory() as folder:
            model = Path(folder) / "model"
            training.train(DATA, model, exclude={writer}, on_progress=lambda _: None)
            report = scored(model, theirs)
            for language in ("en", "es"):
                subset = [m for m in theirs if m.lang == language]
                if subset:
                    by_lang[language].append(scored(model, subset))
        reports.append(report)
        print(line(writer, report, len(theirs)), flush=True)
    pooled = merge(reports)
    print(line("all writers, pooled", pooled, len(messages)))
    print(f"{'':<28}        calibration error of P(critical) (ECE, 10 bins): {pooled.calibration_error():.3f}")
    for language, parts in by_lang.items():
        merged = merge(parts)
        print(line(f"pooled · {language}", merged, len(merged.gold['urgency'])))
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
