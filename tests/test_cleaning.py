"""Tests for qa.cleaning: general cleaning rules, and the messy seed article."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from qa.chunking import split_sentences
from qa.cleaning import clean_text, normalize_for_match

SEED = Path(__file__).resolve().parents[1] / "seeds" / "innocare-mesutoclax-btd.txt"
TITLE = "InnoCare’s Mesutoclax Granted Breakthrough Therapy Designation by China’s NMPA"

LONG_A = "The committee reviewed the safety data from all three trials before making its final decision."
LONG_B = "Patients who received the combination lived longer than those who received the older regimen."
LONG_C = "Further studies are planned to confirm these findings in larger and more diverse populations."


@pytest.fixture(scope="module")
def seed_text() -> str:
    return clean_text(SEED.read_text(encoding="utf-8")).text


def test_seed_keeps_each_long_sentence_once(seed_text: str) -> None:
    sentences = [seed_text[s:e] for s, e in split_sentences(seed_text)]
    long_ones = Counter(normalize_for_match(s) for s in sentences if len(s.split()) >= 8)
    assert long_ones and max(long_ones.values()) == 1


def test_seed_has_no_boilerplate_glue_or_repeated_title(seed_text: str) -> None:
    lowered = seed_text.casefold()
    assert "source link" not in lowered
    assert "newsletter" not in lowered
    assert "beginning.In" not in seed_text
    assert "just the beginning." in seed_text
    assert seed_text.count(TITLE) == 1
    assert seed_text.startswith(TITLE + "\n\n")


def test_seed_keeps_article_content(seed_text: str) -> None:
    for phrase in (
        "first BCL2 inhibitor to be granted BTD status",
        "said Dr. Cui.",
        "where options remain scarce",
    ):
        assert seed_text.count(phrase) == 1


def test_seed_sections(seed_text: str) -> None:
    result = clean_text(SEED.read_text(encoding="utf-8"))
    headings = [section.heading for section in result.sections]
    assert headings[0] == TITLE
    assert "The Significance of Breakthrough Therapy Designation" in headings
    assert len(headings) == len(set(headings))
    for section in result.sections:
        assert result.text[section.start :].startswith(section.heading)
        assert section.start < section.end <= len(result.text)


def test_whitespace_normalised() -> None:
    text = clean_text("  Alpha \t  beta  \r\n\r\n\r\n\n Gamma\u00a0delta.  \n\n\n").text
    assert text == "Alpha beta\n\nGamma delta."


def test_invisible_characters_removed_and_nfc_applied() -> None:
    raw = "Zero\u200bwidth\u00ad and bell\x07 and cafe\u0301 and “curly” and the \ufb01 ligature."
    assert clean_text(raw).text == "Zerowidth and bell and café and “curly” and the \ufb01 ligature."


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("It is just the beginning.In a landmark step", "It is just the beginning. In a landmark step"),
        ("Dosing ended in 2019.The trial", "Dosing ended in 2019. The trial"),
        ("It worked (ICP-248).Next came", "It worked (ICP-248). Next came"),
        ("Was it safe?Yes it was", "Was it safe? Yes it was"),
    ],
)
def test_glued_sentences_split(raw: str, expected: str) -> None:
    assert clean_text(raw).text == expected


@pytest.mark.parametrize(
    "raw",
    [
        "Approved in the U.S. Army hospitals",
        "Targeted agents (e.g. ibrutinib) help",
        "Targeted agents e.g.Ibrutinib help",
        "A dose of 3.5 mg daily",
        "See www.Example.com for more",
        "Email jane.Doe@example.org today",
        "She holds a Ph.D. in biology",
        "Written by J.R.R. Tolkien",
    ],
)
def test_abbreviations_urls_and_decimals_not_split(raw: str) -> None:
    assert clean_text(raw).text == raw


def test_exact_and_repeated_heading_duplicates_dropped() -> None:
    raw = f"Big News\n\nBig News\n\n{LONG_A}\n\nResults\n\n{LONG_B}\n\n{LONG_A}\n\nResults"
    assert clean_text(raw).text == f"Big News\n\n{LONG_A}\n\nResults\n\n{LONG_B}"


def test_near_duplicate_paragraph_dropped() -> None:
    paragraph = f"{LONG_A} {LONG_B} {LONG_C}"
    variant = paragraph.replace("three", "3")
    assert clean_text(f"{paragraph}\n\n{variant}\n\nThe end.").text == f"{paragraph}\n\nThe end."


def test_near_duplicate_check_looks_only_at_rare_shingles_and_misses_nothing() -> None:
    """Paragraphs over an 8-word vocabulary share many common shingles; the fast check (only the
    paragraphs listed under the rarest shingles) agrees with counting against every kept paragraph."""
    import random

    from qa.cleaning import NEAR_DUPLICATE, _Deduplicator, _shingles

    rng = random.Random(7)
    vocabulary = "alpha beta gamma delta drug trial dose arm".split()
    dedup = _Deduplicator()
    kept: list[set[tuple[str, ...]]] = []
    kept_keys: list[tuple[str, ...]] = []
    verdicts = []
    for _ in range(300):
        if kept and rng.random() < 0.3:  # an earlier paragraph with a word or two changed
            words = list(rng.choice(kept_keys))
            for _ in range(rng.randint(1, 2)):
                words[rng.randrange(len(words))] = rng.choice(vocabulary)
            key = tuple(words)
        else:
            key = tuple(rng.choice(vocabulary) for _ in range(rng.randint(20, 40)))
        shingles = _shingles(key)
        brute = any(len(shingles & earlier) >= NEAR_DUPLICATE * len(shingles) for earlier in kept)
        assert dedup._near_duplicate(key) == brute
        verdicts.append(brute)
        if not brute:
            dedup._remember(key)
            kept.append(shingles)
            kept_keys.append(key)
    assert any(verdicts) and not all(verdicts)  # both outcomes were exercised


def test_paragraph_contained_in_earlier_one_dropped() -> None:
    raw = f"{LONG_A} {LONG_B} {LONG_C}\n\n{LONG_B} {LONG_C}"
    assert clean_text(raw).text == f"{LONG_A} {LONG_B} {LONG_C}"


def test_glued_repeat_of_the_whole_body_is_removed() -> None:
    body = f"{LONG_A} {LONG_B}\n\nSecond Part\n\n{LONG_C} It is only the beginning."
    raw = f"Opening Title\n\nOpening Title\n\n{body[:-1]}.{body}\n\nSource link\n\nNewsletter Updates"
    assert clean_text(raw).text == f"Opening Title\n\n{body}"


def test_short_repeated_sentences_survive_outside_a_repeated_run() -> None:
    raw = f"It was safe. {LONG_A}\n\nIt was safe. {LONG_B}"
    assert clean_text(raw).text == raw


@pytest.mark.parametrize(
    "line",
    [
        "Source link",
        "Newsletter Updates",
        "Enter your email address below and subscribe to our newsletter",
        "Subscribe",
        "Share this:",
        "Click here to download the full report",
        "Read more »",
        "Advertisement",
        "We use cookies to improve your experience. By continuing you accept our cookie policy.",
        "© 2025 Example Media. All rights reserved.",
        "© 2025 Example Media",
    ],
)
def test_boilerplate_lines_dropped(line: str) -> None:
    assert clean_text(f"{LONG_A}\n\n{line}\n\n{LONG_B}").text == f"{LONG_A}\n\n{LONG_B}"


@pytest.mark.parametrize("line", ["Source", "Read more about the trial design in the appendix."])
def test_ordinary_lines_are_not_boilerplate(line: str) -> None:
    assert line in clean_text(f"{line}\n\n{LONG_A}").text


def test_soft_wrapped_lines_joined_but_list_items_kept() -> None:
    raw = "Acalabrutinib\nmaleate is approved to\ntreat adults with:\n\n- CLL.\n- Mantle cell lymphoma."
    expected = "Acalabrutinib maleate is approved to treat adults with:\n\n- CLL.\n- Mantle cell lymphoma."
    assert clean_text(raw).text == expected


def test_rule_lines_dropped() -> None:
    assert clean_text("| Stage | Criteria |\n| --- | --- |\n| 0 | None |\n\n---\n\nEnd.").text == (
        "| Stage | Criteria |\n| 0 | None |\n\nEnd."
    )


def test_headings_become_sections() -> None:
    raw = f"Background\n\n{LONG_A}\n\nNot a heading, it ends with a period.\n\n{LONG_B}\n\nFindings\n{LONG_C}"
    result = clean_text(raw)
    assert [(s.heading, result.text[s.start : s.end].split("\n\n")[0]) for s in result.sections] == [
        ("Background", "Background"),
        ("Findings", "Findings"),
    ]
    assert result.sections[0].end == result.sections[1].start
    assert result.sections[1].end == len(result.text)
    assert result.text.endswith(f"Findings\n\n{LONG_C}")


def test_consecutive_short_lines_are_not_all_headings() -> None:
    result = clean_text(f"Brand Name\n\nCalquence\n\nApproved\n\n{LONG_A}")
    assert [s.heading for s in result.sections] == ["Approved"]


def test_empty_and_whitespace_input() -> None:
    assert clean_text("").text == ""
    assert clean_text(" \n\t\u200b\n ").sections == ()


def test_normalize_for_match() -> None:
    assert normalize_for_match("  “Mesutoclax’s”\u00a0— BTD\tStatus ") == '"mesutoclax\'s" - btd status'
    assert normalize_for_match("STRASSE") == normalize_for_match("straße")


def test_paragraph_separators_are_single_blank_lines(seed_text: str) -> None:
    assert "\n\n\n" not in seed_text
    assert not re.search(r"[ \t]\n|\n[ \t]", seed_text)
    assert seed_text == seed_text.strip()
