from hypothesis import given, settings
from hypothesis import strategies as st

from qa.citations import (
    critical_terms,
    parse_markers,
    quote_span,
    split_answer,
    strip_markers,
    support,
    verify_answer,
)
from qa.text import question_stems, stem
from qa.types import Chunk, Passage

DOC = (
    "Mesutoclax received Breakthrough Therapy Designation from the Center for Drug Evaluation (CDE). "
    "The designation covers relapsed mantle cell lymphoma. "
    "Venetoclax is marketed by AbbVie and Roche."
)


def _passage(text: str, start: int = 0, doc_id: str = "doc.txt", ordinal: int = 0) -> Passage:
    chunk = Chunk(f"{doc_id}#{ordinal}", doc_id, "Doc", text, start, start + len(text), ordinal)
    return Passage(chunk=chunk, score=1.0, dense_score=0.6)


def _doc_passages() -> list[Passage]:
    a = DOC.index("Venetoclax")
    return [_passage(DOC[:a].rstrip(), 0, ordinal=0), _passage(DOC[a:], a, ordinal=1)]


def test_parse_and_strip_markers() -> None:
    assert parse_markers("a [1] b [2, 1] c [3;4]") == [1, 2, 3, 4]
    assert strip_markers("CDE [1].") == "CDE."


def test_split_answer_attaches_markers_after_full_stop() -> None:
    parts = split_answer("It was the CDE. [1] AbbVie markets venetoclax [2].")
    assert parts == [("It was the CDE [1].", [1]), ("AbbVie markets venetoclax [2].", [2])]


def test_critical_terms_are_numbers_acronyms_and_names() -> None:
    terms = critical_terms("The dose is 400 mg in the US, says Beijing.")
    assert terms >= {stem("400"), stem("US"), stem("Beijing")}
    assert stem("dose") not in terms


def test_support_fails_on_an_invented_number() -> None:
    assert support("The dose is 100 mg.", DOC, question_stems("What is the dose?")) == 0.0
    assert support("the Center for Drug Evaluation", DOC, question_stems("Which agency granted it?")) == 1.0


def test_marker_outside_given_passages_is_dropped_and_reattributed() -> None:
    passages = _doc_passages()
    verified = verify_answer(
        "AbbVie and Roche market venetoclax [7].", passages, question_stems("Who markets venetoclax?"), min_support=0.5
    )
    assert [c.n for c in verified.citations] == [1]
    assert verified.citations[0].chunk_id == "doc.txt#1"
    assert verified.reattributed == 1
    assert verified.text == "AbbVie and Roche market venetoclax [1]."


def test_wrong_passage_is_reattributed_to_the_supporting_one() -> None:
    passages = _doc_passages()
    asked = question_stems("Who markets venetoclax?")
    verified = verify_answer("AbbVie and Roche [1].", passages, asked, min_support=0.5)
    assert verified.citations[0].chunk_id == "doc.txt#1"


def test_unsupported_sentence_is_removed() -> None:
    passages = _doc_passages()
    verified = verify_answer(
        "The CDE granted it [1]. InnoCare is headquartered in Beijing [1].",
        passages,
        question_stems("Who granted the designation?"),
        min_support=0.5,
    )
    assert verified.dropped == ["InnoCare is headquartered in Beijing."]
    assert "Beijing" not in verified.text


def test_citation_offsets_point_at_the_supporting_sentence() -> None:
    passages = _doc_passages()
    verified = verify_answer(
        "It covers relapsed mantle cell lymphoma [1].", passages, question_stems("What does it cover?"), min_support=0.5
    )
    c = verified.citations[0]
    assert DOC[c.start : c.end] == c.quote == "The designation covers relapsed mantle cell lymphoma."


def test_quote_span_within_chunk_offsets() -> None:
    p = _doc_passages()[1]
    start, end = quote_span(p.chunk, "Roche")
    assert DOC[start:end] == "Venetoclax is marketed by AbbVie and Roche."


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300), st.text(max_size=200))
def test_verify_never_raises_and_offsets_stay_in_the_document(answer: str, question: str) -> None:
    passages = _doc_passages()
    verified = verify_answer(answer, passages, question_stems(question), min_support=0.5)
    for c in verified.citations:
        assert 0 <= c.start <= c.end <= len(DOC)
        assert DOC[c.start : c.end] == c.quote
    numbers = parse_markers(answer)
    assert len(numbers) == len(set(numbers)) and all(f"{n}" in answer for n in numbers)
