"""What triage says about a message: its labels, their probabilities and the evidence (no model needed)."""

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Triage:
    urgency: str
    emotion: str
    category: str
    scores: dict[str, dict[str, float]]
    evidence: list[dict] = field(default_factory=list)
    language: str = "en"
    model_version: str = ""
    critical_probability: float = 0.0  # calibrated: the rules and the classifier together
    possible_emergency: bool = False  # not critical, but too likely to be one to wait: ask the customer

    def to_dict(self) -> dict:
        return asdict(self)
