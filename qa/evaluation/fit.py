"""Fitting the confidence model on eval predictions: ``qa eval --fit-confidence REPORT ...``.

Reads the ``predictions.jsonl`` of one or more report folders (the tuning split), fits one
logistic model for answers and one for refusals on the signals each row carries, picks the
``min_answer`` threshold that maximises accuracy on those rows, and prints the settings as
TOML for ``qa.toml``. Report the result on another split.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qa.calibration import Logistic, fit_logistic
from qa.evaluation.metrics import expected_calibration_error

ANSWER_FEATURES = (
    "mean_logprob",
    "min_logprob",
    "first_prob",
    "p_not_found",
    "relevance",
    "support",
    "cited_ok",
    "yes_no",
    "label_margin",
)
"""The signals the default confidence model uses; ``true_logodds`` (P(True)) is there only with
``confidence.self_judge``, off by default: it did not improve held-out calibration (see the ablation)."""
REFUSAL_FEATURES = ("relevance", "generated", "p_not_found", "mean_logprob")


TOKEN_SIGNALS = ("mean_logprob", "min_logprob", "first_prob", "p_not_found", "label_margin", "true_logodds")
ABLATIONS: dict[str, tuple[str, ...]] = {
    "default signals": ANSWER_FEATURES,
    "with P(True)": (*ANSWER_FEATURES, "true_logodds"),
    "without the model's probabilities": tuple(f for f in ANSWER_FEATURES if f not in TOKEN_SIGNALS),
}


@dataclass(frozen=True)
class Assessment:
    """Accuracy and ECE of a set of predictions as run, and with a fitted model applied."""

    rows: int
    accuracy_before: float
    accuracy_after: float
    ece_before: float | None
    ece_after: float | None


@dataclass(frozen=True)
class Fit:
    answer_weights: dict[str, float]
    refusal_weights: dict[str, float]
    min_answer: float

    def toml(self) -> str:
        def table(weights: Mapping[str, float]) -> str:
            return "{ " + ", ".join(f"{k} = {v}" for k, v in weights.items()) + " }"

        return (
            "[confidence]\n"
            f"answer_weights = {table(self.answer_weights)}\n"
            f"refusal_weights = {table(self.refusal_weights)}\n"
            f"min_answer = {self.min_answer}\n"
        )


def load_predictions(reports: Sequence[Path]) -> list[dict[str, Any]]:
    """The rows of each report's ``predictions.jsonl`` that ran without error and carry signals."""
    rows: list[dict[str, Any]] = []
    for report in reports:
        path = report / "predictions.jsonl" if report.is_dir() else report
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                if not row.get("error") and "answerable" in row:
                    rows.append(row)
    if not rows:
        raise ValueError("no usable predictions: run `qa eval` with this version first (rows need signals)")
    return rows


def best_threshold(answered: Sequence[Mapping[str, Any]], model: Logistic) -> tuple[float, int]:
    """The ``min_answer`` that gains most correct items by withholding low-confidence answers
    (a withheld answer is right when the item has no answer), and that gain."""
    scored = sorted(((model(r["signals"]), r) for r in answered), key=lambda pair: pair[0])
    best, gain, running = 0.0, 0, 0
    for p, row in scored:
        running += (not row["answerable"]) - bool(row["correct"])
        if running > gain:
            best, gain = round(p + 0.001, 3), running
    return best, gain


def fit_confidence(rows: Sequence[Mapping[str, Any]], features: Sequence[str] = ANSWER_FEATURES) -> Fit:
    """Logistic models for answers (on ``features``) and refusals, and the best ``min_answer``."""
    answered = [r for r in rows if not r["refused"]]
    refused = [r for r in rows if r["refused"]]
    answer_weights = (
        fit_logistic([r["signals"] for r in answered], [bool(r["correct"]) for r in answered], features)
        if answered
        else {}
    )
    refusal_weights = (
        fit_logistic([r["signals"] for r in refused], [bool(r["correct"]) for r in refused], REFUSAL_FEATURES)
        if refused
        else {}
    )
    threshold, _ = best_threshold(answered, Logistic(answer_weights))
    return Fit(answer_weights, refusal_weights, threshold)


def assess(rows: Sequence[Mapping[str, Any]], fit: Fit) -> Assessment:
    """``rows`` as they ran, and with ``fit``'s confidence and ``min_answer`` applied (a withheld
    answer is right exactly when the item has no answer)."""
    answer_model, refusal_model = Logistic(fit.answer_weights), Logistic(fit.refusal_weights)
    before = [(float(r["confidence"] or 0.0), bool(r["correct"])) for r in rows]
    after: list[tuple[float, bool]] = []
    for r in rows:
        if r["refused"]:
            after.append((refusal_model(r["signals"]), bool(r["correct"])))
        elif (p := answer_model(r["signals"])) < fit.min_answer:
            after.append((round(1.0 - p, 3), not r["answerable"]))
        else:
            after.append((p, bool(r["correct"])))
    return Assessment(
        rows=len(rows),
        accuracy_before=sum(c for _, c in before) / len(rows),
        accuracy_after=sum(c for _, c in after) / len(rows),
        ece_before=_ece(before),
        ece_after=_ece(after),
    )


def _ece(pairs: Sequence[tuple[float, bool]]) -> float | None:
    ece = expected_calibration_error([p for p, _ in pairs], [c for _, c in pairs])
    return None if ece is None else round(ece, 3)


def run_fit(reports: Sequence[Path], holdout: Sequence[Path] = ()) -> int:
    rows = load_predictions(reports)
    fit = fit_confidence(rows)
    print(f"# fitted on {len(rows)} items from: {', '.join(str(r) for r in reports)}")
    _print_assessment("in-sample", assess(rows, fit))
    if holdout:
        held = load_predictions(holdout)
        print(f"# held out: {', '.join(str(r) for r in holdout)}")
        for name, features in ABLATIONS.items():
            ablated = fit_confidence(rows, features)
            _print_assessment(f"held-out, {name}", assess(held, ablated))
            _print_assessment(f"held-out, {name}, no min_answer", assess(held, replace(ablated, min_answer=0.0)))
    print(fit.toml())
    return 0


def _print_assessment(name: str, a: Assessment) -> None:
    print(
        f"# {name}: {a.rows} items, accuracy {a.accuracy_before:.1%} -> {a.accuracy_after:.1%}, "
        f"ECE {a.ece_before} -> {a.ece_after}"
    )
