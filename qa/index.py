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
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from qa.bm25 import BM25Index
from qa.embedding import Embedder
from qa.settings import Settings
from qa.store import StoreError, VectorStore, choose_kind, convert_store, create_store, load_store
from qa.types import Chunk, Document, Page, Section

FORMAT_VERSION = 2
CURRENT = "current"
LOCK_FILE = ".lock"
TMP_PREFIX = ".tmp-"
GEN_PREFIX = "gen-"
LINK_PREFIX = ".current-"
MANIFEST_FILE = "manifest.json"
META_FILE = "meta.sqlite"
BM25_FILE = "bm25.npz"
REBUILD_HINT = "run `qa index --rebuild` to rebuild it"


class QAIndexError(RuntimeError):
    """Base class of index errors; messages say how to fix the problem."""


class IndexNotFound(QAIndexError):
    """No index has been built in the folder yet."""


class IndexMismatch(QAIndexError):
    """The index was built with other settings (embedding model, chunking, format)."""


class CorruptIndex(QAIndexError):
    """A file of the index is missing, truncated or inconsistent with the others."""


class IndexLocked(QAIndexError):
    """Another process is writing the index."""


class DocInfo(NamedTuple):
    doc_id: str
    title: str
    n_chunks: int
    source: str


@dataclass
class BuildReport:
    """What a build or update did; :meth:`summary` is the CLI's one-liner."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    chunks_total: int = 0
    chunks_added: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    full_rebuild_reason: str | None = None

    def summary(self) -> str:
        text = (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged; {self.chunks_total} chunks ({self.chunks_embedded} embedded) "
            f"in {self.seconds:.1f} s"
        )
        if self.skipped:
            text += f"; {len(self.skipped)} skipped"
        if self.full_rebuild_reason:
            text += f"; full rebuild: {self.full_rebuild_reason}"
        return text


# --------------------------------------------------------------------------- manifest


@functools.cache
def _st_weights_fingerprint() -> str:
    from qa.embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder.weights_fingerprint()


def embedder_fingerprint(embedder: Embedder) -> str:
    """The weights hash for the real model (computed once per process); the model id for fakes."""
    from qa.embedding import SentenceTransformerEmbedder

    if isinstance(embedder, SentenceTransformerEmbedder):
        return _st_weights_fingerprint()
    return embedder.model_id


def _expected_header(settings: Settings, embedder: Embedder) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "embedding": {
            "model_id": embedder.model_id,
            "fingerprint": embedder_fingerprint(embedder),
            "dim": int(embedder.dim),
        },
        "chunking": settings.chunking.model_dump(),
    }


def _mismatch(manifest: dict[str, Any], expected: dict[str, Any]) -> str | None:
    """Why an index built under ``manifest`` cannot serve ``expected``, or None if it can."""
    if manifest.get("format_version") != expected["format_version"]:
        return f"index format version {manifest.get('format_version')} != {expected['format_version']}"
    old, new = manifest.get("embedding", {}), expected["embedding"]
    if old.get("model_id") != new["model_id"]:
        return f"embedding model changed ({old.get('model_id')} -> {new['model_id']})"
    if old.get("fingerprint") != new["fingerprint"]:
        return f"embedding model weights changed ({old.get('model_id')})"
    if old.get("dim") != new["dim"]:
        return f"embedding dimension changed ({old.get('dim')} -> {new['dim']})"
    if manifest.get("chunking") != expected["chunking"]:
        return f"chunk settings changed ({manifest.get('chunking')} -> {expected['chunking']})"
    return None


def _read_manifest(gen: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((gen / MANIFEST_FILE).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
        for key in ("format_version", "embedding", "chunking", "documents", "chunk_count", "faiss_kind"):
            if key not in manifest:
                raise ValueError(f"missing key {key!r}")
        if not all(isinstance(d, dict) and "content_hash" in d for d in manifest["documents"].values()):
            raise ValueError("bad 'documents' entry")
    except (OSError, ValueError, AttributeError) as exc:
        raise CorruptIndex(f"unreadable {MANIFEST_FILE}: {exc}") from exc
    return manifest


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- SQLite

_SCHEMA = """
CREATE TABLE documents (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, source TEXT NOT NULL, content_hash TEXT NOT NULL,
    text TEXT NOT NULL, pages TEXT NOT NULL, sections TEXT NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, doc_id TEXT NOT NULL REFERENCES documents(id),
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, section TEXT, page INTEGER,
    text TEXT NOT NULL
);
CREATE INDEX chunks_by_doc ON chunks(doc_id, ordinal);
"""

_CHUNK_COLUMNS = 'c.id, c.chunk_id, c.doc_id, d.title, c.text, c.start, c."end", c.ordinal, c.section, c.page'


def _chunk_from_row(row: Sequence[Any]) -> Chunk:
    _, chunk_id, doc_id, title, text, start, end, ordinal, section, page = row
    return Chunk(chunk_id, doc_id, title, text, start, end, ordinal, section, page)


def _connect_readonly(path: Path) -> sqlite3.Connection:
    # immutable=1: a published generation never changes, so SQLite may skip locking.
    uri = f"file:{urllib.request.pathname2url(str(path))}?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


# --------------------------------------------------------------------------- one generation


class IndexSnapshot:
    """One published, immutable generation of the index, loaded for reading."""

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
        manifest = manifest if manifest is not None else _read_manifest(path)
        try:
            store = load_store(str(manifest["faiss_kind"]), path)
        except StoreError as exc:
            raise CorruptIndex(str(exc)) from exc
        try:
            bm25 = BM25Index.load(path / BM25_FILE)
        except Exception as exc:  # zipfile, numpy and OS errors all mean the same here
            raise CorruptIndex(f"unreadable {BM25_FILE}: {exc}") from exc
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
        problem = None
        if len(chunk_ids) != int(manifest["chunk_count"]):
            problem = f"{len(chunk_ids)} chunks in {META_FILE} but {manifest['chunk_count']} in the manifest"
        elif not np.array_equal(np.sort(store.ids()), chunk_ids):
            problem = f"FAISS holds {len(store)} vectors but {META_FILE} {len(chunk_ids)} chunks (ids differ)"
        elif not np.array_equal(np.sort(bm25.ids), chunk_ids):
            problem = f"the BM25 index holds {len(bm25)} chunks but {META_FILE} {len(chunk_ids)}"
        elif doc_ids != set(manifest["documents"]):
            problem = f"the documents in {META_FILE} differ from the manifest"
        if problem:
            db.close()
            raise CorruptIndex(problem)
        return cls(path, manifest, store, bm25, db)

    def close(self) -> None:
        with self._db_lock:
            self._db.close()

    def __len__(self) -> int:
        return len(self.store)

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
        id_, title, text, source, content_hash, pages, sections = rows[0]
        return Document(
            id=id_,
            title=title,
            text=text,
            source=source,
            content_hash=content_hash,
            pages=tuple(Page(*p) for p in json.loads(pages)),
            sections=tuple(Section(*s) for s in json.loads(sections)),
        )

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
                f"SELECT {_CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.doc_id "
                f"WHERE {column} IN ({marks})",
                batch,
            )
            for row in rows:
                found[row[1] if column == "c.chunk_id" else row[0]] = _chunk_from_row(row)
        missing = [k for k in keys if k not in found]
        if missing:
            raise KeyError(f"No chunks {missing[:5]} in the index.")
        return [found[k] for k in keys]

    def doc_chunks(self, doc_id: str) -> list[Chunk]:
        rows = self._query(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.doc_id "
            "WHERE c.doc_id = ? ORDER BY c.ordinal",
            (doc_id,),
        )
        return [_chunk_from_row(r) for r in rows]

    def neighbours(self, chunk: Chunk, n: int = 1) -> list[Chunk]:
        """Up to ``n`` chunks either side of ``chunk`` in its document, in document order."""
        rows = self._query(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.doc_id "
            "WHERE c.doc_id = ? AND c.ordinal BETWEEN ? AND ? AND c.ordinal != ? ORDER BY c.ordinal",
            (chunk.doc_id, chunk.ordinal - n, chunk.ordinal + n, chunk.ordinal),
        )
        return [_chunk_from_row(r) for r in rows]

    def _id_text_rows(self, where: str = "", params: Sequence[Any] = ()) -> list[tuple[int, str]]:
        return self._query(f"SELECT id, text FROM chunks {where} ORDER BY id", params)


# --------------------------------------------------------------------------- the index


def _current_generation(directory: Path) -> Path:
    link = directory / CURRENT
    if link.is_symlink() and not link.exists():
        raise CorruptIndex(f"{link} points to a missing folder")
    if not link.exists():
        raise IndexNotFound(f"No index in {directory}: run `qa index` to build it.")
    return link.resolve()


def _corrupt(directory: Path, detail: str) -> CorruptIndex:
    return CorruptIndex(f"The index in {directory} is corrupt ({detail}); {REBUILD_HINT}.")


def _open_snapshot(directory: Path, expected: dict[str, Any]) -> IndexSnapshot:
    """Open the live generation; retries if a writer swapped it while we were reading."""
    gen: Path | None = None
    for attempt in range(3):
        try:
            gen = _current_generation(directory)
            manifest = _read_manifest(gen)
            if why := _mismatch(manifest, expected):
                raise IndexMismatch(f"The index in {directory} does not match the settings: {why}; {REBUILD_HINT}.")
            return IndexSnapshot.load(gen, manifest)
        except CorruptIndex as exc:
            if attempt < 2 and gen is not None and _live_generation(directory) not in (None, gen):
                continue
            raise _corrupt(directory, str(exc)) from exc
    raise AssertionError("unreachable")


class Index:
    """An opened index folder. Reads go to the live generation; writes publish a new one."""

    def __init__(self, directory: Path, settings: Settings, embedder: Embedder, snapshot: IndexSnapshot) -> None:
        self.directory = directory
        self.settings = settings
        self.embedder = embedder
        self._snapshot = snapshot

    @classmethod
    def open(cls, directory: Path | str, settings: Settings, embedder: Embedder) -> Index:
        """Open and verify; raises :class:`IndexNotFound`, :class:`IndexMismatch` or :class:`CorruptIndex`."""
        directory = Path(directory)
        snapshot = _open_snapshot(directory, _expected_header(settings, embedder))
        return cls(directory, settings, embedder, snapshot)

    def snapshot(self) -> IndexSnapshot:
        """The generation currently served; use one snapshot for all reads of one query."""
        return self._snapshot

    @property
    def manifest(self) -> dict[str, Any]:
        return self._snapshot.manifest

    def __len__(self) -> int:
        return len(self._snapshot)

    def documents(self) -> list[DocInfo]:
        return self._snapshot.documents()

    def idf(self, word: str) -> float:
        """How rare ``word`` is across the indexed chunks (BM25 inverse document frequency)."""
        return self._snapshot.bm25.idf(word)

    def mentions(self, word: str) -> bool:
        """Whether ``word`` occurs anywhere in the indexed documents (by the keyword index)."""
        return self._snapshot.bm25.has_term(word)

    def get_document(self, doc_id: str) -> Document:
        return self._snapshot.get_document(doc_id)

    def chunks(self, ids: Sequence[int] | Sequence[str] | np.ndarray) -> list[Chunk]:
        return self._snapshot.chunks(ids)

    def neighbours(self, chunk: Chunk, n: int = 1) -> list[Chunk]:
        return self._snapshot.neighbours(chunk, n)

    def reload(self) -> None:
        """Switch to the live generation (after this or another process wrote the index)."""
        self._snapshot = _open_snapshot(self.directory, _expected_header(self.settings, self.embedder))

    def add_paths(
        self, paths: Sequence[Path | str], *, progress: bool = False, lock_timeout: float = 60.0
    ) -> BuildReport:
        """Add (or update) the documents found under ``paths``; nothing else is removed."""
        report = _update(
            self.directory,
            self.settings,
            self.embedder,
            paths=paths,
            mode="add",
            progress=progress,
            lock_timeout=lock_timeout,
        )
        self.reload()
        return report

    def remove_documents(self, doc_ids: Sequence[str], *, lock_timeout: float = 60.0) -> BuildReport:
        """Remove documents by id (unknown ids are ignored)."""
        report = _update(
            self.directory,
            self.settings,
            self.embedder,
            remove=doc_ids,
            mode="remove",
            progress=False,
            lock_timeout=lock_timeout,
        )
        self.reload()
        return report

    def close(self) -> None:
        self._snapshot.close()


# --------------------------------------------------------------------------- writing


class IndexLock:
    """An exclusive ``flock`` on ``index/.lock``; waits up to ``timeout`` seconds, then refuses."""

    def __init__(self, directory: Path, timeout: float = 0.0) -> None:
        self.path = directory / LOCK_FILE
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> IndexLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    os.close(fd)
                    raise IndexLocked(
                        f"another `qa index` is running (pid {holder}) on {self.path.parent}; "
                        "wait for it to finish and try again."
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _clean_leftovers(directory: Path, keep: Path | None) -> None:
    """Remove dead temp folders, stale generations and temp links (only names we create)."""
    for entry in directory.iterdir():
        name = entry.name
        if name.startswith(LINK_PREFIX) and entry.is_symlink():
            entry.unlink(missing_ok=True)
        elif (
            (name.startswith(TMP_PREFIX) or name.startswith(GEN_PREFIX))
            and entry.is_dir()
            and not entry.is_symlink()
            and (keep is None or entry.resolve() != keep)
        ):
            shutil.rmtree(entry, ignore_errors=True)


def _publish(directory: Path, tmp: Path) -> Path:
    """Make the complete folder ``tmp`` the live generation, atomically."""
    for entry in tmp.iterdir():
        _fsync_path(entry)
    _fsync_path(tmp)
    gen = directory / f"{GEN_PREFIX}{time.time_ns()}-{secrets.token_hex(3)}"
    os.rename(tmp, gen)
    link = directory / f"{LINK_PREFIX}{secrets.token_hex(4)}"
    os.symlink(gen.name, link)
    os.replace(link, directory / CURRENT)
    _fsync_path(directory)
    return gen


def _embed(embedder: Embedder, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
    """Embed in slices (with a tqdm bar) and check shape and normalisation."""
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    from tqdm import tqdm

    step = max(batch_size * 8, 64)
    parts: list[np.ndarray] = []
    with tqdm(total=len(texts), unit="chunk", desc="Embedding", disable=not progress) as bar:
        for i in range(0, len(texts), step):
            batch = texts[i : i + step]
            parts.append(np.asarray(embedder.embed(batch), dtype=np.float32))
            bar.update(len(batch))
    vectors = np.concatenate(parts)
    if vectors.shape != (len(texts), embedder.dim):
        expected = (len(texts), embedder.dim)
        raise ValueError(f"The embedder returned shape {vectors.shape}, expected {expected}.")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def _doc_row(doc: Document) -> tuple[Any, ...]:
    return (
        doc.id,
        doc.title,
        doc.source,
        doc.content_hash,
        doc.text,
        json.dumps([[p.number, p.start, p.end] for p in doc.pages]),
        json.dumps([[s.heading, s.start, s.end] for s in doc.sections]),
    )


def _chunk_document(doc: Document, settings: Settings) -> list[Chunk]:
    from qa.chunking import chunk_document

    chunks = chunk_document(
        doc, target_words=settings.chunking.target_words, overlap_words=settings.chunking.overlap_words
    )
    fixed = []
    for c in chunks:  # fill section/page from the document if the chunker left them out
        section = c.section if c.section is not None else doc.section_at(c.start)
        page = c.page if c.page is not None else doc.page_at(c.start)
        fixed.append(Chunk(c.id, c.doc_id, c.title, c.text, c.start, c.end, c.ordinal, section, page))
    return fixed


@dataclass
class _Previous:
    """The live generation as a build finds it."""

    snapshot: IndexSnapshot | None = None  # loaded if readable and consistent
    documents: dict[str, dict[str, str]] = field(default_factory=dict)  # old manifest: id -> hash, source
    reason: str | None = None  # why a full rebuild is needed (None: update incrementally)
    error: QAIndexError | None = None  # what an in-place update (add/remove) has to report instead
    keep_others: bool = True  # full rebuild: re-chunk stored documents that lie outside the given paths


def _load_previous(directory: Path, expected: dict[str, Any], rebuild: bool) -> _Previous:
    try:
        gen = _current_generation(directory)
        manifest = _read_manifest(gen)
        documents = manifest["documents"]
        snapshot = IndexSnapshot.load(gen, manifest)
    except IndexNotFound:
        return _Previous(reason="no index yet")
    except CorruptIndex as exc:
        why = f"the existing index is corrupt ({exc})"
        return _Previous(reason=why, error=_corrupt(directory, str(exc)), keep_others=False)
    if rebuild:
        return _Previous(snapshot, documents, "rebuild requested", keep_others=False)
    if mismatch := _mismatch(manifest, expected):
        error = IndexMismatch(f"The index in {directory} was built with other settings: {mismatch}; {REBUILD_HINT}.")
        return _Previous(snapshot, documents, mismatch, error)
    return _Previous(snapshot, documents)


def _live_generation(directory: Path) -> Path | None:
    try:
        return _current_generation(directory)
    except QAIndexError:
        return None


def build_index(
    paths: Sequence[Path | str],
    settings: Settings,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    progress: bool = True,
    lock_timeout: float = 0.0,
) -> BuildReport:
    """Bring the index in ``settings.paths.index`` up to date with the documents under ``paths``.

    Added and changed documents are chunked and embedded; stored documents that lay under
    ``paths`` and are gone are removed; documents added from elsewhere (UI uploads) stay.
    A different embedding model or chunking or an unreadable index triggers a full rebuild
    (``report.full_rebuild_reason`` says why); ``rebuild=True`` rebuilds from ``paths`` alone.
    Raises :class:`IndexLocked` if another build holds the lock for ``lock_timeout`` seconds.
    """
    return _update(
        Path(settings.paths.index),
        settings,
        embedder,
        paths=paths,
        mode="sync",
        rebuild=rebuild,
        progress=progress,
        lock_timeout=lock_timeout,
    )


def _update(
    directory: Path,
    settings: Settings,
    embedder: Embedder,
    *,
    paths: Sequence[Path | str] = (),
    remove: Sequence[str] = (),
    mode: Literal["sync", "add", "remove"],
    rebuild: bool = False,
    progress: bool = False,
    lock_timeout: float = 0.0,
) -> BuildReport:
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    with IndexLock(directory, lock_timeout):
        _clean_leftovers(directory, keep=_live_generation(directory))
        previous = _load_previous(directory, _expected_header(settings, embedder), rebuild)
        try:
            if mode != "sync" and previous.error is not None:
                raise previous.error  # an update in place needs a sound index
            report = _write(
                directory,
                settings,
                embedder,
                previous,
                paths=paths,
                remove=remove,
                mode=mode,
                progress=progress,
            )
        finally:
            if previous.snapshot is not None:
                previous.snapshot.close()
        _clean_leftovers(directory, keep=_live_generation(directory))
    report.seconds = time.perf_counter() - started
    return report


def _scan(
    paths: Sequence[Path | str], known: dict[str, str]
) -> tuple[dict[str, Document], set[str], list[tuple[str, str]]]:
    """Load the documents under ``paths``, except files whose raw bytes still hash to ``known[doc_id]``.

    Returns the loaded documents, the ids of the unchanged files, and the skipped files
    with reasons. Hashing first keeps a no-change rebuild from re-parsing every file.
    """
    from qa.ingest import IngestError, discover, doc_id_for, load_document

    docs: dict[str, Document] = {}
    unchanged: set[str] = set()
    skipped: list[tuple[str, str]] = []
    seen: dict[str, Path] = {}
    for path, root in discover([Path(p) for p in paths]):
        doc_id = doc_id_for(path, root)
        if doc_id in seen:
            skipped.append((str(path), f"{path}: same document id {doc_id!r} as {seen[doc_id]}"))
            continue
        seen[doc_id] = path
        if doc_id in known:
            with contextlib.suppress(OSError):
                if hashlib.sha256(path.read_bytes()).hexdigest() == known[doc_id]:
                    unchanged.add(doc_id)
                    continue
        try:
            doc = load_document(path, root)
        except IngestError as exc:
            skipped.append((str(path), str(exc)))
            continue
        except Exception as exc:  # a parser bug on one odd file must not stop the others
            skipped.append((str(path), f"{path}: unexpected {type(exc).__name__}: {exc}"))
            continue
        docs[doc.id] = doc
    return docs, unchanged, skipped


def _is_under(source: str, roots: Sequence[Path]) -> bool:
    path = Path(source).resolve()
    return any(path == root or path.is_relative_to(root) for root in roots)


def _write(
    directory: Path,
    settings: Settings,
    embedder: Embedder,
    previous: _Previous,
    *,
    paths: Sequence[Path | str],
    remove: Sequence[str],
    mode: str,
    progress: bool,
) -> BuildReport:
    incremental = previous.reason is None
    old = {doc_id: entry["content_hash"] for doc_id, entry in previous.documents.items()}
    docs, same, skipped = _scan(paths, old if incremental else {})
    report = _classify(previous, old, docs, same, paths=paths, remove=remove, mode=mode)
    report.skipped = skipped
    prev = previous.snapshot if incremental else None  # the generation to update
    if prev is not None and not (report.added or report.changed or report.removed):
        report.chunks_total = len(prev)
        return report

    if prev is not None:  # an update chunks the added and changed documents only
        to_chunk = [docs[i] for i in report.added + report.changed]
    else:  # a full rebuild chunks all, taking kept documents from elsewhere from the old index
        others = [i for i in report.unchanged if i not in docs]
        if others and previous.snapshot is None:
            raise AssertionError("documents to keep without a readable index")
        carried = {i: previous.snapshot.get_document(i) for i in others} if previous.snapshot else {}
        to_chunk = [{**docs, **carried}[i] for i in sorted(docs.keys() | carried.keys())]
    chunks = [c for doc in to_chunk for c in _chunk_document(doc, settings)]
    vectors, n_embedded = _vectors(chunks, prev, report.changed, embedder, settings, progress)

    tmp = directory / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        dropped_docs = sorted(set(report.removed) | set(report.changed)) if prev is not None else []
        report.chunks_total = _write_generation(tmp, settings, embedder, prev, to_chunk, chunks, vectors, dropped_docs)
        _publish(directory, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.chunks_added = len(chunks)
    report.chunks_embedded = n_embedded
    return report


def _classify(
    previous: _Previous,
    old: dict[str, str],
    docs: dict[str, Document],
    same: set[str],
    *,
    paths: Sequence[Path | str],
    remove: Sequence[str],
    mode: str,
) -> BuildReport:
    """Sort document ids into added, changed, removed and unchanged."""
    if mode == "sync":  # gone from under ``paths`` (or, on a fresh rebuild, not under them at all)
        roots = [Path(p).resolve() for p in paths]
        removed = sorted(
            i
            for i in old.keys() - docs.keys() - same
            if not previous.keep_others or _is_under(previous.documents[i].get("source", ""), roots)
        )
    elif mode == "remove":
        removed = sorted(set(remove) & old.keys())
    else:
        removed = []
    changed = sorted(i for i in docs.keys() & old.keys() if docs[i].content_hash != old[i])
    return BuildReport(
        added=sorted(docs.keys() - old.keys()),
        changed=changed,
        removed=removed,
        unchanged=sorted(old.keys() - set(removed) - set(changed)),
        full_rebuild_reason=previous.reason,
    )


def _vectors(
    chunks: list[Chunk],
    prev: IndexSnapshot | None,
    changed: list[str],
    embedder: Embedder,
    settings: Settings,
    progress: bool,
) -> tuple[np.ndarray, int]:
    """Vectors for ``chunks``: reused where a changed document kept a chunk's exact text, else embedded."""
    reusable: dict[str, int] = {}
    if prev is not None and changed:
        marks = ",".join("?" * len(changed))
        for int_id, text in prev._id_text_rows(f"WHERE doc_id IN ({marks})", changed):
            reusable.setdefault(text, int_id)
    embed_rows = [row for row, c in enumerate(chunks) if c.text not in reusable]
    reuse_rows = [row for row, c in enumerate(chunks) if c.text in reusable]
    vectors = np.zeros((len(chunks), embedder.dim), dtype=np.float32)
    texts = [chunks[r].text for r in embed_rows]
    vectors[embed_rows] = _embed(embedder, texts, settings.embedding.batch_size, progress)
    if prev is not None and reuse_rows:
        vectors[reuse_rows] = prev.store.get(np.array([reusable[chunks[r].text] for r in reuse_rows]))
    return vectors, len(embed_rows)


def _write_generation(
    tmp: Path,
    settings: Settings,
    embedder: Embedder,
    prev: IndexSnapshot | None,
    docs: list[Document],
    chunks: list[Chunk],
    vectors: np.ndarray,
    dropped_docs: list[str],
) -> int:
    """Write a complete generation into ``tmp``: ``prev`` minus ``dropped_docs`` plus ``docs``."""
    first_id = int(prev.store.ids().max()) + 1 if prev is not None and len(prev) else 0
    ids = np.arange(first_id, first_id + len(chunks), dtype=np.int64)
    n_chunks, documents, dropped_ids = _write_meta(tmp / META_FILE, prev, docs, chunks, ids, dropped_docs)

    store = prev.store if prev is not None else create_store("flat", embedder.dim)
    store.delete(dropped_ids)
    store.add(ids, vectors)
    store = convert_store(store, choose_kind(len(store), settings.embedding.hnsw_threshold))
    if len(store) != n_chunks:
        raise AssertionError(f"vector store has {len(store)} vectors for {n_chunks} chunks")
    store.save(tmp)

    bm25 = prev.bm25 if prev is not None else BM25Index()  # only the new chunks are tokenised
    bm25.updated(remove=dropped_ids, ids=ids, texts=[c.text for c in chunks]).save(tmp / BM25_FILE)

    manifest = {
        **_expected_header(settings, embedder),
        "faiss_kind": store.kind,
        "chunk_count": n_chunks,
        "documents": documents,
        "created": prev.manifest.get("created", _now()) if prev is not None else _now(),
        "updated": _now(),
    }
    (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return n_chunks


def _write_meta(
    path: Path,
    prev: IndexSnapshot | None,
    docs: list[Document],
    chunks: list[Chunk],
    ids: np.ndarray,
    dropped_docs: list[str],
) -> tuple[int, dict[str, dict[str, str]], np.ndarray]:
    """Write the new ``meta.sqlite`` (a modified copy of the old one for an update).

    Returns the number of chunks, the manifest's document entries, and the ids of the
    chunks dropped from the old index.
    """
    if prev is not None:
        shutil.copyfile(prev.path / META_FILE, path)
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA synchronous=OFF")  # the folder is fsynced before it is published
        if prev is None:
            db.executescript(_SCHEMA)
        dropped: list[int] = []
        with db:
            if dropped_docs:
                marks = ",".join("?" * len(dropped_docs))
                dropped = [r[0] for r in db.execute(f"SELECT id FROM chunks WHERE doc_id IN ({marks})", dropped_docs)]
                db.execute(f"DELETE FROM chunks WHERE doc_id IN ({marks})", dropped_docs)
                db.execute(f"DELETE FROM documents WHERE id IN ({marks})", dropped_docs)
            db.executemany("INSERT INTO documents VALUES (?,?,?,?,?,?,?)", [_doc_row(d) for d in docs])
            db.executemany(
                "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (int(i), c.id, c.doc_id, c.ordinal, c.start, c.end, c.section, c.page, c.text)
                    for i, c in zip(ids, chunks, strict=True)
                ],
            )
        n_chunks = int(db.execute("SELECT count(*) FROM chunks").fetchone()[0])
        documents = {
            doc_id: {"content_hash": content_hash, "source": source}
            for doc_id, content_hash, source in db.execute("SELECT id, content_hash, source FROM documents ORDER BY id")
        }
    finally:
        db.close()
    return n_chunks, documents, np.array(dropped, dtype=np.int64)
