"""How many threads the generator uses on this machine.

Prompt processing (``n_threads_batch``) and decoding (``n_threads``) are limited by
different things: on one 2-core VM two threads prefilled only 10% faster than one, so
the best counts are measured, not assumed. ``qa doctor`` times the generator with each
thread count in a child process and stores the fastest per llama.cpp build, model and
CPU; a setting of 0 (the default) then follows that measurement, or uses every usable
core before one exists. An explicit setting always wins.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from qa.native import CheckResult, build_key, model_identity, run_check
from qa.settings import GenerationSettings

MAX_MEASURED = 8  # thread counts tried by qa doctor: 1 .. min(usable cores, this)


@dataclass(frozen=True)
class ThreadChoice:
    """Threads for decoding and for prompt processing, and where the numbers came from."""

    n_threads: int
    n_threads_batch: int
    source: str


@dataclass(frozen=True)
class ThreadSpeed:
    """The generator's measured speed with ``threads`` threads for both phases."""

    threads: int
    prompt_tokens_per_s: float
    decode_tokens_per_s: float


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _record(cache_dir: Path, model_path: Path, sha256: str | None) -> Path:
    return cache_dir / "threads" / f"{build_key(model_identity(model_path, sha256), 0)}.json"


def resolve(settings: GenerationSettings, cache_dir: Path, model_path: Path, sha256: str | None) -> ThreadChoice:
    """The thread counts to use: the settings' where non-zero (``n_threads`` alone sets both), else the
    counts ``qa doctor`` measured fastest, else every usable core."""
    if settings.n_threads:
        return ThreadChoice(settings.n_threads, settings.n_threads_batch or settings.n_threads, "settings")
    auto = _load(_record(cache_dir, model_path, sha256)) or ThreadChoice(
        usable_cores(), usable_cores(), "every usable core; `qa doctor` measures the fastest"
    )
    if settings.n_threads_batch:
        return ThreadChoice(auto.n_threads, settings.n_threads_batch, f"settings (batch), {auto.source}")
    return auto


def _load(path: Path) -> ThreadChoice | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ThreadChoice(int(data["n_threads"]), int(data["n_threads_batch"]), "measured by `qa doctor`")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def best(speeds: Sequence[ThreadSpeed]) -> ThreadChoice:
    """The fewest threads within 3% of the fastest, for each phase (fewer threads leave a core for the rest)."""

    def fastest(rate: Callable[[ThreadSpeed], float]) -> int:
        top = max(rate(s) for s in speeds)
        return min(s.threads for s in speeds if rate(s) >= 0.97 * top)

    return ThreadChoice(
        fastest(lambda s: s.decode_tokens_per_s), fastest(lambda s: s.prompt_tokens_per_s), "measured by `qa doctor`"
    )


def measure(
    model_path: Path,
    sha256: str | None,
    cache_dir: Path,
    *,
    check: Callable[..., CheckResult] = run_check,
) -> tuple[list[ThreadSpeed], ThreadChoice]:
    """Time the generator with 1 .. usable cores threads (child processes), store and return the best."""
    speeds = []
    for threads in range(1, min(usable_cores(), MAX_MEASURED) + 1):
        result = check(model_path, n_threads=threads, measure=True)
        speeds.append(ThreadSpeed(threads, result.prompt_tokens_per_s, result.decode_tokens_per_s))
    choice = best(speeds)
    path = _record(cache_dir, model_path, sha256)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**asdict(choice), "speeds": [asdict(s) for s in speeds]}), encoding="utf-8")
    os.replace(tmp, path)
    return speeds, choice
