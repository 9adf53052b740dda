"""Measuring, shared by ``qa bench`` and ``qa eval``: statistics, peak memory, the git commit, Markdown tables.

Every statistic of an empty input is ``None`` (never NaN or 0), so "not measured" stays visible
in reports and serialises to JSON ``null``.
"""

from __future__ import annotations

import html
import math
import resource
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_PROC_STATUS = Path("/proc/self/status")


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method), ``q`` in 0..100; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Iterable[float | None]) -> float | None:
    """Arithmetic mean of the values that are not None (bools count 0/1); None when there are none."""
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


@dataclass(frozen=True)
class Stats:
    """Count, mean, median, 95th percentile and maximum of some measurements (None when there are none)."""

    n: int
    mean: float | None
    p50: float | None
    p95: float | None
    max: float | None


def describe(values: Sequence[float]) -> Stats:
    """The :class:`Stats` of ``values``."""
    return Stats(len(values), mean(values), percentile(values, 50), percentile(values, 95), max(values, default=None))


# --------------------------------------------------------------------------- memory


def peak_rss_mb() -> float:
    """This process's peak resident set size (high-water mark, ``VmHWM``) in MB, to 0.1 MB."""
    return round(_peak_rss_kib() / 1024, 1)


def _peak_rss_kib() -> float:
    try:
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 1024 if sys.platform == "darwin" else float(peak)


# --------------------------------------------------------------------------- git


def git_commit(repo: Path = REPO) -> str | None:
    """The commit checked out in ``repo``, read from ``.git`` (no git process); None when there is none."""
    try:
        git_dir = _git_dir(repo)
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head or None
        return _resolve_ref(git_dir, head[5:])
    except OSError:
        return None


def _git_dir(repo: Path) -> Path:
    """``repo/.git``, or the folder a worktree's ``.git`` file points to."""
    dot_git = repo / ".git"
    if dot_git.is_file():
        pointer = dot_git.read_text().strip()
        if pointer.startswith("gitdir: "):
            return repo / pointer[8:]
    return dot_git


def _resolve_ref(git_dir: Path, ref: str) -> str | None:
    """The commit of ``ref``: a loose ref or a ``packed-refs`` line, in the git dir or its common dir."""
    places = [git_dir]
    common = git_dir / "commondir"
    if common.is_file():
        places.append(git_dir / common.read_text().strip())
    for place in places:
        if (place / ref).is_file():
            return (place / ref).read_text().strip() or None
        packed = place / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0]
    return None


# --------------------------------------------------------------------------- Markdown


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table; each cell is put on one line with ``|`` and HTML special characters escaped."""
    lines = [_markdown_row(header), "|" + " --- |" * len(header)]
    lines += [_markdown_row(row) for row in rows]
    return "\n".join(lines)


def _markdown_row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(_markdown_cell(cell) for cell in cells) + " |"


def _markdown_cell(value: object) -> str:
    flat = " ".join(str(value).split())
    return html.escape(flat, quote=False).replace("|", "\\|")
