"""``qa bench`` keeps working: a tiny run with the hashing embedder and no LLM (no timing assertions)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

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
        "\n".join(json.dumps({"question": q}) for q in (
            "Which agency granted the Breakthrough Therapy Designation?",
            "What is ibrutinib approved for?",
            "What are common side effects of ibrutinib?",
        )) + "\n",
        encoding="utf-8",
    )
    return {"seeds": seeds, "corpus": corpus, "qa": questions, "out": tmp_path / "out"}


def test_bench_quick_run_writes_results(tiny: dict[str, Path]) -> None:
    args = _args([
        "--quick", "--skip-llm", "--embedding-model", "hashing-64", "--scales", "1,2",
        "--seeds", str(tiny["seeds"]), "--corpus", str(tiny["corpus"]), "--qa-file", str(tiny["qa"]),
        "--out", str(tiny["out"]),
    ])
    assert bench.run(args) == 0

    results = json.loads((tiny["out"] / "results.json").read_text(encoding="utf-8"))
    for key in ("machine", "run", "index_build", "retrieval", "query_embedding", "cold_start", "ask",
                "peak_memory_mb", "targets"):
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


def test_percentile_interpolates() -> None:
    assert bench.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert bench.percentile([5.0], 95) == 5.0


def test_targets_met_and_missed() -> None:
    results = {"ask": {"accurate": {"total_p50_s": 2.0}, "fast": {"total_p50_s": 2.0}}, "index_build": []}
    status = {t["name"]: t["met"] for t in bench.evaluate_targets(results)}
    assert status["warm ask() p50, accurate"] is True
    assert status["warm ask() p50, fast"] is False
    assert status["cold start to first answer"] is None
