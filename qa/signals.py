"""What the generator's own token probabilities say about its answer.

llama.cpp returns the probability of every token it chose, and of its most likely first
tokens, at no extra cost. These are the strongest signals a small model has about its own
answer (selective QA, Kamath et al. 2020; P(True), Kadavath et al. 2022): how sure it was of
the words it wrote, and how much of its first step went to declining ("NOT FOUND").
"""

from __future__ import annotations

import math

from qa.generation import Generation
from qa.prompts import NOT_FOUND_TEXT


def answer_signals(generation: Generation) -> dict[str, float]:
    """``mean_logprob``, ``min_logprob`` and ``first_prob`` of the tokens the model chose, and
    ``p_not_found``: the first-step probability of starting the reply that declines. Empty when
    the backend gives no probabilities."""
    logprobs = generation.token_logprobs
    if not logprobs:
        return {}
    declining = NOT_FOUND_TEXT.split()[0]
    p_not_found = sum(
        math.exp(lp) for piece, lp in generation.first_choices if piece.strip() and declining.startswith(piece.strip())
    )
    return {
        "mean_logprob": round(sum(logprobs) / len(logprobs), 4),
        "min_logprob": round(min(logprobs), 4),
        "first_prob": round(math.exp(logprobs[0]), 4),
        "p_not_found": round(min(p_not_found, 1.0), 4),
    }
