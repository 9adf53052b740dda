"""The question-answering pipeline: retrieve, focus, generate, verify, or refuse.

``Assistant`` holds the opened index and the loaded models so that they are reused
across questions; ``ask()`` uses a lazily built default one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa import prompts
from qa.answering import AnswerPath, History, PartAnswer, Rewriter, build_answer
from qa.calibration import LabelPrior
from qa.context import ContextSelector
from qa.embedding import Embedder, create_embedder
from qa.generation import Generator, create_generator, generate
from qa.offline import enforce_offline
from qa.query import QueryAnalyser, QuestionError, clean_question
from qa.settings import Settings, load_settings
from qa.types import Answer
from qa.verification import Verifier

if TYPE_CHECKING:
    from qa.index import BuildReport, WritableIndex
    from qa.retrieval import HybridRetriever

__all__ = ["Assistant", "QuestionError", "ask", "default_assistant"]


class Assistant:
    """Answers questions from the indexed documents, with verified citations."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        index: WritableIndex | None = None,
    ) -> None:
        enforce_offline()
        self.settings = settings or load_settings()
        self.embedder = embedder or create_embedder(self.settings.embedding.model, self.settings.embedding.batch_size)
        self.generator = generator or create_generator(self.settings.generation, self.settings.paths.cache)
        self._index = index
        self._path: AnswerPath | None = None
        self.analyser = QueryAnalyser(self.embedder)
        self.rewriter = Rewriter(self.generator, self.settings)
        self.selector = ContextSelector(
            self.embedder,
            self.settings.generation.context_words,
            weights=self.settings.focus,
            idf=lambda word: self.index.idf(word),
            neighbours=lambda chunk, n: self.index.neighbours(chunk, n),
            neighbour_chunks=self.settings.retrieval.neighbour_chunks,
        )
        self.verifier = Verifier(self.settings.citations, self.settings.confidence)
        self.prior = LabelPrior(self.generator) if self.settings.generation.calibrate_yes_no else None
        self._lock = threading.RLock()

    # -- lifecycle -----------------------------------------------------------------
    def warm_up(self, *, prime: bool = True) -> None:
        """Load the embedder and generator and open the index (building it over seeds/ if absent).

        With ``prime`` the fixed system prompt is run through the generator once, so that the
        first real question already finds it in the key/value cache.
        """
        from qa.index import index_exists

        if index_exists(self.settings):
            self._open_index()  # a corrupt or mismatched index is reported before 2.4 GB of models load
        failures: list[BaseException] = []

        def load_generator() -> None:
            try:
                self.generator.warm_up()
            except BaseException as exc:  # re-raised below, in the caller's thread
                failures.append(exc)

        # The generator loads (and its weights are hash-checked) in C code that releases the GIL,
        # so it overlaps with importing and loading the embedding model.
        loader = threading.Thread(target=load_generator, name="qa-generator-load", daemon=True)
        loader.start()
        try:
            self.embedder.warm_up()
            self._open_index()
        finally:
            loader.join()
        if failures:
            raise failures[0]
        if prime:
            generate(self.generator, prompts.answer_messages("?", [("", "-")]), max_tokens=1)

    def close(self) -> None:
        """Stop a generator worker process, if the generator runs in one."""
        close = getattr(self.generator, "close", None)
        if close is not None:
            close()

    @property
    def index(self) -> WritableIndex:
        return self._open_index()

    def _open_index(self) -> WritableIndex:
        with self._lock:
            if self._index is None:
                from qa.index import IndexNotFound, build_index, index_location, open_index

                try:
                    self._index = open_index(self.settings, self.embedder)
                except IndexNotFound:
                    seeds = self.settings.paths.seeds
                    if not seeds.is_dir() or not any(seeds.iterdir()):
                        raise FileNotFoundError(
                            f"No index in {index_location(self.settings)} and no documents in {seeds}/: "
                            f"put documents in {seeds}/ and run `qa index`."
                        ) from None
                    build_index([seeds], self.settings, self.embedder, progress=False)
                    self._index = open_index(self.settings, self.embedder)
                self._path = None
            return self._index

    @property
    def path(self) -> AnswerPath:
        """The answer path over the open index (rebuilt when documents change)."""
        index = self._open_index()
        with self._lock:
            if self._path is None:
                from qa.retrieval import HybridRetriever

                self._path = AnswerPath(
                    retriever=HybridRetriever(index, self.embedder, self.settings.retrieval),
                    selector=self.selector,
                    generator=self.generator,
                    verifier=self.verifier,
                    settings=self.settings,
                    in_corpus=index.mentions,
                    prior=self.prior,
                )
            return self._path

    @property
    def retriever(self) -> HybridRetriever:
        return self.path.retriever

    def add_documents(self, paths: Sequence[Path]) -> BuildReport:
        report = self.index.add_paths(list(paths))
        self._path = None
        return report

    def remove_documents(self, doc_ids: Sequence[str]) -> BuildReport:
        report = self.index.remove_documents(list(doc_ids))
        self._path = None
        return report

    # -- asking --------------------------------------------------------------------
    def ask(
        self,
        question: str,
        *,
        history: History | None = None,
        top_k: int | None = None,
        doc_ids: Collection[str] | None = None,
    ) -> Answer:
        """Answer ``question`` (a follow-up when ``history`` is given) with verified citations; with
        ``doc_ids``, from those documents only."""
        answer: Answer | None = None
        for item in self.ask_stream(question, history=history, top_k=top_k, doc_ids=doc_ids):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def ask_stream(
        self,
        question: str,
        *,
        history: History | None = None,
        top_k: int | None = None,
        doc_ids: Collection[str] | None = None,
    ) -> Iterator[str | Answer]:
        """Yield the answer text as it is generated, then the final verified ``Answer``.

        ``doc_ids`` limits retrieval to those documents (``None`` or empty: all of them)."""
        started = time.perf_counter()
        asked, notes = clean_question(question, self.settings.generation.max_question_chars)
        timings: dict[str, float] = {}
        standalone = asked
        if history:
            rewrite = self.rewriter.run(question=asked, history=history)
            standalone, timings["rewrite"] = rewrite.text, rewrite.seconds
        t = time.perf_counter()
        analysed = self.analyser.run(asked=asked, standalone=standalone, notes=notes)
        timings["analyse"] = time.perf_counter() - t
        path = self.path
        parts: list[PartAnswer] = []
        for i, query in enumerate(analysed.parts):
            if i:
                yield " "
            for item in path.run(query=query, top_k=top_k or self.settings.retrieval.top_k, doc_ids=doc_ids):
                if isinstance(item, PartAnswer):
                    parts.append(item)
                else:
                    timings.setdefault("first_token", time.perf_counter() - started)
                    yield item
        timings["total"] = time.perf_counter() - started
        yield build_answer(analysed, parts, timings)


_default: Assistant | None = None
_default_lock = threading.Lock()


def default_assistant() -> Assistant:
    global _default
    with _default_lock:
        if _default is None:
            _default = Assistant()
            _default.warm_up(prime=False)  # load both models at once; no priming for a one-off question
        return _default


def ask(question: str, *, history: History | None = None, **kwargs: Any) -> Answer:
    """Answer ``question`` from the indexed documents with the default assistant."""
    return default_assistant().ask(question, history=history, **kwargs)
