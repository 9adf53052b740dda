import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.citations import (
    answer_phrase,
    critical_terms,
    locate_phrase,
    parse_markers,
    quote_span,
    split_answer,
    strip_markers,
    support,
    verify_answer,
)
from qa.text import question_stems, stem
from qa.types import Chunk, Citation, Passage, Span

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


def _citation(quote: str, start: int = 100) -> Citation:
    return Citation(2, "doc", "Title", "doc#0", start, start + len(quote), quote, 1.0)


def test_a_phrase_is_located_word_for_word_in_the_quote_with_document_offsets() -> None:
    citation = _citation("The trial enrolled 391 patients, including 18 with SLL.")
    span = locate_phrase("391 Patients", citation)
    assert span == Span("391 patients", "doc", 119, 131, 2)
    # spacing and punctuation between words may differ, whole words only
    assert locate_phrase("patients including 18", citation) == Span("patients, including 18", "doc", 123, 145, 2)
    assert locate_phrase("91 patients", citation) is None
    assert locate_phrase("400 patients", citation) is None
    assert locate_phrase(" . ", citation) is None
    bracketed = _citation("It came from the Administration (NMPA) of China.")
    assert locate_phrase("Administration (NMPA)", bracketed) == Span("Administration (NMPA)", "doc", 117, 138, 2)


@pytest.mark.parametrize(
    ("answer", "question", "phrase"),
    [
        (
            "One of the Norman's major exports was fighting horsemen.",
            "What was one of the Norman's major exports?",
            "fighting horsemen",
        ),
        ("45,000 pounds of gunpowder was destroyed [1].", "How much gunpowder was destroyed?", "45,000 pounds"),
        ("The trial enrolled 391 patients with CLL [2]", "How many patients were enrolled in the trial?", "391"),
        ("The CDE (China) granted it the designation [1].", "Which agency granted the designation?", "CDE (China)"),
        (
            "It was granted for relapsed mantle cell lymphoma.",
            "For which indication was the drug granted?",
            "relapsed mantle cell lymphoma",
        ),
    ],
)
def test_the_answer_phrase_is_the_first_run_of_words_the_question_did_not_say(
    answer: str, question: str, phrase: str
) -> None:
    assert answer_phrase(answer, question_stems(question)) == phrase


def test_an_answer_that_only_repeats_the_question_has_no_phrase() -> None:
    assert answer_phrase("The drug was granted [1].", question_stems("Which drug was granted?")) is None
