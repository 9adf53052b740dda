"""A question analysed once: cleaning, parts, kind, yes/no, stems and one embedding per part."""

from __future__ import annotations

import numpy as np
import pytest

from qa.embedding import HashingEmbedder
from qa.query import QueryAnalyser, QuestionError, clean_question
from qa.text import question_stems


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(32)
        self.seen: list[str] = []

    def embed(self, texts, *, progress=False):  # type: ignore[no-untyped-def]
        self.seen.extend(texts)
        return super().embed(texts, progress=progress)


def test_clean_question_strips_controls_and_cuts_with_a_note() -> None:
    assert clean_question(" \x00Who\tmarkets\n it? ", 100) == ("Who markets it?", ())
    text, notes = clean_question("x" * 30, 10)
    assert text == "x" * 10
    assert notes == (
        "The question was 30 characters long; only its last 10 were used "
        "(where a long paste usually asks its question).",
    )
    pasted = "Some context sentence. " * 200 + "Which agency granted the designation?"
    text, _ = clean_question(pasted, 100)
    assert text.endswith("Which agency granted the designation?") and len(text) <= 100
    assert text.split()[0] in ("Some", "context", "sentence.")  # cut between words, never inside one
    with pytest.raises(QuestionError, match="empty"):
        clean_question(" \x07 ", 10)
    with pytest.raises(QuestionError, match="must be text"):
        clean_question(None, 10)


def test_each_part_is_analysed_and_embedded_once() -> None:
    embedder = CountingEmbedder()
    question = QueryAnalyser(embedder).run(
        asked="and how many?", standalone="Who markets venetoclax, and how many patients were enrolled?"
    )
    assert [q.text for q in question.parts] == ["Who markets venetoclax?", "How many patients were enrolled?"]
    assert embedder.seen == ["Who markets venetoclax?", "How many patients were enrolled?"]
    first, second = question.parts
    assert (first.kind, first.yes_no, first.wants_number) == ("name", False, False)
    assert (second.kind, second.wants_number) == ("number", True)
    assert first.stems == question_stems("Who markets venetoclax?")
    np.testing.assert_array_equal(first.vector, HashingEmbedder(32).embed(["Who markets venetoclax?"])[0])
    assert question.asked == "and how many?"


def test_terminal_colour_codes_are_removed_not_left_in_the_words() -> None:
    pasted = "Who granted the \x1b[31mBreakthrough\x1b[0m Therapy Designation?\x1b]0;title\x07"
    assert clean_question(pasted, 200) == ("Who granted the Breakthrough Therapy Designation?", ())


def test_a_yes_no_question_is_flagged() -> None:
    query = QueryAnalyser(HashingEmbedder(32)).analyse("Is mesutoclax approved in China?")
    assert query.yes_no and query.kind is None
