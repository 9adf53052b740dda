"""Fitting the confidence model and the min_answer threshold on eval predictions."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from qa.calibration import Logistic
from qa.evaluation.cli import main as eval_main
from qa.evaluation.fit import assess, best_threshold, fit_confidence, load_predictions


def _row(mean_logprob: float, *, correct: bool, answerable: bool = True, refused: bool = False) -> dict[str, Any]:
    signals = {"mean_logprob": mean_logprob, "relevance": 0.5, "generated": 1.0}
    return {
        "id": "x",
        "answerable": answerable,
        "refused": refused,
        "correct": correct,
        "confidence": 0.9,
        "signals": signals,
        "error": None,
    }


def test_the_threshold_withholds_the_unsure_answers_to_unanswerable_questions() -> None:
    model = Logistic({"bias": 0.0, "mean_logprob": 10.0})
    rows = [
        _row(-0.5, correct=False, answerable=False),  # p .007: withholding it is right
        _row(-0.3, correct=False, answerable=False),  # p .047: right too
        _row(-0.2, correct=True),  # p .119: withholding loses a right answer
        _row(-0.1, correct=False, answerable=False),  # p .269: gains back one
        _row(-0.01, correct=True),
    ]
    assert best_threshold(rows, model) == (0.048, 2)
    assert best_threshold([_row(-0.1, correct=True)], model) == (0.0, 0)


def test_fit_confidence_learns_from_answers_and_refusals_and_assess_applies_it() -> None:
    rows = [_row(-0.05 * i, correct=i < 10, answerable=i < 10) for i in range(20)]
    rows += [_row(0.0, correct=i % 4 != 0, refused=True, answerable=False) for i in range(8)]
    fit = fit_confidence(rows)
    assert fit.answer_weights["mean_logprob"] > 0 and fit.min_answer > 0
    assert set(fit.refusal_weights) == {"bias", "relevance", "generated", "p_not_found", "mean_logprob"}
    assessed = assess(rows, fit)
    assert assessed.rows == 28 and assessed.accuracy_before == 16 / 28
    assert assessed.accuracy_after > assessed.accuracy_before
    assert assessed.ece_after is not None and assessed.ece_before is not None
    assert assessed.ece_after < assessed.ece_before
    assert assess(rows, replace(fit, min_answer=0.0)).accuracy_after == assessed.accuracy_before
    assert fit.toml().startswith("[confidence]\nanswer_weights = { bias = ")
    assert set(fit_confidence(rows, ["relevance"]).answer_weights) == {"bias", "relevance"}


def test_fit_confidence_from_the_cli_prints_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report"
    report.mkdir()
    rows = [_row(-0.05 * i, correct=i % 3 != 0, answerable=i % 2 == 0) for i in range(12)]
    (report / "predictions.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    assert eval_main(["--fit-confidence", str(report), "--holdout", str(report)]) == 0
    out = capsys.readouterr().out
    assert "# fitted on 12 items" in out and "min_answer = " in out
    assert "# held-out, without the model's probabilities, no min_answer: 12 items" in out
    assert len(load_predictions([report])) == 12
    (report / "predictions.jsonl").write_text(json.dumps({"id": "old", "correct": True}), encoding="utf-8")
    assert eval_main(["--fit-confidence", str(report)]) == 2
    assert "no usable predictions" in capsys.readouterr().err
