from qa.context import ContextSelector, best_sentence
from qa.embedding import HashingEmbedder
from qa.query import Query, QueryAnalyser
from qa.text import question_stems
from qa.types import Chunk, Passage

TEXT = (
    "Lymphoma Facts\n\n"
    "Mantle cell lymphoma is a rare subtype of non-Hodgkin lymphoma. It accounts for about 6% of cases. "
    "Treatment often includes chemotherapy. Venetoclax is marketed by AbbVie and Roche."
)


def _query(text: str) -> Query:
    return QueryAnalyser(HashingEmbedder(64)).analyse(text)


def _pool() -> list[Passage]:
    chunk = Chunk("d#0", "d", "Doc", TEXT, 0, len(TEXT), 0)
    return [Passage(chunk=chunk, score=1.0, dense_score=0.5)]


def test_selected_passages_are_exact_document_spans_within_budget() -> None:
    selector = ContextSelector(HashingEmbedder(64), budget_words=12)
    passages = selector.select(query=_query("Who markets venetoclax?"), pool=_pool())
    assert passages
    assert sum(len(p.text.split()) for p in passages) <= 12
    for p in passages:
        assert TEXT[p.chunk.start : p.chunk.end] == p.text
    assert "AbbVie" in passages[0].text


def test_a_sentence_that_refers_back_brings_its_antecedent() -> None:
    selector = ContextSelector(HashingEmbedder(64), budget_words=30)
    passages = selector.select(query=_query("What share of cases is it?"), pool=_pool())
    joined = " ".join(p.text for p in passages)
    assert "It accounts for about 6% of cases." in joined
    assert "Mantle cell lymphoma is a rare subtype" in joined


def test_headings_and_labels_travel_with_the_next_sentence() -> None:
    selector = ContextSelector(HashingEmbedder(64), budget_words=200)
    assert all(p.text != "Lymphoma Facts" for p in selector.select(query=_query("lymphoma facts"), pool=_pool()))
    text = "US Brand Name(s)\n\nBrukinsa\n\nFDA Approved\n\nYes"
    chunk = Chunk("z#0", "z", "Zanubrutinib", text, 0, len(text), 0)
    passages = selector.select(query=_query("What is the brand name?"), pool=[Passage(chunk=chunk, score=1.0)])
    assert any("US Brand Name(s)\n\nBrukinsa" in p.text for p in passages)


def test_best_sentence_skips_headings() -> None:
    found = best_sentence(question_stems("Which companies market venetoclax?"), _pool())
    assert found is not None
    chunk, start, end = found
    assert TEXT[start:end] == "Venetoclax is marketed by AbbVie and Roche."


def test_run_adds_the_neighbours_of_the_best_chunks_and_keeps_their_text() -> None:
    first = Chunk("d#0", "d", "Doc", "Venetoclax is a BCL-2 inhibitor.", 0, 32, 0)
    after = Chunk("d#1", "d", "Doc", "It is marketed by AbbVie and Roche.", 33, 68, 1)
    asked: list[tuple[str, int]] = []

    def neighbours(chunk: Chunk, n: int) -> list[Chunk]:
        asked.append((chunk.id, n))
        return [after] if chunk.id == "d#0" else [first]

    selector = ContextSelector(HashingEmbedder(64), budget_words=200, neighbours=neighbours, neighbour_chunks=1)
    focus = selector.run(query=_query("Who markets venetoclax?"), pool=[Passage(chunk=first, score=1.0)])
    assert asked == [("d#0", 1)]
    assert dict(focus.context) == {"d#0": first.text, "d#1": after.text}
    assert {p.chunk.start for p in focus.passages} == {0, 33}
    assert focus.seconds >= 0.0
