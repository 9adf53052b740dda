"""BM25: tokenizer, Okapi scoring against a reference implementation, ranking, persistence."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from qa.bm25 import BM25Index, tokenize

CORPUS = [
    "Ibrutinib is a BTK inhibitor approved for chronic lymphocytic leukemia.",
    "Venetoclax inhibits the BCL2 protein and restores apoptosis in leukemia cells.",
    "The Center for Drug Evaluation granted Breakthrough Therapy Designation to mesutoclax.",
    "Mantle cell lymphoma is treated with BTK inhibitors such as zanubrutinib and acalabrutinib.",
    "Studies of classes of inhibitors: inhibitors, inhibitors and more inhibitors in many studies "
    "that go on and on about leukemia, lymphoma, trials, patients, and outcomes of therapies.",
]
IDS = [10, 11, 12, 13, 14]


def test_tokenize_lowercases_drops_stopwords_and_strips_plurals() -> None:
    assert tokenize("The Inhibitors of BCL2 were studies; classes and status, analysis!") == [
        "inhibitor", "bcl2", "study", "class", "status", "analysis",
    ]  # fmt: skip
    assert tokenize("InnoCare’s drug") == ["innocare", "drug"]
    assert tokenize("") == []


def _reference_scores(query: str, texts: list[str], k1: float = 1.5, b: float = 0.75) -> list[float]:
    docs = [Counter(tokenize(t)) for t in texts]
    lengths = [sum(d.values()) for d in docs]
    avgdl = sum(lengths) / len(docs)
    out = []
    for doc, dl in zip(docs, lengths, strict=True):
        score = 0.0
        for term in tokenize(query):
            df = sum(1 for d in docs if term in d)
            if not df:
                continue
            idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
            tf = doc[term]
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
        out.append(score)
    return out


@pytest.mark.parametrize("query", ["BTK inhibitors for leukemia", "breakthrough designation", "apoptosis apoptosis"])
def test_scores_match_okapi_reference(query: str) -> None:
    index = BM25Index().build(IDS, CORPUS)
    np.testing.assert_allclose(index.scores(query), _reference_scores(query, CORPUS), rtol=1e-5)


def test_search_ranks_the_matching_text_first() -> None:
    index = BM25Index().build(IDS, CORPUS)
    hits = index.search("Who granted the breakthrough therapy designation?", 3)
    assert hits[0][0] == 12
    assert [i for i, _ in index.search("mantle cell lymphoma", 5)][0] == 13
    scores = [s for _, s in index.search("inhibitor leukemia", 5)]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    assert index.search("the of and", 5) == []  # only stopwords
    assert index.search("zzzunknown", 5) == []
    assert len(index.search("leukemia", 2)) == 2


def test_length_normalisation_prefers_the_short_focused_text() -> None:
    index = BM25Index().build([1, 2], ["leukemia treatment", "leukemia " + "filler words here " * 30])
    assert [i for i, _ in index.search("leukemia", 2)] == [1, 2]


def test_save_load_round_trip_without_pickle(tmp_path: Path) -> None:
    index = BM25Index(k1=1.2, b=0.5).build(IDS, CORPUS)
    path = tmp_path / "bm25.npz"
    index.save(path)
    with np.load(path, allow_pickle=False) as data:  # plain arrays only
        assert "terms" in data
    loaded = BM25Index.load(path)
    assert (loaded.k1, loaded.b) == (1.2, 0.5)
    for query in ("BTK inhibitor", "venetoclax BCL2", "lymphoma"):
        assert loaded.search(query, 5) == index.search(query, 5)


def test_empty_index_and_damaged_file(tmp_path: Path) -> None:
    empty = BM25Index().build([], [])
    assert empty.search("anything", 3) == []
    empty.save(tmp_path / "e.npz")
    assert len(BM25Index.load(tmp_path / "e.npz")) == 0
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(Exception):  # noqa: B017 - any read error is a corrupt index for the caller
        BM25Index.load(tmp_path / "bad.npz")
    with pytest.raises(ValueError):
        BM25Index().build([1], ["a", "b"])


def test_incremental_update_equals_a_fresh_build() -> None:
    index = BM25Index().build(IDS[:4], CORPUS[:4])
    updated = index.updated(remove=[11, 12, 99], ids=[14, 20], texts=[CORPUS[4], "Venetoclax and apoptosis again."])
    fresh = BM25Index().build([10, 13, 14, 20], [CORPUS[0], CORPUS[3], CORPUS[4], "Venetoclax and apoptosis again."])
    assert sorted(updated.ids.tolist()) == [10, 13, 14, 20]
    assert "breakthrough" not in updated.vocab  # terms of removed texts only are dropped
    for query in ("BTK inhibitor leukemia", "venetoclax apoptosis", "mantle lymphoma", "breakthrough"):
        got, want = updated.search(query, 5), fresh.search(query, 5)
        assert [i for i, _ in got] == [i for i, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-5)
    assert len(index) == 4  # the original is unchanged
