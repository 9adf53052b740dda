from qa import prompts


def test_passages_are_numbered_with_their_documents_short_title() -> None:
    text = prompts.format_passages([("Venetoclax", "It is given with  azacitidine."), ("CLL", "Other\nline.")])
    assert text.splitlines() == ["[1] (Venetoclax) It is given with azacitidine.", "[2] (CLL) Other line."]


def test_untitled_passages_carry_only_their_numbers_and_long_titles_are_cut() -> None:
    assert prompts.format_passages([("", "One."), ("", "Two.")]) == "[1] One.\n[2] Two."
    title = "A very long title of a document that goes on and on"
    assert prompts.format_passages([(title, "x")]) == "[1] (A very long title of a document that …) x"


def test_the_answer_prompt_keeps_the_system_turn_fixed_and_marks_yes_no_questions() -> None:
    plain = prompts.answer_messages("Who?", [("", "Text.")])
    yes_no = prompts.answer_messages("Is it?", [("", "Text.")], yes_no=True)
    assert plain[0] == yes_no[0] == {"role": "system", "content": prompts.ANSWER_SYSTEM}
    assert plain[1]["content"].endswith("Question: Who?")
    assert yes_no[1]["content"].endswith(prompts.YES_NO_HINT)
