"""Triage: urgency, emotion and category of a message, with probabilities and evidence.

    from assist.triage import classify
    result = classify("my dog got out", channel="sms")

The pipeline (assist/triage/model, built by `assist train` from config.cfg) loads once
per process, on first use.
"""

from assist.triage.pipeline import Triage, classify, classify_many, load, model_version

__all__ = ["Triage", "classify", "classify_many", "load", "model_version"]
