"""Triage: urgency, emotion and category of a message, with probabilities and evidence.

    from assist.triage import classify
    result = classify("my dog got out", channel="sms")

The pipeline (assist/triage/model, built by `assist train` from config.cfg) loads once per process, on
first use; importing this package loads neither spaCy nor the model (the names below are looked up
in assist.triage.pipeline when first used).
"""

from typing import TYPE_CHECKING

from assist.triage.result import Triage

if TYPE_CHECKING:
    from assist.triage.pipeline import classify, classify_many, load, model_version

_PIPELINE = ("classify", "classify_many", "load", "model_version")


def __getattr__(name: str):
    if name in _PIPELINE:
        from assist.triage import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'assist.triage' has no attribute {name!r}")


__all__ = ["Triage", "classify", "classify_many", "load", "model_version"]
