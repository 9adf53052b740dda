"""``qa bench`` keeps working: a tiny run with the hashing embedder and no LLM (no timing assertions)."""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from qa import bench


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture()
def tiny(tmp_path: Path, seed_file: Path) -> dict[str, Path]:
    seeds = tmp_path / "seeds"
    corpus = tmp_path / "corpus"
    seeds.mkdir()
    corpus.mkdir()
    shutil.copy(seed_file, seeds / seed_file.name)
    shutil.copy(seed_file, corpus / seed_file.name)
    (corpus / "other.txt").write_text(
        "Ibrutinib overview\n\nIbrutinib is a kinase inhibitor taken by mouth once a day. "
        "It is approved for chronic lymphocytic leukemia and for mantle cell lymphoma in adults. "
        "Common side effects include diarrhea, bruising and tiredness.\n",
        encoding="utf-8",
    )
    questions = tmp_path / "qa.jsonl"
    questions.write_text(
        "\n".join(
            json.dumps({"question": q})
            for q in (
                "Which agency granted the Breakthrough Therapy Designation?",
                "What is ibrutinib approved for?",
                "What are common side effects of ibrutinib?",
            )
        )
        + "\n",
        encoding="utf-8",
    )
    return {"seeds": seeds, "corpus": corpus, "qa": questions, "out": tmp_path / "out"}


def test_bench_quick_run_writes_results(tiny: dict[str, Path]) -> None:
    args = _args(
        [
            "--quick",
            "--skip-llm",
            "--embedding-model",
            "hashing-64",
            "--scales",
            "1,2",
            "--seeds",
            str(tiny["seeds"]),
            "--corpus",
            str(tiny["corpus"]),
            "--qa-file",
            str(tiny["qa"]),
            "--out",
            str(tiny["out"]),
        ]
    )
    assert bench.run(args) == 0

    results = json.loads((tiny["out"] / "results.json").read_text(encoding="utf-8"))
    for key in (
        "machine",
        "run",
        "index_build",
        "retrieval",
        "query_embedding",
        "cold_start",
        "ask",
        "peak_memory_mb",
        "targets",
    ):
        assert key in results
    machine_keys = {"cpu_model", "cores", "ram_gb", "python", "versions", "git_commit", "date"}
    assert machine_keys <= results["machine"].keys()
    assert [b["label"] for b in results["index_build"]] == ["seeds", "topic x1", "topic x2"]
    for build in results["index_build"]:
        assert build["chunks"] > 0 and build["documents"] > 0
        assert {"chunks_per_s", "docs_per_s", "peak_rss_mb", "build_seconds"} <= build.keys()
    assert results["index_build"][2]["documents"] == 2 * results["index_build"][1]["documents"]
    assert results["index_build"][2]["chunks"] > results["index_build"][1]["chunks"]
    assert [r["scale"] for r in results["retrieval"]] == [1, 2]
    assert all({"p50_ms", "p95_ms", "chunks"} <= r.keys() for r in results["retrieval"])
    assert results["query_embedding"]["model"] == "hashing-64"
    assert results["cold_start"] is None and results["ask"] == {}
    assert {t["name"] for t in results["targets"]} == {t.name for t in bench.TARGETS}

    markdown = (tiny["out"] / "RESULTS.md").read_text(encoding="utf-8")
    for heading in ("## Machine", "## Targets", "## Index build", "## Retrieval latency"):
        assert heading in markdown


def test_synthetic_copies_are_distinct_but_keep_the_words() -> None:
    text = "Title line\n\nFirst sentence here is long. Second sentence is here too. Third one closes it.\n"
    one, two = bench.synthesize_copy(text, 1, "doc"), bench.synthesize_copy(text, 2, "doc")
    assert one != two and one != text
    assert one.startswith("Title line") and "Second sentence is here too." in one


def _from_json(data: dict[str, Any]) -> bench.BenchResults:
    """Typed results from a ``results.json`` (the inverse of ``asdict``)."""
    return bench.BenchResults(
        schema=data["schema"],
        machine=bench.Machine(**data["machine"]),
        run=bench.RunInfo(**data["run"]),
        index_build=[bench.Build(**b) for b in data["index_build"]],
        retrieval=[bench.Retrieval(**r) for r in data["retrieval"]],
        query_embedding=bench.QueryEmbedding(**data["query_embedding"]) if data["query_embedding"] else None,
        cold_start=bench.ColdStart(**data["cold_start"]) if data["cold_start"] else None,
        ask={preset: bench.AskSummary(**a) for preset, a in data["ask"].items()},
        errors=data["errors"],
        peak_memory_mb=data["peak_memory_mb"],
        targets=[bench.TargetResult(**t) for t in data["targets"]],
    )


def test_typed_results_keep_the_results_json_layout(repo_root: Path, tmp_path: Path) -> None:
    """The committed full run (every section measured) reads into the dataclasses and writes back unchanged."""
    committed = json.loads((repo_root / "bench" / "results.json").read_text(encoding="utf-8"))
    results = _from_json(committed)
    assert [asdict(t) for t in bench.evaluate_targets(results)] == committed["targets"]
    assert bench.peak_memory(results.index_build, results.cold_start, results.ask) == committed["peak_memory_mb"]

    bench.write_results(results, tmp_path)
    written = (tmp_path / "results.json").read_text(encoding="utf-8")
    assert written == json.dumps(committed, indent=2) + "\n"  # same keys, same order, same values
    markdown = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    cell = bench._cell
    accurate, fast = results.ask["accurate"], results.ask["fast"]
    assert f"| **total: launch to first answer** | {cell(committed['cold_start']['total_s'])} |" in markdown
    assert f"| total p50 s | {cell(accurate.total_p50_s)} | {cell(fast.total_p50_s)} |" in markdown
    assert (
        f"| p50 LLM-answered / roofline | {cell(accurate.roofline_ratio)} | {cell(fast.roofline_ratio)} |" in markdown
    )
    p50 = committed["targets"][0]
    assert (
        f"| warm ask() p50, accurate | &lt;= 3 s | {p50['value']:g} s | {'met' if p50['met'] else '**missed**'} |"
        in markdown
    )


def _answer(total: float, completion_tokens: float, refused: bool = False) -> dict[str, Any]:
    timings = {
        "total": total,
        "retrieval": 0.1,
        "prompt": 0.4,
        "decode": 1.0,
        "prompt_tokens": 200.0,
        "cached_prompt_tokens": 120.0,
        "completion_tokens": completion_tokens,
        "first_token": 0.5,
    }
    return {"question": "q", "refused": refused, "timings": timings}


def test_summarize_ask() -> None:
    raw = {
        "answers": [_answer(1.0, 11.0), _answer(2.0, 21.0), _answer(0.2, 0.0, refused=True)],
        "model": "tiny",
        "warm_up_s": 1.5,
        "peak_rss_mb": 900.0,
    }
    summary = bench.summarize_ask("fast", raw)
    assert (summary.questions, summary.generated, summary.refused) == (3, 2, 1)
    assert summary.decode_tokens_per_s == 15.0  # (10 + 20) tokens after the first, over 2 s of decoding
    assert summary.prompt_tokens_per_s == 500.0  # 400 prompt tokens over 0.8 s
    assert summary.mean_completion_tokens == 16.0
    assert summary.generated_total_p50_s == 1.5
    assert summary.total_p50_s == 1.0 and summary.total_p95_s == 1.9
    assert summary.focus_p50_s == 0.0  # a stage missing from the timings counts as 0 s
    assert (summary.preset, summary.model, summary.peak_rss_mb) == ("fast", "tiny", 900.0)
    assert summary.median_prompt_tokens == 200.0 and summary.median_uncached_prompt_tokens == 80.0
    assert summary.median_completion_tokens == 16.0 and summary.first_token_p50_s == 0.5
    assert summary.roofline_s is None and summary.roofline_ratio is None  # the machine's speed was not measured


def test_summarize_ask_compares_the_p50_with_the_roofline() -> None:
    raw = {
        "answers": [_answer(1.0, 11.0), _answer(2.0, 21.0)],
        "model": "tiny",
        "warm_up_s": 1.5,
        "peak_rss_mb": 900.0,
        "machine_speed": {"prompt_tokens_per_s": 100.0, "decode_tokens_per_s": 20.0},
    }
    summary = bench.summarize_ask("accurate", raw)
    assert summary.roofline_s == 2.5  # 150 / 100 + 20 / 20
    assert summary.roofline_ratio == 0.6  # p50 1.5 s of the answered questions over 2.5 s
    assert (summary.machine_prompt_tokens_per_s, summary.machine_decode_tokens_per_s) == (100.0, 20.0)


def test_summarize_ask_without_generated_answers_is_none_not_nan() -> None:
    raw = {"answers": [_answer(0.2, 0.0, refused=True)], "model": "tiny", "warm_up_s": 1.0, "peak_rss_mb": 1.0}
    summary = bench.summarize_ask("fast", raw)
    assert summary.mean_prompt_tokens is None and summary.generated_total_p50_s is None
    assert summary.decode_tokens_per_s == 0.0
    assert bench.latency_summary([]) == {"n": 0, "p50_ms": None, "p95_ms": None, "mean_ms": None, "max_ms": None}


def test_targets_met_and_missed(repo_root: Path) -> None:
    committed = _from_json(json.loads((repo_root / "bench" / "results.json").read_text(encoding="utf-8")))
    slow_fast = replace(committed.ask["fast"], total_p50_s=2.0)
    results = replace(committed, ask={"accurate": committed.ask["accurate"], "fast": slow_fast}, cold_start=None)
    status = {t.name: t.met for t in bench.evaluate_targets(results)}
    assert status["warm ask() p50, accurate"] is True
    assert status["warm ask() p50, fast"] is False
    assert status["cold start to first answer"] is None


@pytest.mark.postgres
def test_bench_times_the_postgres_backend_too(tiny: dict[str, Path], pg_url: str) -> None:
    args = _args(
        ["--quick", "--skip-llm", "--embedding-model", "hashing-64", "--scales", "1,2", "--postgres", pg_url]
        + ["--seeds", str(tiny["seeds"]), "--corpus", str(tiny["corpus"]), "--qa-file", str(tiny["qa"])]
        + ["--out", str(tiny["out"])]
    )
    assert bench.run(args) == 0
    results = json.loads((tiny["out"] / "results.json").read_text(encoding="utf-8"))
    labels = [b["label"] for b in results["index_build"]]
    assert labels == ["seeds", "topic x1", "topic x2", "topic x1 (postgres)", "topic x2 (postgres)"]
    folder, pg = results["index_build"][1:3], results["index_build"][3:]
    assert [b["chunks"] for b in pg] == [b["chunks"] for b in folder]
    kinds = {r["label"]: r["store_kind"] for r in results["retrieval"]}
    assert kinds["topic x1 (postgres)"] == kinds["topic x2 (postgres)"] == "pgvector exact"
    assert "| topic x2 (postgres) |" in (tiny["out"] / "RESULTS.md").read_text(encoding="utf-8")
    import psycopg

    with psycopg.connect(pg_url) as conn:  # the bench's schemas are dropped after timing
        assert not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname LIKE 'qa_bench_x%'").fetchall()


def test_bench_indexes_one_large_file_per_size(tiny: dict[str, Path]) -> None:
    args = _args(
        ["--quick", "--skip-llm", "--embedding-model", "hashing-64", "--scales", "1", "--file-sizes", "1,2"]
        + ["--seeds", str(tiny["seeds"]), "--corpus", str(tiny["corpus"]), "--qa-file", str(tiny["qa"])]
        + ["--out", str(tiny["out"])]
    )
    assert bench.run(args) == 0
    results = json.loads((tiny["out"] / "results.json").read_text(encoding="utf-8"))
    large = {b["label"]: b for b in results["index_build"] if b["label"].startswith("one ")}
    assert list(large) == ["one 1 MB file", "one 2 MB file"]
    assert all(b["documents"] == 1 and b["skipped"] == 0 for b in large.values())
    assert large["one 2 MB file"]["chunks"] > 1.8 * large["one 1 MB file"]["chunks"]  # distinct text, not deduplicated
    assert "| one 2 MB file |" in (tiny["out"] / "RESULTS.md").read_text(encoding="utf-8")
    assert bench._file_sizes("0", quick=False) == [] and bench._file_sizes(None, quick=True) == []
    assert bench._file_sizes("20,1,5", quick=True) == [1, 5, 20]
