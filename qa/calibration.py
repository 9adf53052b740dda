"""Turning signals into probabilities: logistic confidence, and the yes/no label prior.

Confidence is a logistic model over named signals (the model's token probabilities from
``qa.signals`` and the checks' scores), so that "80%" means about 8 in 10 are right
(Kamath et al. 2020, selective QA). Its weights live in the settings and are fitted with
``qa eval --fit-confidence`` on the predictions of an eval run (``fit_logistic``), one
split for fitting and another for reporting.

A small model answers "yes" to nearly every yes/no question. ``LabelPrior`` measures that
bias once, on content-free inputs, so the answer can divide it out (contextual calibration,
Zhao et al. 2021).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from qa import prompts
from qa.generation import Choice, Generator, generate

BIAS = "bias"
CONTENT_FREE = ("N/A", "", "[MASK]")


@dataclass(frozen=True)
class Logistic:
    """``sigmoid(bias + sum(weight * feature))`` over named features; a missing feature counts as 0."""

    weights: Mapping[str, float]

    def __bool__(self) -> bool:
        return bool(self.weights)

    def __call__(self, features: Mapping[str, float]) -> float:
        z = self.weights.get(BIAS, 0.0)
        z += sum(w * float(features.get(name, 0.0)) for name, w in self.weights.items() if name != BIAS)
        return round(1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0))), 3)


def fit_logistic(
    rows: Sequence[Mapping[str, float]], labels: Sequence[bool], names: Sequence[str], *, l2: float = 1.0
) -> dict[str, float]:
    """Weights (with ``bias``) of an L2-regularised logistic regression of ``labels`` on ``names``,
    by Newton's method; features are used as given (missing ones are 0)."""
    if len(rows) != len(labels) or not rows:
        raise ValueError("fit_logistic needs as many labels as rows, and at least one row.")
    x = np.array([[1.0, *(float(r.get(n, 0.0)) for n in names)] for r in rows])
    y = np.array([1.0 if label else 0.0 for label in labels])
    penalty = np.eye(x.shape[1]) * l2
    penalty[0, 0] = 0.0  # the bias is not shrunk
    w = np.zeros(x.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty + np.eye(x.shape[1]) * 1e-9
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return {BIAS: round(float(w[0]), 4), **{n: round(float(v), 4) for n, v in zip(names, w[1:], strict=True)}}


class LabelPrior:
    """The generator's log-probabilities of each label on content-free yes/no questions, averaged
    (Zhao et al. 2021): measured once, on first use, then reused."""

    def __init__(self, generator: Generator, labels: Sequence[str] = ("Yes", "No")) -> None:
        self.generator = generator
        self.labels = tuple(labels)
        self._bias: tuple[float, ...] | None = None
        self._lock = threading.Lock()

    def choice(self) -> Choice:
        """The ``Choice`` that picks the label whose probability most exceeds its prior."""
        with self._lock:
            if self._bias is None:
                self._bias = self._measure()
        return Choice(self.labels, self._bias)

    def _measure(self) -> tuple[float, ...]:
        probs = []
        for text in CONTENT_FREE:
            messages = prompts.answer_messages(text or "?", [("", text)], yes_no=True)
            found = generate(self.generator, messages, max_tokens=1, choice=Choice(self.labels)).label_logprobs
            if len(found) != len(self.labels):
                return ()  # the backend gives no label probabilities: no correction
            p = np.exp(np.array(found))
            probs.append(p / p.sum())
        mean = np.mean(probs, axis=0)
        return tuple(round(float(v), 4) for v in np.log(mean))
