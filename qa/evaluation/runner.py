"""Run an eval set through the assistant and write a report.

The runner only needs something with ``ask(question) -> Answer`` for each item; where
it comes from is injected as an *assistant factory* (``factory(item) -> assistant``),
so tests use a fake and ``qa eval`` uses one of the two real factories below:

* :class:`CorpusAssistantFactory` — one index over a corpus (incrementally built in
  ``index/eval-<corpus>/``) and one assistant for every item;
* :class:`ItemAssistantFactory` — for reading-comprehension items (with a ``context``):
  a small temporary index per item, answered by assistants sharing one warmed
  embedder and generator.

A failing item is recorded as an error (scored wrong) and the run goes on; Ctrl-C
stops the run and the items done so far are written as a report marked partial.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from qa.evaluation.metrics import EvalItem, Evidence, score_item
from qa.evaluation.report import ItemRecord, build_report, write_report
from qa.measure import git_commit
from qa.types import Answer

if TYPE_CHECKING:
    from qa.embedding import Embedder
    from qa.settings import Settings

DEFAULT_DATASET = Path("eval/seed_qa.jsonl")
DEFAULT_REPORTS = Path("eval/reports")
TOPIC_CORPUS = Path("eval/corpora/topic")
SEED_CORPUS = Path("seeds")


class AssistantLike(Protocol):
    def ask(self, question: str) -> Answer: ...


AssistantFactory = Callable[[EvalItem], AssistantLike]


class DatasetError(ValueError):
    """A dataset file that cannot be read, with the line at fault."""


# --------------------------------------------------------------------------- dataset


def _family(source: str) -> str | None:
    s = source.lower()
    if s.startswith("squad"):
        return "squad2"
    if "covid" in s:
        return "covid_qa"
    if "pubmed" in s:
        return "pubmedqa"
    return None


def _external_kind(family: str | None, answerable: bool, answer_type: str) -> str:
    if family == "squad2":
        return "squad2_has_ans" if answerable else "squad2_no_ans"
    if family is not None:
        return family
    if answer_type == "yes/no/maybe":
        return "yes_no_maybe"
    return "external" if answerable else "external_no_ans"


def parse_item(row: dict[str, Any]) -> EvalItem:
    """One dataset line as an :class:`EvalItem`; ``meta`` (e.g. PubMedQA's long answer) is dropped."""
    answers = tuple(str(a) for a in row.get("answers") or ())
    answerable = bool(row.get("answerable", bool(answers)))
    answer_type = str(row.get("answer_type") or "span")
    context = row.get("context")
    family = _family(str(row.get("source") or "")) if context is not None else None
    kind = row.get("kind") or _external_kind(family, answerable, answer_type)
    evidence = tuple(
        Evidence(doc=str(e.get("doc", "")), text=str(e.get("text", ""))) for e in row.get("evidence") or ()
    )
    return EvalItem(
        id=str(row["id"]),
        question=str(row["question"]),
        answers=answers,
        answerable=answerable,
        kind=str(kind),
        evidence=evidence,
        answer_type=answer_type,
        context=str(context) if context is not None else None,
        family=family,
        title=row.get("title"),
    )


def load_dataset(path: Path, limit: int | None = None) -> list[EvalItem]:
    """Items of a JSONL eval set (blank lines skipped), the first ``limit`` if given."""
    items: list[EvalItem] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"Cannot read dataset {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            items.append(parse_item(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise DatasetError(f"{path}:{number}: not a valid eval item ({exc!r}).") from exc
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise DatasetError(f"Dataset {path} has no items.")
    return items


def is_external(items: Sequence[EvalItem]) -> bool:
    return any(item.context is not None for item in items)


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


# --------------------------------------------------------------------------- run


@dataclass
class RunResult:
    report_dir: Path
    report: dict[str, Any]
    partial: bool


def report_dir_for(out_root: Path, dataset: Path, when: datetime) -> Path:
    """``<out_root>/<dataset-stem>-<YYYYmmdd-HHMMSS>/``, suffixed if that folder exists."""
    base = out_root / f"{dataset.stem}-{when:%Y%m%d-%H%M%S}"
    candidate, n = base, 2
    while candidate.exists():
        candidate = base.with_name(f"{base.name}-{n}")
        n += 1
    return candidate


def _iterate(items: Sequence[EvalItem], progress: bool) -> tuple[Iterable[EvalItem], Any]:
    if not progress:
        return items, None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a declared dependency
        return items, None
    bar = tqdm(items, desc="eval", unit="q", dynamic_ncols=True)
    return bar, bar


def answer_item(factory: AssistantFactory, item: EvalItem) -> ItemRecord:
    """Ask one question; any exception becomes an error record (KeyboardInterrupt propagates)."""
    try:
        assistant = factory(item)
        started = time.perf_counter()
        answer = assistant.ask(item.question)
        latency = time.perf_counter() - started
    except Exception as exc:  # one bad item must not end the run
        error = f"{type(exc).__name__}: {exc}"
        return ItemRecord(item, None, score_item(item, None, error=error), error=error)
    return ItemRecord(item, answer, score_item(item, answer, latency_s=latency), latency_s=latency)


def run_items(
    items: Sequence[EvalItem], factory: AssistantFactory, *, progress: bool = True
) -> tuple[list[ItemRecord], bool]:
    """Answer the items in order; returns the records and whether Ctrl-C cut the run short."""
    records: list[ItemRecord] = []
    iterator, bar = _iterate(items, progress)
    try:
        for item in iterator:
            record = answer_item(factory, item)
            records.append(record)
            if bar is not None:
                correct = sum(r.score.correct for r in records)
                errors = sum(bool(r.error) for r in records)
                bar.set_postfix(acc=f"{correct / len(records):.2f}", errors=errors)
                if record.error:
                    bar.write(f"{item.id}: {record.error}")
    except KeyboardInterrupt:
        return records, True
    finally:
        if bar is not None:
            bar.close()
    return records, False


def run_evaluation(
    items: Sequence[EvalItem],
    factory: AssistantFactory,
    *,
    dataset: Path,
    out_root: Path = DEFAULT_REPORTS,
    run_info: dict[str, Any] | None = None,
    describe: Callable[[], dict[str, Any]] | None = None,
    commit: Callable[[], str | None] | None = None,
    progress: bool = True,
) -> RunResult:
    """Answer every item, score it and write the report folder; never loses finished items."""
    started = datetime.now()
    records: list[ItemRecord] = []
    partial = False
    try:
        records, partial = run_items(items, factory, progress=progress)
    finally:
        close = getattr(factory, "close", None)
        if callable(close):
            close()
    finished = datetime.now()
    info: dict[str, Any] = {
        "dataset_sha256": file_sha256(dataset),
        "git_commit": (commit or git_commit)(),
    }
    info.update(run_info or {})
    describer = describe or getattr(factory, "describe", None)
    if callable(describer):
        try:
            info.update(describer())
        except Exception as exc:  # metadata must not sink the report
            info["describe_error"] = f"{type(exc).__name__}: {exc}"
    report = build_report(
        records,
        dataset=dataset,
        n_items=len(items),
        started=started.isoformat(timespec="seconds"),
        finished=finished.isoformat(timespec="seconds"),
        partial=partial,
        run_info=info,
    )
    report["duration_s"] = round((finished - started).total_seconds(), 2)
    report_dir = report_dir_for(out_root, dataset, started)
    write_report(report_dir, report, records)
    return RunResult(report_dir=report_dir, report=report, partial=partial)


# --------------------------------------------------------------------------- real factories


def _slug(text: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text)
    return keep.strip("-.") or "corpus"


def corpus_name(paths: Sequence[Path]) -> str:
    return "+".join(_slug(p.resolve().name) for p in paths)


def write_contexts(items: Sequence[EvalItem], folder: Path) -> dict[str, str]:
    """Write each distinct context once as ``<first item id>.txt``; returns item id -> doc id."""
    folder.mkdir(parents=True, exist_ok=True)
    by_context: dict[str, str] = {}
    doc_of: dict[str, str] = {}
    wanted: set[str] = set()
    for item in items:
        if item.context is None:
            continue
        doc_id = by_context.setdefault(item.context, f"{_slug(item.id)}.txt")
        doc_of[item.id] = doc_id
        if doc_id not in wanted:
            wanted.add(doc_id)
            target = folder / doc_id
            if not target.is_file() or target.read_text(encoding="utf-8") != item.context:
                target.write_text(item.context, encoding="utf-8")
    for stale in folder.glob("*.txt"):
        if stale.name not in wanted:
            stale.unlink()
    return doc_of


def _model_info(generator: Any, embedder: Any) -> dict[str, Any]:
    sha = getattr(generator, "model_sha256", None)
    gen_id = getattr(generator, "model_id", None)
    if sha is None and gen_id is not None:
        try:
            from qa.models import MODELS

            spec = MODELS.get(gen_id)
            sha = spec.sha256 if spec else None
        except ImportError:  # pragma: no cover
            sha = None
    emb_hash: str | None = None
    if embedder is not None:
        try:
            from qa.index import embedder_fingerprint

            emb_hash = embedder_fingerprint(embedder)
        except Exception:  # a missing hash is reported as null
            emb_hash = None
    return {
        "models": {
            "generator": {
                "id": gen_id,
                "sha256": sha,
                "backend": type(generator).__name__ if generator is not None else None,
            },
            "embedding": {"id": getattr(embedder, "model_id", None), "sha256": emb_hash},
        }
    }


def _settings(preset: str | None, index_dir: Path) -> Settings:
    """The eval's settings: its own index, a folder, or on PostgreSQL a schema named after that folder."""
    from qa.settings import load_settings

    settings = load_settings(preset=preset, paths={"index": index_dir})
    if settings.index.backend != "postgres":
        return settings
    schema = "qa_eval_" + hashlib.sha1(str(Path(index_dir).resolve()).encode()).hexdigest()[:16]
    return settings.model_copy(update={"index": settings.index.model_copy(update={"schema_name": schema})})


def _embedder_for(settings: Settings) -> Embedder:
    from qa.embedding import create_embedder

    return create_embedder(settings.embedding.model, settings.embedding.batch_size)


class CorpusAssistantFactory:
    """One index over a corpus, one warmed assistant for every item."""

    def __init__(self, corpus: Sequence[Path], *, preset: str | None, index_dir: Path, progress: bool = True) -> None:
        self.corpus = list(corpus)
        self.index_dir = index_dir
        self.settings = _settings(preset, index_dir)
        self.progress = progress
        self.build_summary: str | None = None
        self._assistant: Any = None
        self._embedder: Any = None

    def prepare(self) -> None:
        """Bring the index up to date with the corpus and warm the assistant up."""
        from qa.index import build_index
        from qa.pipeline import Assistant

        missing = [str(p) for p in self.corpus if not p.exists()]
        if missing:
            raise FileNotFoundError(f"Corpus path(s) not found: {', '.join(missing)}")
        self._embedder = _embedder_for(self.settings)
        built = build_index(self.corpus, self.settings, self._embedder, progress=self.progress)
        self.build_summary = built.summary()
        self._assistant = Assistant(self.settings, embedder=self._embedder)
        self._assistant.warm_up()

    def __call__(self, item: EvalItem) -> AssistantLike:
        if self._assistant is None:
            self.prepare()
        assistant: AssistantLike = self._assistant
        return assistant

    def describe(self) -> dict[str, Any]:
        info = _model_info(getattr(self._assistant, "generator", None), self._embedder)
        info["settings"] = self.settings.model_dump(mode="json")
        info["index_dir"] = str(self.index_dir)
        info["index_build"] = self.build_summary
        return info

    def close(self) -> None:
        return None


class ItemAssistantFactory:
    """A throw-away index per item over its own context; one shared embedder and generator."""

    def __init__(self, *, preset: str | None, work_dir: Path | None = None) -> None:
        self.preset = preset
        self._root = Path(tempfile.mkdtemp(prefix="qa-eval-", dir=work_dir))
        self.settings = _settings(preset, self._root / "index")
        self._embedder: Any = None
        self._generator: Any = None
        self._assistant: Any = None
        self._current: Path | None = None

    def _release_current(self) -> None:
        if self._assistant is not None:
            index = getattr(self._assistant, "index", None)
            close = getattr(index, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):  # closing a finished item's index is best effort
                    close()
            self._assistant = None
            from qa.index import drop_index

            with contextlib.suppress(Exception):  # best effort, like the folder's removal below
                drop_index(self.settings)
        if self._current is not None:
            shutil.rmtree(self._current, ignore_errors=True)
            self._current = None

    def __call__(self, item: EvalItem) -> AssistantLike:
        from qa.index import build_index
        from qa.pipeline import Assistant

        if item.context is None:
            raise ValueError(f"Item {item.id} has no context; item scope needs reading-comprehension items.")
        self._release_current()
        self._current = Path(tempfile.mkdtemp(prefix="item-", dir=self._root))
        docs = self._current / "docs"
        write_contexts([item], docs)
        settings = _settings(self.preset, self._current / "index")
        if self._embedder is None:
            self._embedder = _embedder_for(settings)
        build_index([docs], settings, self._embedder, progress=False)
        if self._generator is None:
            assistant = Assistant(settings, embedder=self._embedder)
            assistant.warm_up()
            self._generator = assistant.generator
        else:
            assistant = Assistant(settings, embedder=self._embedder, generator=self._generator)
            assistant.warm_up()
        self.settings = settings
        self._assistant = assistant
        result: AssistantLike = assistant
        return result

    def describe(self) -> dict[str, Any]:
        info = _model_info(self._generator, self._embedder)
        info["settings"] = self.settings.model_dump(mode="json")
        return info

    def close(self) -> None:
        self._release_current()
        shutil.rmtree(self._root, ignore_errors=True)


def external_corpus_dir(dataset: Path, index_root: Path = Path("index")) -> Path:
    """Where corpus scope writes the distinct contexts of an external set."""
    return index_root / f"eval-{_slug(dataset.stem)}-docs"
