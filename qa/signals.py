"""What the generator's own token probabilities say about its answer.

llama.cpp returns the probability of every token it chose, and of its most likely first
tokens, at no extra cost. These are the strongest signals a small model has about its own
answer (selective QA, Kamath et al. 2020; P(True), Kadavath et al. 2022): how sure it was of
the words it wrote, and how much of its first step went to declining ("NOT FOUND").
"""

from __future__ import annotations

import math

from qa import prompts
from qa.generation import Choice, Generation, Generator, Messages, generate
from qa.prompts import NOT_FOUND_TEXT

PROBABILITY_SIGNALS = ("mean_logprob", "min_logprob", "first_prob", "p_not_found")
"""What ``answer_signals`` gives whenever the backend reports token probabilities (``label_margin`` only for yes/no)."""


def answer_signals(generation: Generation, choice: Choice | None = None) -> dict[str, float]:
    """``mean_logprob``, ``min_logprob`` and ``first_prob`` of the tokens the model chose, and
    ``p_not_found``: the first-step probability of starting the reply that declines. With a
    ``choice`` (yes/no), ``label_margin``: how far the chosen label's calibrated log-probability
    exceeds the other's. Empty when the backend gives no probabilities."""
    logprobs = generation.token_logprobs
    if not logprobs:
        return {}
    margin = {}
    if choice is not None and len(generation.label_logprobs) == len(choice.labels) >= 2:
        bias = choice.bias or (0.0,) * len(choice.labels)
        scores = sorted((lp - b for lp, b in zip(generation.label_logprobs, bias, strict=True)), reverse=True)
        margin = {"label_margin": round(scores[0] - scores[1], 4)}
    declining = NOT_FOUND_TEXT.split()[0]
    p_not_found = sum(math.exp(lp) for piece, lp in generation.first_choices if _starts(declining, piece.strip()))
    return {
        "mean_logprob": round(sum(logprobs) / len(logprobs), 4),
        "min_logprob": round(min(logprobs), 4),
        "first_prob": round(math.exp(logprobs[0]), 4),
        "p_not_found": round(min(p_not_found, 1.0), 4),
        **margin,
    }


def _starts(word: str, piece: str) -> bool:
    """``piece`` begins ``word`` and is long enough not to begin other words too ("N" is not "NOT")."""
    return len(piece) >= min(2, len(word)) and word.startswith(piece)


def judged(generator: Generator, messages: Messages, answer: str) -> dict[str, float]:
    """``true_logodds``: log P(Yes) - log P(No) when the model is asked whether the passages state
    its own ``answer``; one more token after the cached answer prompt. Empty without label probabilities."""
    found = generate(generator, prompts.judge_messages(messages, answer), max_tokens=1, choice=Choice(("Yes", "No")))
    labels = found.label_logprobs
    return {"true_logodds": round(labels[0] - labels[1], 4)} if len(labels) == 2 else {}
