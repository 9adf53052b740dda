"""Retrieval alone, without the generator: does the evidence reach the top of the pool?

``qa eval --retrieval-only`` runs each question of a corpus set through query analysis and
hybrid retrieval only (the generator is never loaded), and scores the pool as the full run
does (``metrics.evidence_ranks``): recall@1/@3/@all, all-evidence recall and MRR. It takes
seconds, so retrieval changes can be measured on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.evaluation.metrics import (
    EvalItem,
    all_evidence_recall,
    evidence_ranks,
    mean_reciprocal_rank,
    recall_at_k,
)
from qa.settings import Settings


@dataclass(frozen=True)
class RetrievalScores:
    items: int
    recall_at_1: float | None
    recall_at_3: float | None
    recall_at_all: float | None
    all_evidence: float | None
    mrr: float | None
    misses: tuple[str, ...]  # ids of items whose evidence is not in the top 3

    def render(self) -> str:
        def pct(value: float | None) -> str:
            return "–" if value is None else f"{100 * value:.1f}%"

        return (
            f"items with evidence {self.items}: recall@1 {pct(self.recall_at_1)}, recall@3 {pct(self.recall_at_3)}, "
            f"recall@all {pct(self.recall_at_all)}, all evidence {pct(self.all_evidence)}, "
            f"MRR {'–' if self.mrr is None else f'{self.mrr:.3f}'}\n"
            f"not in the top 3: {', '.join(self.misses) or 'none'}"
        )


def score_retrieval(items: Sequence[EvalItem], corpus: Sequence[Path], settings: Settings) -> RetrievalScores:
    """Index ``corpus`` (incrementally) and score the retrieved pool of every item with evidence."""
    from qa.embedding import create_embedder
    from qa.index import build_index, open_index
    from qa.query import QueryAnalyser
    from qa.retrieval import HybridRetriever

    embedder = create_embedder(settings.embedding.model, settings.embedding.batch_size)
    build_index(list(corpus), settings, embedder, progress=False)
    retriever = HybridRetriever(open_index(settings, embedder), embedder, settings.retrieval)
    analyser = QueryAnalyser(embedder)
    ranks: list[list[int | None]] = []
    misses: list[str] = []
    for item in items:
        if not item.evidence:
            continue
        pool = [  # as Answer.passages: each part's pool, in order
            passage
            for query in analyser.run(asked=item.question).parts
            for passage in retriever.search(query.text, query.vector, top_k=settings.retrieval.top_k)
        ]
        item_ranks = evidence_ranks([p.text for p in pool], [e.text for e in item.evidence])
        ranks.append(item_ranks)
        if not any(r is not None and r <= 3 for r in item_ranks):
            misses.append(item.id)
    return RetrievalScores(
        items=len(ranks),
        recall_at_1=recall_at_k(ranks, 1),
        recall_at_3=recall_at_k(ranks, 3),
        recall_at_all=recall_at_k(ranks, None),
        all_evidence=all_evidence_recall(ranks, None),
        mrr=mean_reciprocal_rank(ranks),
        misses=tuple(misses),
    )
