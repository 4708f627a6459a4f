"""Train the triage pipeline from config.cfg and data/triage, reproducibly (fixed seed)."""

import hashlib
import random
import shutil
from collections.abc import Callable
from pathlib import Path

from spacy.training import Example
from spacy.util import fix_random_seed, load_config, load_model_from_config, minibatch, registry

from assist.triage import data, features, rules  # noqa: F401  (they register the model and the rules)
from assist.triage.evaluate import Report, evaluate
from assist.triage.labels import LABELS
from assist.triage.pipeline import HEADS, MODEL_DIR

CONFIG = Path(__file__).with_name("config.cfg")
MODEL_NAME = "triage"
MODEL_VERSION = "1.0.0"  # bump when the data, the config or the rules change what the model says


def data_fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.jsonl")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _examples(docs: list, messages: list[data.Labelled], head: str) -> list[Example]:
    """Examples for one classifier, with only its own labels (exclusive textcat wants one positive)."""
    examples = []
    for doc, message in zip(docs, messages):
        cats = {label: float(label == message.label(head)) for label in LABELS[head]}
        examples.append(Example.from_dict(doc, {"cats": cats}))
    return examples


def _text(message: data.Labelled) -> str:
    from assist.triage.pipeline import prepare

    return prepare(message.text, message.channel)


def train(data_dir: Path, output: Path = MODEL_DIR, *, on_progress: Callable[[str], None] = print,
          progress_bar: Callable = lambda iterable, **kw: iterable) -> Report:
    """Train the classifiers, keep the epoch that scores best on the dev split, save it to output.

    Returns the held-out test split's report of the saved model.
    """
    config = load_config(CONFIG, interpolate=True)
    settings = config["assist_training"]
    seed = settings["seed"]
    fix_random_seed(seed)
    rng = random.Random(seed)
    messages = data.load(data_dir)
    parts = data.split(messages, settings["test_share"], settings["dev_share"])
    on_progress(f"data: {len(messages)} messages ({len(parts['train'])} train, {len(parts['dev'])} dev, "
                f"{len(parts['test'])} test) from {data_dir}")

    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    # The classifiers see the rule layer's signals: run it (and only it) over the training texts.
    with nlp.select_pipes(enable=["sentencizer", "danger_rules"]):
        docs = list(nlp.pipe(_text(m) for m in parts["train"]))
    examples = {head: _examples(docs, parts["train"], head) for head in HEADS}
    # Each classifier's labels come from [initialize.components] of the config, in taxonomy order.
    nlp.initialize(lambda: examples["urgency"])
    optimizer = registry.resolve({"optimizer": settings["optimizer"]})["optimizer"]

    best, best_score = None, -1.0
    order = list(range(len(parts["train"])))
    for epoch in progress_bar(range(1, settings["max_epochs"] + 1), desc="epochs", unit="epoch"):
        rng.shuffle(order)
        losses: dict[str, float] = {}
        for batch in minibatch(order, size=settings["batch_size"]):
            for head, component in HEADS.items():
                others = [name for name in nlp.pipe_names if name != component]
                nlp.update([examples[head][i] for i in batch], sgd=optimizer, drop=settings["dropout"],
                           losses=losses, exclude=others)
        report = evaluate(nlp, parts["dev"])
        score = report.selection_score()
        on_progress(f"epoch {epoch:>2}  loss {sum(losses.values()):7.3f}  dev: urgency F1 "
                    f"{report.macro_f1('urgency'):.3f}  emotion F1 {report.macro_f1('emotion'):.3f}  category F1 "
                    f"{report.macro_f1('category'):.3f}  critical recall {report.critical_recall():.3f}"
                    + ("  *" if score > best_score else ""))
        if score > best_score:
            best, best_score = nlp.to_bytes(), score

    nlp.from_bytes(best)
    nlp.meta.update({"name": MODEL_NAME, "version": MODEL_VERSION, "description": "incident triage",
                     "assist": {"seed": seed, "data": data_fingerprint(data_dir), "train": len(parts["train"])}})
    if output.exists():
        shutil.rmtree(output)
    nlp.to_disk(output)
    test_report = evaluate(nlp, parts["test"])
    on_progress(f"saved {MODEL_NAME}-{MODEL_VERSION} to {output}")
    return test_report
