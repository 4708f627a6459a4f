"""Score triage against labelled messages: per-label P/R/F1, macro-F1, critical recall and precision."""

from collections import Counter
from dataclasses import dataclass, field

from assist.triage.labels import LABELS


@dataclass
class Report:
    """Gold and predicted labels per head, and the scores derived from them."""

    gold: dict[str, list[str]] = field(default_factory=lambda: {head: [] for head in LABELS})
    predicted: dict[str, list[str]] = field(default_factory=lambda: {head: [] for head in LABELS})
    critical_probability: list[float] = field(default_factory=list)

    def add(self, gold: dict[str, str], predicted: dict[str, str], critical_probability: float | None = None) -> None:
        for head in LABELS:
            self.gold[head].append(gold[head])
            self.predicted[head].append(predicted[head])
        if critical_probability is not None:
            self.critical_probability.append(critical_probability)

    def calibration_error(self, bins: int = 10) -> float:
        """Expected calibration error of P(critical): the gap between predicted and observed rates, by bin."""
        pairs = list(zip(self.critical_probability, (g == "critical" for g in self.gold["urgency"])))
        if not pairs:
            return float("nan")
        total = 0.0
        for b in range(bins):
            inside = [(p, hit) for p, hit in pairs if b / bins <= p < (b + 1) / bins or (b == bins - 1 and p == 1)]
            if inside:
                total += len(inside) * abs(sum(p for p, _ in inside) / len(inside)
                                           - sum(hit for _, hit in inside) / len(inside))
        return total / len(pairs)

    def per_label(self, head: str) -> dict[str, tuple[float, float, float, int]]:
        """label -> (precision, recall, F1, support)."""
        pairs = Counter(zip(self.gold[head], self.predicted[head]))
        result = {}
        for label in LABELS[head]:
            tp = pairs[(label, label)]
            predicted = sum(n for (g, p), n in pairs.items() if p == label)
            support = sum(n for (g, p), n in pairs.items() if g == label)
            precision = tp / predicted if predicted else 0.0
            recall = tp / support if support else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            result[label] = (precision, recall, f1, support)
        return result

    def macro_f1(self, head: str) -> float:
        """Mean F1 over the labels that occur (in gold or predictions)."""
        seen = set(self.gold[head]) | set(self.predicted[head])
        scores = [f1 for label, (_, _, f1, _) in self.per_label(head).items() if label in seen]
        return sum(scores) / len(scores) if scores else 0.0

    def critical_recall(self) -> float:
        return self.per_label("urgency")["critical"][1]

    def critical_precision(self) -> float:
        return self.per_label("urgency")["critical"][0]

    def confusion(self, head: str) -> dict[str, dict[str, int]]:
        """gold label -> predicted label -> count."""
        pairs = Counter(zip(self.gold[head], self.predicted[head]))
        return {g: {p: pairs[(g, p)] for p in LABELS[head]} for g in LABELS[head]}

    def selection_score(self) -> float:
        """One number to pick the best epoch: the macro-F1s, and missed emergencies once more."""
        return (self.macro_f1("urgency") + self.macro_f1("emotion") + self.macro_f1("category")
                + 0.5 * self.critical_recall())

    def format(self) -> str:
        lines = []
        for head, labels in LABELS.items():
            lines.append(f"{head}: macro-F1 {self.macro_f1(head):.3f}")
            lines.append(f"  {'label':<16} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>7}")
            for label, (p, r, f1, n) in self.per_label(head).items():
                lines.append(f"  {label:<16} {p:>9.3f} {r:>7.3f} {f1:>6.3f} {n:>7}")
            width = max(len(label) for label in labels)
            lines.append("  confusion (rows: gold, columns: predicted)")
            lines.append("  " + " " * (width + 1) + " ".join(f"{label[:6]:>6}" for label in labels))
            for gold, row in self.confusion(head).items():
                lines.append(f"  {gold:<{width}} " + " ".join(f"{row[p]:>6}" for p in labels))
            lines.append("")
        lines.append(f"critical recall {self.critical_recall():.3f}, "
                     f"critical precision {self.critical_precision():.3f}")
        return "\n".join(lines)


def evaluate(nlp, messages, *, speller=None, decision=None) -> Report:
    """Score a pipeline (the one being trained, or the shipped one) on labelled messages."""
    from assist.triage.pipeline import decide, read

    report = Report()
    docs = nlp.pipe((read(m.text, m.channel, speller)[1].text for m in messages), batch_size=128)
    for message, doc in zip(messages, docs):
        result = decide(nlp, doc, "", evidence=False, decision=decision)
        report.add({h: message.label(h) for h in LABELS},
                   {"urgency": result.urgency, "emotion": result.emotion, "category": result.category},
                   critical_probability=result.critical_probability)
    return report
