"""The checks before and after generation, each by its RefusalReason, and the confidence mapping."""

from __future__ import annotations

import pytest

from qa.citations import verify_answer
from qa.embedding import HashingEmbedder
from qa.query import Query, QueryAnalyser
from qa.settings import CitationSettings, ConfidenceSettings, RetrievalSettings
from qa.types import Chunk, Passage, RefusalReason
from qa.verification import Verifier, answer_confidence, gate, refusal_confidence, relevance_of

TEXT = "Venetoclax is marketed by AbbVie and Roche. It was approved in 2016."
CHUNK = Chunk("d#0", "d", "Doc", TEXT, 0, len(TEXT), 0)
DEFAULTS = ConfidenceSettings()


def _query(text: str) -> Query:
    return QueryAnalyser(HashingEmbedder(64)).analyse(text)


def _passage(score: float = 1.0, dense: float = 0.6) -> Passage:
    return Passage(chunk=CHUNK, score=score, dense_score=dense)


def _verify(
    question: str, raw: str, *, score: float = 1.0, min_relevance: float = 0.2
) -> tuple[RefusalReason | None, tuple[str, ...]]:
    verifier = Verifier(CitationSettings(min_relevance=min_relevance), DEFAULTS)
    verdict = verifier.run(query=_query(question), raw=raw, passages=[_passage(score)], relevance=0.6, context={})
    return verdict.refusal, verdict.check_names


def test_confidence_of_an_answer_follows_relevance_support_and_markers() -> None:
    assert answer_confidence(0.7, 1.0, True, DEFAULTS) == 0.95  # 0.25 + 0.35 + 0.25 + 0.1
    assert answer_confidence(0.7, 1.0, False, DEFAULTS) == 0.85
    assert answer_confidence(0.2, 1.0, True, DEFAULTS) == 0.6  # relevance at the floor adds nothing
    assert answer_confidence(0.45, 0.5, False, DEFAULTS) == 0.463  # 0.25 + 0.35*0.5*0.5 + 0.125
    assert answer_confidence(2.0, 1.0, True, DEFAULTS) == answer_confidence(0.7, 1.0, True, DEFAULTS)  # capped


def test_confidence_of_a_refusal_grows_as_relevance_falls() -> None:
    assert refusal_confidence(0.0, DEFAULTS) == 0.95
    assert refusal_confidence(0.45, DEFAULTS) == 0.75
    assert refusal_confidence(0.9, DEFAULTS) == 0.55
    assert refusal_confidence(0.45, ConfidenceSettings(refusal_base=0.5, refusal_weight=0.2)) == 0.6


def test_relevance_is_the_best_dense_score() -> None:
    assert relevance_of([_passage(dense=0.3), _passage(dense=0.5)]) == 0.5
    assert relevance_of([]) == 0.0


def test_gate_refuses_when_nothing_is_relevant() -> None:
    query = _query("Who markets venetoclax?")
    low = (_passage(dense=0.1),)
    assert gate(query, low, low, RetrievalSettings()).refusal is RefusalReason.NO_RELEVANT_PASSAGE
    assert gate(query, (), (), RetrievalSettings()).refusal is RefusalReason.NO_RELEVANT_PASSAGE


def test_gate_says_a_question_not_in_english_is_the_likely_reason() -> None:
    query = _query("哪家公司销售维奈克拉？")
    low, high = (_passage(dense=0.1),), (_passage(dense=0.6),)
    assert gate(query, low, low, RetrievalSettings()).refusal is RefusalReason.NOT_ENGLISH
    assert gate(query, (), (), RetrievalSettings()).refusal is RefusalReason.NOT_ENGLISH
    assert gate(query, high, high, RetrievalSettings()).refusal is None  # relevant passages: answered as usual
    assert RefusalReason.NOT_ENGLISH.message().startswith(
        "Questions in English work best: the search model here reads English only"
    )


def test_gate_refuses_a_premise_the_documents_never_mention() -> None:
    pool = (_passage(),)
    verdict = gate(_query("Why did the FDA approve venetoclax?"), pool, pool, RetrievalSettings())
    assert (verdict.refusal, verdict.missing_terms) == (RefusalReason.FALSE_PREMISE, ("FDA",))
    found_elsewhere = gate(
        _query("Why did the FDA approve venetoclax?"),
        pool,
        pool,
        RetrievalSettings(),
        in_corpus=lambda word: word == "FDA",
    )
    assert found_elsewhere.refusal is None
    assert gate(_query("Who markets venetoclax?"), pool, pool, RetrievalSettings()).refusal is None


@pytest.mark.parametrize(
    ("question", "raw", "expected", "ran"),
    [
        ("Who markets venetoclax?", "NOT FOUND", RefusalReason.MODEL_NOT_FOUND, 1),
        ("Who markets venetoclax?", "Pfizer sells it [1].", RefusalReason.UNSUPPORTED, 2),
        ("How many companies market venetoclax?", "AbbVie and Roche [1].", RefusalReason.WRONG_KIND, 4),
        ("Who markets venetoclax?", "AbbVie and Roche [1].", None, 6),
        ("When was venetoclax approved?", "In 2016 [1].", None, 6),
        (
            "Why is venetoclax marketed by AbbVie?",
            "Venetoclax is marketed by AbbVie [1].",
            RefusalReason.RESTATES_QUESTION,
            5,
        ),
    ],
)
def test_checks_run_in_order_and_the_first_refusal_wins(
    question: str, raw: str, expected: RefusalReason | None, ran: int
) -> None:
    refusal, names = _verify(question, raw)
    assert refusal is expected
    assert (
        names
        == (
            "model_said_not_found",
            "supported",
            "cited_on_topic",
            "expected_kind",
            "adds_to_question",
            "agent_not_thing",
        )[:ran]
    )


def test_a_yes_no_answer_may_repeat_the_question() -> None:
    refusal, _ = _verify("Is venetoclax marketed by AbbVie?", "Yes, venetoclax is marketed by AbbVie [1].")
    assert refusal is None


def test_a_cited_passage_below_min_relevance_is_off_topic() -> None:
    refusal, names = _verify("Who markets venetoclax?", "AbbVie and Roche [1].", score=0.1)
    assert refusal is RefusalReason.OFF_TOPIC and names[-1] == "cited_on_topic"


def test_the_verdict_carries_the_verified_answer_and_its_confidence() -> None:
    verifier = Verifier(CitationSettings(), DEFAULTS)
    query = _query("Who markets venetoclax?")
    verdict = verifier.run(query=query, raw="AbbVie and Roche [1].", passages=[_passage()], relevance=0.7, context={})
    expected = verify_answer("AbbVie and Roche [1].", [_passage()], query.stems, min_support=0.5)
    assert verdict.verified == expected
    assert verdict.confidence == answer_confidence(0.7, expected.support, True, DEFAULTS)


def test_a_who_question_answered_with_things_is_the_wrong_kind() -> None:
    text = "Venetoclax, a BCL2 inhibitor, is marketed by AbbVie. Venetoclax is given with obinutuzumab, an antibody."
    chunk = Chunk("d#0", "d", "Doc", text, 0, len(text), 0)
    passage = Passage(chunk=chunk, score=1.0, dense_score=0.6)
    verifier = Verifier(CitationSettings(), DEFAULTS)
    things = verifier.run(
        query=_query("Who markets venetoclax?"), raw="Obinutuzumab [1].", passages=[passage], relevance=0.6, context={}
    )
    assert things.refusal is RefusalReason.WRONG_KIND and things.check_names[-1] == "agent_not_thing"
    agent = verifier.run(
        query=_query("Who markets venetoclax?"), raw="AbbVie [1].", passages=[passage], relevance=0.6, context={}
    )
    assert agent.refusal is None


def test_what_a_name_is_is_read_from_the_retrieved_documents_not_only_the_cited_passage() -> None:
    cited_text = "Dr. Cui commented on the news about Obinutuzumab and AbbVie."
    cited = Passage(chunk=Chunk("d#1", "d", "Doc", cited_text, 0, len(cited_text), 1), score=1.0, dense_score=0.6)
    other_text = "Obinutuzumab, an antibody, is given with venetoclax."
    verifier = Verifier(CitationSettings(), DEFAULTS)
    query = _query("Who commented on the news?")
    raw = "Obinutuzumab commented on the news [1]."
    alone = verifier.run(query=query, raw=raw, passages=[cited], relevance=0.6, context={})
    assert alone.refusal is None  # the cited passage alone does not say what Obinutuzumab is
    read: list[bool] = []

    def documents() -> list[str]:
        read.append(True)
        return [other_text + " " + cited_text]

    pooled = verifier.run(query=query, raw=raw, passages=[cited], relevance=0.6, context={}, background=documents)
    assert pooled.refusal is RefusalReason.WRONG_KIND and read == [True]
    what = verifier.run(
        query=_query("What was said?"), raw=raw, passages=[cited], relevance=0.6, context={}, background=documents
    )
    assert what.refusal is None and read == [True]  # not a who-question: the documents are not read
