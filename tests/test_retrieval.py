"""HybridRetriever: dense + BM25 fused by reciprocal rank, on a toy corpus and (integration) the seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.embedding import HashingEmbedder, create_embedder
from qa.index import Index, build_index
from qa.retrieval import HybridRetriever, reciprocal_rank_fusion
from qa.settings import Settings

TOY = {
    "water.txt": "Water Facts\n\nWater boils at 100 degrees Celsius at sea level. "
    "At high altitude the boiling point of water is lower because the air pressure drops.",
    "moon.txt": "The Moon\n\nThe Moon orbits the Earth every 27 days. Its gravity causes the ocean tides. "
    "Astronauts first walked on the Moon in 1969.",
    "bees.txt": "Honey Bees\n\nHoney bees live in colonies led by a single queen. Worker bees collect nectar "
    "and pollen from flowers and turn the nectar into honey.",
    "trains.txt": "Rail Travel\n\nHigh speed trains in Japan reach 320 kilometres per hour. "
    "The Shinkansen network opened in 1964 for the Tokyo Olympics.",
    "coffee.txt": "Coffee\n\nCoffee beans are the roasted seeds of the coffee plant. "
    "Caffeine in coffee blocks adenosine receptors and keeps people awake.",
}


@pytest.fixture(scope="module")
def toy_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Index, HashingEmbedder, Settings]:
    root = tmp_path_factory.mktemp("toy")
    docs = root / "docs"
    docs.mkdir()
    for name, text in TOY.items():
        (docs / name).write_text(text, encoding="utf-8")
    settings = Settings.model_validate(
        {"paths": {"index": str(root / "index")}, "chunking": {"target_words": 15, "overlap_words": 0}}
    )
    embedder = HashingEmbedder(64)
    build_index([docs], settings, embedder, progress=False)
    return Index.open(root / "index", settings, embedder), embedder, settings


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = reciprocal_rank_fusion([[7, 8, 9], [9, 7]], k=60)
    assert fused[7] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[8] == pytest.approx(1 / 62)
    assert fused[9] == pytest.approx(1 / 63 + 1 / 61)


def test_keyword_query_finds_the_passage(toy_index: tuple[Index, HashingEmbedder, Settings]) -> None:
    index, embedder, settings = toy_index
    passages = HybridRetriever(index, embedder, settings.retrieval).run(query="Shinkansen opening year", top_k=3)
    assert passages[0].chunk.doc_id == "trains.txt" and "Shinkansen" in passages[0].text
    assert passages[0].sparse_rank == 1


def test_paraphrase_query_finds_the_passage(toy_index: tuple[Index, HashingEmbedder, Settings]) -> None:
    index, embedder, settings = toy_index
    retriever = HybridRetriever(index, embedder, settings.retrieval)
    retriever.warm_up()
    passages = retriever.run(query="At what temperature does water start boiling?")
    assert len(passages) == settings.retrieval.top_k
    assert passages[0].chunk.doc_id == "water.txt"
    assert retriever.run(query="what makes people stay awake")[0].chunk.doc_id == "coffee.txt"


def test_fused_scores_and_ranks_are_consistent(toy_index: tuple[Index, HashingEmbedder, Settings]) -> None:
    index, embedder, settings = toy_index
    retriever = HybridRetriever(index, embedder, settings.retrieval)
    query = "honey from the Moon tides"
    passages = retriever.run(query=query, top_k=8)
    qv = embedder.embed([query])[0]
    store = index.snapshot().store
    assert len(passages) == 8
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    for p in passages:
        expected = sum(1 / (settings.retrieval.rrf_k + r) for r in (p.dense_rank, p.sparse_rank) if r is not None)
        assert p.score == pytest.approx(expected)
        assert p.dense_rank is not None or p.sparse_rank is not None
        int_id = index.snapshot()._query("SELECT id FROM chunks WHERE chunk_id = ?", (p.chunk.id,))[0][0]
        assert p.dense_score == pytest.approx(float(store.get(np.array([int_id]))[0] @ qv), abs=1e-5)
    dense = sorted((p for p in passages if p.dense_rank), key=lambda p: p.dense_rank or 0)
    assert [p.dense_score for p in dense] == sorted((p.dense_score or 0.0 for p in dense), reverse=True)
    ranks = [p.sparse_rank for p in passages if p.sparse_rank is not None]
    assert len(ranks) == len(set(ranks))


def test_bm25_only_hits_get_a_cosine(toy_index: tuple[Index, HashingEmbedder, Settings]) -> None:
    index, embedder, settings = toy_index
    narrow = settings.retrieval.model_copy(update={"candidates": 1})
    passages = HybridRetriever(index, embedder, narrow).run(query="Shinkansen bees", top_k=5)
    sparse_only = [p for p in passages if p.dense_rank is None]
    assert sparse_only and all(p.dense_score is not None for p in sparse_only)


def test_empty_query_and_empty_index(tmp_path: Path) -> None:
    settings = Settings.model_validate({"paths": {"index": str(tmp_path / "index")}})
    embedder = HashingEmbedder(16)
    build_index([], settings, embedder, progress=False)
    retriever = HybridRetriever(Index.open(tmp_path / "index", settings, embedder), embedder)
    assert retriever.run(query="anything") == []
    assert retriever.run(query="   ") == []


@pytest.mark.integration
def test_real_embedder_finds_the_agency_passage(tmp_path: Path) -> None:
    seeds = Path(__file__).resolve().parents[1] / "seeds"
    settings = Settings.model_validate({"paths": {"index": str(tmp_path / "index")}})
    embedder = create_embedder("all-MiniLM-L6-v2")
    report = build_index([seeds], settings, embedder, progress=False)
    assert report.chunks_total > 0
    retriever = HybridRetriever(Index.open(tmp_path / "index", settings, embedder), embedder, settings.retrieval)
    passages = retriever.run(query="Which agency granted the Breakthrough Therapy Designation?", top_k=3)
    assert any("Center for Drug Evaluation" in p.text for p in passages)
    assert all(p.dense_score is not None and 0 < p.dense_score <= 1.0 for p in passages)


# --------------------------------------------------------------------------- scoped to documents


def test_a_scoped_search_returns_only_passages_of_the_chosen_documents(
    toy_index: tuple[Index, HashingEmbedder, Settings],
) -> None:
    index, embedder, settings = toy_index
    retriever = HybridRetriever(index, embedder, settings.retrieval)
    query = "Shinkansen opening year"
    assert retriever.run(query=query, top_k=3)[0].chunk.doc_id == "trains.txt"
    scoped = retriever.run(query=query, top_k=3, doc_ids=["bees.txt", "moon.txt"])
    assert scoped and {p.chunk.doc_id for p in scoped} <= {"bees.txt", "moon.txt"}
    assert [p.score for p in scoped] == sorted((p.score for p in scoped), reverse=True)
    everything = retriever.run(query=query, top_k=50)
    in_scope = [p for p in everything if p.chunk.doc_id in {"bees.txt", "moon.txt"}]
    assert scoped == in_scope[:3]  # the fused order, filtered: same scores and ranks as unscoped
    assert retriever.run(query=query, top_k=3, doc_ids=[]) == retriever.run(query=query, top_k=3)  # empty: all
    assert retriever.run(query=query, top_k=3, doc_ids=None) == retriever.run(query=query, top_k=3)
    assert retriever.run(query=query, top_k=3, doc_ids=["missing.txt"]) == []


def test_a_scoped_search_widens_the_pool_so_a_small_document_gets_its_passages(
    toy_index: tuple[Index, HashingEmbedder, Settings],
) -> None:
    index, embedder, settings = toy_index
    narrow = settings.retrieval.model_copy(update={"candidates": 1})
    retriever = HybridRetriever(index, embedder, narrow)
    query = "Shinkansen trains"  # coffee.txt ranks nowhere near the top for this
    unscoped = retriever.run(query=query, top_k=1)
    assert [p.chunk.doc_id for p in unscoped] == ["trains.txt"]
    scoped = retriever.run(query=query, top_k=2, doc_ids={"coffee.txt"})
    coffee_chunks = next(info.n_chunks for info in index.documents() if info.doc_id == "coffee.txt")
    assert len(scoped) == min(2, coffee_chunks) and all(p.chunk.doc_id == "coffee.txt" for p in scoped)


def test_widened_pool_scales_with_the_share_of_the_index_in_scope() -> None:
    from qa.retrieval import widened_pool

    assert widened_pool(20, 1000, 1000) == 20  # everything in scope: no widening
    assert widened_pool(20, 1000, 100) == 200  # a tenth of the index: ten times the candidates
    assert widened_pool(20, 1000, 1) == 1000  # one chunk: every chunk (at most the index)
    assert widened_pool(20, 10, 5) == 10
    assert widened_pool(20, 1000, 0) == 0  # nothing in scope: nothing to search
