"""The PostgreSQL index opened for reading and writing: the second implementation of :class:`qa.index.IndexReader`.

Many processes (several ``qa serve``, ``qa index``, ``qa eval``) can share one index: each
holds a small pool of read connections, every question reads one repeatable-read snapshot,
and a document another process adds is visible to the next question (there is nothing to
reload). Writes go through :mod:`qa.pg_builder`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.builder import BuildJob, IndexWrites
from qa.embedding import Embedder
from qa.index_format import (
    REBUILD_HINT,
    BuildReport,
    DocInfo,
    IndexMismatch,
    IndexNotFound,
    QAIndexError,
    expected_header,
    mismatch_reason,
)
from qa.pg_store import KeywordCache, PgReads, configure, connect, has_index, redact
from qa.settings import Settings
from qa.types import Chunk, Document


class PgSnapshot(PgReads):
    """One read-only, repeatable-read transaction on a pooled connection: one consistent view.

    Use it in a ``with`` block; the connection goes back to the pool at its end (or when the
    snapshot is closed or garbage-collected)."""

    def __init__(self, pool: Any, *, hnsw_threshold: int, ef_search: int, keywords: KeywordCache) -> None:
        from psycopg_pool import PoolTimeout

        self._pool = pool
        try:
            conn = pool.getconn()
        except PoolTimeout as exc:
            raise QAIndexError(
                f"Cannot reach the PostgreSQL index ({exc}); check that the server at index.url is running."
            ) from None
        super().__init__(conn, hnsw_threshold=hnsw_threshold, ef_search=ef_search, keywords=keywords)

    def snapshot(self) -> PgSnapshot:
        return self

    def __enter__(self) -> PgSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection is the pool's to replace
                conn.rollback()  # read-only: nothing to keep
            self._pool.putconn(conn)

    def __del__(self) -> None:
        if getattr(self, "conn", None) is not None:
            self.close()


class PgIndex(IndexWrites):
    """An index in a PostgreSQL schema: reads from a connection pool, writes under an advisory lock."""

    def __init__(self, settings: Settings, embedder: Embedder, pool: Any) -> None:
        self.settings = settings
        self.embedder = embedder
        self._pool = pool
        self._keywords = KeywordCache(contextual=settings.chunking.contextual_keywords)
        self.directory = Path(settings.paths.index)  # where uploads are kept; the index itself is in the database

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder) -> PgIndex:
        """Open and check; raises :class:`IndexNotFound` (nothing built yet) or :class:`IndexMismatch`."""
        _check_header(settings, embedder)
        from psycopg import IsolationLevel
        from psycopg_pool import ConnectionPool

        schema = settings.index.schema_name

        def configure_reader(conn: Any) -> None:
            configure(conn, schema)
            conn.isolation_level = IsolationLevel.REPEATABLE_READ
            conn.read_only = True

        pool = ConnectionPool(
            settings.index.url,
            min_size=1,
            max_size=settings.index.pool_size,
            kwargs={"autocommit": False, "connect_timeout": max(1, round(settings.index.connect_timeout))},
            configure=configure_reader,
            check=ConnectionPool.check_connection,  # a server restart costs one reconnect, not an error
            timeout=settings.index.connect_timeout,
            name=f"qa-{schema}",
            open=True,
        )
        return cls(settings, embedder, pool)

    def snapshot(self) -> PgSnapshot:
        """A consistent view for all the reads of one question (use it in a ``with`` block)."""
        return PgSnapshot(
            self._pool,
            hnsw_threshold=self.settings.embedding.hnsw_threshold,
            ef_search=self.settings.index.hnsw_ef_search,
            keywords=self._keywords,
        )

    # One read each, in its own transaction (see IndexReader).

    def __len__(self) -> int:
        with self.snapshot() as reads:
            return len(reads)

    def documents(self) -> list[DocInfo]:
        with self.snapshot() as reads:
            return reads.documents()

    def get_document(self, doc_id: str) -> Document:
        with self.snapshot() as reads:
            return reads.get_document(doc_id)

    def chunks(self, ids: Sequence[int] | Sequence[str] | np.ndarray) -> list[Chunk]:
        with self.snapshot() as reads:
            return reads.chunks(ids)

    def neighbours(self, chunk: Chunk, n: int = 1) -> list[Chunk]:
        with self.snapshot() as reads:
            return reads.neighbours(chunk, n)

    def idf(self, word: str) -> float:
        with self.snapshot() as reads:
            return reads.idf(word)

    def mentions(self, word: str) -> bool:
        with self.snapshot() as reads:
            return reads.mentions(word)

    # Writes and lifecycle.

    def reload(self) -> None:
        """Nothing to do: every read sees the latest committed documents."""

    def _run(self, job: BuildJob) -> BuildReport:
        """One transaction under the schema's advisory lock; nothing to reload afterwards."""
        from qa.pg_builder import run_pg_build

        return run_pg_build(job)

    def close(self) -> None:
        self._pool.close()


def _check_header(settings: Settings, embedder: Embedder) -> None:
    """Raise :class:`IndexNotFound` or :class:`IndexMismatch` unless the schema holds an index for these settings."""
    schema = settings.index.schema_name
    where = f"schema {schema!r} of {redact(settings.index.url)}"
    conn = connect(settings.index)
    try:
        if not has_index(conn, schema):
            raise IndexNotFound(f"No index in PostgreSQL {where}: run `qa index` to build it.")
        header = PgReads(conn, hnsw_threshold=0, ef_search=0).meta("header") or {}
    finally:
        conn.close()
    if why := mismatch_reason(header, expected_header(settings, embedder)):
        raise IndexMismatch(f"The index in PostgreSQL {where} does not match the settings: {why}; {REBUILD_HINT}.")


def drop_pg_index(settings: Settings) -> None:
    """Remove the index's schema and everything in it."""
    from psycopg import sql

    conn = connect(settings.index)
    try:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(settings.index.schema_name)))
    finally:
        conn.close()


def describe_pg_index(settings: Settings) -> str:
    """One line for ``qa doctor``: where the index is, its documents and chunks, when it was written."""
    from qa.index import index_location

    conn = connect(settings.index)
    try:
        if not has_index(conn, settings.index.schema_name):
            raise IndexNotFound(f"No index in {index_location(settings)}: run `qa index` to build it.")
        reads = PgReads(conn, hnsw_threshold=0, ef_search=0)
        n_docs = len(reads.recorded())
        updated = reads.meta("updated") or "?"
        return f"{index_location(settings)}: {n_docs} documents, {len(reads)} chunks, built {updated}"
    finally:
        conn.close()
