"""Building the index: the lock, the incremental classification and the generation writer.

Every write takes the folder's lock, reads the live generation, sorts the documents into
added, changed, removed and unchanged, writes a complete new generation into a temp folder
(reusing the chunks and vectors it can) and publishes it by swapping the ``current``
symlink. Reading a generation is :mod:`qa.snapshot`'s job.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np

from qa.bm25 import BM25Index
from qa.chunking import chunk_document, search_text
from qa.embedding import Embedder
from qa.index_format import (
    BM25_FILE,
    CURRENT,
    GEN_PREFIX,
    LINK_PREFIX,
    LOCK_FILE,
    MANIFEST_FILE,
    META_FILE,
    REBUILD_HINT,
    TMP_PREFIX,
    BuildReport,
    CorruptIndex,
    IndexLocked,
    IndexMismatch,
    IndexNotFound,
    QAIndexError,
    corrupt_index,
    current_generation,
    current_generation_or_none,
    document_row,
    expected_header,
    mismatch_reason,
    read_manifest,
)
from qa.settings import Settings
from qa.snapshot import IndexSnapshot
from qa.store import choose_kind, convert_store, create_store
from qa.types import Chunk, Document

UpdateMode = Literal["sync", "add", "remove"]
"""``sync``: match the documents under the paths (a build); ``add``: add or update them; ``remove``: drop ids."""


@dataclass(frozen=True)
class BuildJob:
    """One write to an index folder: where, with which settings and model, and what to do."""

    directory: Path
    settings: Settings
    embedder: Embedder
    mode: UpdateMode
    paths: tuple[Path | str, ...] = ()
    doc_ids_to_remove: tuple[str, ...] = ()
    rebuild: bool = False  # rebuild from ``paths`` alone, whatever the live generation holds
    progress: bool = False  # show an embedding progress bar
    lock_timeout: float = 0.0  # seconds to wait for another writer before raising IndexLocked


class IndexWrites:
    """The writes of an opened index, on either backend: each is a :class:`BuildJob` that ``_run`` carries out."""

    directory: Path
    settings: Settings
    embedder: Embedder

    def add_paths(
        self, paths: Sequence[Path | str], *, progress: bool = False, lock_timeout: float = 60.0
    ) -> BuildReport:
        """Add (or update) the documents found under ``paths``; nothing else is removed."""
        return self._run(self._job("add", paths=tuple(paths), progress=progress, lock_timeout=lock_timeout))

    def remove_documents(self, doc_ids: Sequence[str], *, lock_timeout: float = 60.0) -> BuildReport:
        """Remove documents by id (unknown ids are ignored)."""
        return self._run(self._job("remove", doc_ids_to_remove=tuple(doc_ids), lock_timeout=lock_timeout))

    def _job(self, mode: UpdateMode, **options: Any) -> BuildJob:
        return BuildJob(self.directory, self.settings, self.embedder, mode, **options)

    def _run(self, job: BuildJob) -> BuildReport:
        raise NotImplementedError


def run_build(job: BuildJob) -> BuildReport:
    """Do ``job`` under the folder's lock: read the live generation, then write and publish the next one."""
    started = time.perf_counter()
    job.directory.mkdir(parents=True, exist_ok=True)
    with IndexLock(job.directory, job.lock_timeout):
        _clean_leftovers(job.directory, keep=current_generation_or_none(job.directory))
        live = _load_live_generation(job)
        try:
            if job.mode != "sync" and live.update_error is not None:
                raise live.update_error  # an update in place needs a sound index
            report = _write(job, live)
        finally:
            if live.snapshot is not None:
                live.snapshot.close()
        _clean_leftovers(job.directory, keep=current_generation_or_none(job.directory))
    report.seconds = time.perf_counter() - started
    return report


# --------------------------------------------------------------------------- the lock and the folder


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
    generation = directory / f"{GEN_PREFIX}{time.time_ns()}-{secrets.token_hex(3)}"
    os.rename(tmp, generation)
    link = directory / f"{LINK_PREFIX}{secrets.token_hex(4)}"
    os.symlink(generation.name, link)
    os.replace(link, directory / CURRENT)
    _fsync_path(directory)
    return generation


# --------------------------------------------------------------------------- what there is and what changed


class StoredIndex(Protocol):
    """What a write reads from the live index it updates (a generation here, tables in PostgreSQL)."""

    def __len__(self) -> int: ...

    def get_document(self, doc_id: str) -> Document: ...

    def stored_chunks(self, doc_ids: Sequence[str]) -> list[tuple[int, Chunk]]: ...

    def vectors(self, ids: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class LiveIndex:
    """The live generation as a build finds it."""

    snapshot: StoredIndex | None = None  # loaded if readable and consistent
    documents: dict[str, dict[str, str]] = field(default_factory=dict)  # its manifest: id -> content_hash, source
    rebuild_reason: str | None = None  # why a full rebuild is needed (None: update incrementally)
    update_error: QAIndexError | None = None  # what an in-place update (add/remove) has to report instead
    keep_docs_outside_paths: bool = True  # full rebuild: re-chunk stored documents that lie outside the paths
    recorded: dict[str, dict[str, str]] = field(default_factory=dict)  # a corrupt index's manifest entries

    def content_hashes(self) -> dict[str, str]:
        return {doc_id: entry["content_hash"] for doc_id, entry in self.documents.items()}


def _load_live_generation(job: BuildJob) -> LiveIndex:
    expected = expected_header(job.settings, job.embedder)
    try:
        generation = current_generation(job.directory)
        manifest = read_manifest(generation)
        documents = manifest["documents"]
        snapshot = IndexSnapshot.load(generation, manifest)
    except IndexNotFound:
        return LiveIndex(rebuild_reason="no index yet")
    except CorruptIndex as exc:
        why = f"the existing index is corrupt ({exc})"
        error = corrupt_index(job.directory, str(exc))
        recorded = _recorded_documents(job.directory)  # the manifest may have survived what broke the rest
        return LiveIndex(None, {}, why, error, keep_docs_outside_paths=False, recorded=recorded)
    if job.rebuild:
        return LiveIndex(snapshot, documents, "rebuild requested", keep_docs_outside_paths=False)
    if mismatch := mismatch_reason(manifest, expected):
        message = f"The index in {job.directory} was built with other settings: {mismatch}; {REBUILD_HINT}."
        return LiveIndex(snapshot, documents, mismatch, IndexMismatch(message))
    return LiveIndex(snapshot, documents)


def _recorded_documents(directory: Path) -> dict[str, dict[str, str]]:
    """The live generation's manifest entries (id -> content_hash, source), if its manifest is readable."""
    try:
        documents: dict[str, dict[str, str]] = read_manifest(current_generation(directory))["documents"]
        return documents
    except QAIndexError:
        return {}


def _sources_to_restore(job: BuildJob, live: LiveIndex) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """On a full rebuild, the recorded documents that lie outside the job's paths: the (file, root) of
    those that still exist, the root chosen so the document keeps its id, and the (id, source) of
    those that are gone (to report)."""
    if live.keep_docs_outside_paths or job.mode != "sync":
        return [], []
    roots = [Path(p).resolve() for p in job.paths]
    restore: list[tuple[Path, Path]] = []
    lost: list[tuple[str, str]] = []
    for doc_id, entry in sorted((live.documents or live.recorded).items()):
        source = entry.get("source", "")
        if not source or _is_under(source, roots):
            continue
        if Path(source).is_file():
            depth = len(Path(doc_id).parts)
            path = Path(source)
            same_tail = path.parts[-depth:] == Path(doc_id).parts
            restore.append((path, path.parents[depth - 1] if same_tail else path.parent))
        else:
            lost.append((doc_id, source))
    return restore, lost


class _Scan(NamedTuple):
    """The documents found under the paths of a job."""

    loaded: dict[str, Document]  # new or changed files, parsed
    unchanged_ids: set[str]  # files whose bytes still hash to the stored content hash (not parsed)
    skipped: list[tuple[str, str]]  # (path, reason) of the files that could not be loaded


def _scan(
    paths: Sequence[Path | str],
    stored_hashes: dict[str, str],
    staying: dict[str, str] | None = None,
    files: Sequence[tuple[Path, Path]] = (),
    sources: dict[str, str] | None = None,
) -> _Scan:
    """Load the documents under ``paths``, except files whose raw bytes still hash to ``stored_hashes[doc_id]``.

    Hashing first keeps a no-change rebuild from re-parsing every file. A file with the same bytes as
    one met earlier in the scan, or as a document in ``staying`` (content hash -> id, documents that
    stay whatever the scan finds), is skipped with a reason: identical files under two names would
    otherwise answer every question with the same passage twice. ``files``: (file, root) pairs to
    read besides ``paths`` (a full rebuild's documents from elsewhere). ``sources``: each stored
    document's source file; a different file that would take a stored document's id gets an id of its
    own (see :func:`distinct_id`) instead of replacing it.
    """
    from qa.ingest import IngestError, discover, doc_id_for, load_document

    scan = _Scan({}, set(), [])
    first_path: dict[str, Path] = {}
    same_bytes: dict[str, str] = dict(staying or {})  # content hash -> the document id or path that has it
    for path, root in [*discover([Path(p) for p in paths]), *files]:
        doc_id = distinct_id(doc_id_for(path, root), path, sources or {}, taken=first_path)
        if doc_id in first_path:
            scan.skipped.append((str(path), f"{path}: same document id {doc_id!r} as {first_path[doc_id]}"))
            continue
        first_path[doc_id] = path
        if doc_id in stored_hashes:
            with contextlib.suppress(OSError):
                if hashlib.sha256(path.read_bytes()).hexdigest() == stored_hashes[doc_id]:
                    scan.unchanged_ids.add(doc_id)
                    same_bytes.setdefault(stored_hashes[doc_id], str(path))
                    continue
        try:
            doc = replace(load_document(path, root), id=doc_id)
        except IngestError as exc:
            scan.skipped.append((str(path), str(exc)))
            continue
        except Exception as exc:  # a parser bug on one odd file must not stop the others
            scan.skipped.append((str(path), f"{path}: unexpected {type(exc).__name__}: {exc}"))
            continue
        if (twin := same_bytes.get(doc.content_hash)) is not None and twin != doc.id:
            scan.skipped.append((str(path), f"{path}: the same file as {twin}, which is indexed"))
            continue
        same_bytes[doc.content_hash] = str(path)
        scan.loaded[doc.id] = doc
    return scan


def distinct_id(doc_id: str, path: Path, sources: dict[str, str], *, taken: Mapping[str, Path]) -> str:
    """``doc_id``, unless a stored document has it and comes from another file that still exists: then the id
    with as many of ``path``'s parent folders in front as make it distinct (``b/alpha.txt``, ``x/b/alpha.txt``).

    The same goes for an id an earlier file of this scan took (``taken``). A document is one file: indexing
    ``a/alpha.txt`` and ``b/alpha.txt`` keeps both, and re-indexing ``a/alpha.txt`` from another working
    directory is still the same document."""
    folders = path.resolve().parent.parts
    candidates = [doc_id, *("/".join([*folders[-depth:], doc_id]) for depth in range(1, 8))]
    for candidate in candidates:
        stored = sources.get(candidate)
        other = bool(stored) and _other_file(stored or "", path)
        if not other and candidate not in taken:
            return candidate
    return candidates[-1]


def _other_file(source: str, path: Path) -> bool:
    """Whether ``source`` names an existing file that is not ``path``."""
    stored = Path(source)
    return stored.is_file() and stored.resolve() != path.resolve()


def _is_under(source: str, roots: Sequence[Path]) -> bool:
    path = Path(source).resolve()
    return any(path == root or path.is_relative_to(root) for root in roots)


def _classify(job: BuildJob, live: LiveIndex, scan: _Scan) -> BuildReport:
    """Sort document ids into added, changed, removed and unchanged."""
    stored = live.content_hashes()
    loaded = scan.loaded
    if job.mode == "sync":  # gone from under ``paths`` (or, on a fresh rebuild, not under them at all)
        roots = [Path(p).resolve() for p in job.paths]
        removed = sorted(
            i
            for i in stored.keys() - loaded.keys() - scan.unchanged_ids
            if not live.keep_docs_outside_paths or _is_under(live.documents[i].get("source", ""), roots)
        )
    elif job.mode == "remove":
        removed = sorted(set(job.doc_ids_to_remove) & stored.keys())
    else:
        removed = []
    changed = sorted(i for i in loaded.keys() & stored.keys() if loaded[i].content_hash != stored[i])
    return BuildReport(
        added=sorted(loaded.keys() - stored.keys()),
        changed=changed,
        removed=removed,
        unchanged=sorted(stored.keys() - set(removed) - set(changed)),
        full_rebuild_reason=live.rebuild_reason,
    )


# --------------------------------------------------------------------------- the next generation


@dataclass(frozen=True)
class NextGeneration:
    """What the generation being written holds: ``base`` minus ``docs_to_drop``, plus ``docs``."""

    base: StoredIndex | None  # the live index an update starts from (None: start empty)
    docs_to_drop: list[str]  # ids of the base's documents that are removed or replaced
    docs: list[Document]  # the documents to add, with their chunks and the chunks' vectors (same rows)
    chunks: list[Chunk]
    vectors: np.ndarray


def _write(job: BuildJob, live: LiveIndex) -> BuildReport:
    """Classify the documents; write and publish a new generation unless nothing changed."""
    report, next_generation = plan_write(job, live)
    if next_generation is None:
        return report
    report.chunks_total = _write_and_publish(job, next_generation)
    return report


def plan_write(job: BuildJob, live: LiveIndex) -> tuple[BuildReport, NextGeneration | None]:
    """What a write does, whatever the backend: the report, and the documents, chunks and vectors
    to store (None when nothing changed). Added and changed documents are chunked and embedded."""
    incremental = live.rebuild_reason is None
    stored = live.content_hashes() if incremental else {}
    staying = {h: doc_id for doc_id, h in stored.items()} if job.mode == "add" else {}  # "add" removes nothing
    restore, lost = _sources_to_restore(job, live)
    sources = {doc_id: entry.get("source", "") for doc_id, entry in live.documents.items()} if incremental else {}
    scan = _scan(job.paths, stored, staying, restore, sources)
    report = _classify(job, live, scan)
    report.skipped, report.lost = scan.skipped, lost
    base = live.snapshot if incremental else None
    if base is not None and not (report.added or report.changed or report.removed):
        report.chunks_total = len(base)
        return report, None

    docs = _docs_to_chunk(live, base, report, scan.loaded)
    chunks = [c for doc in docs for c in _chunk_document(doc, job.settings)]
    vectors, n_embedded = _vectors(job, chunks, base, report.changed)
    docs_to_drop = sorted(set(report.removed) | set(report.changed)) if base is not None else []
    report.chunks_added = len(chunks)
    report.chunks_embedded = n_embedded
    return report, NextGeneration(base, docs_to_drop, docs, chunks, vectors)


def _docs_to_chunk(
    live: LiveIndex, base: StoredIndex | None, report: BuildReport, loaded: dict[str, Document]
) -> list[Document]:
    """An update chunks the added and changed documents only; a full rebuild chunks all, in id order,
    taking the kept documents that were not loaded from the paths from the live generation."""
    if base is not None:
        return [loaded[i] for i in report.added + report.changed]
    kept_from_index = [i for i in report.unchanged if i not in loaded]
    if kept_from_index and live.snapshot is None:
        raise AssertionError("documents to keep without a readable index")
    stored_docs = {i: live.snapshot.get_document(i) for i in kept_from_index} if live.snapshot else {}
    return [{**loaded, **stored_docs}[i] for i in sorted(loaded.keys() | stored_docs.keys())]


def _chunk_document(doc: Document, settings: Settings) -> list[Chunk]:

    chunks = chunk_document(
        doc, target_words=settings.chunking.target_words, overlap_words=settings.chunking.overlap_words
    )
    fixed = []
    for c in chunks:  # fill section/page from the document if the chunker left them out
        section = c.section if c.section is not None else doc.section_at(c.start)
        page = c.page if c.page is not None else doc.page_at(c.start)
        fixed.append(Chunk(c.id, c.doc_id, c.title, c.text, c.start, c.end, c.ordinal, section, page))
    return fixed


def _vectors(
    job: BuildJob, chunks: list[Chunk], base: StoredIndex | None, changed_doc_ids: list[str]
) -> tuple[np.ndarray, int]:
    """Vectors for ``chunks``: reused where a changed document kept a chunk's exact text, else embedded."""
    reusable_id: dict[str, int] = {}  # chunk text -> int id of a stored chunk with that text
    if base is not None and changed_doc_ids:
        for int_id, stored in base.stored_chunks(changed_doc_ids):
            reusable_id.setdefault(stored.text, int_id)
    keys = [c.text for c in chunks]
    embed_rows = [row for row, key in enumerate(keys) if key not in reusable_id]
    reuse_rows = [row for row, key in enumerate(keys) if key in reusable_id]
    vectors = np.zeros((len(chunks), job.embedder.dim), dtype=np.float32)
    texts = [keys[r] for r in embed_rows]
    vectors[embed_rows] = _embed(job.embedder, texts, job.settings.embedding.batch_size, job.progress)
    if base is not None and reuse_rows:
        vectors[reuse_rows] = base.vectors(np.array([reusable_id[keys[r]] for r in reuse_rows]))
    return vectors, len(embed_rows)


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


def _write_and_publish(job: BuildJob, next_generation: NextGeneration) -> int:
    """Write ``next_generation`` into a temp folder and publish it; returns its chunk count."""
    tmp = job.directory / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        n_chunks = _write_generation(job, tmp, next_generation)
        _publish(job.directory, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return n_chunks


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_generation(job: BuildJob, tmp: Path, next_generation: NextGeneration) -> int:
    """Write a complete generation into ``tmp``; returns its chunk count."""
    base, chunks = next_generation.base, next_generation.chunks
    if base is not None and not isinstance(base, IndexSnapshot):
        raise TypeError(f"a folder generation is written over a folder generation, not {type(base).__name__}")
    first_id = int(base.store.ids().max()) + 1 if base is not None and len(base) else 0
    ids = np.arange(first_id, first_id + len(chunks), dtype=np.int64)
    n_chunks, documents, dropped_ids = _write_meta(tmp / META_FILE, base, next_generation, ids)

    store = base.store if base is not None else create_store("flat", job.embedder.dim)
    store.delete(dropped_ids)
    store.add(ids, next_generation.vectors)
    store = convert_store(store, choose_kind(len(store), job.settings.embedding.hnsw_threshold))
    if len(store) != n_chunks:
        raise AssertionError(f"vector store has {len(store)} vectors for {n_chunks} chunks")
    store.save(tmp)

    bm25 = base.bm25 if base is not None else BM25Index()  # only the new chunks are tokenised
    contextual = job.settings.chunking.contextual_keywords
    texts = [search_text(c, contextual=contextual) for c in chunks]
    bm25.updated(remove=dropped_ids, ids=ids, texts=texts).save(tmp / BM25_FILE)

    manifest = {
        **expected_header(job.settings, job.embedder),
        "faiss_kind": store.kind,
        "chunk_count": n_chunks,
        "documents": documents,
        "created": base.manifest.get("created", _now()) if base is not None else _now(),
        "updated": _now(),
    }
    (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return n_chunks


# --------------------------------------------------------------------------- meta.sqlite

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


def _write_meta(
    path: Path, base: IndexSnapshot | None, next_generation: NextGeneration, ids: np.ndarray
) -> tuple[int, dict[str, dict[str, str]], np.ndarray]:
    """Write the new ``meta.sqlite`` (a modified copy of the base's for an update).

    Returns the number of chunks, the manifest's document entries, and the ids of the
    chunks dropped from the base.
    """
    docs_to_drop = next_generation.docs_to_drop
    if base is not None:
        shutil.copyfile(base.path / META_FILE, path)
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA synchronous=OFF")  # the folder is fsynced before it is published
        if base is None:
            db.executescript(_SCHEMA)
        dropped: list[int] = []
        with db:
            if docs_to_drop:
                marks = ",".join("?" * len(docs_to_drop))
                dropped = [r[0] for r in db.execute(f"SELECT id FROM chunks WHERE doc_id IN ({marks})", docs_to_drop)]
                db.execute(f"DELETE FROM chunks WHERE doc_id IN ({marks})", docs_to_drop)
                db.execute(f"DELETE FROM documents WHERE id IN ({marks})", docs_to_drop)
            db.executemany(
                "INSERT INTO documents VALUES (?,?,?,?,?,?,?)", [document_row(d) for d in next_generation.docs]
            )
            db.executemany(
                "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (int(i), c.id, c.doc_id, c.ordinal, c.start, c.end, c.section, c.page, c.text)
                    for i, c in zip(ids, next_generation.chunks, strict=True)
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
