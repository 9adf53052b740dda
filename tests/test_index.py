"""Index: build, open, incremental updates, settings changes, corruption, locking, crash safety."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import qa.ingest
from qa.embedding import HashingEmbedder
from qa.index import (
    BuildReport,
    CorruptIndex,
    Index,
    IndexLock,
    IndexLocked,
    IndexMismatch,
    IndexNotFound,
    QAIndexError,
    build_index,
)
from qa.settings import Settings

DOCS = {
    "alpha.txt": "Alpha Report\n\nThe alpha reactor produces clean energy from fusion. "
    "Engineers monitor plasma temperature every hour. The reactor shut down twice in spring.",
    "beta.txt": "Beta Notes\n\nBeta blockers lower heart rate and blood pressure. "
    "Doctors prescribe them after heart attacks. Side effects include fatigue.",
    "gamma.md": "# Gamma Guide\n\nGamma rays are the most energetic photons. "
    "Lead shielding absorbs gamma radiation. Astronomers observe gamma ray bursts from distant galaxies.",
}


class CountingEmbedder:
    """HashingEmbedder that records every text it embeds (and can fail on demand)."""

    def __init__(self, dim: int = 32, fail: bool = False, model_id: str | None = None) -> None:
        self.inner = HashingEmbedder(dim)
        self.dim = dim
        self.model_id = model_id or self.inner.model_id
        self.fail = fail
        self.texts: list[str] = []

    def warm_up(self) -> None:
        return None

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if self.fail:
            raise RuntimeError("embedder exploded")
        self.texts.extend(texts)
        return self.inner.embed(texts)


def make_settings(index_dir: Path, **sections: dict[str, object]) -> Settings:
    return Settings.model_validate({"paths": {"index": str(index_dir)}, **sections})


def write_docs(folder: Path, docs: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return write_docs(tmp_path / "docs", DOCS)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "index", chunking={"target_words": 12, "overlap_words": 0})


def live(settings: Settings) -> Path:
    return (Path(settings.paths.index) / "current").resolve()


def test_build_then_open(docs: Path, settings: Settings) -> None:
    index_dir = Path(settings.paths.index)
    index_dir.mkdir()
    (index_dir / ".gitkeep").touch()
    write_docs(index_dir / "uploads", {"keep.txt": "not indexed by this build"})
    embedder = CountingEmbedder()

    report = build_index([docs], settings, embedder, progress=False)

    assert report.added == ["alpha.txt", "beta.txt", "gamma.md"]
    assert report.full_rebuild_reason == "no index yet"
    assert report.chunks_total == report.chunks_embedded == len(embedder.texts) > 3
    assert report.summary().startswith(f"3 added, 0 changed, 0 removed, 0 unchanged; {report.chunks_total} chunks")
    assert (index_dir / ".gitkeep").exists() and (index_dir / "uploads" / "keep.txt").exists()
    assert {p.name for p in live(settings).iterdir()} == {
        "manifest.json", "meta.sqlite", "faiss.index", "vectors.npy", "ids.npy", "bm25.npz",
    }  # fmt: skip

    index = Index.open(index_dir, settings, embedder)
    assert len(index) == report.chunks_total
    assert index.manifest["faiss_kind"] == "flat"
    assert index.manifest["embedding"] == {"model_id": "hashing-32", "fingerprint": "hashing-32", "dim": 32}
    assert index.manifest["chunking"] == {"target_words": 12, "overlap_words": 0, "contextual_keywords": False}
    infos = index.documents()
    assert [(d.doc_id, d.title) for d in infos] == [
        ("alpha.txt", "Alpha Report"), ("beta.txt", "Beta Notes"), ("gamma.md", "Gamma Guide"),
    ]  # fmt: skip
    assert sum(d.n_chunks for d in infos) == len(index)
    doc = index.get_document("beta.txt")
    assert "Beta blockers" in doc.text and doc.source.endswith("beta.txt")
    chunks = index.chunks(["alpha.txt#0", "alpha.txt#1"])
    assert [c.ordinal for c in chunks] == [0, 1] and chunks[0].title == "Alpha Report"
    for c in chunks:
        assert index.get_document(c.doc_id).text[c.start : c.end] == c.text
    assert index.chunks([0])[0] == chunks[0]
    assert [c.id for c in index.neighbours(chunks[1], 1)] == ["alpha.txt#0", "alpha.txt#2"]
    with pytest.raises(KeyError):
        index.get_document("nope.txt")


def test_open_without_index_says_how_to_build(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(IndexNotFound, match="qa index"):
        Index.open(tmp_path / "index", settings, HashingEmbedder(32))


def test_no_change_rebuild_writes_nothing(docs: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    before = live(settings)
    embedder = CountingEmbedder()
    parsed: list[Path] = []
    real_load = qa.ingest.load_document
    monkeypatch.setattr(qa.ingest, "load_document", lambda path, root: parsed.append(path) or real_load(path, root))
    report = build_index([docs], settings, embedder, progress=False)
    assert parsed == []  # unchanged files are recognised by their hash, not re-parsed
    assert embedder.texts == [] and report.chunks_embedded == 0
    assert report.unchanged == ["alpha.txt", "beta.txt", "gamma.md"] and report.full_rebuild_reason is None
    assert live(settings) == before


def test_incremental_add_change_delete(tmp_path: Path, docs: Path, settings: Settings) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    old = Index.open(settings.paths.index, settings, HashingEmbedder(32))
    beta_ids = [c.id for c in old.snapshot().doc_chunks("beta.txt")]
    gamma_before = old.snapshot().doc_chunks("gamma.md")
    gamma_int_ids = [
        old.snapshot()._query("SELECT id FROM chunks WHERE chunk_id = ?", (c.id,))[0][0] for c in gamma_before
    ]

    (docs / "alpha.txt").write_text(DOCS["alpha.txt"] + " A new sentence about tritium fuel pellets.")
    (docs / "beta.txt").unlink()
    write_docs(docs, {"delta.txt": "Delta Memo\n\nRiver deltas form where rivers meet the sea."})
    embedder = CountingEmbedder()
    report = build_index([docs], settings, embedder, progress=False)

    assert (report.added, report.changed, report.removed, report.unchanged) == (
        ["delta.txt"], ["alpha.txt"], ["beta.txt"], ["gamma.md"],
    )  # fmt: skip
    assert report.full_rebuild_reason is None
    # Only new text was embedded: the delta chunks and the alpha chunk(s) whose text changed.
    assert embedder.texts and all("River" in t or "tritium" in t for t in embedder.texts)
    assert report.chunks_embedded == len(embedder.texts) < report.chunks_added

    index = Index.open(settings.paths.index, settings, HashingEmbedder(32))
    assert [d.doc_id for d in index.documents()] == ["alpha.txt", "delta.txt", "gamma.md"]
    with pytest.raises(KeyError):
        index.chunks(beta_ids)
    # Unchanged chunks keep their ids and vectors.
    assert index.chunks(gamma_int_ids) == gamma_before
    np.testing.assert_allclose(
        index.snapshot().store.get(np.array(gamma_int_ids)), old.snapshot().store.get(np.array(gamma_int_ids))
    )
    assert len(list(Path(settings.paths.index).glob("gen-*"))) == 1  # the old generation is gone


def test_documents_from_other_roots_are_kept_until_rebuild(tmp_path: Path, docs: Path, settings: Settings) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    uploads = write_docs(Path(settings.paths.index) / "uploads", {"upload.txt": "Uploaded Memo\n\nKiwi fruit."})
    index = Index.open(settings.paths.index, settings, HashingEmbedder(32))
    report = index.add_paths([uploads / "upload.txt"])
    assert report.added == ["upload.txt"] and report.removed == []
    assert "upload.txt" in [d.doc_id for d in index.documents()]  # the open index reloaded itself

    (docs / "gamma.md").unlink()
    report = build_index([docs], settings, CountingEmbedder(), progress=False)
    assert report.removed == ["gamma.md"] and "upload.txt" in report.unchanged

    # A settings change rebuilds everything and re-chunks the upload from its stored text.
    wider = make_settings(settings.paths.index, chunking={"target_words": 40, "overlap_words": 0})
    report = build_index([docs], wider, CountingEmbedder(), progress=False)
    assert report.full_rebuild_reason and "chunk settings" in report.full_rebuild_reason
    assert "upload.txt" in report.unchanged and report.removed == []
    assert "Kiwi" in Index.open(wider.paths.index, wider, HashingEmbedder(32)).chunks(["upload.txt#0"])[0].text

    # A rebuild re-reads every recorded source, and names loudly the ones whose files are gone.
    report = build_index([docs], wider, CountingEmbedder(), rebuild=True, progress=False)
    assert report.full_rebuild_reason == "rebuild requested" and report.removed == [] and report.lost == []
    assert "upload.txt" in report.unchanged
    (uploads / "upload.txt").unlink()
    report = build_index([docs], wider, CountingEmbedder(), rebuild=True, progress=False)
    assert report.removed == ["upload.txt"] and report.lost == [("upload.txt", str(uploads / "upload.txt"))]
    assert f"NOT RESTORED, their files are gone: upload.txt ({uploads / 'upload.txt'})" in report.summary()


def test_a_rebuild_after_corruption_restores_documents_from_other_folders(
    tmp_path: Path, docs: Path, settings: Settings
) -> None:
    elsewhere = write_docs(tmp_path / "elsewhere" / "sub", {"memo.txt": "Memo\n\nKiwi fruit is green."}).parent
    build_index([docs], settings, CountingEmbedder(), progress=False)
    index = Index.open(settings.paths.index, settings, HashingEmbedder(32))
    index.add_paths([elsewhere])
    assert "sub/memo.txt" in [d.doc_id for d in index.documents()]
    for path in Path(settings.paths.index).rglob("faiss.index"):
        path.write_bytes(b"garbage")
    report = build_index([docs], settings, CountingEmbedder(), rebuild=True, progress=False)
    assert report.full_rebuild_reason and "corrupt" in report.full_rebuild_reason
    assert "sub/memo.txt" in report.added and report.lost == []  # the same id, read again from its file
    reopened = Index.open(settings.paths.index, settings, HashingEmbedder(32))
    assert "sub/memo.txt" in [d.doc_id for d in reopened.documents()]


def test_remove_documents(docs: Path, settings: Settings) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    index = Index.open(settings.paths.index, settings, HashingEmbedder(32))
    report = index.remove_documents(["beta.txt", "unknown.txt"])
    assert report.removed == ["beta.txt"] and report.chunks_embedded == 0
    assert [d.doc_id for d in index.documents()] == ["alpha.txt", "gamma.md"]
    assert len(index) == len(index.snapshot().bm25) == index.manifest["chunk_count"]


@pytest.mark.parametrize(
    ("target_words", "model_id", "reason"),
    [
        (30, None, "chunk settings changed"),
        (12, "other-model", "embedding model changed (hashing-32 -> other-model)"),
    ],
)
def test_settings_change_forces_full_rebuild(
    tmp_path: Path, docs: Path, settings: Settings, target_words: int, model_id: str | None, reason: str
) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    new_settings = make_settings(tmp_path / "index", chunking={"target_words": target_words, "overlap_words": 0})
    embedder = CountingEmbedder(model_id=model_id)

    with pytest.raises(IndexMismatch, match="qa index --rebuild"):
        Index.open(settings.paths.index, new_settings, embedder)
    report = build_index([docs], new_settings, embedder, progress=False)
    assert report.full_rebuild_reason is not None and reason in report.full_rebuild_reason
    assert report.unchanged == ["alpha.txt", "beta.txt", "gamma.md"]
    assert report.chunks_embedded == report.chunks_total == len(embedder.texts)
    assert Index.open(settings.paths.index, new_settings, embedder).manifest["chunking"]["target_words"] == (
        target_words
    )


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _drop_a_chunk_row(path: Path) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute("DELETE FROM chunks WHERE id = (SELECT max(id) FROM chunks)")
    db.close()


@pytest.mark.parametrize(
    ("damage", "detail"),
    [
        (lambda g: (g / "faiss.index").write_bytes(b"garbage"), "vector store"),
        (lambda g: _truncate(g / "faiss.index"), "vector store"),
        (lambda g: (g / "faiss.index").unlink(), "vector store"),
        (lambda g: _truncate(g / "meta.sqlite"), "meta.sqlite"),
        (lambda g: (g / "manifest.json").write_text("{not json"), "manifest.json"),
        (lambda g: _drop_a_chunk_row(g / "meta.sqlite"), "chunks"),
        (lambda g: _truncate(g / "bm25.npz"), "bm25.npz"),
    ],
    ids=[
        "faiss-garbage",
        "faiss-truncated",
        "faiss-missing",
        "sqlite-truncated",
        "bad-manifest",
        "count-mismatch",
        "bm25-truncated",
    ],
)
def test_corruption_is_detected_and_rebuilt(docs: Path, settings: Settings, damage, detail: str) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    damage(live(settings))

    with pytest.raises(CorruptIndex, match="qa index --rebuild") as info:
        Index.open(settings.paths.index, settings, HashingEmbedder(32))
    assert detail in str(info.value)
    assert isinstance(info.value, QAIndexError)

    report = build_index([docs], settings, CountingEmbedder(), progress=False)
    assert report.full_rebuild_reason is not None and "corrupt" in report.full_rebuild_reason
    index = Index.open(settings.paths.index, settings, HashingEmbedder(32))
    assert len(index.documents()) == 3


def test_update_in_place_refuses_a_corrupt_index(docs: Path, settings: Settings) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    index = Index.open(settings.paths.index, settings, HashingEmbedder(32))
    (live(settings) / "manifest.json").write_text("[]")
    with pytest.raises(CorruptIndex, match="qa index --rebuild"):
        index.remove_documents(["beta.txt"])


def test_lock_refuses_a_concurrent_build(docs: Path, settings: Settings) -> None:
    with IndexLock(Path(settings.paths.index)), pytest.raises(IndexLocked) as info:
        build_index([docs], settings, CountingEmbedder(), progress=False)
    assert f"another `qa index` is running (pid {os.getpid()})" in str(info.value)
    build_index([docs], settings, CountingEmbedder(), progress=False)  # the lock was released


def test_lock_serialises_with_a_timeout(docs: Path, settings: Settings) -> None:
    lock = IndexLock(Path(settings.paths.index)).__enter__()
    threading.Timer(0.3, lock.__exit__, args=(None, None, None)).start()
    started = time.monotonic()
    report = build_index([docs], settings, CountingEmbedder(), progress=False, lock_timeout=10)
    assert time.monotonic() - started >= 0.25 and report.chunks_total > 0


def test_failed_build_leaves_the_previous_index(docs: Path, settings: Settings) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    before = live(settings)
    (docs / "alpha.txt").write_text("Alpha Report\n\nCompletely new content about solar panels.")
    with pytest.raises(RuntimeError, match="exploded"):
        build_index([docs], settings, CountingEmbedder(fail=True), progress=False)
    assert live(settings) == before
    index = Index.open(settings.paths.index, settings, HashingEmbedder(32))
    assert "fusion" in index.get_document("alpha.txt").text
    assert not list(Path(settings.paths.index).glob(".tmp-*"))


def test_leftovers_of_a_killed_build_are_cleaned(docs: Path, settings: Settings) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    index_dir = Path(settings.paths.index)
    (index_dir / ".tmp-99999-dead").mkdir()
    (index_dir / ".tmp-99999-dead" / "faiss.index").write_bytes(b"partial")
    (index_dir / "gen-1-unpublished").mkdir()
    (index_dir / "notes.txt").write_text("someone else's file")
    Index.open(index_dir, settings, HashingEmbedder(32))  # readers ignore them
    (docs / "beta.txt").unlink()
    build_index([docs], settings, CountingEmbedder(), progress=False)
    names = {p.name for p in index_dir.iterdir()}
    assert ".tmp-99999-dead" not in names and "gen-1-unpublished" not in names
    assert "notes.txt" in names


SLOW_BUILD = """
import sys, time
from pathlib import Path
from qa.embedding import HashingEmbedder
from qa.index import build_index
from qa.settings import Settings

class Slow(HashingEmbedder):
    def embed(self, texts, *, progress=False):
        print("embedding", flush=True)
        time.sleep(60)
        return super().embed(texts)

build_index([Path(sys.argv[2])], Settings.model_validate_json(sys.argv[1]), Slow(32), progress=False)
"""


def start_slow_build(settings: Settings, docs: Path) -> subprocess.Popen[str]:
    """A build of ``docs`` with ``settings`` in another process, which prints "embedding" and stalls there."""
    root = Path(__file__).resolve().parents[1]
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SLOW_BUILD), settings.model_dump_json(), str(docs)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )


def test_sigkill_mid_build_leaves_previous_index_and_frees_the_lock(docs: Path, settings: Settings) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    before = live(settings)
    (docs / "alpha.txt").write_text("Alpha Report\n\nNew text that the killed build never finishes.")
    proc = start_slow_build(settings, docs)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "embedding"
        with pytest.raises(IndexLocked):
            build_index([docs], settings, CountingEmbedder(), progress=False)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert live(settings) == before
    assert "fusion" in Index.open(settings.paths.index, settings, HashingEmbedder(32)).get_document("alpha.txt").text
    report = build_index([docs], settings, CountingEmbedder(), progress=False)
    assert report.changed == ["alpha.txt"]


def test_hnsw_past_the_threshold_and_back(docs: Path, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "index", chunking={"target_words": 12, "overlap_words": 0}, embedding={"hnsw_threshold": 5}
    )
    build_index([docs], settings, CountingEmbedder(), progress=False)
    index = Index.open(settings.paths.index, settings, HashingEmbedder(32))
    assert index.manifest["faiss_kind"] == "hnsw" and index.snapshot().store.kind == "hnsw"
    report = index.remove_documents(["alpha.txt"])  # an HNSW deletion: rebuilt from stored vectors
    assert report.chunks_embedded == 0
    assert index.manifest["faiss_kind"] == ("hnsw" if len(index) > 5 else "flat")
    index.remove_documents(["beta.txt"])
    assert len(index) <= 5 and index.manifest["faiss_kind"] == "flat"


def test_skipped_files_and_empty_index(tmp_path: Path, settings: Settings) -> None:
    folder = write_docs(tmp_path / "odd", {"empty.txt": "   ", "data.xls": "a,b"})
    report = build_index([folder], settings, CountingEmbedder(), progress=False)
    assert report.chunks_total == 0 and len(report.skipped) == 2
    assert all(isinstance(path, str) and reason for path, reason in report.skipped)
    index = Index.open(settings.paths.index, settings, HashingEmbedder(32))
    assert len(index) == 0 and index.documents() == []


def test_report_summary() -> None:
    report = BuildReport(
        added=["a", "b", "c"],
        removed=["d"],
        unchanged=list("efghi"),
        chunks_total=120,
        chunks_embedded=40,
        seconds=4.21,
    )
    assert report.summary() == "3 added, 0 changed, 1 removed, 5 unchanged; 120 chunks (40 embedded) in 4.2 s"
    report.full_rebuild_reason = "rebuild requested"
    assert report.summary().endswith("; full rebuild: rebuild requested")


def test_two_files_with_one_name_are_two_documents(tmp_path: Path, settings: Settings) -> None:
    first = write_docs(tmp_path / "one", {"same.txt": "First Copy\n\nApples are red."})
    second = write_docs(tmp_path / "two", {"same.txt": "Second Copy\n\nBananas are yellow."})
    report = build_index([first, second], settings, CountingEmbedder(), progress=False)
    assert report.added == ["same.txt", "two/same.txt"] and report.skipped == []


def test_a_file_from_another_folder_does_not_replace_a_document_of_the_same_name(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write_docs(tmp_path / "one", {"alpha.txt": "First Alpha\n\nApples are red."})
    second = write_docs(tmp_path / "two", {"alpha.txt": "Second Alpha\n\nBananas are yellow."})
    build_index([first], settings, CountingEmbedder(), progress=False)
    report = build_index([second], settings, CountingEmbedder(), progress=False)
    assert (report.added, report.changed, report.unchanged) == (["two/alpha.txt"], [], ["alpha.txt"])
    index = Index.open(settings.paths.index, settings, HashingEmbedder(32))
    assert index.get_document("alpha.txt").source == str((first / "alpha.txt").resolve())
    assert "Bananas" in index.get_document("two/alpha.txt").text
    report = build_index([second], settings, CountingEmbedder(), progress=False)  # the same file again
    assert report.unchanged == ["alpha.txt", "two/alpha.txt"] and not report.added
    (second / "alpha.txt").write_text("Second Alpha\n\nBananas are green.", encoding="utf-8")
    assert build_index([second], settings, CountingEmbedder(), progress=False).changed == ["two/alpha.txt"]
    monkeypatch.chdir(tmp_path / "two")  # another working directory, a relative path: still the same file
    (first / "alpha.txt").unlink()
    report = build_index([Path("../one")], settings, CountingEmbedder(), progress=False)
    assert report.removed == ["alpha.txt"]


def test_identical_files_under_two_names_are_indexed_once(tmp_path: Path, settings: Settings) -> None:
    text = "Gamma Report\n\nGamma is a drug for CLL. It was approved in 2024."
    folder = write_docs(tmp_path / "docs", {"a.txt": text, "b.txt": text, "c.txt": "Delta is a dog."})
    report = build_index([folder], settings, CountingEmbedder(), progress=False)
    assert report.added == ["a.txt", "c.txt"]
    assert report.skipped == [
        (str(folder / "b.txt"), f"{folder / 'b.txt'}: the same file as {folder / 'a.txt'}, which is indexed")
    ]
    again = build_index([folder], settings, CountingEmbedder(), progress=False)  # no change: still skipped
    assert again.added == [] and again.unchanged == ["a.txt", "c.txt"] and len(again.skipped) == 1
    index = Index.open(settings.paths.index, settings, HashingEmbedder(32))
    upload = write_docs(tmp_path / "uploads", {"copy.txt": text})
    added = index.add_paths([upload / "copy.txt"])  # an upload of a file already indexed under another name
    assert added.added == [] and "the same file as a.txt" in added.skipped[0][1]


def test_a_renamed_file_is_kept_under_its_new_name(tmp_path: Path, settings: Settings) -> None:
    folder = write_docs(tmp_path / "docs", {"old.txt": "Gamma is a drug for CLL. It was approved in 2024."})
    build_index([folder], settings, CountingEmbedder(), progress=False)
    (folder / "old.txt").rename(folder / "new.txt")
    report = build_index([folder], settings, CountingEmbedder(), progress=False)
    assert (report.added, report.removed, report.skipped) == (["new.txt"], ["old.txt"], [])


def test_open_readers_keep_their_snapshot_until_reload(docs: Path, settings: Settings) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    reader = Index.open(settings.paths.index, settings, HashingEmbedder(32))
    (docs / "beta.txt").unlink()
    build_index([docs], settings, CountingEmbedder(), progress=False)  # deletes the old generation
    assert "beta.txt" in [d.doc_id for d in reader.documents()]  # still served from the open files
    assert reader.chunks(["beta.txt#0"])[0].doc_id == "beta.txt"
    reader.reload()
    assert "beta.txt" not in [d.doc_id for d in reader.documents()]


def test_keywords_of_a_chunk_include_its_document_title(tmp_path: Path) -> None:
    docs = write_docs(
        tmp_path / "docs",
        {
            "resonate.txt": "RESONATE Trial\n\n"
            + "Patients were enrolled at many sites over two years. " * 3
            + "\n\nThe study was funded by two drug makers.",
            "other.txt": "Another Trial\n\nFunded study.",
        },
    )
    best: dict[bool, list[str]] = {}
    for contextual in (True, False):
        settings = make_settings(
            tmp_path / f"index-{contextual}",
            chunking={"target_words": 12, "overlap_words": 0, "contextual_keywords": contextual},
        )
        build_index([docs], settings, CountingEmbedder(), progress=False)
        index = Index.open(settings.paths.index, settings, HashingEmbedder(32))
        with index.snapshot() as snapshot:
            best[contextual] = [c.text for c in snapshot.chunks(snapshot.sparse_search("who funded RESONATE", 2))]
    funded = "The study was funded by two drug makers."
    assert best[True][0] == funded  # found through its document's title, a word its own text lacks
    assert best[False][0] != funded
