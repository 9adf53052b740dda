"""The model's own signals from its token probabilities."""

from __future__ import annotations

import math

from qa.generation import Choice, Generation, GenerationStats
from qa.signals import answer_signals


def test_signals_summarise_the_chosen_tokens_and_the_declining_start() -> None:
    # " N" may begin "NMPA" as well as "NOT": only a piece that is surely the decline counts
    generation = Generation(
        "The CDE [1]",
        GenerationStats(completion_tokens=3),
        token_logprobs=(math.log(0.5), math.log(0.9), math.log(1.0)),
        first_choices=(("The", math.log(0.5)), ("NOT", math.log(0.3)), (" N", math.log(0.1)), ("Yes", math.log(0.05))),
    )
    assert answer_signals(generation) == {
        "mean_logprob": round((math.log(0.5) + math.log(0.9)) / 3, 4),
        "min_logprob": round(math.log(0.5), 4),
        "first_prob": 0.5,
        "p_not_found": 0.3,
    }


def test_no_probabilities_no_signals() -> None:
    assert answer_signals(Generation("x", GenerationStats())) == {}


def test_a_yes_no_choice_reports_the_calibrated_margin() -> None:
    generation = Generation(
        "No [1]",
        GenerationStats(completion_tokens=2),
        token_logprobs=(math.log(0.4), math.log(1.0)),
        label_logprobs=(math.log(0.6), math.log(0.4)),
    )
    choice = Choice(("Yes", "No"), bias=(math.log(0.9), math.log(0.1)))
    # calibrated: Yes log(0.6/0.9), No log(0.4/0.1); No wins by log(4 * 1.5) = log 6
    assert answer_signals(generation, choice)["label_margin"] == round(math.log(6.0), 4)
    assert "label_margin" not in answer_signals(generation)
