"""Evaluation metrics: pure functions over answers and gold data, plus per-item scoring.

Conventions (every rule here is what ``eval/reports`` numbers mean):

* **SQuAD normalisation** is the official SQuAD 2.0 one: lower-case, drop punctuation,
  drop the articles *a/an/the*, collapse whitespace. EM and token F1 are the max over
  the gold answers. An item with no gold answer (unanswerable) scores EM = F1 = 1 only
  if the system refused, else 0; a refusal on an answerable item scores 0.
* **Answer accuracy** (answerable span items): not refused, the answer (``[n]`` markers
  stripped) is at most 80 whitespace tokens, and it contains at least 70 % of the
  normalised tokens (with multiplicity) of at least one gold answer.
* **Refusal accuracy** (unanswerable and false-premise items, i.e. ``answerable`` false):
  correct means ``Answer.refused`` is true. Only the flag counts, not the wording.
* **Yes/no/maybe** (PubMedQA): a refusal maps to *maybe*; otherwise the first word of the
  normalised answer decides (*yes* / *no* / *maybe*); any other opening (hedged or
  discursive text that does not commit) maps to *maybe*, since the system did not commit.
* **Evidence match**: both texts go through ``qa.cleaning.normalize_for_match`` (casefold,
  unified quotes/dashes, collapsed whitespace) and are split into word tokens; an evidence
  text is found in a passage when the longest run of consecutive evidence tokens that also
  occurs consecutively in the passage covers at least 60 % of the evidence tokens. This
  accepts small cleaning differences and evidence cut at a chunk boundary, but not a
  bag of scattered common words.
* **Retrieval**: an item with evidence is a hit at k when any of its first k passages
  (``Answer.passages``) contains any evidence text; MRR uses the rank of the first such
  passage (0 when none). ``evidence_recall_all`` asks for every evidence text (multi-doc).
* **Citation precision**: a citation is good when its quote or its cited passage contains
  an evidence text, or the quote (>= 3 tokens) lies within an evidence text. Averaged per
  answer over cited, non-refused answers to answerable items with evidence.
* **Citation coverage**: share of answer sentences carrying at least one ``[n]`` marker,
  averaged over non-refused answers.
* **Calibration**: expected calibration error over 10 equal-width confidence bins of
  (``Answer.confidence``, item correct).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qa.citations import parse_markers, split_answer, strip_markers
from qa.cleaning import normalize_for_match
from qa.measure import describe, mean, percentile
from qa.types import Answer

ANSWER_TOKEN_SHARE = 0.7
MAX_ANSWER_TOKENS = 80
EVIDENCE_TOKEN_SHARE = 0.6
MIN_QUOTE_TOKENS = 3
N_BINS = 10
RECALL_KS: tuple[int, ...] = (1, 3)

YES_NO_MAYBE = "yes/no/maybe"
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)
_WORD = re.compile(r"\w+", re.UNICODE)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Evidence:
    doc: str
    text: str


@dataclass(frozen=True)
class EvalItem:
    """One question of an eval set. ``context`` is set for external (reading-comprehension) items.

    Nothing else from a dataset line is kept: in particular PubMedQA's ``meta.long_answer``
    never reaches the system under test.
    """

    id: str
    question: str
    answers: tuple[str, ...]
    answerable: bool
    kind: str
    evidence: tuple[Evidence, ...] = ()
    answer_type: str = "span"
    context: str | None = None
    family: str | None = None  # "squad2" | "covid_qa" | "pubmedqa" for external sets
    title: str | None = None


@dataclass
class ItemScore:
    """Everything measured on one item; ``None`` means the metric does not apply."""

    id: str
    kind: str
    answerable: bool
    family: str | None
    correct: bool
    refused: bool
    error: str | None = None
    confidence: float = 0.0
    answer_correct: bool | None = None
    refusal_correct: bool | None = None
    em: float | None = None
    f1: float | None = None
    label: str | None = None
    gold_label: str | None = None
    evidence_ranks: list[int | None] | None = None
    n_citations: int = 0
    citation_precision: float | None = None
    citation_coverage: float | None = None
    latency_s: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- SQuAD


def normalize_answer(text: str) -> str:
    """Official SQuAD 2.0 normalisation."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    return normalize_answer(text).split()


def _em_single(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def _f1_single(prediction: str, gold: str) -> float:
    pred, ref = answer_tokens(prediction), answer_tokens(gold)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """Max EM over gold answers (0 when there is none)."""
    return max((_em_single(prediction, g) for g in golds), default=0.0)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """Max token F1 over gold answers (0 when there is none)."""
    return max((_f1_single(prediction, g) for g in golds), default=0.0)


def squad_scores(prediction: str, refused: bool, golds: Sequence[str]) -> tuple[float, float]:
    """(EM, F1) under SQuAD 2.0 rules with abstention: no gold answer scores 1 only if refused."""
    if not golds:
        return (1.0, 1.0) if refused else (0.0, 0.0)
    if refused:
        return 0.0, 0.0
    text = strip_markers(prediction)
    return exact_match(text, golds), token_f1(text, golds)


# --------------------------------------------------------------------------- answers


def gold_token_share(answer_text: str, gold: str) -> float:
    """Share of the gold answer's normalised tokens (with multiplicity) present in the answer."""
    ref = answer_tokens(gold)
    if not ref:
        return float(gold.strip().casefold() in answer_text.casefold()) if gold.strip() else 0.0
    have = Counter(answer_tokens(answer_text))
    return sum((Counter(ref) & have).values()) / len(ref)


def answer_correct(
    answer_text: str,
    refused: bool,
    golds: Sequence[str],
    *,
    min_share: float = ANSWER_TOKEN_SHARE,
    max_tokens: int = MAX_ANSWER_TOKENS,
) -> bool:
    """The answer-accuracy rule for an answerable item (see module docstring)."""
    if refused or not golds:
        return False
    text = strip_markers(answer_text)
    if not text or len(text.split()) > max_tokens:
        return False
    return any(gold_token_share(text, gold) >= min_share for gold in golds)


def refusal_correct(refused: bool) -> bool:
    """On an unanswerable or false-premise item the only correct behaviour is to refuse."""
    return refused


def refusal_accuracy(refusals: Iterable[bool]) -> float | None:
    return mean(refusal_correct(r) for r in refusals)


_MAYBE_WORDS = {"maybe", "unclear", "uncertain", "possibly", "perhaps", "inconclusive", "unknown"}


def map_yes_no_maybe(answer_text: str, refused: bool) -> str:
    """Map a free-text answer to PubMedQA's label set (rule in the module docstring)."""
    if refused:
        return "maybe"
    words = answer_tokens(strip_markers(answer_text))
    if not words:
        return "maybe"
    first = words[0]
    if first in ("yes", "no"):
        return first
    return "maybe"


# --------------------------------------------------------------------------- evidence


def match_tokens(text: str) -> list[str]:
    """Word tokens of a text after match normalisation (used for evidence and citations)."""
    return _WORD.findall(normalize_for_match(text))


def longest_common_run(needle: Sequence[str], haystack: Sequence[str]) -> int:
    """Length of the longest run of consecutive tokens that occurs in both sequences."""
    if not needle or not haystack:
        return 0
    best = 0
    prev = [0] * (len(haystack) + 1)
    for a in needle:
        cur = [0] * (len(haystack) + 1)
        for j, b in enumerate(haystack, start=1):
            if a == b:
                cur[j] = prev[j - 1] + 1
                if cur[j] > best:
                    best = cur[j]
        prev = cur
    return best


def contains_evidence(text: str, evidence: str, *, min_share: float = EVIDENCE_TOKEN_SHARE) -> bool:
    """Whether ``text`` contains ``evidence`` (rule in the module docstring)."""
    needle = match_tokens(evidence)
    if not needle:
        return False
    return longest_common_run(needle, match_tokens(text)) >= min_share * len(needle)


def evidence_ranks(passage_texts: Sequence[str], evidence_texts: Sequence[str]) -> list[int | None]:
    """For each evidence text, the 1-based rank of the first passage containing it (None: absent)."""
    ranks: list[int | None] = []
    for evidence in evidence_texts:
        rank = next(
            (i for i, passage in enumerate(passage_texts, start=1) if contains_evidence(passage, evidence)),
            None,
        )
        ranks.append(rank)
    return ranks


def first_hit_rank(ranks: Sequence[int | None]) -> int | None:
    found = [r for r in ranks if r is not None]
    return min(found) if found else None


def recall_at_k(ranks_per_item: Sequence[Sequence[int | None]], k: int | None) -> float | None:
    """Share of items with any evidence in the first k passages (k None: all retrieved)."""
    if not ranks_per_item:
        return None
    hits = 0
    for ranks in ranks_per_item:
        rank = first_hit_rank(ranks)
        if rank is not None and (k is None or rank <= k):
            hits += 1
    return hits / len(ranks_per_item)


def all_evidence_recall(ranks_per_item: Sequence[Sequence[int | None]], k: int | None) -> float | None:
    """Share of items with every evidence text in the first k passages."""
    if not ranks_per_item:
        return None
    full = sum(1 for ranks in ranks_per_item if ranks and all(r is not None and (k is None or r <= k) for r in ranks))
    return full / len(ranks_per_item)


def mean_reciprocal_rank(ranks_per_item: Sequence[Sequence[int | None]]) -> float | None:
    if not ranks_per_item:
        return None
    total = 0.0
    for ranks in ranks_per_item:
        rank = first_hit_rank(ranks)
        total += 1.0 / rank if rank else 0.0
    return total / len(ranks_per_item)


# --------------------------------------------------------------------------- citations


def citation_is_good(quote: str, passage_text: str | None, evidence_texts: Sequence[str]) -> bool:
    """A citation supports the gold evidence (rule in the module docstring)."""
    quote_tokens = match_tokens(quote)
    for evidence in evidence_texts:
        if contains_evidence(quote, evidence):
            return True
        if passage_text and contains_evidence(passage_text, evidence):
            return True
        if len(quote_tokens) >= MIN_QUOTE_TOKENS:
            run = longest_common_run(quote_tokens, match_tokens(evidence))
            if run >= EVIDENCE_TOKEN_SHARE * len(quote_tokens):
                return True
    return False


def citation_precision(citations: Sequence[tuple[str, str | None]], evidence_texts: Sequence[str]) -> float | None:
    """Share of good citations among ``(quote, cited passage text)`` pairs; None without citations."""
    if not citations:
        return None
    good = sum(1 for quote, passage in citations if citation_is_good(quote, passage, evidence_texts))
    return good / len(citations)


def split_answer_sentences(text: str) -> list[str]:
    """Answer sentences, each keeping the ``[n]`` markers that follow its full stop."""
    return [sentence for sentence, _ in split_answer(text)]


def citation_coverage(text: str) -> float | None:
    """Share of answer sentences that carry at least one ``[n]`` marker (None: empty answer)."""
    sentences = split_answer_sentences(text)
    if not sentences:
        return None
    cited = sum(1 for s in sentences if parse_markers(s))
    return cited / len(sentences)


# --------------------------------------------------------------------------- calibration


def _bin_index(confidence: float, n_bins: int) -> int:
    c = min(max(confidence, 0.0), 1.0)
    return min(int(c * n_bins), n_bins - 1)


def reliability_bins(
    confidences: Sequence[float], corrects: Sequence[bool], n_bins: int = N_BINS
) -> list[dict[str, Any]]:
    """Per equal-width bin: bounds, count, mean confidence and accuracy (None when empty)."""
    if len(confidences) != len(corrects):
        raise ValueError("confidences and corrects differ in length")
    members: list[list[int]] = [[] for _ in range(n_bins)]
    for i, conf in enumerate(confidences):
        members[_bin_index(conf, n_bins)].append(i)
    bins: list[dict[str, Any]] = []
    for b, idx in enumerate(members):
        bins.append(
            {
                "lo": b / n_bins,
                "hi": (b + 1) / n_bins,
                "count": len(idx),
                "confidence": sum(confidences[i] for i in idx) / len(idx) if idx else None,
                "accuracy": sum(1 for i in idx if corrects[i]) / len(idx) if idx else None,
            }
        )
    return bins


def expected_calibration_error(
    confidences: Sequence[float], corrects: Sequence[bool], n_bins: int = N_BINS
) -> float | None:
    """ECE = sum over bins of (bin share) * |accuracy - mean confidence|."""
    if not confidences:
        return None
    total = len(confidences)
    ece = 0.0
    for b in reliability_bins(confidences, corrects, n_bins):
        if b["count"]:
            ece += b["count"] / total * abs(b["accuracy"] - b["confidence"])
    return ece


# --------------------------------------------------------------------------- per item


def item_evidence_texts(item: EvalItem) -> list[str]:
    """Evidence texts; external span items use their gold answers (answer-containing passage)."""
    if item.evidence:
        return [e.text for e in item.evidence if e.text.strip()]
    if item.context is not None and item.answer_type != YES_NO_MAYBE:
        return [a for a in item.answers if a.strip()]
    return []


def score_item(
    item: EvalItem,
    answer: Answer | None,
    *,
    latency_s: float | None = None,
    error: str | None = None,
) -> ItemScore:
    """Score one item; ``answer`` None (an error) is wrong on every metric that applies."""
    refused = bool(answer.refused) if answer else False
    text = answer.text if answer else ""
    score = ItemScore(
        id=item.id,
        kind=item.kind,
        answerable=item.answerable,
        family=item.family,
        correct=False,
        refused=refused,
        error=error,
        confidence=float(answer.confidence) if answer else 0.0,
        latency_s=latency_s,
        timings=dict(answer.timings) if answer else {},
    )
    if item.answer_type == YES_NO_MAYBE:
        score.gold_label = item.answers[0].strip().lower() if item.answers else "maybe"
        score.label = map_yes_no_maybe(text, refused) if answer else None
        score.correct = score.label == score.gold_label
    elif item.answerable:
        score.answer_correct = answer is not None and answer_correct(text, refused, item.answers)
        phrase = answer.short.text if answer and answer.short else text  # EM and F1 are scored on the phrase
        score.em, score.f1 = squad_scores(phrase, refused, item.answers) if answer else (0.0, 0.0)
        score.correct = score.answer_correct
    else:
        score.refusal_correct = answer is not None and refusal_correct(refused)
        score.em, score.f1 = squad_scores(text, refused, ()) if answer else (0.0, 0.0)
        score.correct = score.refusal_correct

    evidence = item_evidence_texts(item)
    if evidence:
        passages = [p.text for p in answer.passages] if answer else []
        score.evidence_ranks = evidence_ranks(passages, evidence)
    if answer is None:
        return score
    score.n_citations = len(answer.citations)
    if not refused and text.strip():
        score.citation_coverage = citation_coverage(text)
    if item.answerable and not refused and evidence and answer.citations:
        by_chunk = {p.chunk.id: p.text for p in answer.passages}
        pairs = [(c.quote, by_chunk.get(c.chunk_id)) for c in answer.citations]
        score.citation_precision = citation_precision(pairs, evidence)
    return score


# --------------------------------------------------------------------------- aggregates


def _is_count(name: str) -> bool:
    return name.endswith("tokens")


def _stage_latency(scores: Sequence[ItemScore]) -> dict[str, dict[str, float | None]]:
    """p50/p95/mean seconds per ``Answer.timings`` stage (token counts such as ``prompt_tokens`` skipped)."""
    stages: dict[str, list[float]] = {}
    for s in scores:
        for name, seconds in s.timings.items():
            if isinstance(seconds, int | float) and not _is_count(name):
                stages.setdefault(name, []).append(float(seconds))
    summaries = {name: describe(vals) for name, vals in sorted(stages.items())}
    return {name: {"p50": st.p50, "p95": st.p95, "mean": st.mean} for name, st in summaries.items()}


def _mean_tokens(scores: Sequence[ItemScore]) -> dict[str, float | None]:
    """Mean of every token count in ``Answer.timings`` (e.g. prompt_tokens, completion_tokens)."""
    counts: dict[str, list[float]] = {}
    for s in scores:
        for name, value in s.timings.items():
            if isinstance(value, int | float) and _is_count(name):
                counts.setdefault(name, []).append(float(value))
    return {name: mean(vals) for name, vals in sorted(counts.items())}


def _uncached_prompt_tokens(scores: Sequence[ItemScore]) -> list[float]:
    """Prompt tokens the generator had to process (not found in its cache), per item that called it."""
    return [
        s.timings["prompt_tokens"] - s.timings.get("cached_prompt_tokens", 0.0)
        for s in scores
        if s.error is None and s.timings.get("prompt_tokens")
    ]


def summarize(scores: Sequence[ItemScore], ks: Sequence[int] = RECALL_KS) -> dict[str, Any]:
    """Aggregate metrics over a group of items (flat scalars plus reliability bins and stage latency)."""
    answerable = [s for s in scores if s.answer_correct is not None]
    refusal = [s for s in scores if s.refusal_correct is not None]
    span = [s for s in scores if s.f1 is not None]
    retrieval = [s.evidence_ranks for s in scores if s.evidence_ranks is not None]
    cited = [s for s in scores if s.citation_precision is not None]
    covered = [s for s in scores if s.citation_coverage is not None]
    answered = [s for s in scores if s.error is None and not s.refused]
    latencies = [s.latency_s for s in scores if s.latency_s is not None and s.error is None]
    confidences = [s.confidence for s in scores if s.error is None]
    corrects = [s.correct for s in scores if s.error is None]
    labelled = [s for s in scores if s.gold_label is not None]
    answerable_all = [s for s in scores if s.answerable]

    out: dict[str, Any] = {
        "n": len(scores),
        "n_errors": sum(1 for s in scores if s.error is not None),
        "accuracy": mean(s.correct for s in scores),
        "n_answerable": len(answerable),
        "answer_accuracy": mean(s.answer_correct for s in answerable),
        "n_refusal": len(refusal),
        "refusal_accuracy": mean(s.refusal_correct for s in refusal),
        "false_refusal_rate": mean(s.refused for s in answerable_all),
        "n_span": len(span),
        "em": mean(s.em for s in span),
        "f1": mean(s.f1 for s in span),
        "n_yes_no_maybe": len(labelled),
        "yes_no_maybe_accuracy": mean(s.label == s.gold_label for s in labelled),
        "n_retrieval": len(retrieval),
    }
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(retrieval, k)
    out["recall@all"] = recall_at_k(retrieval, None)
    out["evidence_recall_all@all"] = all_evidence_recall(retrieval, None)
    out["mrr"] = mean_reciprocal_rank(retrieval)
    out.update(
        {
            "n_cited_answers": len(cited),
            "citation_precision": mean(s.citation_precision for s in cited),
            "citation_coverage": mean(s.citation_coverage for s in covered),
            "cited_answer_rate": mean(s.n_citations > 0 for s in answered) if answered else None,
            "mean_confidence": mean(confidences),
            "ece": expected_calibration_error(confidences, corrects),
            "latency_p50_s": percentile(latencies, 50),
            "latency_p95_s": percentile(latencies, 95),
            "latency_mean_s": mean(latencies),
            "stage_latency": _stage_latency([s for s in scores if s.error is None]),
            "mean_tokens": _mean_tokens([s for s in scores if s.error is None]),
            "median_uncached_prompt_tokens": percentile(_uncached_prompt_tokens(scores), 50),
            "reliability": reliability_bins(confidences, corrects),
        }
    )
    return out


def group_by(scores: Sequence[ItemScore], key: Callable[[ItemScore], str | None]) -> dict[str, list[ItemScore]]:
    groups: dict[str, list[ItemScore]] = {}
    for s in scores:
        name = key(s)
        if name is not None:
            groups.setdefault(name, []).append(s)
    return dict(sorted(groups.items()))


def summarize_by_kind(scores: Sequence[ItemScore]) -> dict[str, dict[str, Any]]:
    return {kind: summarize(group) for kind, group in group_by(scores, lambda s: s.kind).items()}


def external_metrics(scores: Sequence[ItemScore]) -> dict[str, dict[str, Any]]:
    """Numbers in the published conventions of each external source (fractions, not percent)."""
    out: dict[str, dict[str, Any]] = {}
    families = group_by(scores, lambda s: s.family)
    squad = families.get("squad2", [])
    if squad:
        has = [s for s in squad if s.answerable]
        no = [s for s in squad if not s.answerable]
        out["squad2"] = {
            "n": len(squad),
            "n_has_ans": len(has),
            "n_no_ans": len(no),
            "has_ans_em": mean(s.em for s in has),
            "has_ans_f1": mean(s.f1 for s in has),
            "no_ans_accuracy": mean(s.refused and s.error is None for s in no),
            "em": mean(s.em for s in squad),
            "f1": mean(s.f1 for s in squad),
            "answer_accuracy": mean(s.answer_correct for s in has),
        }
    pubmed = families.get("pubmedqa", [])
    if pubmed:
        confusion: dict[str, dict[str, int]] = {}
        for s in pubmed:
            row = confusion.setdefault(s.gold_label or "?", {})
            row[s.label or "error"] = row.get(s.label or "error", 0) + 1
        out["pubmedqa"] = {
            "n": len(pubmed),
            "accuracy": mean(s.correct for s in pubmed),
            "confusion": confusion,
        }
    covid = families.get("covid_qa", [])
    if covid:
        out["covid_qa"] = {
            "n": len(covid),
            "em": mean(s.em for s in covid),
            "f1": mean(s.f1 for s in covid),
            "answer_accuracy": mean(s.answer_correct for s in covid),
        }
    return out
