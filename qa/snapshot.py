"""Reading the index: one published, immutable generation and the queries on it.

A snapshot is what one question reads: the documents and chunks (SQLite), the vectors
(FAISS) and the keyword index (BM25) of the same generation, checked against each other
when loaded. Building a new generation is :mod:`qa.builder`'s job.
"""

from __future__ import annotations

import sqlite3
import threading
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.bm25 import BM25Index
from qa.index_format import (
    BM25_FILE,
    CHUNK_COLUMNS,
    META_FILE,
    REBUILD_HINT,
    CorruptIndex,
    DocInfo,
    IndexMismatch,
    chunk_from_row,
    corrupt_index,
    current_generation,
    current_generation_or_none,
    document_from_row,
    mismatch_reason,
    read_manifest,
)
from qa.store import StoreError, VectorStore, load_store
from qa.types import Chunk, Document


def _connect_readonly(path: Path) -> sqlite3.Connection:
    # immutable=1: a published generation never changes, so SQLite may skip locking.
    uri = f"file:{urllib.request.pathname2url(str(path))}?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def _open_meta(path: Path) -> tuple[sqlite3.Connection, np.ndarray, set[str]]:
    """Open ``meta.sqlite`` read-only and check it; returns it with its chunk ids (sorted) and document ids."""
    db_path = path / META_FILE
    if not db_path.is_file():
        raise CorruptIndex(f"missing {META_FILE}")
    db: sqlite3.Connection | None = None
    try:
        db = _connect_readonly(db_path)
        check = db.execute("PRAGMA quick_check").fetchone()
        if not check or check[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {check}")
        chunk_ids = np.array([r[0] for r in db.execute("SELECT id FROM chunks ORDER BY id")], dtype=np.int64)
        doc_ids = {r[0] for r in db.execute("SELECT id FROM documents")}
    except sqlite3.Error as exc:
        if db is not None:
            db.close()
        raise CorruptIndex(f"unreadable {META_FILE}: {exc}") from exc
    return db, chunk_ids, doc_ids


def _inconsistency(
    manifest: dict[str, Any], store: VectorStore, bm25: BM25Index, chunk_ids: np.ndarray, doc_ids: set[str]
) -> str | None:
    """What the files of one generation disagree about, or None if they agree."""
    if len(chunk_ids) != int(manifest["chunk_count"]):
        return f"{len(chunk_ids)} chunks in {META_FILE} but {manifest['chunk_count']} in the manifest"
    if not np.array_equal(np.sort(store.ids()), chunk_ids):
        return f"FAISS holds {len(store)} vectors but {META_FILE} {len(chunk_ids)} chunks (ids differ)"
    if not np.array_equal(np.sort(bm25.ids), chunk_ids):
        return f"the BM25 index holds {len(bm25)} chunks but {META_FILE} {len(chunk_ids)}"
    if doc_ids != set(manifest["documents"]):
        return f"the documents in {META_FILE} differ from the manifest"
    return None


class IndexSnapshot:
    """One published, immutable generation of the index, loaded for reading.

    Implements :class:`qa.index.SnapshotReader`: everything one question reads comes from
    the same generation, even while a writer publishes the next one.
    """

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        store: VectorStore,
        bm25: BM25Index,
        db: sqlite3.Connection,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.store = store
        self.bm25 = bm25
        self._db = db
        self._db_lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, manifest: dict[str, Any] | None = None) -> IndexSnapshot:
        """Load and cross-check every file; raises :class:`CorruptIndex` naming what is wrong."""
        manifest = manifest if manifest is not None else read_manifest(path)
        try:
            store = load_store(str(manifest["faiss_kind"]), path)
        except StoreError as exc:
            raise CorruptIndex(str(exc)) from exc
        try:
            bm25 = BM25Index.load(path / BM25_FILE)
        except Exception as exc:  # zipfile, numpy and OS errors all mean the same here
            raise CorruptIndex(f"unreadable {BM25_FILE}: {exc}") from exc
        db, chunk_ids, doc_ids = _open_meta(path)
        if problem := _inconsistency(manifest, store, bm25, chunk_ids, doc_ids):
            db.close()
            raise CorruptIndex(problem)
        return cls(path, manifest, store, bm25, db)

    def close(self) -> None:
        with self._db_lock:
            self._db.close()

    def snapshot(self) -> IndexSnapshot:
        """Itself: a snapshot is already one consistent view."""
        return self

    def __enter__(self) -> IndexSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        """Nothing to release: the generation stays open until the index reloads or closes."""

    def __len__(self) -> int:
        return len(self.store)

    # ------------------------------------------------------------------ search hooks

    def dense_search(self, query_vector: np.ndarray, n: int) -> list[int]:
        """Ids of the (up to) ``n`` chunks nearest the normalised ``query_vector``, nearest first."""
        _, ids = self.store.search(np.asarray(query_vector, dtype=np.float32).reshape(1, -1), n)
        return [int(i) for i in ids[0] if i >= 0]

    def sparse_search(self, query: str, n: int) -> list[int]:
        """Ids of the (up to) ``n`` best BM25 matches of ``query``, best first."""
        return [i for i, _ in self.bm25.search(query, n)]

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored (normalised) vectors of chunk ids, one row each."""
        return self.store.get(np.asarray(ids, dtype=np.int64))

    def idf(self, word: str) -> float:
        """How rare ``word`` is across the indexed chunks (BM25 inverse document frequency)."""
        return self.bm25.idf(word)

    def mentions(self, word: str) -> bool:
        """Whether ``word`` occurs anywhere in the indexed documents (by the keyword index)."""
        return self.bm25.has_term(word)

    # ------------------------------------------------------------------ documents and chunks

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._db_lock:
            return self._db.execute(sql, params).fetchall()

    def documents(self) -> list[DocInfo]:
        rows = self._query(
            "SELECT d.id, d.title, count(c.id), d.source FROM documents d "
            "LEFT JOIN chunks c ON c.doc_id = d.id GROUP BY d.id ORDER BY d.id"
        )
        return [DocInfo(*row) for row in rows]

    def get_document(self, doc_id: str) -> Document:
        rows = self._query(
            "SELECT id, title, text, source, content_hash, pages, sections FROM documents WHERE id = ?",
            (doc_id,),
        )
        if not rows:
            raise KeyError(f"No document {doc_id!r} in the index.")
        return document_from_row(rows[0])

    def chunks(self, ids: Sequence[int] | Sequence[str] | np.ndarray) -> list[Chunk]:
        """Chunks by int id (as in the vector store) or by chunk id (``doc#n``), in the given order."""
        keys = [k.item() if isinstance(k, np.generic) else k for k in ids]
        found: dict[Any, Chunk] = {}
        for i in range(0, len(keys), 500):
            batch = keys[i : i + 500]
            if not batch:
                continue
            column = "c.chunk_id" if isinstance(batch[0], str) else "c.id"
            marks = ",".join("?" * len(batch))
            rows = self._query(
                f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {column} IN ({marks})",
                batch,
            )
            for row in rows:
                found[row[1] if column == "c.chunk_id" else row[0]] = chunk_from_row(row)
        missing = [k for k in keys if k not in found]
        if missing:
            raise KeyError(f"No chunks {missing[:5]} in the index.")
        return [found[k] for k in keys]

    def doc_chunks(self, doc_id: str) -> list[Chunk]:
        rows = self._query(
            f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.doc_id "
            "WHERE c.doc_id = ? ORDER BY c.ordinal",
            (doc_id,),
        )
        return [chunk_from_row(r) for r in rows]

    def neighbours(self, chunk: Chunk, n: int = 1) -> list[Chunk]:
        """Up to ``n`` chunks either side of ``chunk`` in its document, in document order."""
        rows = self._query(
            f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.doc_id "
            "WHERE c.doc_id = ? AND c.ordinal BETWEEN ? AND ? AND c.ordinal != ? ORDER BY c.ordinal",
            (chunk.doc_id, chunk.ordinal - n, chunk.ordinal + n, chunk.ordinal),
        )
        return [chunk_from_row(r) for r in rows]

    def stored_chunks(self, doc_ids: Sequence[str]) -> list[tuple[int, Chunk]]:
        """``(int id, chunk)`` of every chunk of ``doc_ids``, by id (what a build may reuse vectors of)."""
        marks = ",".join("?" * len(doc_ids))
        rows = self._query(
            f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.doc_id "
            f"WHERE c.doc_id IN ({marks}) ORDER BY c.id",
            doc_ids,
        )
        return [(int(row[0]), chunk_from_row(row)) for row in rows]


def open_live_snapshot(directory: Path, expected: dict[str, Any]) -> IndexSnapshot:
    """Open the live generation; retries if a writer swapped it while we were reading."""
    generation: Path | None = None
    for attempt in range(3):
        try:
            generation = current_generation(directory)
            manifest = read_manifest(generation)
            if why := mismatch_reason(manifest, expected):
                raise IndexMismatch(f"The index in {directory} does not match the settings: {why}; {REBUILD_HINT}.")
            return IndexSnapshot.load(generation, manifest)
        except CorruptIndex as exc:
            if attempt < 2 and _swapped(directory, generation):
                continue
            raise corrupt_index(directory, str(exc)) from exc
    raise AssertionError("unreachable")


def _swapped(directory: Path, generation: Path | None) -> bool:
    """Whether a writer published another generation since we resolved ``generation``."""
    return generation is not None and current_generation_or_none(directory) not in (None, generation)
