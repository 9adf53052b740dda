"""The PostgreSQL index: connections, the schema, and every read, over one connection.

One index is one PostgreSQL schema (``index.schema_name``) holding three tables::

    qa_meta       key -> jsonb: the header (embedding model, chunking, format) and the state
                  (chunk count, a version bumped by every write, a generation renewed by a rebuild)
    qa_documents  one row per document: its text, pages and sections (exact offsets, as stored locally)
    qa_chunks     one row per chunk: offsets, text, its pgvector embedding (HNSW index)

Dense search runs in PostgreSQL (pgvector). The keyword side is the folder backend's own Okapi
BM25 (:class:`qa.bm25.BM25Index`) over the chunk texts stored here, held by each process and
brought up to date from the tables when the version changes (:class:`KeywordCache`): both
backends then rank passages identically, so a question gets the same answer on either. BM25 in
SQL (an inverted-index table with MaxScore pruning, or ``ts_rank`` full-text search, which is not
BM25) was measured at 24 ms p50 / 56 ms p95 on 37k chunks, above the 20 ms p95 budget of a
whole retrieval; the per-process index answers in under a millisecond.

The server needs PostgreSQL >= 15 with the ``vector`` extension (pgvector), which every major
managed PostgreSQL offers. Reads run in ``REPEATABLE READ`` read-only transactions, so one
question sees one committed state even while another process writes (see :mod:`qa.pg_index`);
writes are :mod:`qa.pg_builder`'s.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from qa.bm25 import BM25Index
from qa.chunking import search_text
from qa.index_format import CHUNK_COLUMNS, DocInfo, QAIndexError, chunk_from_row, document_from_row
from qa.settings import IndexSettings
from qa.types import Chunk, Document

MIN_SERVER_VERSION = 150000
SERVER_REQUIREMENT = "PostgreSQL >= 15 with the pgvector extension (CREATE EXTENSION vector)"

TABLES = ("qa_chunks", "qa_documents", "qa_meta")


def schema_sql(dim: int) -> str:
    """The tables of one index (in the schema on the search path), for vectors of ``dim`` numbers."""
    return f"""
CREATE TABLE qa_meta (key text PRIMARY KEY, value jsonb NOT NULL);
CREATE TABLE qa_documents (
    id text PRIMARY KEY, title text NOT NULL, source text NOT NULL, content_hash text NOT NULL,
    text text NOT NULL, pages jsonb NOT NULL, sections jsonb NOT NULL
);
CREATE TABLE qa_chunks (
    id bigint PRIMARY KEY, chunk_id text NOT NULL UNIQUE,
    doc_id text NOT NULL REFERENCES qa_documents(id) ON DELETE CASCADE,
    ordinal integer NOT NULL, start integer NOT NULL, "end" integer NOT NULL, section text, page integer,
    text text NOT NULL, embedding vector({int(dim)}) NOT NULL
);
CREATE INDEX qa_chunks_by_doc ON qa_chunks (doc_id, ordinal);
CREATE INDEX qa_chunks_hnsw ON qa_chunks USING hnsw (embedding vector_ip_ops);
"""


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def connect(settings: IndexSettings, *, autocommit: bool = True) -> Any:
    """A connection to ``settings.url`` with the index's schema first on the search path.

    Raises :class:`QAIndexError` saying what to check when the server cannot be reached."""
    import psycopg

    if not settings.url:
        raise QAIndexError(
            "index.backend is 'postgres' but no database is set: set index.url in qa.toml "
            "or QA_INDEX__URL=postgresql://user:password@host:5432/dbname."
        )
    try:
        conn = psycopg.connect(
            settings.url, autocommit=autocommit, connect_timeout=max(1, round(settings.connect_timeout))
        )
    except psycopg.Error as exc:
        raise QAIndexError(
            f"Cannot connect to PostgreSQL at {redact(settings.url)}: {str(exc).strip()}. "
            "Check index.url (QA_INDEX__URL) and that the server is running."
        ) from None
    configure(conn, settings.schema_name)
    return conn


def configure(conn: Any, schema: str) -> None:
    """Put ``schema`` first on the connection's search path, then the schema holding pgvector's types."""
    from psycopg import sql

    autocommit = conn.autocommit
    conn.autocommit = True
    conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
    if has_vector_extension(conn):
        from pgvector.psycopg import register_vector

        register_vector(conn)
    conn.autocommit = autocommit


def has_vector_extension(conn: Any) -> bool:
    return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is not None


def has_index(conn: Any, schema: str) -> bool:
    """Whether ``schema`` holds a complete index (its tables and a header)."""
    row = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = ANY(%s)",
        (schema, list(TABLES)),
    ).fetchone()
    if row is None or row[0] != len(TABLES):
        return False
    return conn.execute("SELECT 1 FROM qa_meta WHERE key = 'header'").fetchone() is not None


def to_list(ids: Sequence[int] | np.ndarray) -> list[int]:
    return [int(i) for i in ids]


class KeywordCache:
    """Each process's BM25 index over the chunks of a PostgreSQL index, one per committed state.

    A reader asks for the index of the state its snapshot sees, ``(generation, version)``. The
    newest cached index of the same generation is brought up to date by the chunks added and
    removed since (only new texts are tokenised); a new generation (a full rebuild) is indexed
    afresh. The two newest states are kept, so a question still reading the previous state and
    one reading the new state both get an index that matches what they read."""

    def __init__(self, keep: int = 2, *, contextual: bool = False) -> None:
        self._keep = keep
        self._contextual = contextual
        self._lock = threading.Lock()
        self._states: dict[tuple[str, int], tuple[BM25Index, frozenset[int]]] = {}

    def get(self, reads: PgReads) -> BM25Index:
        state = reads.state()
        key = (str(state.get("generation", "")), int(state.get("version", 0)))
        with self._lock:
            if key in self._states:
                return self._states[key][0]
            base = max((k for k in self._states if k[0] == key[0]), default=None, key=lambda k: k[1])
            index, ids = self._updated(reads, self._states[base] if base else None, self._contextual)
            self._states[key] = (index, ids)
            for old in sorted(self._states, key=lambda k: k[1])[: -self._keep]:
                del self._states[old]
            return index

    @staticmethod
    def _updated(
        reads: PgReads, base: tuple[BM25Index, frozenset[int]] | None, contextual: bool
    ) -> tuple[BM25Index, frozenset[int]]:
        """``base`` with the chunks removed and added since, or a fresh index of every chunk."""
        if base is None:
            rows = reads.chunk_rows()
            texts = [search_text(chunk, contextual=contextual) for _, chunk in rows]
            return BM25Index().build([i for i, _ in rows], texts), frozenset(i for i, _ in rows)
        index, had = base
        ids = frozenset(reads.chunk_ids())
        added = reads.chunk_rows(sorted(ids - had)) if ids - had else []
        removed = np.array(sorted(had - ids), dtype=np.int64)
        texts = [search_text(chunk, contextual=contextual) for _, chunk in added]
        return index.updated(remove=removed, ids=[i for i, _ in added], texts=texts), ids


class PgReads:
    """Every read of an index, on one connection (inside whatever transaction it is in).

    Implements :class:`qa.index.SnapshotReader` when the connection is in a repeatable-read
    transaction; the builder uses it on its own connection to read the index it updates.
    """

    def __init__(self, conn: Any, *, hnsw_threshold: int, ef_search: int, keywords: KeywordCache | None = None) -> None:
        self.conn = conn
        self.hnsw_threshold = hnsw_threshold
        self.ef_search = ef_search
        self.keywords = keywords if keywords is not None else KeywordCache(keep=1)
        self._state: dict[str, Any] | None = None

    def _rows(self, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        rows: list[Any] = self.conn.execute(query, params).fetchall()
        return rows

    def meta(self, key: str) -> Any:
        rows = self._rows("SELECT value FROM qa_meta WHERE key = %s", (key,))
        return rows[0][0] if rows else None

    def state(self) -> dict[str, Any]:
        """``{"chunks": n, "version": v, "generation": g}`` as this reader sees it (read once)."""
        if self._state is None:
            self._state = self.meta("state") or {"chunks": 0, "version": 0, "generation": ""}
        return self._state

    def __len__(self) -> int:
        return int(self.state()["chunks"])

    def close(self) -> None:
        """Nothing to release: the connection belongs to whoever made this reader."""

    # ------------------------------------------------------------------ documents and chunks

    def documents(self) -> list[DocInfo]:
        rows = self._rows(
            "SELECT d.id, d.title, count(c.id), d.source FROM qa_documents d "
            "LEFT JOIN qa_chunks c ON c.doc_id = d.id GROUP BY d.id ORDER BY d.id"
        )
        return [DocInfo(doc_id, title, int(n), source) for doc_id, title, n, source in rows]

    def recorded(self) -> dict[str, dict[str, str]]:
        """Each document's content hash and source (what a build compares the files with)."""
        rows = self._rows("SELECT id, content_hash, source FROM qa_documents ORDER BY id")
        return {doc_id: {"content_hash": content_hash, "source": source} for doc_id, content_hash, source in rows}

    def get_document(self, doc_id: str) -> Document:
        rows = self._rows(
            "SELECT id, title, text, source, content_hash, pages, sections FROM qa_documents WHERE id = %s", (doc_id,)
        )
        if not rows:
            raise KeyError(f"No document {doc_id!r} in the index.")
        return document_from_row(rows[0])

    def chunks(self, ids: Sequence[int] | Sequence[str] | np.ndarray) -> list[Chunk]:
        """Chunks by int id or by chunk id (``doc#n``), in the given order."""
        keys = [k.item() if isinstance(k, np.generic) else k for k in ids]
        if not keys:
            return []
        by_name = isinstance(keys[0], str)
        column = "c.chunk_id" if by_name else "c.id"
        rows = self._rows(
            f"SELECT {CHUNK_COLUMNS} FROM qa_chunks c JOIN qa_documents d ON d.id = c.doc_id WHERE {column} = ANY(%s)",
            ([str(k) for k in keys] if by_name else [int(k) for k in keys],),
        )
        found = {row[1] if by_name else row[0]: chunk_from_row(row) for row in rows}
        missing = [k for k in keys if k not in found]
        if missing:
            raise KeyError(f"No chunks {missing[:5]} in the index.")
        return [found[k] for k in keys]

    def neighbours(self, chunk: Chunk, n: int = 1) -> list[Chunk]:
        """Up to ``n`` chunks either side of ``chunk`` in its document, in document order."""
        rows = self._rows(
            f"SELECT {CHUNK_COLUMNS} FROM qa_chunks c JOIN qa_documents d ON d.id = c.doc_id "
            "WHERE c.doc_id = %s AND c.ordinal BETWEEN %s AND %s AND c.ordinal <> %s ORDER BY c.ordinal",
            (chunk.doc_id, chunk.ordinal - n, chunk.ordinal + n, chunk.ordinal),
        )
        return [chunk_from_row(r) for r in rows]

    def stored_chunks(self, doc_ids: Sequence[str]) -> list[tuple[int, Chunk]]:
        """``(int id, chunk)`` of every chunk of ``doc_ids``, by id (what a build may reuse vectors of)."""
        rows = self._rows(
            f"SELECT {CHUNK_COLUMNS} FROM qa_chunks c JOIN qa_documents d ON d.id = c.doc_id "
            "WHERE c.doc_id = ANY(%s) ORDER BY c.id",
            (list(doc_ids),),
        )
        return [(int(row[0]), chunk_from_row(row)) for row in rows]

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored normalised vectors of chunk ids, one row each (``KeyError`` for an unknown id)."""
        wanted = to_list(ids)
        rows = self._rows("SELECT id, embedding FROM qa_chunks WHERE id = ANY(%s)", (wanted,))
        found = {int(i): np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, dtype=np.float32) for i, v in rows}
        missing = [i for i in wanted if i not in found]
        if missing:
            raise KeyError(f"No vectors for chunks {missing[:5]} in the index.")
        dim = len(next(iter(found.values()))) if found else 0
        return np.array([found[i] for i in wanted], dtype=np.float32).reshape(len(wanted), dim)

    def chunk_ids(self) -> list[int]:
        return [int(r[0]) for r in self._rows("SELECT id FROM qa_chunks")]

    def chunk_rows(self, ids: Sequence[int] | None = None) -> list[tuple[int, Chunk]]:
        """``(id, chunk)`` of the chunks ``ids`` (all chunks if None), by id."""
        query = f"SELECT {CHUNK_COLUMNS} FROM qa_chunks c JOIN qa_documents d ON d.id = c.doc_id"
        if ids is None:
            rows = self._rows(f"{query} ORDER BY c.id")
        else:
            rows = self._rows(f"{query} WHERE c.id = ANY(%s) ORDER BY c.id", (to_list(ids),))
        return [(int(row[0]), chunk_from_row(row)) for row in rows]

    def max_chunk_id(self) -> int | None:
        rows = self._rows("SELECT max(id) FROM qa_chunks")
        return None if rows[0][0] is None else int(rows[0][0])

    # ------------------------------------------------------------------ search

    def dense_search(self, query_vector: np.ndarray, n: int) -> list[int]:
        """Ids of the ``n`` chunks nearest the normalised ``query_vector``: exact up to ``hnsw_threshold``
        chunks (as the local flat index), by the HNSW index beyond."""
        vector = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        if len(self) > self.hnsw_threshold:
            self.conn.execute(f"SET LOCAL hnsw.ef_search = {max(int(n), self.ef_search)}")
            order = "embedding <#> %s"  # negative inner product, alone: what the HNSW index serves
        else:
            order = "(embedding <#> %s) + 0, id"  # an expression the index cannot serve: an exact scan
        rows = self._rows(f"SELECT id FROM qa_chunks ORDER BY {order} LIMIT %s", (vector, int(n)))
        return [int(r[0]) for r in rows]

    def sparse_search(self, query: str, n: int) -> list[int]:
        """Ids of the ``n`` best Okapi BM25 matches of ``query``, best first (the folder index's ranking)."""
        return [i for i, _ in self.keywords.get(self).search(query, n)]

    def idf(self, word: str) -> float:
        """How rare ``word`` is across the indexed chunks (its rarest token's BM25 idf)."""
        return self.keywords.get(self).idf(word)

    def mentions(self, word: str) -> bool:
        """Whether every token of ``word`` occurs somewhere in the indexed documents."""
        return self.keywords.get(self).has_term(word)
