"""Entity-consistent answers: who-questions are not answered with things the documents name as things."""

from __future__ import annotations

import pytest

from qa.entities import answers_with_things, wants_agent

PASSAGES = [
    "InnoCare announced that its investigational drug Mesutoclax (ICP-248) has received the designation. "
    "Mesutoclax is being evaluated with orelabrutinib, a highly selective, orally administered BTK inhibitor.",
    "Dr. Jasmine Cui, Co-founder, Chairwoman and CEO of InnoCare, said the designation matters.",
    "Aspirin is a medicine. The study was funded by Pharmacyclics and Janssen.",
]


@pytest.mark.parametrize(
    ("question", "wanted"),
    [
        ("Who runs InnoCare?", True),
        ("Which companies has InnoCare partnered with?", True),
        ("What company makes it?", True),
        ("Who funded the RESONATE trial?", True),
        ("Who is the Phase III trial designed for?", False),  # a group of patients, not an agent
        ("Which drug is it combined with?", False),
        ("What is mesutoclax?", False),
    ],
)
def test_questions_that_ask_for_a_person_or_an_organisation(question: str, wanted: bool) -> None:
    assert wants_agent(question) is wanted


def test_names_the_documents_introduce_as_things_do_not_answer_who() -> None:
    assert answers_with_things("Mesutoclax and orelabrutinib", "Who runs InnoCare?", PASSAGES)
    assert not answers_with_things("Dr. Jasmine Cui", "Who runs InnoCare?", PASSAGES)
    assert not answers_with_things("Pharmacyclics and Janssen", "Who funded the trial?", PASSAGES)
    assert not answers_with_things("Mesutoclax and Janssen", "Who funded it?", PASSAGES)  # one name is not a thing
    assert not answers_with_things("InnoCare", "Who develops InnoCare's drug?", PASSAGES)  # only asked words
    assert answers_with_things("aspirin", "Who makes it?", PASSAGES)  # "X is a medicine"
