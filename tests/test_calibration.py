"""Logistic confidence, its fitting, and the yes/no label prior (contextual calibration)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fakes import LabelGenerator

from qa.calibration import BIAS, CONTENT_FREE, LabelPrior, Logistic, fit_logistic
from qa.generation import Choice


def test_logistic_is_the_sigmoid_of_the_weighted_sum_and_missing_features_count_as_zero() -> None:
    model = Logistic({BIAS: -1.0, "a": 2.0, "b": 5.0})
    assert model({"a": 0.5}) == 0.5
    assert model({"a": 1.0}) == round(1 / (1 + math.exp(-1.0)), 3)
    assert not Logistic({}) and model


def test_fit_logistic_recovers_the_direction_and_the_rates_of_noisy_data() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    truth = 1 / (1 + np.exp(-(0.5 + 2.0 * x)))
    labels = [bool(v) for v in rng.random(2000) < truth]
    weights = fit_logistic([{"x": float(v), "noise": 0.0} for v in x], labels, ["x", "noise"], l2=0.1)
    assert weights["x"] == pytest.approx(2.0, abs=0.3)
    assert weights[BIAS] == pytest.approx(0.5, abs=0.2)
    assert weights["noise"] == 0.0


def test_fit_logistic_needs_matching_rows_and_labels() -> None:
    with pytest.raises(ValueError, match="as many labels"):
        fit_logistic([{"x": 1.0}], [True, False], ["x"])


def test_the_label_prior_is_measured_once_on_content_free_inputs_and_divides_out_the_bias() -> None:
    generator = LabelGenerator((0.9, 0.1))
    prior = LabelPrior(generator)
    choice = prior.choice()
    assert prior.choice() == choice and len(generator.calls) == len(CONTENT_FREE)
    assert choice.labels == ("Yes", "No")
    assert choice.bias == (round(math.log(0.9), 4), round(math.log(0.1), 4))
    # raw Yes 0.6 / No 0.4 would say Yes; divided by the prior, No is the more likely answer
    assert choice.pick((math.log(0.6), math.log(0.4))) == 1
    assert Choice(("Yes", "No")).pick((math.log(0.6), math.log(0.4))) == 0


def test_without_label_probabilities_there_is_no_correction() -> None:
    choice = LabelPrior(LabelGenerator(None)).choice()
    assert choice.bias == ()
    assert choice.pick((math.log(0.6), math.log(0.4))) == 0
