"""Chat generators: llama.cpp over the packaged GGUF (default), a local Hugging Face folder, or a
server speaking the OpenAI chat API (``qa.remote``).

A generator streams text for a list of chat messages, greedily, and ends the stream with
a ``Generation``: the whole text with how long prompt processing and decoding took.
Generators are not thread-safe; each holds a lock so concurrent callers queue instead
of corrupting the model state.
"""

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from qa.offline import enforce_offline
from qa.settings import GenerationSettings

if TYPE_CHECKING:
    from qa.threads import ThreadChoice

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_seconds: float = 0.0
    decode_seconds: float = 0.0
    cached_tokens: int = 0  # of the prompt's tokens, how many llama.cpp reused from its cache


@dataclass(frozen=True)
class Generation:
    """A finished completion with how it was made; the last item ``stream()`` yields.

    ``token_logprobs`` holds the model's log-probability of each token it chose, and
    ``first_choices`` its most likely first tokens with their log-probabilities, where the
    backend gives them (llama.cpp does, at no extra cost): the model's own signal about
    its answer.
    """

    text: str
    stats: GenerationStats
    token_logprobs: tuple[float, ...] = ()
    first_choices: tuple[tuple[str, float], ...] = ()
    label_logprobs: tuple[float, ...] = ()


@dataclass(frozen=True)
class Choice:
    """When the model's first token is one of ``labels`` ("Yes", "No"), make it the label whose
    first-step log-probability minus its ``bias`` is highest, then decode on greedily. ``bias`` is
    the model's log prior for each label on a content-free input (contextual calibration, Zhao et
    al. 2021); zeros pick the plain argmax among the labels. The ``Generation`` reports the raw
    log-probability of every label."""

    labels: tuple[str, ...]
    bias: tuple[float, ...] = ()

    def pick(self, logprobs: Sequence[float]) -> int:
        bias = self.bias or (0.0,) * len(self.labels)
        scores = [lp - b for lp, b in zip(logprobs, bias, strict=True)]
        return max(range(len(scores)), key=scores.__getitem__)


class Generator(Protocol):
    """Streams a greedy completion: text deltas, then one final ``Generation``."""

    model_id: str
    model_sha256: str | None

    def warm_up(self) -> None: ...

    def stream(
        self, messages: Messages, *, max_tokens: int, choice: Choice | None = None
    ) -> Iterator[str | Generation]: ...


def generate(generator: Generator, messages: Messages, *, max_tokens: int, choice: Choice | None = None) -> Generation:
    """The whole completion with its statistics."""
    for item in generator.stream(messages, max_tokens=max_tokens, choice=choice):
        if isinstance(item, Generation):
            return item
    raise RuntimeError(f"{type(generator).__name__}.stream() ended without its final Generation")


def _timed(pieces: Iterable[str], prompt_tokens: Callable[[int], int]) -> Iterator[str | Generation]:
    """Pass the non-empty pieces through, then their ``Generation``, timing prompt processing and decoding.

    ``prompt_tokens(completion_tokens)`` gives the prompt's length once the completion is known.
    """
    start = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        if first is None:
            first = time.perf_counter()
        parts.append(piece)
        yield piece
    end = time.perf_counter()
    first = first or end
    stats = GenerationStats(prompt_tokens(len(parts)), len(parts), first - start, end - first)
    yield Generation("".join(parts), stats)


class LlamaCppGenerator:
    """A GGUF model through llama-cpp-python: greedy, fixed prefix reused from the KV cache."""

    def __init__(self, settings: GenerationSettings, cache_dir: Path) -> None:
        self.settings = settings
        self.cache_dir = cache_dir
        self.model_id = settings.model
        self.model_sha256: str | None = None
        self._llm: Any = None
        self._formatter: Any = None
        self._lock = threading.Lock()
        self.threads: ThreadChoice | None = None

    def warm_up(self) -> None:
        if self._llm is not None:
            return
        from qa.models import pinned_sha256, resolve_model

        enforce_offline()
        from qa.threads import resolve

        path = resolve_model(self.settings.model, self.cache_dir)
        self.model_sha256 = pinned_sha256(self.settings.model)
        self.threads = resolve(self.settings, self.cache_dir, path, self.model_sha256)
        if self.settings.self_check:
            from qa.native import ensure_runs

            ensure_runs(path, self.model_sha256, n_threads=self.threads.n_threads, cache_dir=self.cache_dir)
        from llama_cpp import Llama

        self._llm = Llama(
            model_path=str(path),
            n_ctx=self.settings.n_ctx,
            n_threads=self.threads.n_threads,
            n_threads_batch=self.threads.n_threads_batch,
            n_batch=512,
            seed=0,
            verbose=False,
        )

    def count_tokens(self, text: str) -> int:
        self.warm_up()
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False))

    def stream(
        self, messages: Messages, *, max_tokens: int, choice: Choice | None = None
    ) -> Iterator[str | Generation]:
        """Greedy decoding token by token, reading each step's probabilities from the logits llama.cpp keeps.

        With a ``choice``, the first token is the chosen label's, and decoding goes on from it."""
        self.warm_up()
        with self._lock:
            prompt = self._prompt_tokens(messages)
            cached = self._cached_prefix(prompt)
            started = time.perf_counter()
            first: float | None = None
            tokens: list[int] = []
            logprobs: list[float] = []
            labels: tuple[float, ...] = ()
            choices: tuple[tuple[str, float], ...] = ()
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            parts: list[str] = []
            for token in self._decode(prompt, tokens, choice):
                step = _log_softmax(self._last_logits())
                if first is None:
                    first, choices = time.perf_counter(), self._top_choices(step)
                    if choice is not None:
                        label_tokens = self._label_tokens(choice.labels)
                        labels = tuple(float(step[t]) for t in label_tokens)
                        if token in label_tokens:  # re-rank the labels only; "NOT FOUND" stays
                            token = label_tokens[choice.pick(labels)]
                if self._is_end(token) or len(tokens) >= max_tokens:
                    break
                tokens.append(token)
                logprobs.append(float(step[token]))
                piece = decoder.decode(self._llm.detokenize([token], prev_tokens=prompt + tokens[:-1]))
                if piece:
                    parts.append(piece)
                    yield piece
            if tail := decoder.decode(b"", final=True):
                parts.append(tail)
                yield tail
            end = time.perf_counter()
            stats = GenerationStats(len(prompt), len(tokens), (first or end) - started, end - (first or end), cached)
            yield Generation("".join(parts), stats, tuple(logprobs), choices, labels)

    def _decode(self, prompt: list[int], tokens: list[int], choice: Choice | None) -> Iterator[int]:
        """Greedy next tokens; after a ``choice`` the first token may be overridden, so decoding restarts
        from the prompt plus that token (the prompt itself comes from llama.cpp's cache)."""
        steps = self._llm.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0)
        first = next(steps, None)
        if first is None:
            return
        yield first
        if choice is None or not tokens or tokens[0] == first:
            yield from steps
            return
        steps.close()
        yield from self._llm.generate(prompt + tokens[:1], top_k=1, temp=0.0, repeat_penalty=1.0)

    def _cached_prefix(self, prompt: Sequence[int]) -> int:
        """How many leading tokens of ``prompt`` llama.cpp still holds from the last call (it reuses them;
        at least the last prompt token is evaluated again)."""
        held = self._llm.input_ids[: self._llm.n_tokens]
        same = 0
        for a, b in zip(held, prompt, strict=False):
            if int(a) != b:
                break
            same += 1
        return min(same, len(prompt) - 1)

    def _label_tokens(self, labels: Sequence[str]) -> list[int]:
        return [int(self._llm.tokenize(label.encode("utf-8"), add_bos=False)[0]) for label in labels]

    def _prompt_tokens(self, messages: Messages) -> list[int]:
        """The chat rendered by the model's own template (as ``create_chat_completion`` does), tokenised."""
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            llm = self._llm
            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise RuntimeError(f"{self.model_id} has no chat template in its GGUF metadata")
            eos, bos = llm.token_eos(), llm.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
                bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
            )
        rendered = self._formatter(messages=messages)
        data: list[int] = self._llm.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )
        return data

    def _last_logits(self) -> np.ndarray:
        return np.ctypeslib.as_array(self._llm._ctx.get_logits(), shape=(self._llm.n_vocab(),))

    def _is_end(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self._llm._model.vocab, token))

    def _top_choices(self, step: np.ndarray, n: int = 5) -> tuple[tuple[str, float], ...]:
        best = np.argpartition(step, -n)[-n:]
        best = best[np.argsort(-step[best])]
        pieces = (self._llm.detokenize([int(t)]).decode("utf-8", errors="replace") for t in best)
        return tuple((piece, float(step[t])) for piece, t in zip(pieces, best, strict=True))


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - float(np.max(logits))
    return np.asarray(shifted - np.log(np.exp(shifted).sum()))


class TransformersGenerator:
    """Any local Hugging Face causal LM folder (with a chat template), run on the CPU."""

    def __init__(self, settings: GenerationSettings) -> None:
        self.settings = settings
        self.model_id = settings.model
        self.model_sha256: str | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._model is not None:
            return
        enforce_offline()
        path = Path(self.settings.model).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"Transformers model folder {path} does not exist.")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from qa.threads import usable_cores

        torch.set_num_threads(self.settings.n_threads or usable_cores())
        self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self._model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
        self._model.eval()

    def stream(
        self, messages: Messages, *, max_tokens: int, choice: Choice | None = None
    ) -> Iterator[str | Generation]:
        """Greedy generation; ``choice`` is not supported here (no label probabilities are reported)."""
        self.warm_up()
        import torch
        from transformers import TextIteratorStreamer

        with self._lock:
            inputs = self._tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            prompt_tokens = int(inputs["input_ids"].shape[-1])
            streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
            pad = self._tokenizer.pad_token_id
            if pad is None:
                pad = self._tokenizer.eos_token_id

            def run() -> None:
                with torch.no_grad():
                    self._model.generate(
                        **inputs, max_new_tokens=max_tokens, do_sample=False, streamer=streamer, pad_token_id=pad
                    )

            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            yield from _timed(streamer, lambda completion: prompt_tokens)
            worker.join()


def create_generator(settings: GenerationSettings, cache_dir: Path, *, isolate: bool | None = None) -> Generator:
    """Factory choosing the backend named in the settings; ``isolate`` runs it in a worker process.

    A remote (``openai``) generator is never isolated: its native code runs in the server, and a
    failure there is already an exception here."""
    if settings.backend == "openai":
        from qa.remote import OpenAIGenerator

        return OpenAIGenerator(settings)
    if settings.isolate if isolate is None else isolate:
        from qa.worker import WorkerGenerator

        return WorkerGenerator(settings.model_copy(update={"isolate": False}), cache_dir)
    if settings.backend == "llama_cpp":
        return LlamaCppGenerator(settings, cache_dir)
    if settings.backend == "transformers":
        return TransformersGenerator(settings)
    raise ValueError(f"Unknown generation backend {settings.backend!r}; use llama_cpp, transformers or openai.")
