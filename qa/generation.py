"""Chat generators: llama.cpp over the packaged GGUF (default) or a local Hugging Face folder.

A generator streams text for a list of chat messages, greedily, and ends the stream with
a ``Generation``: the whole text with how long prompt processing and decoding took.
Generators are not thread-safe; each holds a lock so concurrent callers queue instead
of corrupting the model state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from qa.offline import enforce_offline
from qa.settings import GenerationSettings

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_seconds: float = 0.0
    decode_seconds: float = 0.0


@dataclass(frozen=True)
class Generation:
    """A finished completion with how it was made; the last item ``stream()`` yields."""

    text: str
    stats: GenerationStats


class Generator(Protocol):
    """Streams a greedy completion: text deltas, then one final ``Generation``."""

    model_id: str
    model_sha256: str | None

    def warm_up(self) -> None: ...

    def stream(self, messages: Messages, *, max_tokens: int) -> Iterator[str | Generation]: ...


def generate(generator: Generator, messages: Messages, *, max_tokens: int) -> Generation:
    """The whole completion with its statistics."""
    for item in generator.stream(messages, max_tokens=max_tokens):
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
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._llm is not None:
            return
        from qa.models import MODELS, resolve_model

        enforce_offline()
        path = resolve_model(self.settings.model, self.cache_dir)
        spec = MODELS.get(self.settings.model)
        self.model_sha256 = spec.sha256 if spec else None
        if self.settings.self_check:
            from qa.native import ensure_runs

            ensure_runs(path, self.model_sha256, n_threads=self.settings.n_threads, cache_dir=self.cache_dir)
        from llama_cpp import Llama

        self._llm = Llama(
            model_path=str(path),
            n_ctx=self.settings.n_ctx,
            n_threads=self.settings.n_threads,
            n_threads_batch=self.settings.n_threads,
            n_batch=512,
            seed=0,
            verbose=False,
        )

    def count_tokens(self, text: str) -> int:
        self.warm_up()
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False))

    def stream(self, messages: Messages, *, max_tokens: int) -> Iterator[str | Generation]:
        self.warm_up()
        with self._lock:
            chunks = self._llm.create_chat_completion(
                messages=messages,
                temperature=0.0,
                top_k=1,
                max_tokens=max_tokens,
                stream=True,
            )
            deltas = (chunk["choices"][0].get("delta", {}).get("content") or "" for chunk in chunks)
            yield from _timed(deltas, lambda completion: len(getattr(self._llm, "_input_ids", [])) - completion)


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

        torch.set_num_threads(self.settings.n_threads)
        self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self._model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
        self._model.eval()

    def stream(self, messages: Messages, *, max_tokens: int) -> Iterator[str | Generation]:
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
    """Factory choosing the backend named in the settings; ``isolate`` runs it in a worker process."""
    if settings.isolate if isolate is None else isolate:
        from qa.worker import WorkerGenerator

        return WorkerGenerator(settings.model_copy(update={"isolate": False}), cache_dir)
    if settings.backend == "llama_cpp":
        return LlamaCppGenerator(settings, cache_dir)
    if settings.backend == "transformers":
        return TransformersGenerator(settings)
    raise ValueError(f"Unknown generation backend {settings.backend!r}; use llama_cpp or transformers.")
