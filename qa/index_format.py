"""What the reading half (:mod:`qa.snapshot`) and the building half (:mod:`qa.builder`) of the index share.

The names of the files and folders of an index folder, the manifest and its checks, the
errors, and the records both halves hand out. This module imports neither half, so both
can import it; :mod:`qa.index` re-exports the public names.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from qa.embedding import Embedder
from qa.settings import Settings
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


CHUNK_COLUMNS = 'c.id, c.chunk_id, c.doc_id, d.title, c.text, c.start, c."end", c.ordinal, c.section, c.page'
"""The columns :func:`chunk_from_row` reads, from ``chunks c JOIN documents d`` (both backends)."""


def chunk_from_row(row: Sequence[Any]) -> Chunk:
    _, chunk_id, doc_id, title, text, start, end, ordinal, section, page = row
    return Chunk(chunk_id, doc_id, title, text, start, end, ordinal, section, page)


def document_row(doc: Document) -> tuple[Any, ...]:
    """A document as stored: id, title, source, content hash, text, pages and sections as JSON."""
    return (
        doc.id,
        doc.title,
        doc.source,
        doc.content_hash,
        doc.text,
        json.dumps([[p.number, p.start, p.end] for p in doc.pages]),
        json.dumps([[s.heading, s.start, s.end] for s in doc.sections]),
    )


def document_from_row(row: Sequence[Any]) -> Document:
    """The inverse of :func:`document_row`, from ``id, title, text, source, content_hash, pages, sections``."""
    id_, title, text, source, content_hash, pages, sections = row
    return Document(
        id=id_,
        title=title,
        text=text,
        source=source,
        content_hash=content_hash,
        pages=tuple(Page(*p) for p in _json(pages)),
        sections=tuple(Section(*s) for s in _json(sections)),
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value  # PostgreSQL's jsonb arrives parsed


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
    lost: list[tuple[str, str]] = field(default_factory=list)  # (doc id, source) a full rebuild could not re-read

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
        if self.lost:
            gone = ", ".join(f"{doc_id} ({source})" for doc_id, source in self.lost)
            text += f"; NOT RESTORED, their files are gone: {gone}"
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


def expected_header(settings: Settings, embedder: Embedder) -> dict[str, Any]:
    """The manifest keys that must match for an index to serve these settings and this model."""
    return {
        "format_version": FORMAT_VERSION,
        "embedding": {
            "model_id": embedder.model_id,
            "fingerprint": embedder_fingerprint(embedder),
            "dim": int(embedder.dim),
        },
        "chunking": settings.chunking.model_dump(),
    }


def mismatch_reason(manifest: dict[str, Any], expected: dict[str, Any]) -> str | None:
    """Why an index built under ``manifest`` cannot serve ``expected``, or None if it can."""
    if manifest.get("format_version") != expected["format_version"]:
        return f"index format version {manifest.get('format_version')} != {expected['format_version']}"
    built, wanted = manifest.get("embedding", {}), expected["embedding"]
    if built.get("model_id") != wanted["model_id"]:
        return f"embedding model changed ({built.get('model_id')} -> {wanted['model_id']})"
    if built.get("fingerprint") != wanted["fingerprint"]:
        return f"embedding model weights changed ({built.get('model_id')})"
    if built.get("dim") != wanted["dim"]:
        return f"embedding dimension changed ({built.get('dim')} -> {wanted['dim']})"
    if manifest.get("chunking") != expected["chunking"]:
        return f"chunk settings changed ({manifest.get('chunking')} -> {expected['chunking']})"
    return None


def read_manifest(generation: Path) -> dict[str, Any]:
    """The checked ``manifest.json`` of a generation folder; raises :class:`CorruptIndex`."""
    try:
        manifest = json.loads((generation / MANIFEST_FILE).read_text(encoding="utf-8"))
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


# --------------------------------------------------------------------------- the live generation


def current_generation(directory: Path) -> Path:
    """The folder ``current`` points to; raises :class:`IndexNotFound` or :class:`CorruptIndex`."""
    link = directory / CURRENT
    if link.is_symlink() and not link.exists():
        raise CorruptIndex(f"{link} points to a missing folder")
    if not link.exists():
        raise IndexNotFound(f"No index in {directory}: run `qa index` to build it.")
    return link.resolve()


def current_generation_or_none(directory: Path) -> Path | None:
    try:
        return current_generation(directory)
    except QAIndexError:
        return None


def corrupt_index(directory: Path, detail: str) -> CorruptIndex:
    """The error users see for a damaged index folder (with the rebuild hint)."""
    return CorruptIndex(f"The index in {directory} is corrupt ({detail}); {REBUILD_HINT}.")


def read_live_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of the live index in ``directory``, without opening the index (no model needed)."""
    try:
        return read_manifest(current_generation(directory))
    except CorruptIndex as exc:
        raise corrupt_index(directory, str(exc)) from exc
