"""The served UI's checks hold for API clients too, not only for the page.

Each server is ``tests/ui_fake_server.py`` (the real ``qa.ui`` app around the fake assistant) in a
subprocess on a free loopback port, with a 0.01 MB upload cap (10 485 bytes). The clients are
``gradio_client`` and raw ``httpx``, as a script or an attacker would use them: the document
endpoints are private (no ``api_name``), but Gradio still runs them for whoever posts to the queue,
so the client is told to call them (``HIDDEN``) and only the server-side checks stand in the way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AuthenticationError  # noqa: E402
from test_ui_browser import ROOT, Server, free_port, start_server, stop_server  # noqa: E402

pytestmark = pytest.mark.browser  # like the other subprocess-server UI tests (tests/test_ui_browser.py)

CAP_BYTES = 10_485  # int(0.01 * 1024 * 1024): the largest upload allowed
HIDDEN = ("/upload", "/remove", "/list_documents")
ALLOWED = "allowed: .csv, .docx, .epub, .htm, .html, .md, .pdf, .pptx, .txt."
NOT_AUTHENTICATED = {"detail": {"error": "Not authenticated", "auth_message": None}}
READ_ONLY = "Documents are read-only on a server without login (started with --no-auth)."
USER = ("alice", "s3cret")


def _start(base: Path, *flags: str) -> Server:
    """The fake-backed app over one seed (``known.md``), up and answering ``/config``."""
    seeds = base / "seeds"
    seeds.mkdir()
    (seeds / "known.md").write_text("Known title\n\nThe CDE granted the designation.\n", encoding="utf-8")
    port = free_port()
    cmd = [sys.executable, str(ROOT / "tests" / "ui_fake_server.py"), "--port", str(port), "--seeds", str(seeds)]
    cmd += ["--index-dir", str(base / "index"), "--delay", "0", "--max-upload-mb", "0.01", *flags]
    return start_server(cmd, base / "server.log", base / "index", port, 120, up=(200, 401))  # 401: login required


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Loopback, no users: ``qa serve`` as one person's tool."""
    server = _start(tmp_path_factory.mktemp("api-open"))
    yield server
    stop_server(server.process)


@pytest.fixture(scope="module")
def team_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The policy of ``qa serve --host 0.0.0.0`` with a user: everything needs a login."""
    server = _start(tmp_path_factory.mktemp("api-team"), "--exposed", "--users", ":".join(USER))
    yield server
    stop_server(server.process)


@pytest.fixture(scope="module")
def read_only_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The policy of ``qa serve --host 0.0.0.0 --no-auth``: anonymous questions, read-only documents."""
    server = _start(tmp_path_factory.mktemp("api-read-only"), "--exposed", "--no-auth")
    yield server
    stop_server(server.process)


# --------------------------------------------------------------------------- clients


def api_client(url: str, auth: tuple[str, str] | None = None) -> Client:
    """A ``gradio_client`` that also calls the private document endpoints (as an attacker's would)."""
    client = Client(url, auth=auth, verbose=False)
    for endpoint in client.endpoints.values():
        if endpoint.api_name in HIDDEN:
            endpoint.is_valid = True
    return client


def _fn(client: Client, api_name: str) -> int:
    return next(i for i, e in client.endpoints.items() if e.api_name == api_name)


def documents(client: Client) -> list[str]:
    """The document ids the server lists (what the Documents tab loads); also sets this session's
    remove choices, which Gradio checks before the handler runs."""
    table, _choices = client.predict(fn_index=_fn(client, "/list_documents"))
    return [row[0] for row in table["data"]]


def upload(client: Client, *paths: Path) -> str:
    status, _table, _choices, _box = client.predict(
        [handle_file(str(p)) for p in paths], fn_index=_fn(client, "/upload")
    )
    return str(status)


def remove(client: Client, doc_id: str) -> str:
    status, _table, _choices = client.predict(doc_id, fn_index=_fn(client, "/remove"))
    return str(status)


def ask(client: Client, question: str) -> str:
    _box, chat, *_ = client.predict(question, 3, "accurate", api_name="/ask")
    return str(chat[-1])


def sized(path: Path, size: int) -> Path:
    """A text document of exactly ``size`` bytes."""
    head = f"{path.stem} title\n\nThe zorblax reactor runs on glorbium crystals. "
    path.write_text(head + "x" * (size - len(head)), encoding="utf-8")
    assert path.stat().st_size == size
    return path


def uploaded(server: Server) -> list[str]:
    return sorted(p.name for p in server.uploads.iterdir()) if server.uploads.is_dir() else []


def refused(message: str) -> str:
    return f'<ul class="qa-upload-status"><li class="qa-upload-rejected">{message}</li></ul>'


# --------------------------------------------------------------------------- 1. the size cap


def test_a_fractional_cap_reaches_gradio_as_whole_bytes() -> None:
    from gradio.utils import _parse_file_size

    from qa.ui import gradio_file_size

    assert gradio_file_size(20.0) == "20mb" and _parse_file_size(gradio_file_size(20.0)) == 20 * 1024 * 1024
    assert gradio_file_size(0.01) == f"{CAP_BYTES}b" and _parse_file_size(gradio_file_size(0.01)) == CAP_BYTES
    assert _parse_file_size(gradio_file_size(2.5)) == int(2.5 * 1024 * 1024)  # "2.5mb" would stop the launch


def test_the_upload_cap_holds_for_api_clients(open_server: Server, tmp_path: Path) -> None:
    big = sized(tmp_path / "big.txt", CAP_BYTES + 1)
    with big.open("rb") as handle:
        response = httpx.post(open_server.url + "gradio_api/upload", files=[("files", ("big.txt", handle))])
    assert response.status_code == 413
    assert response.text == f"File size exceeded maximum allowed size of {CAP_BYTES} bytes."
    client = api_client(open_server.url)
    before = documents(client)
    with pytest.raises(ValueError, match=f"exceeds the maximum file size of {CAP_BYTES} bytes"):
        upload(client, big)  # gradio_client checks the cap it reads from /config ...
    client.config["max_file_size"] = None  # ... which a client can drop: the server still says no
    with pytest.raises(httpx.HTTPStatusError, match="413 Request Entity Too Large") as caught:
        upload(client, big)
    assert caught.value.response.url.path == "/gradio_api/upload"
    assert documents(client) == before and "big.txt" not in uploaded(open_server)
    at_cap = sized(tmp_path / "at_cap.txt", CAP_BYTES)  # the cap itself is allowed: the test can fail
    added = '<ul class="qa-upload-status"><li class="qa-upload-ok">Added at_cap.txt (1 passage)</li></ul>'
    assert upload(client, at_cap) == added
    assert documents(client) == sorted([*before, "at_cap.txt"]) and "at_cap.txt" in uploaded(open_server)


# --------------------------------------------------------------------------- 2. the extension list


@pytest.mark.parametrize(
    ("name", "shown"),
    [("evil.exe", ".exe"), ("notes.py", ".py"), ("x.pdf.exe", ".exe"), ("README", "no extension")],
)
def test_the_extension_list_holds_for_api_clients(open_server: Server, tmp_path: Path, name: str, shown: str) -> None:
    bad = tmp_path / name
    bad.write_bytes(b"MZ\x90\x00 not a document\n")
    client = api_client(open_server.url)
    before = documents(client)
    expected = f"Refused: &#x27;{name}&#x27;: unsupported file type ({shown}); {ALLOWED}"
    assert upload(client, bad) == refused(expected)
    assert documents(client) == before and name not in uploaded(open_server)


def test_an_allowed_file_from_an_api_client_is_indexed_beside_a_refused_one(
    open_server: Server, tmp_path: Path
) -> None:
    good = sized(tmp_path / "zorblax.txt", 200)
    bad = tmp_path / "payload.exe"
    bad.write_bytes(b"MZ")
    client = api_client(open_server.url)
    before = documents(client)
    status = upload(client, bad, good)
    assert status.startswith('<ul class="qa-upload-status"><li class="qa-upload-ok">Added zorblax.txt (1 passage)')
    assert status.endswith(
        f'</li><li class="qa-upload-rejected">Refused: &#x27;payload.exe&#x27;: unsupported file type (.exe); '
        f"{ALLOWED}</li></ul>"
    )
    assert documents(client) == sorted([*before, "zorblax.txt"])
    assert "zorblax.txt" in uploaded(open_server) and "payload.exe" not in uploaded(open_server)
    assert "(You asked: What does the zorblax reactor run on?)" in ask(client, "What does the zorblax reactor run on?")


# --------------------------------------------------------------------------- 3. who may call


def test_an_exposed_server_refuses_anonymous_gradio_client_calls(team_server: Server, tmp_path: Path) -> None:
    url = team_server.url
    with pytest.raises(AuthenticationError) as anonymous:
        Client(url, verbose=False)
    assert str(anonymous.value) == f"Could not load {url} as credentials were not provided. Please login."
    with pytest.raises(ValueError, match=f"^Could not login to {url}.$"):
        Client(url, auth=(USER[0], "wrong"), verbose=False)
    doc = sized(tmp_path / "zorblax.txt", 200)
    client = api_client(url, auth=USER)
    client.cookies.clear()  # the same client without its login cookie: anonymous calls
    calls: list[tuple[str, Any]] = [
        ("/gradio_api/queue/join", lambda: ask(client, "Who granted the designation?")),
        ("/gradio_api/upload", lambda: upload(client, doc)),
        ("/gradio_api/queue/join", lambda: remove(client, "known.md")),
    ]
    for path, call in calls:
        with pytest.raises(httpx.HTTPStatusError, match="401 Unauthorized") as caught:
            call()
        assert caught.value.response.url.path == path
        assert caught.value.response.json() == NOT_AUTHENTICATED
    logged_in = api_client(url, auth=USER)
    assert documents(logged_in) == ["known.md"] and uploaded(team_server) == []
    assert "qa-final" in ask(logged_in, "Who granted the designation?")
    assert "Added zorblax.txt (1 passage)" in upload(logged_in, doc)
    assert documents(logged_in) == ["known.md", "zorblax.txt"]
    expected = '<div class="qa-upload-status qa-upload-ok">Removed zorblax.txt from the index.</div>'
    assert remove(logged_in, "zorblax.txt") == expected
    assert documents(logged_in) == ["known.md"] and uploaded(team_server) == []


def test_an_exposed_server_refuses_anonymous_raw_http(team_server: Server, tmp_path: Path) -> None:
    url = team_server.url
    for path in ("config", "gradio_api/info"):
        response = httpx.get(url + path)
        assert (response.status_code, response.json()) == (401, NOT_AUTHENTICATED), path
    question = {"data": ["Who granted the designation?", 3, "accurate"]}
    response = httpx.post(url + "gradio_api/call/ask", json=question)
    assert (response.status_code, response.json()) == (401, NOT_AUTHENTICATED)
    names = [d["api_name"] for d in api_client(url, auth=USER).config["dependencies"]]
    for name, data in (("ask", ["Who?", [], 3, "accurate"]), ("upload", [[]]), ("remove", ["known.md"])):
        join: dict[str, Any] = {
            "fn_index": names.index(name),
            "data": data,
            "session_hash": "anonymous",
            "trigger_id": None,
        }
        response = httpx.post(url + "gradio_api/queue/join", json=join)
        assert (response.status_code, response.json()) == (401, NOT_AUTHENTICATED), name
    doc = sized(tmp_path / "zorblax.txt", 200)
    with doc.open("rb") as handle:
        response = httpx.post(url + "gradio_api/upload", files=[("files", ("zorblax.txt", handle))])
    assert (response.status_code, response.json()) == (401, NOT_AUTHENTICATED)
    assert documents(api_client(url, auth=USER)) == ["known.md"]


def test_no_auth_serves_anonymous_questions_with_read_only_documents(read_only_server: Server, tmp_path: Path) -> None:
    client = api_client(read_only_server.url)  # anonymous, and let in
    reply = ask(client, "Who granted the designation?")
    assert "qa-final" in reply and "(You asked: Who granted the designation?)" in reply
    assert documents(client) == ["known.md"]  # also offers known.md as this session's remove choice
    assert upload(client, sized(tmp_path / "zorblax.txt", 200)) == refused(READ_ONLY)
    assert remove(client, "known.md") == f'<div class="qa-upload-status qa-upload-rejected">{READ_ONLY}</div>'
    assert documents(client) == ["known.md"] and uploaded(read_only_server) == []


# --------------------------------------------------------------------------- presets over the API


def test_switching_presets_over_the_api_builds_one_assistant_per_preset(tmp_path: Path) -> None:
    """Issue #16 item 2: an anonymous client switching presets through /ask must not make the server load
    a new model each time (RSS grew from 2.4 to 12.6 GB); at most one assistant per preset lives."""
    builds = tmp_path / "builds.log"
    server = _start(tmp_path, "--builds-log", str(builds))
    try:
        client = Client(server.url, verbose=False)
        for preset in ["fast", "accurate", "fast", "accurate", "fast", "fast"]:
            _box, chat, *_ = client.predict("Who granted the designation?", 3, preset, api_name="/ask")
            assert "CDE" in str(chat[-1])
        with pytest.raises(Exception, match="Unknown preset 'huge'|not in the list of choices"):
            client.predict("Who granted the designation?", 3, "huge", api_name="/ask")
        assert builds.read_text(encoding="utf-8").split() == ["fast"]  # "accurate" is the one it started with
    finally:
        stop_server(server.process)


def test_an_upload_being_indexed_does_not_hold_up_answers(tmp_path: Path) -> None:
    """Issue #16 item 3: a large upload is indexed while other users' questions are answered."""
    from concurrent.futures import ThreadPoolExecutor

    server = _start(tmp_path, "--add-delay", "8")
    try:
        uploader, asker = api_client(server.url), Client(server.url, verbose=False)
        doc = tmp_path / "slow.txt"
        doc.write_text("Slow title\n\nThe zorblax reactor runs on glorbium crystals.\n", encoding="utf-8")
        with ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            pending = pool.submit(upload, uploader, doc)
            time.sleep(1.0)  # the upload is being indexed now
            _box, chat, *_ = asker.predict("Who granted the designation?", 3, "accurate", api_name="/ask")
            answered = time.monotonic() - started
            assert "CDE" in str(chat[-1]) and not pending.done()
            assert "Added slow.txt" in pending.result(timeout=60)
        assert answered < 6 and time.monotonic() - started >= 8
    finally:
        stop_server(server.process)
