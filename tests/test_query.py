"""A question analysed once: cleaning, parts, kind, yes/no, stems and one embedding per part."""

from __future__ import annotations

import numpy as np
import pytest

from qa.embedding import HashingEmbedder
from qa.query import QueryAnalyser, QuestionError, clean_question, mostly_english
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


@pytest.mark.parametrize(
    "question",
    [
        "Which agency granted the Breakthrough Therapy Designation?",
        "Where was the reactor built in Tromsø?",  # a name with an accent
        "What does 文心一言 mean?",  # a foreign name in an English question
        "mesutoclax BTD NMPA",
        "3.5?",
        "",
    ],
)
def test_english_questions_read_as_english(question: str) -> None:
    assert mostly_english(question)


@pytest.mark.parametrize(
    "question",
    [
        "哪个机构授予了突破性疗法认定？",
        "venetoclax是哪家公司的产品？",  # an English name in a Chinese question
        "ベネトクラクスを販売している会社は？",
        "Какое агентство предоставило статус?",
        "¿Qué agencia otorgó la designación?",
        "Quelle agence a accordé la désignation de thérapie innovante ?",
        "Ai đã cấp chỉ định liệu pháp đột phá?",
    ],
)
def test_questions_mostly_in_other_languages_do_not(question: str) -> None:
    assert not mostly_english(question)


def test_the_question_as_asked_decides_not_its_rewrite() -> None:
    analyser = QueryAnalyser(HashingEmbedder(32))
    rewritten = analyser.run(asked="它是谁开发的？", standalone="Who developed mesutoclax?")
    assert [q.english for q in rewritten.parts] == [False]
    assert analyser.run(asked="Who developed it?", standalone="Who developed mesutoclax?").parts[0].english
    assert not analyser.analyse("谁开发了它？").english and analyser.analyse("Who developed it?").english
