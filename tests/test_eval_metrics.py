"""Eval metrics on tiny hand-made cases with hand-computed scores."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qa.evaluation.metrics import (
    EvalItem,
    Evidence,
    ItemScore,
    all_evidence_recall,
    answer_correct,
    citation_coverage,
    citation_precision,
    contains_evidence,
    evidence_ranks,
    exact_match,
    expected_calibration_error,
    external_metrics,
    map_yes_no_maybe,
    mean_reciprocal_rank,
    normalize_answer,
    recall_at_k,
    refusal_accuracy,
    reliability_bins,
    score_item,
    split_answer_sentences,
    squad_scores,
    strip_markers,
    summarize,
    token_f1,
)
from qa.types import Answer, Chunk, Citation, Passage, Span

EVIDENCE = "designed to selectively inhibit the B-cell lymphoma-2 (BCL2) protein"


def _passage(text: str, n: int = 0, doc: str = "doc.txt") -> Passage:
    chunk = Chunk(id=f"{doc}#{n}", doc_id=doc, title="Doc", text=text, start=0, end=len(text), ordinal=n)
    return Passage(chunk=chunk, score=1.0 / (n + 1))


def _citation(n: int, quote: str, chunk_id: str = "doc.txt#0") -> Citation:
    return Citation(
        n=n, doc_id="doc.txt", title="Doc", chunk_id=chunk_id, start=0, end=len(quote), quote=quote, support=1.0
    )


# --------------------------------------------------------------------------- SQuAD


def test_squad_normalisation() -> None:
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("An apple a day.") == "apple day"
    assert normalize_answer("Theory of the\tcase") == "theory of case"


def test_exact_match_and_f1_known_values() -> None:
    assert exact_match("the Eiffel Tower.", ["Eiffel Tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel Tower"]) == 0.0
    # 4 predicted tokens, 2 gold tokens, 2 shared: P = 1/2, R = 1, F1 = 2/3
    assert token_f1("fighting horsemen of Normandy", ["fighting horsemen"]) == pytest.approx(2 / 3)
    # max over gold answers
    assert token_f1("blue car", ["red car", "blue car"]) == 1.0
    assert token_f1("red bus", ["red car", "blue car"]) == pytest.approx(0.5)
    assert token_f1("anything", []) == 0.0


def test_squad_scores_with_abstention() -> None:
    assert squad_scores("", True, []) == (1.0, 1.0)
    assert squad_scores("1759", False, []) == (0.0, 0.0)
    assert squad_scores("fighting horsemen", True, ["fighting horsemen"]) == (0.0, 0.0)
    assert squad_scores("fighting horsemen [1]", False, ["fighting horsemen"]) == (1.0, 1.0)


# --------------------------------------------------------------------------- answers


def test_strip_markers() -> None:
    assert strip_markers("It inhibits BCL2 [1]. It is oral [2, 3].") == "It inhibits BCL2. It is oral."
    assert strip_markers("Done.[1][2]") == "Done."


def test_answer_accuracy_token_share() -> None:
    gold = ["relapsed or refractory mantle cell lymphoma"]  # 6 normalised tokens
    assert not answer_correct("It is for relapsed mantle cell lymphoma [1].", False, gold)  # 4/6 < 0.7
    assert answer_correct("It is for relapsed or refractory mantle cell lymphoma [1].", False, gold)
    assert answer_correct("Relapsed refractory mantle cell lymphoma.", False, gold)  # 5/6 >= 0.7
    assert not answer_correct("relapsed or refractory mantle cell lymphoma", True, gold)  # refused
    assert not answer_correct("anything", False, [])


def test_answer_accuracy_80_token_cap() -> None:
    gold = ["ICP-248"]
    assert answer_correct("ICP-248 " + "word " * 79, False, gold)  # exactly 80 tokens
    assert not answer_correct("ICP-248 " + "word " * 80, False, gold)  # 81 tokens
    # markers do not count as tokens
    assert answer_correct("ICP-248 " + "word [1] " * 79, False, gold)


def test_refusal_accuracy() -> None:
    assert refusal_accuracy([True, False, True, True]) == pytest.approx(0.75)
    assert refusal_accuracy([]) is None


def test_yes_no_maybe_mapping() -> None:
    assert map_yes_no_maybe("Yes, the trial shows a benefit [1].", False) == "yes"
    assert map_yes_no_maybe("No [1].", False) == "no"
    assert map_yes_no_maybe("Maybe: the evidence is mixed.", False) == "maybe"
    assert map_yes_no_maybe("It is unclear from the abstract.", False) == "maybe"
    assert map_yes_no_maybe("The data suggest yes.", False) == "maybe"  # does not commit up front
    assert map_yes_no_maybe("Yes.", True) == "maybe"  # refused
    assert map_yes_no_maybe("", False) == "maybe"


# --------------------------------------------------------------------------- retrieval


def test_contains_evidence_allows_cleaning_noise_and_split() -> None:
    passage = "Mesutoclax is designed to selectively inhibit the B\u2011cell lymphoma-2 (BCL2) protein."
    assert contains_evidence(passage, EVIDENCE)
    evidence = "one two three four five six seven eight nine ten"
    assert contains_evidence("x y one two three four five six", evidence)  # 6/10 contiguous
    assert not contains_evidence("x y one two three four five", evidence)  # 5/10
    assert not contains_evidence("one x two y three z four w five v six", evidence)  # scattered


def test_recall_at_k_and_mrr() -> None:
    ranks: list[list[int | None]] = [[2], [None], [1, None], [3]]
    assert recall_at_k(ranks, 1) == pytest.approx(0.25)
    assert recall_at_k(ranks, 3) == pytest.approx(0.75)
    assert recall_at_k(ranks, None) == pytest.approx(0.75)
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 / 2 + 0 + 1 + 1 / 3) / 4)
    assert all_evidence_recall(ranks, None) == pytest.approx(0.5)
    assert recall_at_k([], 3) is None


def test_evidence_ranks() -> None:
    passages = ["Nothing relevant here.", "Mesutoclax is " + EVIDENCE + ".", "Other text."]
    assert evidence_ranks(passages, [EVIDENCE, "a sentence that is nowhere"]) == [2, None]


# --------------------------------------------------------------------------- citations


def test_citation_precision() -> None:
    good = ("Mesutoclax is designed to selectively inhibit the B-cell lymphoma-2 (BCL2) protein.", None)
    bad = ("InnoCare is listed in Hong Kong.", None)
    via_passage = ("It inhibits BCL2.", "Mesutoclax is " + EVIDENCE + ".")
    part_of_evidence = ("selectively inhibit the B-cell lymphoma-2", None)
    assert citation_precision([good, bad], [EVIDENCE]) == pytest.approx(0.5)
    assert citation_precision([via_passage, part_of_evidence], [EVIDENCE]) == 1.0
    assert citation_precision([], [EVIDENCE]) is None


def test_citation_coverage() -> None:
    assert citation_coverage("Alpha is a drug [1]. Beta is a gene. Gamma is a protein [2].") == pytest.approx(2 / 3)
    assert citation_coverage("Alpha is a drug. [1] Beta is a gene.") == pytest.approx(0.5)
    assert citation_coverage("The dose is 3.5 mg [1].") == 1.0
    assert citation_coverage("") is None
    assert split_answer_sentences("One [1]. Two!") == ["One [1].", "Two!"]


# --------------------------------------------------------------------------- calibration, latency


def test_expected_calibration_error_hand_computed() -> None:
    conf = [0.05, 0.15, 0.95, 0.95]
    correct = [False, True, True, False]
    # bins: [0,.1): |0-.05|*1/4; [.1,.2): |1-.15|*1/4; [.9,1]: |.5-.95|*2/4  -> .0125 + .2125 + .225
    assert expected_calibration_error(conf, correct) == pytest.approx(0.45)
    bins = reliability_bins(conf, correct)
    assert len(bins) == 10
    assert [b["count"] for b in bins] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert bins[9]["accuracy"] == pytest.approx(0.5)
    assert bins[2]["accuracy"] is None
    assert expected_calibration_error([1.0, 0.0], [True, False]) == 0.0  # edges land in end bins
    assert expected_calibration_error([], []) is None


def _timed(item_id: str, latency: float, timings: dict[str, float]) -> ItemScore:
    return ItemScore(
        id=item_id,
        kind="fact",
        answerable=True,
        family=None,
        correct=True,
        refused=False,
        latency_s=latency,
        timings=timings,
    )


def test_latency_and_token_statistics() -> None:
    scores = [
        _timed("a", 1.0, {"retrieval": 0.1, "decode": 0.5, "prompt_tokens": 100.0}),
        _timed("b", 2.0, {"retrieval": 0.3, "prompt_tokens": 300.0}),
        _timed("c", 3.0, {"retrieval": 0.2, "decode": 1.5, "prompt_tokens": 200.0, "completion_tokens": 9.0}),
        _timed("d", 4.0, {"retrieval": 0.4, "decode": 1.0, "prompt_tokens": 400.0, "completion_tokens": 11.0}),
    ]
    m = summarize(scores)
    assert m["latency_p50_s"] == 2.5 and m["latency_mean_s"] == 2.5
    assert m["latency_p95_s"] == pytest.approx(3.85)
    assert m["stage_latency"]["retrieval"] == {
        "p50": pytest.approx(0.25),
        "p95": pytest.approx(0.385),
        "mean": pytest.approx(0.25),
    }
    assert m["stage_latency"]["decode"] == {"p50": 1.0, "p95": pytest.approx(1.45), "mean": 1.0}
    assert "prompt_tokens" not in m["stage_latency"]  # token counts are not stages
    assert m["mean_tokens"] == {"completion_tokens": 10.0, "prompt_tokens": 250.0}
    assert m["median_uncached_prompt_tokens"] == 250.0  # no cached counts: every prompt token


def test_uncached_prompt_tokens_leave_out_the_cached_prefix_and_items_without_a_prompt() -> None:
    scores = [
        _timed("a", 1.0, {"prompt_tokens": 400.0, "cached_prompt_tokens": 120.0}),
        _timed("b", 1.0, {"prompt_tokens": 300.0, "cached_prompt_tokens": 120.0}),
        _timed("c", 1.0, {"prompt_tokens": 500.0, "cached_prompt_tokens": 100.0}),
        _timed("d", 1.0, {"retrieval": 0.1}),  # refused before the generator
    ]
    assert summarize(scores)["median_uncached_prompt_tokens"] == 280.0


def test_statistics_of_nothing_are_none() -> None:
    m = summarize([])
    assert m["n"] == 0
    for key in (
        "accuracy",
        "answer_accuracy",
        "em",
        "mrr",
        "latency_p50_s",
        "latency_p95_s",
        "latency_mean_s",
        "mean_confidence",
        "ece",
        "median_uncached_prompt_tokens",
    ):
        assert m[key] is None, key
    assert m["stage_latency"] == {} and m["mean_tokens"] == {}
    assert refusal_accuracy([]) is None


# --------------------------------------------------------------------------- per item


def _fact_item() -> EvalItem:
    return EvalItem(
        id="f1",
        question="Which protein?",
        answers=("BCL2",),
        answerable=True,
        kind="fact",
        evidence=(Evidence("doc.txt", EVIDENCE),),
    )


def test_score_item_answered_with_citations() -> None:
    passages = [_passage("Unrelated.", 0), _passage("It is " + EVIDENCE + ".", 1)]
    answer = Answer(
        question="Which protein?",
        text="It inhibits BCL2 [1].",
        confidence=0.8,
        citations=[_citation(1, EVIDENCE, "doc.txt#1")],
        passages=passages,
        timings={"retrieval": 0.1, "total": 1.0},
    )
    s = score_item(_fact_item(), answer, latency_s=1.0)
    assert s.correct and s.answer_correct
    assert s.evidence_ranks == [2]
    assert s.citation_precision == 1.0
    assert s.citation_coverage == 1.0
    assert s.f1 == pytest.approx(0.5)  # tokens it/inhibits/bcl2 vs bcl2: P = 1/3, R = 1
    m = summarize([s])
    assert m["recall@1"] == 0.0 and m["recall@3"] == 1.0 and m["mrr"] == pytest.approx(0.5)
    assert m["stage_latency"]["retrieval"]["p50"] == pytest.approx(0.1)
    short = replace(answer, short=Span("BCL2", "doc.txt", 10, 14, 1))
    assert score_item(_fact_item(), short).f1 == 1.0  # EM and F1 are scored on the short phrase


def test_score_item_refusals_errors_and_labels() -> None:
    unans = EvalItem(id="u1", question="Price?", answers=(), answerable=False, kind="unanswerable")
    refused = Answer(question="Price?", text="The documents do not say.", refused=True)
    assert score_item(unans, refused).correct
    assert not score_item(unans, Answer(question="Price?", text="$5.")).correct
    err = score_item(unans, None, error="RuntimeError: boom")
    assert not err.correct and err.error

    pub = EvalItem(
        id="p1",
        question="Does X help?",
        answers=("no",),
        answerable=True,
        kind="pubmedqa",
        answer_type="yes/no/maybe",
        context="...",
        family="pubmedqa",
    )
    s = score_item(pub, Answer(question="q", text="No, it does not [1]."))
    assert s.label == "no" and s.correct
    squad = EvalItem(
        id="s1", question="q", answers=(), answerable=False, kind="squad2_no_ans", context="ctx", family="squad2"
    )
    ext = external_metrics([s, score_item(squad, refused)])
    assert ext["pubmedqa"]["accuracy"] == 1.0
    assert ext["squad2"]["no_ans_accuracy"] == 1.0
    summary = summarize([score_item(unans, refused), err])
    assert summary["refusal_accuracy"] == pytest.approx(0.5)
    assert summary["n_errors"] == 1
