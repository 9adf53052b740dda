"""The committed eval sets are well-formed and their evidence is quoted exactly from the documents."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "eval" / "corpora" / "topic"
KEYS = {"id", "question", "answers", "answerable", "evidence", "kind"}
KINDS = {
    "fact",
    "list",
    "number",
    "why",
    "how",
    "paraphrase",
    "unanswerable",
    "false_premise",
    "multi_doc",
    "distractor",
}


def _items(name: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in (ROOT / "eval" / name).read_text(encoding="utf-8").splitlines() if line]


@pytest.mark.parametrize("name", ["seed_qa.jsonl", "topic_qa.jsonl"])
def test_items_are_well_formed(name: str) -> None:
    items = _items(name)
    assert len({i["id"] for i in items}) == len(items)
    for item in items:
        assert set(item) == KEYS, item["id"]
        assert item["kind"] in KINDS
        assert item["answerable"] == (item["kind"] not in ("unanswerable", "false_premise"))
        assert (1 <= len(item["answers"]) <= 4) if item["answerable"] else item["answers"] == []
        if item["kind"] == "unanswerable":
            assert item["evidence"] == []


@pytest.mark.parametrize("name", ["seed_qa.jsonl", "topic_qa.jsonl"])
def test_evidence_is_an_exact_substring_of_its_document(name: str) -> None:
    texts: dict[str, str] = {}
    for item in _items(name):
        for evidence in item["evidence"]:
            doc = texts.setdefault(evidence["doc"], (CORPUS / evidence["doc"]).read_text(encoding="utf-8"))
            assert evidence["text"] in doc, (item["id"], evidence["text"][:60])


def test_seed_set_covers_the_required_kinds() -> None:
    items = _items("seed_qa.jsonl")
    kinds = Counter(i["kind"] for i in items)
    assert len(items) >= 60
    assert kinds["unanswerable"] >= 15 and kinds["false_premise"] >= 5
    assert sum(i["answerable"] for i in items) >= 30


def test_topic_set_covers_multi_document_and_distractor_questions() -> None:
    items = _items("topic_qa.jsonl")
    kinds = Counter(i["kind"] for i in items)
    assert len(items) >= 30 and kinds["multi_doc"] >= 1 and kinds["distractor"] >= 1
    for item in items:
        if item["kind"] == "multi_doc":
            assert len({e["doc"] for e in item["evidence"]}) == 2


def test_seed_document_in_repo_is_the_shipped_one() -> None:
    assert (ROOT / "seeds" / "innocare-mesutoclax-btd.txt").read_bytes() == (
        CORPUS / "innocare-mesutoclax-btd.txt"
    ).read_bytes()
