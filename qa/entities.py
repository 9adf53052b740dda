"""Entity-consistent answers: a question asking who (a person or an organisation) is not answered with a thing.

The small model copies names from the right passage into the wrong slot: "Who runs InnoCare?" →
"Mesutoclax and orelabrutinib". What a name stands for is read from the documents' own words, not
from a list of names: a name the passages introduce with a noun for a thing ("the investigational
drug Mesutoclax", "orelabrutinib, a BTK inhibitor", "X is a therapy") is a thing. An answer to a
who-question whose every name is such a thing answers the wrong kind of question.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from qa.text import STOPWORDS, words

WANTS_AGENT = re.compile(
    r"^\s*(?:who|whom)\b(?!.*\b(?:for|to)\s*\?\s*$)"  # not "who is it designed for?" (a group of patients)
    r"|\b(?:which|what)\s+(?:companies|company|firms?|organi[sz]ations?|partners?|agenc(?:y|ies)|people|persons?)\b",
    re.IGNORECASE,
)
THING_NOUNS = (
    "drug|drugs|medicine|medicines|medication|inhibitor|inhibitors|compound|molecule|therapy|therapies|"
    "treatment|agent|antibody|product|candidate|tablet|capsule|vaccine|device|enzyme|protein|gene"
)
_MIN_NAME_CHARS = 4


def wants_agent(question: str) -> bool:
    """Whether the question asks for a person or an organisation."""
    return WANTS_AGENT.search(question) is not None


def answers_with_things(short: str, question: str, texts: Sequence[str]) -> bool:
    """Whether every name in ``short`` (words the question does not contain) is introduced in ``texts``
    with a noun for a thing; False when there is no such name."""
    asked = {w.lower() for w in words(question)}
    names = [w for w in words(short) if len(w) >= _MIN_NAME_CHARS and w.lower() not in STOPWORDS | asked]
    joined = "\n".join(texts)
    return bool(names) and all(_described_as_thing(name, joined) for name in names)


def _described_as_thing(name: str, text: str) -> bool:
    return _thing_pattern(name.lower()).search(text) is not None


@functools.lru_cache(maxsize=256)
def _thing_pattern(name: str) -> re.Pattern[str]:
    escaped = re.escape(name)
    before = rf"\b(?:{THING_NOUNS})\s+(?:[\w-]+\s+){{0,2}}?{escaped}\b"  # "investigational drug Mesutoclax"
    after = (  # "orelabrutinib, a BTK inhibitor", "Mesutoclax (ICP-248) is a novel BCL2 inhibitor"
        rf"\b{escaped}\b\s*(?:\([^)]{{0,40}}\))?\s*,?\s+(?:is\s+|was\s+)?(?:an?|the|its|our)\s+"
        rf"(?:[\w/-]+,?\s+){{0,5}}?(?:{THING_NOUNS})\b"
    )
    return re.compile(f"{before}|{after}", re.IGNORECASE)
