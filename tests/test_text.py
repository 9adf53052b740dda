from qa.text import content_stems, stem, stems_match, words


def test_words_keep_decimals_and_possessives() -> None:
    assert words("InnoCare’s drug: 3.5 mg, U.S. CLL/SLL") == ["InnoCare’s", "drug", "3.5", "mg", "U.S", "CLL", "SLL"]


def test_stem_families_match() -> None:
    assert stems_match(stem("designation"), stem("designated"))
    assert stem("cells") == stem("cell")
    assert not stems_match(stem("400"), stem("4000"))


def test_content_stems_drop_stopwords() -> None:
    assert content_stems("What is the role of BCL2 in cancer?") == ["role", "bcl2", "cancer"]
