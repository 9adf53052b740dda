"""Okapi BM25 keyword search with vectorised scoring over numpy postings arrays.

Postings are stored term by term (CSR layout: ``indptr``, ``rows``, ``tfs``); a query
sums the precomputed per-posting weights of its terms with one ``np.bincount``, so a
search costs time proportional to the postings of the query terms, not the corpus.
Persisted as ``.npz`` (no pickle).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.text import STOPWORDS

FORMAT_VERSION = 2

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

K1 = 1.5
B = 0.75


def idf_of(n_docs: int, df: int) -> float:
    """Lucene's always-positive BM25 inverse document frequency of a term in ``df`` of ``n_docs`` texts."""
    return float(np.log((n_docs - df + 0.5) / (df + 0.5) + 1.0))


@functools.lru_cache(maxsize=1 << 16)
def _stem(token: str) -> str:
    """Simple plural stripping: studies -> study, classes -> class, inhibitors -> inhibitor."""
    if len(token) <= 3 or not token.endswith("s") or token.isdigit():
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith(("sses", "xes", "ches", "shes")):
        return token[:-2]
    if token.endswith(("ss", "us", "is")):
        return token
    return token[:-1]


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens, English stopwords removed, plurals stripped."""
    return [_stem(tok) for tok in _WORD.findall(text.lower()) if tok not in STOPWORDS]


class BM25Index:
    """Okapi BM25 (``k1``, ``b``) over a fixed set of int-id texts; rebuilt when the corpus changes."""

    def __init__(self, k1: float = K1, b: float = B) -> None:
        self.k1 = k1
        self.b = b
        self.ids = np.zeros(0, dtype=np.int64)
        self.vocab: dict[str, int] = {}
        self._terms: list[str] = []
        self._indptr = np.zeros(1, dtype=np.int64)
        self._rows = np.zeros(0, dtype=np.int32)
        self._tfs = np.zeros(0, dtype=np.float32)
        self._doc_len = np.zeros(0, dtype=np.float32)
        self._weights = np.zeros(0, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.ids)

    def build(self, ids: Sequence[int] | np.ndarray, texts: Sequence[str]) -> BM25Index:
        """Index ``texts`` under ``ids`` (replacing any previous content); returns ``self``."""
        fresh = BM25Index(self.k1, self.b).updated(remove=np.zeros(0, dtype=np.int64), ids=ids, texts=texts)
        self.__dict__.update(fresh.__dict__)
        return self

    def updated(
        self, *, remove: Sequence[int] | np.ndarray, ids: Sequence[int] | np.ndarray, texts: Sequence[str]
    ) -> BM25Index:
        """A new index without the ``remove`` ids and with ``texts`` added: only new texts are tokenised."""
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids but {len(texts)} texts.")
        keep = ~np.isin(self.ids, np.asarray(remove, dtype=np.int64))
        new_row = np.cumsum(keep) - 1  # old row -> row among the kept texts
        old_terms = np.repeat(np.arange(len(self._terms)), np.diff(self._indptr))
        kept = keep[self._rows]

        vocab = dict(self.vocab)
        term_ids: list[int] = []
        rows: list[int] = []
        tfs: list[int] = []
        doc_len = np.zeros(len(texts), dtype=np.float32)
        first_row = int(keep.sum())
        for offset, text in enumerate(texts):
            counts = Counter(tokenize(text))
            doc_len[offset] = sum(counts.values())
            for term, tf in counts.items():
                term_ids.append(vocab.setdefault(term, len(vocab)))
                rows.append(first_row + offset)
                tfs.append(tf)

        all_terms = np.concatenate([old_terms[kept], np.array(term_ids, dtype=np.int64)])
        all_rows = np.concatenate([new_row[self._rows[kept]], np.array(rows, dtype=np.int64)])
        all_tfs = np.concatenate([self._tfs[kept], np.array(tfs, dtype=np.float32)])
        # Drop terms left without postings, then lay the postings out term by term (CSR).
        terms = list(vocab)
        df = np.bincount(all_terms, minlength=len(terms))
        live = df > 0
        remap = np.cumsum(live) - 1
        all_terms = remap[all_terms]
        order = np.argsort(all_terms, kind="stable")

        out = BM25Index(self.k1, self.b)
        out._terms = [t for t, alive in zip(terms, live, strict=True) if alive]
        out.vocab = {t: i for i, t in enumerate(out._terms)}
        out._indptr = np.concatenate([[0], np.cumsum(df[live])]).astype(np.int64)
        out._rows = all_rows[order].astype(np.int32)
        out._tfs = all_tfs[order].astype(np.float32)
        out._doc_len = np.concatenate([self._doc_len[keep], doc_len])
        out.ids = np.concatenate([self.ids[keep], np.asarray(ids, dtype=np.int64).reshape(-1)])
        out._compute_weights()
        return out

    def _compute_weights(self) -> None:
        n_docs = len(self._doc_len)
        if n_docs == 0 or len(self._rows) == 0:
            self._weights = np.zeros(0, dtype=np.float32)
            return
        df = np.diff(self._indptr).astype(np.float64)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))  # Lucene's always-positive idf
        avgdl = max(float(self._doc_len.mean()), 1e-9)
        norm = self.k1 * (1.0 - self.b + self.b * self._doc_len / avgdl)
        tf = self._tfs.astype(np.float64)
        per_posting_idf = np.repeat(idf, np.diff(self._indptr))
        weights = per_posting_idf * tf * (self.k1 + 1.0) / (tf + norm[self._rows])
        self._weights = weights.astype(np.float32)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every indexed text (row order of :attr:`ids`)."""
        counts = Counter(t for t in tokenize(query) if t in self.vocab)
        if not counts or len(self.ids) == 0:
            return np.zeros(len(self.ids), dtype=np.float32)
        rows_parts: list[np.ndarray] = []
        weight_parts: list[np.ndarray] = []
        for term, qtf in counts.items():
            t = self.vocab[term]
            lo, hi = self._indptr[t], self._indptr[t + 1]
            rows_parts.append(self._rows[lo:hi])
            w = self._weights[lo:hi]
            weight_parts.append(w * qtf if qtf > 1 else w)
        return np.bincount(
            np.concatenate(rows_parts), weights=np.concatenate(weight_parts), minlength=len(self.ids)
        ).astype(np.float32)

    def idf(self, word: str) -> float:
        """Inverse document frequency of ``word`` (its rarest token); unseen words get the highest."""
        n = len(self.ids)
        frequencies = [
            int(self._indptr[self.vocab[t] + 1] - self._indptr[self.vocab[t]]) if t in self.vocab else 0
            for t in tokenize(word)
        ]
        return idf_of(n, min(frequencies, default=0))

    def has_term(self, word: str) -> bool:
        """Whether every token of ``word`` occurs somewhere in the indexed texts."""
        tokens = tokenize(word)
        return bool(tokens) and all(t in self.vocab for t in tokens)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best ``(id, score)`` pairs with a positive score, best first."""
        scores = self.scores(query)
        if k <= 0 or not scores.any():
            return []
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[scores[top] > 0]
        order = top[np.lexsort((self.ids[top], -scores[top]))]
        return [(int(self.ids[r]), float(scores[r])) for r in order]

    def save(self, path: Path) -> None:
        """Write to ``path`` (an ``.npz`` file)."""
        with open(path, "wb") as fh:
            np.savez(
                fh,
                format_version=np.array(FORMAT_VERSION),
                params=np.array([self.k1, self.b], dtype=np.float64),
                ids=self.ids,
                terms=np.array(self._terms, dtype=np.str_),
                indptr=self._indptr,
                rows=self._rows,
                tfs=self._tfs,
                doc_len=self._doc_len,
            )

    @classmethod
    def load(cls, path: Path) -> BM25Index:
        """Read an index written by :meth:`save`; raises ``ValueError``/``OSError`` if it is unreadable."""
        with np.load(path, allow_pickle=False) as data:
            if int(data["format_version"]) != FORMAT_VERSION:
                raise ValueError(f"{path}: unsupported BM25 format version {int(data['format_version'])}.")
            k1, b = (float(x) for x in data["params"])
            index = cls(k1=k1, b=b)
            index.ids = data["ids"].astype(np.int64)
            index._terms = [str(t) for t in data["terms"]]
            index._indptr = data["indptr"].astype(np.int64)
            index._rows = data["rows"].astype(np.int32)
            index._tfs = data["tfs"].astype(np.float32)
            index._doc_len = data["doc_len"].astype(np.float32)
        if (
            len(index._indptr) != len(index._terms) + 1
            or int(index._indptr[-1]) != len(index._rows)
            or len(index._tfs) != len(index._rows)
            or len(index._doc_len) != len(index.ids)
            or (len(index._rows) and int(index._rows.max()) >= len(index.ids))
        ):
            raise ValueError(f"{path}: inconsistent BM25 arrays.")
        index.vocab = {term: i for i, term in enumerate(index._terms)}
        index._compute_weights()
        return index
