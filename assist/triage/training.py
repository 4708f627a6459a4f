"""Train the triage pipeline from config.cfg and data/triage, reproducibly (fixed seed).

The classifiers learn from the customer messages of the train split (and the emotion head also
from GoEmotions' Reddit comments, down-weighted); the epoch kept is the best on the dev split; the
probability of critical is then calibrated on the dev split and its thresholds chosen there by the
stated costs (calibrate). The test split is never seen until the report.
"""

import hashlib
import math
import random
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy
from spacy.training import Example
from spacy.util import fix_random_seed, load_config, load_model_from_config, minibatch, registry

from assist.triage import data, features, goemotions, rules  # noqa: F401  (they register the model and the rules)
from assist.triage.evaluate import Report, evaluate
from assist.triage.labels import LABELS
from assist.triage.normalize import Speller
from assist.triage.pipeline import HEADS, KNOWN_WORDS, MODEL_DIR, Decision, read, signal_features, speller_for

CONFIG = Path(__file__).with_name("config.cfg")
MODEL_NAME = "triage"
MODEL_VERSION = "2.0.0"  # bump when the data, the config or the rules change what the model says

# The decision's stated costs, in false alarms: a missed emergency costs 20; asking the customer one
# question ("is anyone in danger?") costs a quarter of one and brings in half of the emergencies asked.
MISS_COST = 20.0
QUESTION_COST = 0.25
QUESTION_RESCUES = 0.5
KNOWN_MIN_COUNT = 2  # a word seen this often in the training texts is a word, not a typo


def data_fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.jsonl")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def known_words(texts: Iterable[str]) -> list[str]:
    counts = Counter(word for text in texts for word in text.lower().split() if word.isalpha())
    return sorted(word for word, n in counts.items() if n >= KNOWN_MIN_COUNT)


def _examples(docs: list, labels: list[str], head: str) -> list[Example]:
    """Examples for one classifier, with only its own labels (exclusive textcat wants one positive)."""
    return [Example.from_dict(doc, {"cats": {label: float(label == gold) for label in LABELS[head]}})
            for doc, gold in zip(docs, labels)]


def train(data_dir: Path, output: Path = MODEL_DIR, *, exclude: Iterable[str] = (),
          goemotions_file: Path | None = None, on_progress: Callable[[str], None] = print,
          progress_bar: Callable = lambda iterable, **kw: iterable) -> Report:
    """Train the classifiers, keep the epoch that scores best on the dev split, calibrate, save to output.

    exclude: writers (data file stems) left out, for leave-one-writer-out scores. Returns the held-out
    test split's report of the saved model.
    """
    config = load_config(CONFIG, interpolate=True)
    settings = config["assist_training"]
    seed = settings["seed"]
    fix_random_seed(seed)
    rng = random.Random(seed)  # nosec B311  # a reproducible train/dev split, not a secret
    excluded = set(exclude)
    messages = [m for m in data.load(data_dir) if m.writer not in excluded]
    parts = data.split(messages, settings["test_share"], settings["dev_share"])
    on_progress(f"data: {len(messages)} messages ({len(parts['train'])} train, {len(parts['dev'])} dev, "
                f"{len(parts['test'])} test) from {data_dir}" + (f", without {', '.join(sorted(excluded))}"
                                                                  if excluded else ""))
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    known = known_words(m.text for m in parts["train"])
    speller = speller_for(known)
    texts = [read(m.text, m.channel, speller)[1].text for m in parts["train"]]
    # The classifiers see the rule layer's signals: run it (and only it) over the training texts.
    with nlp.select_pipes(enable=["sentencizer", "danger_rules"]):
        docs = list(nlp.pipe(texts))
        comments = goemotions.load(goemotions_file or data_dir.parent / "goemotions" / "train.tsv")
        comment_docs = list(nlp.pipe(read(c.text, "sms", speller)[1].text for c in comments))
    examples = {head: _examples(docs, [m.label(head) for m in parts["train"]], head) for head in HEADS}
    reddit = _examples(comment_docs, [c.emotion for c in comments], "emotion")
    on_progress(f"emotion head: also {len(reddit)} GoEmotions comments, "
                f"{settings['goemotions_share']:.0%} of the messages' number each epoch")
    # Each classifier's labels come from [initialize.components] of the config, in taxonomy order.
    nlp.initialize(lambda: examples["urgency"])
    optimizer = registry.resolve({"optimizer": settings["optimizer"]})["optimizer"]

    best, best_score, stale = None, -1.0, 0
    order = list(range(len(parts["train"])))
    per_epoch = int(len(order) * settings["goemotions_share"])
    for epoch in progress_bar(range(1, settings["max_epochs"] + 1), desc="epochs", unit="epoch"):
        rng.shuffle(order)
        extra = rng.sample(reddit, min(per_epoch, len(reddit)))
        losses: dict[str, float] = {}
        for batch in minibatch(order, size=settings["batch_size"]):
            for head, component in HEADS.items():
                others = [name for name in nlp.pipe_names if name != component]
                nlp.update([examples[head][i] for i in batch], sgd=optimizer, drop=settings["dropout"],
                           losses=losses, exclude=others)
        emotion_only = [name for name in nlp.pipe_names if name != HEADS["emotion"]]
        for batch in minibatch(extra, size=settings["batch_size"]):
            nlp.update(batch, sgd=optimizer, drop=settings["dropout"], losses=losses, exclude=emotion_only)
        report = evaluate(nlp, parts["dev"], speller=speller, decision=Decision())
        score = report.selection_score()
        improved = score > best_score
        on_progress(f"epoch {epoch:>2}  loss {sum(losses.values()):7.3f}  dev: urgency F1 "
                    f"{report.macro_f1('urgency'):.3f}  emotion F1 {report.macro_f1('emotion'):.3f}  category F1 "
                    f"{report.macro_f1('category'):.3f}  critical recall {report.critical_recall():.3f}"
                    + ("  *" if improved else ""))
        if improved:
            best, best_score, stale = nlp.to_bytes(), score, 0
        else:
            stale += 1
            if stale >= settings["patience"]:
                break

    nlp.from_bytes(best)
    decision = calibrate(nlp, parts["dev"], speller)
    on_progress(f"calibrated on dev: P(critical) = sigmoid({decision.bias:+.2f} + "
                + " + ".join(f"{w:.2f}·{f}" for w, f in zip(decision.weights, Decision.FEATURES))
                + f"); critical at ≥ {decision.critical:.3f}, possible emergency at ≥ {decision.ask:.3f}")
    nlp.meta.update({"name": MODEL_NAME, "version": MODEL_VERSION, "description": "incident triage",
                     "assist": {"seed": seed, "data": data_fingerprint(data_dir), "train": len(parts["train"]),
                                "excluded": sorted(excluded),
                                "decision": {"weights": list(decision.weights), "bias": decision.bias,
                                             "critical": decision.critical, "ask": decision.ask}}})
    if output.exists():
        shutil.rmtree(output)
    nlp.to_disk(output)
    (output / KNOWN_WORDS).write_text("\n".join(known) + "\n", encoding="utf-8")
    test_report = evaluate(nlp, parts["test"], speller=speller, decision=decision)
    on_progress(f"saved {MODEL_NAME}-{MODEL_VERSION} to {output}")
    return test_report


def calibrate(nlp, messages: list[data.Labelled], speller: Speller) -> Decision:
    """Fit P(critical) on held-out messages (logistic regression on the classifier's logit and the rule
    signals), then choose the thresholds by the stated costs: critical where it minimises
    MISS_COST × misses + false alarms on these messages; a possible emergency where asking pays
    (QUESTION_COST < P × MISS_COST × QUESTION_RESCUES)."""
    docs = list(nlp.pipe(read(m.text, m.channel, speller)[1].text for m in messages))
    x = numpy.array([[_logit(float(d.cats["critical"])), *signal_features(d)] for d in docs], dtype=float)
    y = numpy.array([m.urgency == "critical" for m in messages], dtype=float)
    weights, bias = _logistic(x, y)
    decision = Decision(weights=tuple(round(w, 4) for w in weights), bias=round(bias, 4))
    p = numpy.array([decision.probability(float(d.cats["critical"]), signal_features(d)) for d in docs])
    candidates = sorted(set(numpy.round(p, 4).tolist()) | {0.5})
    cost = {t: MISS_COST * float(((p < t) & (y == 1)).sum()) + float(((p >= t) & (y == 0)).sum()) for t in candidates}
    critical = min(candidates, key=lambda t: (cost[t], -t))
    ask = min(critical, QUESTION_COST / (MISS_COST * QUESTION_RESCUES))
    return Decision(weights=decision.weights, bias=decision.bias, critical=round(critical, 4), ask=round(ask, 4))


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _logistic(x: numpy.ndarray, y: numpy.ndarray, l2: float = 1.0, steps: int = 50) -> tuple[list[float], float]:
    """Logistic regression by Newton's method, with an L2 penalty on the weights (not the bias)."""
    design = numpy.hstack([x, numpy.ones((len(x), 1))])
    beta = numpy.zeros(design.shape[1])
    penalty = numpy.eye(design.shape[1]) * l2
    penalty[-1, -1] = 0.0
    for _ in range(steps):
        p = 1 / (1 + numpy.exp(-numpy.clip(design @ beta, -40, 40)))
        gradient = design.T @ (p - y) + penalty @ beta
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty + 1e-9 * numpy.eye(len(beta))
        step = numpy.linalg.solve(hessian, gradient)
        beta -= step
        if numpy.abs(step).max() < 1e-8:
            break
    return beta[:-1].tolist(), float(beta[-1])
