"""Writing the PostgreSQL index: the same incremental build as the folder index, in one transaction.

A write takes a PostgreSQL advisory lock for the index's schema (so two writers, in any
processes on any machines, take turns), reads what the tables hold, plans the write with
the folder backend's own :func:`qa.builder.plan_write` (same scan, same classification by
content hash, same chunking, vectors reused for unchanged chunk texts), and applies it in
one transaction. Readers keep seeing the previous documents until the commit; a build
killed half-way is rolled back by the server and leaves them answerable.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from qa.builder import BuildJob, LiveIndex, NextGeneration, plan_write
from qa.index_format import (
    REBUILD_HINT,
    BuildReport,
    IndexLocked,
    IndexMismatch,
    QAIndexError,
    document_row,
    expected_header,
    mismatch_reason,
)
from qa.pg_store import (
    MIN_SERVER_VERSION,
    SERVER_REQUIREMENT,
    TABLES,
    PgReads,
    connect,
    has_index,
    has_vector_extension,
    redact,
    schema_sql,
)


def run_pg_build(job: BuildJob) -> BuildReport:
    """Do ``job`` on the PostgreSQL index of ``job.settings`` under its advisory lock."""
    started = time.perf_counter()
    conn = connect(job.settings.index)
    try:
        _prepare_database(conn, job.settings.index.url)
        schema = job.settings.index.schema_name
        with _advisory_lock(conn, schema, job.lock_timeout):
            live = _live_index(conn, job)
            if job.mode != "sync" and live.update_error is not None:
                raise live.update_error  # an update in place needs an index built with these settings
            report, plan = plan_write(job, live)
            if plan is not None:
                report.chunks_total = _apply(conn, job, plan)
    finally:
        conn.close()
    report.seconds = time.perf_counter() - started
    return report


def _prepare_database(conn: Any, url: str) -> None:
    """Check the server version and make sure pgvector is installed (creating it if we may)."""
    version = int(conn.info.server_version)
    if version < MIN_SERVER_VERSION:
        raise QAIndexError(f"PostgreSQL at {redact(url)} is version {version // 10000}; qa needs {SERVER_REQUIREMENT}.")
    if has_vector_extension(conn):
        return
    import psycopg

    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        raise QAIndexError(
            f"PostgreSQL at {redact(url)} has no pgvector extension and this user may not create it "
            f"({str(exc).strip()}); ask an administrator to run CREATE EXTENSION vector; qa needs {SERVER_REQUIREMENT}."
        ) from None
    from pgvector.psycopg import register_vector

    register_vector(conn)  # the vector type exists now


@contextlib.contextmanager
def _advisory_lock(conn: Any, schema: str, timeout: float) -> Iterator[None]:
    """The index's write lock: a session advisory lock, released on exit or when the connection drops."""
    key = f"qa-index:{schema}"
    deadline = time.monotonic() + timeout
    while not conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()[0]:
        if time.monotonic() >= deadline:
            raise IndexLocked(
                f"another `qa index` is writing the PostgreSQL index {schema!r}; wait for it to finish and try again."
            )
        time.sleep(0.05)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # a dropped connection has released it already
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


def _reads(conn: Any, job: BuildJob) -> PgReads:
    settings = job.settings
    return PgReads(conn, hnsw_threshold=settings.embedding.hnsw_threshold, ef_search=settings.index.hnsw_ef_search)


def _live_index(conn: Any, job: BuildJob) -> LiveIndex:
    """What the tables hold, as :func:`plan_write` expects it (a reader over this connection)."""
    from psycopg import sql

    schema = job.settings.index.schema_name
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    if not has_index(conn, schema):
        return LiveIndex(rebuild_reason="no index yet")
    reads = _reads(conn, job)
    documents = reads.recorded()
    if job.rebuild:
        return LiveIndex(reads, documents, "rebuild requested", keep_docs_outside_paths=False)
    if mismatch := mismatch_reason(reads.meta("header") or {}, expected_header(job.settings, job.embedder)):
        message = f"The PostgreSQL index {schema!r} was built with other settings: {mismatch}; {REBUILD_HINT}."
        return LiveIndex(reads, documents, mismatch, IndexMismatch(message))
    return LiveIndex(reads, documents)


def _apply(conn: Any, job: BuildJob, plan: NextGeneration) -> int:
    """Write ``plan`` in one transaction; returns the index's chunk count after it."""
    schema = job.settings.index.schema_name
    with conn.transaction():
        if plan.base is None:
            _reset_tables(conn, schema, job.embedder.dim)
            first_id = 0
        else:
            top = _reads(conn, job).max_chunk_id()  # before the drops, as the folder backend numbers them
            first_id = 0 if top is None else top + 1
            if plan.docs_to_drop:
                conn.execute("DELETE FROM qa_documents WHERE id = ANY(%s)", (plan.docs_to_drop,))
        _insert(conn, plan, first_id)
        return _write_meta(conn, job, rebuilt=plan.base is None)


def _reset_tables(conn: Any, schema: str, dim: int) -> None:
    """Empty the index for a full rebuild; (re)create its tables when missing or for another vector size."""
    if has_index(conn, schema) and _vector_dim(conn) == dim:
        conn.execute("DELETE FROM qa_documents")  # rows, not tables: readers keep the old ones until commit
        return
    for table in TABLES:
        conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    conn.execute(schema_sql(dim))


def _vector_dim(conn: Any) -> int:
    row = conn.execute(
        "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'qa_chunks'::regclass AND attname = 'embedding'"
    ).fetchone()
    return int(row[0]) if row else -1


def _insert(conn: Any, plan: NextGeneration, first_id: int) -> None:
    """Insert the plan's documents and chunks (with their vectors), chunk ids from ``first_id``."""
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO qa_documents VALUES (%s,%s,%s,%s,%s,%s,%s)", [document_row(d) for d in plan.docs])
        cur.executemany(
            "INSERT INTO qa_chunks VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            [
                (first_id + row, c.id, c.doc_id, c.ordinal, c.start, c.end, c.section, c.page, c.text, vector)
                for row, (c, vector) in enumerate(zip(plan.chunks, plan.vectors, strict=True))
            ],
        )


def _write_meta(conn: Any, job: BuildJob, *, rebuilt: bool) -> int:
    """Record the header and the new state (a new version; a new generation after a rebuild)."""
    chunks = int(conn.execute("SELECT count(*) FROM qa_chunks").fetchone()[0])
    state = PgReads(conn, hnsw_threshold=0, ef_search=0).meta("state") or {}
    now = datetime.now(UTC).isoformat(timespec="seconds")
    values = {
        "header": expected_header(job.settings, job.embedder),
        "state": {
            "chunks": chunks,
            "version": int(state.get("version", 0)) + 1,
            "generation": secrets.token_hex(8) if rebuilt or not state.get("generation") else state["generation"],
        },
        "updated": now,
    }
    for key, value in values.items():
        conn.execute(
            "INSERT INTO qa_meta VALUES (%s, %s::jsonb) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (key, json.dumps(value)),
        )
    conn.execute("INSERT INTO qa_meta VALUES ('created', %s::jsonb) ON CONFLICT DO NOTHING", (json.dumps(now),))
    return chunks
