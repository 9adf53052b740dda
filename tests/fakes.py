"""Test doubles that must be importable by module path (a spawned worker process imports them).

``make_generator`` is a ``qa.worker`` generator factory. Its generator copies the first
sentence of the first passage of the prompt and cites it as ``[1]``, word by word. A
question containing ``SEGV`` makes it kill its own process with SIGSEGV (as llama.cpp's
AMX kernel does), and one containing ``HANG`` makes it stall after its first word, so a
test can kill it mid-answer. The same happens once when the file named by
``QA_FAKE_TRIGGER`` holds ``segv`` or ``hang`` (it is deleted when read): that reaches a
worker behind a real server. ``settings.model == "missing"`` fails to load.
"""

from __future__ import annotations

import math
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from qa.generation import Choice, Generation, GenerationStats, Messages
from qa.models import ModelError
from qa.settings import GenerationSettings

_FIRST_PASSAGE = re.compile(r"^\[1\] (?:\([^)]*\) )?(.+?[.!?])(?:\s|$)", re.MULTILINE)


def _take_trigger() -> str:
    """`` SEGV`` or `` HANG`` once, when the trigger file asks for it; else empty."""
    path = os.environ.get("QA_FAKE_TRIGGER")
    if not path or not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as handle:
        word = handle.read().strip().upper()
    os.unlink(path)
    return f" {word}"


class ScriptedGenerator:
    """Answers each chat with ``reply(messages)``, streamed word by word, then its ``Generation``."""

    def __init__(self, reply: Callable[[Messages], str], model_id: str = "scripted") -> None:
        self.reply = reply
        self.model_id = model_id
        self.model_sha256: str | None = None
        self.calls: list[Messages] = []
        self.warm_ups = 0

    def warm_up(self) -> None:
        self.warm_ups += 1

    def stream(
        self, messages: Messages, *, max_tokens: int, choice: Choice | None = None
    ) -> Iterator[str | Generation]:
        self.calls.append(messages)
        words = self.reply(messages).split(" ")[:max_tokens]
        for i, word in enumerate(words):
            yield word if i == 0 else " " + word
            self.after_word(messages)
        prompt_tokens = sum(len(m["content"].split()) for m in messages)
        yield Generation(" ".join(words), GenerationStats(prompt_tokens=prompt_tokens, completion_tokens=len(words)))

    def after_word(self, messages: Messages) -> None:
        """A hook between streamed words (the crashing fake stalls here)."""


class LabelGenerator(ScriptedGenerator):
    """Replies "Yes", and reports ``label_probs`` as the first-step probabilities of a ``Choice``'s labels."""

    def __init__(self, label_probs: tuple[float, ...] | None) -> None:
        super().__init__(lambda m: "Yes", "labels")
        self.label_probs = label_probs

    def stream(
        self, messages: Messages, *, max_tokens: int, choice: Choice | None = None
    ) -> Iterator[str | Generation]:
        self.calls.append(messages)
        labels = tuple(math.log(p) for p in self.label_probs) if self.label_probs and choice else ()
        yield Generation("Yes", GenerationStats(), (0.0,), (), labels)


def _question(messages: Messages) -> str:
    return (messages[-1]["content"] if messages else "").rsplit("Question:", 1)[-1]


def copy_first_sentence(messages: Messages) -> str:
    """The first sentence of passage [1] of the prompt, cited; NOT FOUND without passages."""
    match = _FIRST_PASSAGE.search(messages[-1]["content"] if messages else "")
    return f"{match.group(1)} [1]" if match else "NOT FOUND"


class CopyingGenerator(ScriptedGenerator):
    """Copies passage [1]'s first sentence; crashes on ``SEGV``, stalls on ``HANG`` (see the module doc)."""

    def __init__(self, model_id: str = "fake-copying") -> None:
        super().__init__(copy_first_sentence, model_id)
        self._trigger = ""

    def stream(
        self, messages: Messages, *, max_tokens: int, choice: Choice | None = None
    ) -> Iterator[str | Generation]:
        self._trigger = _take_trigger()
        if "SEGV" in _question(messages) + self._trigger:
            os.kill(os.getpid(), signal.SIGSEGV)
        yield from super().stream(messages, max_tokens=max_tokens, choice=choice)

    def after_word(self, messages: Messages) -> None:
        if "HANG" in _question(messages) + self._trigger:
            time.sleep(3600)


def make_generator(settings: GenerationSettings, cache_dir: Path) -> CopyingGenerator:
    if settings.model == "missing":
        raise ModelError(f"Unknown model {settings.model!r} (a test of load errors).")
    return CopyingGenerator(f"fake:{settings.model}:{os.getpid()}")
