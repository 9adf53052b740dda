from qa.questions import expected_type, is_yes_no, missing_premise_terms, says_not_found, split_question
from qa.types import Chunk, Passage


def test_split_question_and_expected_type() -> None:
    assert split_question("Who markets venetoclax, and what did mesutoclax receive?") == [
        "Who markets venetoclax?",
        "What did mesutoclax receive?",
    ]
    assert split_question("What are chemotherapy and immunotherapy?") == ["What are chemotherapy and immunotherapy?"]
    assert expected_type("How many patients were enrolled?") == "number"
    assert expected_type("What year was it approved?") == "date"
    assert expected_type("What is mesutoclax?") is None


def test_premise_terms_accept_acronyms_and_their_expansions() -> None:
    text = "Listed on the SSE, it got approval from the Center for Drug Evaluation (CDE) in China."
    passages = [Passage(Chunk("c", "d", "t", text, 0, len(text), 0), 1.0)]
    assert missing_premise_terms("What is its Shanghai Stock Exchange code?", passages) == []
    assert missing_premise_terms("What did the CDE approve?", passages) == []
    assert missing_premise_terms("Which Chinese agency approved it?", passages) == []
    assert missing_premise_terms("Why did the US FDA approve it?", passages) == ["US", "FDA"]


def test_yes_no_and_not_found() -> None:
    assert is_yes_no("Is mesutoclax approved?")
    assert is_yes_no("Carotid stenosis before surgery. Is it always necessary?")
    assert not is_yes_no("Why is it needed?")
    assert says_not_found("NOT FOUND")
    assert says_not_found("[1]")
    assert not says_not_found("AbbVie and Roche [1].")
