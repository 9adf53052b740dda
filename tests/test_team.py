"""Running for a team: two ``qa serve`` processes on one PostgreSQL index and one generator server.

Real engines: an embedded PostgreSQL 18 with pgvector, two real ``qa serve`` processes (the
real pipeline and UI) on loopback ports, and an OpenAI-compatible generator server
(``tests/fake_openai_server.py``, which answers with one fixed sentence). A document uploaded
through one UI must be answerable, with its citation verified, from the other.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer
from test_ui_api import api_client, documents, upload
from test_ui_browser import ROOT, Server, free_port, start_server, stop_server

pytestmark = pytest.mark.postgres

ZETA = "Zeta particles decay into muons within two microseconds."


def _serve(base: Path, env: dict[str, str]) -> Server:
    """``qa serve`` (the installed command) on a free loopback port, up and answering ``/config``."""
    base.mkdir(parents=True)
    port = free_port()
    command = [sys.executable, "-c", "import sys; from qa.cli import main; sys.exit(main())", "serve"]
    return start_server(
        [*command, "--port", str(port)],
        base / "serve.log",
        base / "index",
        port,
        180,
        cwd=base,
        env={**env, "QA_PATHS__INDEX": str(base / "index")},
    )


@pytest.fixture
def generator_server() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer(reply=f"{ZETA} [1]").start()
    yield server
    server.stop()


@pytest.fixture
def team(tmp_path: Path, pg_url: str, pg_schema: str, generator_server: FakeOpenAIServer) -> Iterator[list[Server]]:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "alpha.txt").write_text("Alpha Report\n\nThe alpha reactor produces clean energy.\n", encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "NO_PROXY": "127.0.0.1",
        "QA_INDEX__BACKEND": "postgres",
        "QA_INDEX__URL": pg_url,
        "QA_INDEX__SCHEMA_NAME": pg_schema,
        "QA_EMBEDDING__MODEL": "hashing-64",
        "QA_GENERATION__BACKEND": "openai",
        "QA_GENERATION__URL": generator_server.url,
        "QA_PATHS__SEEDS": str(seeds),
    }
    servers: list[Server] = []
    try:
        for name in ("first", "second"):
            servers.append(_serve(tmp_path / name, env))
        yield servers
    finally:
        for server in servers:
            stop_server(server.process)


def test_a_document_uploaded_through_one_ui_is_answered_by_the_other(
    team: list[Server], tmp_path: Path, generator_server: FakeOpenAIServer
) -> None:
    first, second = (api_client(server.url) for server in team)
    assert documents(first) == documents(second) == ["alpha.txt"]  # the second found the index the first built
    zeta = tmp_path / "zeta.txt"
    zeta.write_text(f"Zeta Brief\n\n{ZETA} They were first seen in 2031.\n", encoding="utf-8")
    added = time.monotonic()
    assert (
        upload(first, zeta)
        == '<ul class="qa-upload-status"><li class="qa-upload-ok">Added zeta.txt (1 passage)</li></ul>'
    )
    assert documents(second) == ["alpha.txt", "zeta.txt"]
    _box, chat, sources, *_ = second.predict("How fast do zeta particles decay?", 3, "accurate", api_name="/ask")
    answered = time.monotonic() - added
    assert '<div class="qa-short">muons within two microseconds</div>' in str(chat[-1])
    assert '<div class="qa-source-meta">zeta.txt · characters 12–68 · support 1.00</div>' in sources  # verified
    assert answered < 30  # "within seconds" of the upload, including the answer itself
    asked = [r for r in generator_server.requests if r.path.endswith("/chat/completions")]
    assert any("How fast do zeta particles decay?" in str(r.body["messages"]) for r in asked)
