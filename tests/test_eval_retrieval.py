"""Retrieval-only scoring: the pool of each item is scored as the full eval scores Answer.passages."""

from __future__ import annotations

from pathlib import Path

from qa.evaluation.metrics import EvalItem, Evidence
from qa.evaluation.retrieval import RetrievalScores, score_retrieval
from qa.settings import load_settings

DOCS = {
    "market.txt": "Venetoclax is marketed by AbbVie and Roche. It is a BCL-2 inhibitor used in CLL.",
    "trial.txt": "The RESONATE trial enrolled 391 patients. Ibrutinib improved survival in that trial.",
}


def _items() -> list[EvalItem]:
    return [
        EvalItem(
            "a",
            "Who markets venetoclax?",
            ("AbbVie",),
            True,
            "fact",
            (Evidence("market.txt", "Venetoclax is marketed by AbbVie and Roche."),),
        ),
        EvalItem(
            "b",
            "How many patients did RESONATE enroll?",
            ("391",),
            True,
            "number",
            (Evidence("trial.txt", "The RESONATE trial enrolled 391 patients."),),
        ),
        EvalItem("c", "What is the capital of France?", (), False, "unanswerable"),
        EvalItem(
            "d",
            "Which moon is made of cheese?",
            ("none",),
            True,
            "fact",
            (Evidence("nowhere.txt", "The moon is made of green cheese and nothing else at all."),),
        ),
    ]


def test_score_retrieval_finds_evidence_in_the_pool_and_lists_misses(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = load_settings(environ={}, paths={"index": tmp_path / "index"}, embedding={"model": "hashing-64"})
    scores = score_retrieval(_items(), [corpus], settings)
    assert scores == RetrievalScores(
        items=3,
        recall_at_1=2 / 3,
        recall_at_3=2 / 3,
        recall_at_all=2 / 3,
        all_evidence=2 / 3,
        mrr=2 / 3,
        misses=("d",),
    )
    assert scores.render().splitlines() == [
        "items with evidence 3: recall@1 66.7%, recall@3 66.7%, recall@all 66.7%, all evidence 66.7%, MRR 0.667",
        "not in the top 3: d",
    ]
