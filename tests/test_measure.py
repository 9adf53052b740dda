"""The shared measuring helpers: exact values, the empty-input rule (None), git and Markdown output."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import pytest

from qa import measure
from qa.measure import Stats, describe, git_commit, markdown_table, mean, peak_rss_mb, percentile

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER = "fedcba9876543210fedcba9876543210fedcba98"


# --------------------------------------------------------------------------- statistics


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5  # order of the input does not matter
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0
    assert percentile([5.0], 95) == 5.0


def test_mean_skips_none_and_counts_bools() -> None:
    assert mean([1.0, 2.0, 3.0, 4.0]) == 2.5
    assert mean([None, 1.0, 3.0]) == 2.0
    assert mean(v for v in (True, False, True, False)) == 0.5


def test_empty_input_is_none_everywhere() -> None:
    assert percentile([], 50) is None
    assert mean([]) is None
    assert mean([None, None]) is None
    assert describe([]) == Stats(n=0, mean=None, p50=None, p95=None, max=None)


def test_describe() -> None:
    stats = describe([3.0, 1.0, 2.0])
    assert (stats.n, stats.mean, stats.p50, stats.max) == (3, 2.0, 2.0, 3.0)
    assert stats.p95 == pytest.approx(2.9)


# --------------------------------------------------------------------------- memory


def test_peak_rss_reads_the_high_water_mark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmPeak:\t 999999 kB\nVmHWM:\t  204800 kB\nVmRSS:\t 1024 kB\n")
    monkeypatch.setattr(measure, "_PROC_STATUS", status)
    assert peak_rss_mb() == 200.0


@pytest.mark.skipif(sys.platform == "darwin", reason="ru_maxrss is in bytes on macOS")
def test_peak_rss_falls_back_to_getrusage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(measure, "_PROC_STATUS", tmp_path / "missing")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    measured = peak_rss_mb()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert 0 < before - 0.05 <= measured <= after + 0.05


# --------------------------------------------------------------------------- git


def _repo(root: Path, head: str) -> Path:
    git = root / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text(head + "\n")
    return git


def test_git_commit_of_a_branch_a_packed_ref_and_a_detached_head(tmp_path: Path) -> None:
    git = _repo(tmp_path / "loose", "ref: refs/heads/main")
    (git / "refs" / "heads" / "main").write_text(SHA + "\n")
    assert git_commit(tmp_path / "loose") == SHA

    git = _repo(tmp_path / "packed", "ref: refs/heads/main")
    (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{OTHER} refs/heads/dev\n{SHA} refs/heads/main\n")
    assert git_commit(tmp_path / "packed") == SHA

    _repo(tmp_path / "detached", OTHER)
    assert git_commit(tmp_path / "detached") == OTHER


def test_git_commit_of_a_worktree(tmp_path: Path) -> None:
    common = _repo(tmp_path / "main", "ref: refs/heads/main")
    (common / "refs" / "heads" / "feature").write_text(OTHER + "\n")
    worktree_git = common / "worktrees" / "wt"
    worktree_git.mkdir(parents=True)
    (worktree_git / "HEAD").write_text("ref: refs/heads/feature\n")
    (worktree_git / "commondir").write_text("../..\n")
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / ".git").write_text(f"gitdir: {worktree_git}\n")
    assert git_commit(tmp_path / "wt") == OTHER


def test_git_commit_is_none_without_a_commit(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None  # no .git at all
    _repo(tmp_path / "fresh", "ref: refs/heads/main")  # a branch with no commit yet
    assert git_commit(tmp_path / "fresh") is None


# --------------------------------------------------------------------------- Markdown


def test_markdown_table_exact() -> None:
    table = markdown_table(("name", "value"), [("a", 1), ("b", None)])
    assert table == "| name | value |\n| --- | --- |\n| a | 1 |\n| b | None |"


def test_markdown_table_keeps_each_cell_on_one_line_and_escapes() -> None:
    table = markdown_table(("", "x|y"), [("two\n  lines", "<b>A & B</b>")])
    assert table == "|  | x\\|y |\n| --- | --- |\n| two lines | &lt;b&gt;A &amp; B&lt;/b&gt; |"
