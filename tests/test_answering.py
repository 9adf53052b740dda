"""Building the one Answer from the parts of a question, and rewriting follow-ups."""

from __future__ import annotations

import numpy as np
from fakes import ScriptedGenerator

from qa.answering import PartAnswer, Rewriter, build_answer
from qa.query import Query, Question
from qa.settings import load_settings
from qa.types import Citation, RefusalReason


def _query(text: str) -> Query:
    return Query(text, None, False, frozenset(), np.zeros(2, dtype=np.float32))


def _citation(n: int, doc: str) -> Citation:
    return Citation(n, doc, doc.title(), f"{doc}#0", 0, 4, "text", 1.0)


def test_parts_are_merged_with_citations_renumbered_and_timings_summed() -> None:
    question = Question("a and b?", "Who a, and who b?", (_query("Who a?"), _query("Who b?")), ("cut",))
    first = PartAnswer(
        "A [1].", None, None, 0.9, (_citation(1, "x"),), raw_text="A [1].", notes=("n1",), timings={"prompt": 1.0}
    )
    second = PartAnswer("B [1].", None, None, 0.7, (_citation(1, "y"),), raw_text="B [1].", timings={"prompt": 2.0})
    answer = build_answer(question, [first, second], {"total": 4.0})
    assert answer.text == "A [1]. B [2]."
    assert [(c.n, c.doc_id) for c in answer.citations] == [(1, "x"), (2, "y")]
    assert (answer.refused, answer.refusal, answer.refusal_reason) == (False, None, None)
    assert answer.confidence == 0.7
    assert answer.timings == {"prompt": 3.0, "total": 4.0}
    assert answer.notes == ["cut", "n1"]
    assert answer.raw_text == "A [1]. B [1]."
    assert (answer.question, answer.standalone_question) == ("a and b?", "Who a, and who b?")


def test_a_question_is_refused_only_when_every_part_is() -> None:
    question = Question("q?", "q?", (_query("q?"),))
    refused = PartAnswer(
        "The documents don't say.", RefusalReason.MODEL_NOT_FOUND, RefusalReason.MODEL_NOT_FOUND.message(), 0.8
    )
    answer = build_answer(question, [refused], {})
    assert answer.refused and answer.refusal is RefusalReason.MODEL_NOT_FOUND
    assert answer.refusal_reason == "The passages do not state the answer."
    assert answer.standalone_question is None
    assert answer.raw_text is None


def test_rewriter_leaves_standalone_questions_alone_and_falls_back_on_a_bad_rewrite() -> None:
    settings = load_settings(environ={})
    generator = ScriptedGenerator(lambda m: "Eh?")
    rewriter = Rewriter(generator, settings)
    assert rewriter.run(question="Who markets venetoclax?", history=[("q", "a")]).text == "Who markets venetoclax?"
    assert generator.calls == []
    history = [("Which companies market venetoclax?", "AbbVie [1].")]
    joined = rewriter.run(question="and in AML?", history=history).text
    assert joined == "Which companies market venetoclax? and in AML?"
    good = Rewriter(ScriptedGenerator(lambda m: '"Which companies market venetoclax in AML?" [1]'), settings)
    assert good.run(question="and in AML?", history=history).text == "Which companies market venetoclax in AML?"
