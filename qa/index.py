"""The persisted search index: documents and chunks in SQLite, vectors in FAISS, keywords in BM25.

Layout of the index folder (``settings.paths.index``)::

    index/
      .lock                 flock'ed by writers (holds the writer's pid)
      current -> gen-...    symlink to the live generation, swapped atomically
      gen-<ns>-<hex>/       manifest.json, meta.sqlite, faiss.index, vectors.npy, ids.npy, bm25.npz
      .tmp-<pid>-<hex>/     a generation being built (removed by the next build if a build died)
      uploads/, .gitkeep    not ours: never touched

A generation is never modified once published. Every write builds a complete new
generation in a temp folder, fsyncs it, renames it to ``gen-*`` and then replaces the
``current`` symlink with ``os.replace`` - so a crash at any point leaves the previous index
usable. Builds are incremental: unchanged documents keep their chunks and vectors, and
chunks of changed documents whose text did not change keep their vectors too.

This module is the public face of the index; the work is done in three modules:

* :mod:`qa.snapshot` reads: :class:`IndexSnapshot`, one loaded generation, and its queries;
* :mod:`qa.builder` writes: :func:`build_index`, the lock, incremental classification, the writer;
* :mod:`qa.index_format` holds what both share: file names, the manifest, errors, records.

:class:`IndexReader` and :class:`SnapshotReader` are what the rest of ``qa`` reads from an
index, :class:`WritableIndex` what it writes. :func:`open_index`, :func:`build_index` and
:func:`drop_index` choose the backend from ``settings.index.backend``: this folder
(:class:`Index`) or a PostgreSQL database (:mod:`qa.pg_index`, :mod:`qa.pg_builder`).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.builder import BuildJob, IndexLock, IndexWrites, run_build
from qa.embedding import Embedder
from qa.index_format import (
    BuildReport,
    CorruptIndex,
    DocInfo,
    IndexLocked,
    IndexMismatch,
    IndexNotFound,
    QAIndexError,
    embedder_fingerprint,
    expected_header,
    read_live_manifest,
)
from qa.settings import Settings
from qa.snapshot import IndexSnapshot, open_live_snapshot
from qa.types import Chunk, Document

__all__ = [
    "BuildReport",
    "CorruptIndex",
    "DocInfo",
    "Index",
    "IndexLock",
    "IndexLocked",
    "IndexMismatch",
    "IndexNotFound",
    "IndexReader",
    "IndexSnapshot",
    "QAIndexError",
    "SnapshotReader",
    "WritableIndex",
    "build_index",
    "drop_index",
    "embedder_fingerprint",
    "index_exists",
    "index_location",
    "open_index",
    "read_live_manifest",
]


class IndexReader(Protocol):
    """What the retriever, the pipeline and the UI read from an index.

    Each call reads the generation the reader holds at that moment, which a write or a
    reload may replace between two calls; :meth:`snapshot` pins one for all the reads of
    one question.
    """

    def __len__(self) -> int: ...

    def snapshot(self) -> SnapshotReader: ...

    def documents(self) -> list[DocInfo]: ...

    def get_document(self, doc_id: str) -> Document:
        """The stored document (``KeyError`` for an unknown id)."""
        ...

    def chunks(self, ids: Sequence[int] | Sequence[str] | np.ndarray) -> list[Chunk]:
        """Chunks by int id or by chunk id (``doc#n``), in the given order (``KeyError`` if any is missing)."""
        ...

    def neighbours(self, chunk: Chunk, n: int = 1) -> list[Chunk]: ...

    def idf(self, word: str) -> float: ...

    def mentions(self, word: str) -> bool: ...


class SnapshotReader(IndexReader, Protocol):
    """One consistent view of an index, with the two candidate searches hybrid retrieval fuses.

    Used in a ``with`` block: a database snapshot holds a connection until the block ends."""

    def __enter__(self) -> SnapshotReader: ...

    def __exit__(self, *exc: object) -> None: ...

    def dense_search(self, query_vector: np.ndarray, n: int) -> list[int]:
        """Ids of the (up to) ``n`` chunks nearest the normalised ``query_vector``, nearest first."""
        ...

    def sparse_search(self, query: str, n: int) -> list[int]:
        """Ids of the (up to) ``n`` best keyword matches of ``query``, best first."""
        ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored normalised vectors of chunk ids, one row each (for the cosine scores)."""
        ...


class WritableIndex(IndexReader, Protocol):
    """An opened index of either backend: the reads, the writes the UI makes, and its lifecycle."""

    directory: Path  # the index folder (for the PostgreSQL backend, where uploaded files are kept)

    def reload(self) -> None: ...

    def add_paths(
        self, paths: Sequence[Path | str], *, progress: bool = False, lock_timeout: float = 60.0
    ) -> BuildReport: ...

    def remove_documents(self, doc_ids: Sequence[str], *, lock_timeout: float = 60.0) -> BuildReport: ...

    def close(self) -> None: ...


class Index(IndexWrites):
    """An opened index folder: an :class:`IndexReader` over the generation it holds, and the writes.

    Reads go to the generation loaded at open or at the last write or :meth:`reload`;
    writes publish a new generation and then reload.
    """

    def __init__(self, directory: Path, settings: Settings, embedder: Embedder, snapshot: IndexSnapshot) -> None:
        self.directory = directory
        self.settings = settings
        self.embedder = embedder
        self._snapshot = snapshot

    @classmethod
    def open(cls, directory: Path | str, settings: Settings, embedder: Embedder) -> Index:
        """Open and verify; raises :class:`IndexNotFound`, :class:`IndexMismatch` or :class:`CorruptIndex`."""
        directory = Path(directory)
        snapshot = open_live_snapshot(directory, expected_header(settings, embedder))
        return cls(directory, settings, embedder, snapshot)

    def snapshot(self) -> IndexSnapshot:
        """The generation currently served; use one snapshot for all reads of one query."""
        return self._snapshot

    @property
    def manifest(self) -> dict[str, Any]:
        return self._snapshot.manifest

    # One read each from the generation of the moment (see IndexReader).

    def __len__(self) -> int:
        return len(self._snapshot)

    def documents(self) -> list[DocInfo]:
        return self._snapshot.documents()

    def get_document(self, doc_id: str) -> Document:
        return self._snapshot.get_document(doc_id)

    def chunks(self, ids: Sequence[int] | Sequence[str] | np.ndarray) -> list[Chunk]:
        return self._snapshot.chunks(ids)

    def neighbours(self, chunk: Chunk, n: int = 1) -> list[Chunk]:
        """Up to ``n`` chunks either side of ``chunk`` in its document, in document order."""
        return self._snapshot.neighbours(chunk, n)

    def idf(self, word: str) -> float:
        """How rare ``word`` is across the indexed chunks (BM25 inverse document frequency)."""
        return self._snapshot.idf(word)

    def mentions(self, word: str) -> bool:
        """Whether ``word`` occurs anywhere in the indexed documents (by the keyword index)."""
        return self._snapshot.mentions(word)

    # Lifecycle and writes.

    def reload(self) -> None:
        """Switch to the live generation (after this or another process wrote the index)."""
        self._snapshot = open_live_snapshot(self.directory, expected_header(self.settings, self.embedder))

    def _run(self, job: BuildJob) -> BuildReport:
        """Update the folder in place (under its lock), then serve the generation just published."""
        report = run_build(job)
        self.reload()
        return report

    def close(self) -> None:
        self._snapshot.close()


def open_index(settings: Settings, embedder: Embedder) -> WritableIndex:
    """The index ``settings`` point at, opened: the folder (``index.backend = "local"``) or PostgreSQL.

    Raises :class:`IndexNotFound` when nothing has been built there yet."""
    if settings.index.backend == "postgres":
        from qa.pg_index import PgIndex

        return PgIndex.open(settings, embedder)
    return Index.open(settings.paths.index, settings, embedder)


def build_index(
    paths: Sequence[Path | str],
    settings: Settings,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    progress: bool = True,
    lock_timeout: float = 0.0,
) -> BuildReport:
    """Bring the index ``settings`` point at (the folder, or PostgreSQL) up to date with the documents under ``paths``.

    Added and changed documents are chunked and embedded; stored documents that lay under
    ``paths`` and are gone are removed; documents added from elsewhere (UI uploads) stay.
    A different embedding model or chunking or an unreadable index triggers a full rebuild
    (``report.full_rebuild_reason`` says why); ``rebuild=True`` rebuilds from ``paths`` alone.
    Raises :class:`IndexLocked` if another build holds the lock for ``lock_timeout`` seconds.
    """
    job = BuildJob(
        Path(settings.paths.index),
        settings,
        embedder,
        "sync",
        paths=tuple(paths),
        rebuild=rebuild,
        progress=progress,
        lock_timeout=lock_timeout,
    )
    if settings.index.backend == "postgres":
        from qa.pg_builder import run_pg_build

        return run_pg_build(job)
    return run_build(job)


def index_exists(settings: Settings) -> bool:
    """Whether there is anything to open where ``settings`` point (cheap for the folder backend)."""
    if settings.index.backend == "postgres":
        from qa.pg_store import connect, has_index

        conn = connect(settings.index)
        try:
            return has_index(conn, settings.index.schema_name)
        finally:
            conn.close()
    return Path(settings.paths.index).exists()


def index_location(settings: Settings) -> str:
    """Where the index is, for messages: ``index/`` or ``PostgreSQL schema 'qa' at postgresql://…``."""
    if settings.index.backend == "postgres":
        from qa.pg_store import redact

        return f"PostgreSQL schema {settings.index.schema_name!r} at {redact(settings.index.url)}"
    return f"{settings.paths.index}/"


def drop_index(settings: Settings) -> None:
    """Delete the index ``settings`` point at (the folder, or the PostgreSQL schema)."""
    if settings.index.backend == "postgres":
        from qa.pg_index import drop_pg_index

        drop_pg_index(settings)
        return
    shutil.rmtree(settings.paths.index, ignore_errors=True)
