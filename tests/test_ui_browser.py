"""The chat UI driven through headless Chromium (Playwright) and through ``gradio_client``.

Each server runs as a subprocess on a free loopback port:
- the fake-backed app (``tests/ui_fake_server.py``): canned streamed answers over a tiny hashing
  index, so the browser behaviour is checked in seconds;
- the real app (``python -m qa.cli serve``) over an index built from ``seeds/`` with the real
  models (also marked ``integration``); it records the time to first token a user sees.

Screenshots go to ``test-artifacts/``. Browser tests skip when ``/usr/bin/chromium`` is missing
(``scripts/setup.sh --browser`` installs it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FINISHED = "#qa-chat .qa-final, #qa-chat .qa-refusal, #qa-chat .qa-error"

pytestmark = pytest.mark.browser

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: run `scripts/setup.sh --browser` (apt chromium)"
)


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    index_dir: Path

    @property
    def uploads(self) -> Path:
        return self.index_dir / "uploads"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


def start_server(
    cmd: list[str],
    log: Path,
    index_dir: Path,
    port: int,
    timeout: float,
    *,
    cwd: Path = ROOT,
    env: Mapping[str, str] | None = None,
    up: Collection[int] = (200,),
) -> Server:
    """Run ``cmd`` (a server on ``port``) in a session of its own, logging to ``log``, until ``/config``
    answers with a status in ``up``; ``env`` is added to the harness's offline environment."""
    url = f"http://127.0.0.1:{port}/"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            cmd, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, env={**_env(), **(env or {})}, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            with urllib.request.urlopen(url + "config", timeout=2) as response:
                status = response.status
        except urllib.error.HTTPError as exc:  # e.g. 401: up, login required
            status = exc.code
        except OSError:
            status = None
        if status in up:
            return Server(url, process, log, index_dir)
        time.sleep(0.5)
    stop_server(process)
    raise RuntimeError(f"server not up after {timeout:.0f} s:\n{log.read_text(errors='replace')[-4000:]}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # the session we started for this server only
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("ui-fake")
    port = free_port()
    cmd = [
        sys.executable,
        str(ROOT / "tests" / "ui_fake_server.py"),
        "--port",
        str(port),
        "--index-dir",
        str(base / "index"),
        "--delay",
        "0.02",
        "--max-upload-mb",
        "1",
    ]
    server = start_server(cmd, base / "server.log", base / "index", port, timeout=120)
    yield server
    stop_server(server.process)


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("ui-real")
    index_dir = base / "index"
    built = subprocess.run(
        [sys.executable, "-m", "qa.cli", "index", "seeds", "--index-dir", str(index_dir), "--quiet"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    port = free_port()
    cmd = [sys.executable, "-m", "qa.cli", "serve", "--port", str(port), "--index-dir", str(index_dir)]
    server = start_server(cmd, base / "server.log", index_dir, port, timeout=600)
    yield server
    stop_server(server.process)


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: run `scripts/setup.sh --browser` (apt chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()


def shot(page: Any, name: str, *, folder: Path = ARTIFACTS, full_page: bool = True) -> Path:
    """A PNG of the page in ``folder`` (``SCREENSHOTS``: the ones the docs show)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


def open_app(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#qa-question textarea")


@dataclass
class Asked:
    text: str
    html: str
    first_token_s: float | None
    total_s: float
    saw_streaming: bool


_POLL = """sel => {
  const done = document.querySelectorAll(sel).length;
  const live = document.querySelectorAll('#qa-chat .qa-streaming .qa-text');
  const text = live.length ? live[live.length - 1].textContent.replace('\u258d', '').trim() : '';
  return [done, text.length];
}"""


def ask(page: Any, question: str, *, timeout_s: float = 60) -> Asked:
    """Type ``question``, press Ask, and wait for the streamed then final answer."""
    before = page.locator(FINISHED).count()
    page.fill("#qa-question textarea", question)
    started = time.perf_counter()
    page.click("#qa-ask")
    first: float | None = None
    deadline = started + timeout_s
    while time.perf_counter() < deadline:
        done, streamed = page.evaluate(_POLL, FINISHED)
        if first is None and streamed:
            first = time.perf_counter() - started
        if done > before:
            break
        time.sleep(0.02)
    else:
        shot(page, "ui-timeout.png")
        raise AssertionError(f"no answer to {question!r} within {timeout_s} s")
    total = time.perf_counter() - started
    final = page.locator(FINISHED).last
    return Asked(final.inner_text(), final.inner_html(), first, total, first is not None)


def open_tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def upload(page: Any, path: Path) -> str:
    """Upload ``path`` on the Documents tab and return the new status message."""
    open_tab(page, "Documents")
    status = "#qa-upload-status .qa-upload-status"
    previous = page.locator(status).inner_text() if page.locator(status).count() else ""
    page.set_input_files("#qa-upload input[type=file]", str(path))
    page.wait_for_function(
        "([sel, prev]) => { const el = document.querySelector(sel);"
        " return el && el.innerText.trim() && el.innerText !== prev; }",
        arg=[status, previous],
        timeout=300_000,
    )
    return str(page.locator(status).inner_text())


# --------------------------------------------------------------------------- fake-backed tests


@needs_chromium
def test_seed_question_streams_an_answer_with_a_highlighted_source(fake_server: Server, page: Any) -> None:
    open_app(page, fake_server.url)
    question = "Which agency granted the Breakthrough Therapy Designation?"
    result = ask(page, question)
    assert result.saw_streaming, "the answer should appear token by token"
    assert f"(You asked: {question})" in result.text
    assert "Confidence: 90%" in result.text
    cite = page.locator("#qa-chat .qa-final a.qa-cite").first
    assert cite.get_attribute("href") == "#src-0-1"  # the first answer's own source 1
    page.wait_for_selector("#qa-sources #src-0-1 mark")
    marked = page.locator("#qa-sources mark").first.inner_text()
    assert marked and marked in result.text
    assert "innocare-mesutoclax-btd.txt" in page.locator("#qa-sources").inner_text()
    # The marker scrolls to its source in place: no navigation, no new tab.
    cite.click()
    page.wait_for_selector("#src-0-1.qa-active")
    assert page.url.rstrip("/") == fake_server.url.rstrip("/")
    assert len(page.context.pages) == 1
    shot(page, "ui-fake-answer.png")
    assert not page.js_errors


@needs_chromium
def test_refusal_looks_different_and_follow_up_uses_history(fake_server: Server, page: Any) -> None:
    open_app(page, fake_server.url)
    refused = ask(page, "Please refuse: what is the airspeed of a swallow?")
    assert page.locator("#qa-chat .qa-refusal").count() == 1
    assert "Not answered from the documents" in refused.text
    assert "Reason: No passage mentions" in refused.text
    assert page.locator("#qa-chat .qa-refusal a.qa-cite").count() == 0
    assert "No sources cited" in page.locator("#qa-sources").inner_text()

    failed = ask(page, "Please explode now")
    assert "Could not answer: the fake generator <exploded> as asked" in failed.text
    assert page.locator("#qa-chat .qa-error").count() == 1

    ask(page, "What is mesutoclax?")
    follow = ask(page, "Who developed it?")
    assert "Understood as: What is mesutoclax? Who developed it?" in follow.text
    assert page.locator("#qa-chat .qa-error").count() == 1  # the failed turn stays visible
    shot(page, "ui-fake-conversation.png")

    page.click("#qa-new-chat")  # a new conversation; this one stays saved
    page.wait_for_function("() => !document.querySelector('#qa-chat .qa-final, #qa-chat .qa-refusal')")
    assert "appear here" in page.locator("#qa-sources").inner_text()


@needs_chromium
def test_example_button_and_retrieved_passages_toggle(fake_server: Server, page: Any) -> None:
    open_app(page, fake_server.url)
    assert not page.locator("#qa-passages").is_visible()
    page.get_by_role("button", name="What is mesutoclax?").click()
    page.wait_for_selector("#qa-chat .qa-final")
    page.get_by_label("Show retrieved passages").check()
    page.wait_for_selector("#qa-passages .qa-passage")
    passages = page.locator("#qa-passages").inner_text()
    assert "score" in passages and "innocare-mesutoclax-btd.txt" in passages
    shot(page, "ui-fake-passages.png")


@needs_chromium
def test_upload_then_ask_then_remove(fake_server: Server, page: Any, tmp_path: Path) -> None:
    doc = tmp_path / "zorblax reactor notes.txt"
    doc.write_text(
        "Zorblax reactor notes\n\nThe zorblax reactor was commissioned in Tromsø in 2031 by Vantablue Energy. "
        "Its output is forty megawatts.\n",
        encoding="utf-8",
    )
    open_app(page, fake_server.url)
    status = upload(page, doc)
    assert "Added zorblax_reactor_notes.txt" in status, status
    assert (fake_server.index_dir / "uploads" / "zorblax_reactor_notes.txt").is_file()
    page.wait_for_selector("#qa-docs :text('zorblax_reactor_notes.txt')")
    shot(page, "ui-fake-documents.png")

    open_tab(page, "Ask")
    result = ask(page, "Where was the zorblax reactor commissioned?")
    assert "Tromsø" in result.text
    assert "zorblax_reactor_notes.txt" in page.locator("#qa-sources").inner_text()

    open_tab(page, "Documents")
    page.locator("#qa-remove-choice input").click()
    page.get_by_role("option", name="zorblax_reactor_notes.txt").click()
    page.click("#qa-remove")
    page.click("#qa-remove-yes")  # removal asks first (tests/test_ui_browser_docs.py)
    page.wait_for_selector("#qa-upload-status .qa-upload-status:has-text('Removed zorblax_reactor_notes.txt')")
    page.wait_for_function("() => !document.querySelector('#qa-docs').innerText.includes('zorblax')")
    assert not (fake_server.index_dir / "uploads" / "zorblax_reactor_notes.txt").exists()


@needs_chromium
def test_upload_refuses_bad_type_and_oversized_files(fake_server: Server, page: Any, tmp_path: Path) -> None:
    bad = tmp_path / "payload.exe"
    bad.write_bytes(b"MZ not a document")
    open_app(page, fake_server.url)
    open_tab(page, "Documents")
    # The picker offers only the allowed types; a file given anyway is refused in the page, never sent
    # (an API client that sends one gets the server's "Refused" line: tests/test_ui_api.py).
    page.set_input_files("#qa-upload input[type=file]", str(bad))
    page.get_by_text(re.compile(r"Invalid file type: payload\.exe\. Only \.csv, \.docx, .* allowed\.")).wait_for()
    big = tmp_path / "big.txt"
    big.write_text("word " * 300_000, encoding="utf-8")  # 1.5 MB > the 1 MB cap of the fake server
    page.set_input_files("#qa-upload input[type=file]", str(big))  # Gradio refuses it before upload
    page.get_by_text(re.compile(r'exceed the maximum allowed size of 1(\.0)? ?Mb: "big.txt"', re.I)).wait_for()
    assert not (fake_server.index_dir / "uploads" / "payload.exe").exists()
    assert not (fake_server.index_dir / "uploads" / "big.txt").exists()


@needs_chromium
def test_markup_in_documents_shows_as_text(fake_server: Server, page: Any, tmp_path: Path) -> None:
    doc = tmp_path / "markup.txt"
    doc.write_text(
        "Quarkonium <b>notes</b>\n\nThe quarkonium flux capacitor <script>pwnedFlag = 1</script> "
        'uses <b>glorbium</b> crystals <img src=x onerror="pwnedFlag = 2">.\n',
        encoding="utf-8",
    )
    open_app(page, fake_server.url)
    assert "Added markup.txt" in upload(page, doc)
    assert "Quarkonium <b>notes</b>" in page.locator("#qa-docs").inner_text()
    open_tab(page, "Ask")
    result = ask(page, "Which crystals does the quarkonium flux capacitor use?")
    assert "<b>glorbium</b>" in result.text
    assert "<script>pwnedFlag = 1</script>" in page.locator("#qa-sources").inner_text()
    page.get_by_label("Show retrieved passages").check()
    page.wait_for_selector("#qa-passages .qa-passage")
    assert "<b>glorbium</b>" in page.locator("#qa-passages").inner_text()
    assert page.locator("#qa-chat b, #qa-sources b, #qa-passages b, #qa-sources img, #qa-chat img").count() == 0
    assert page.evaluate("() => window.pwnedFlag") is None
    shot(page, "ui-fake-escaping.png")


def test_concurrent_clients_each_get_their_own_answer(fake_server: Server) -> None:
    from gradio_client import Client

    questions = [f"What is mesutoclax? (asker {i})" for i in range(8)]

    def one(question: str) -> str:
        client = Client(fake_server.url, verbose=False)
        result = client.predict(question, 3, "accurate", api_name="/ask")
        chat = result[1]
        return json.dumps(chat[-1], ensure_ascii=False)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(one, questions))
    elapsed = time.perf_counter() - started
    for question, reply in zip(questions, replies, strict=True):
        assert "qa-final" in reply, reply  # not an error from a concurrent generation
        assert f"(You asked: {question})" in reply
        others = [q for q in questions if q != question]
        assert not any(f"(You asked: {q})" in reply for q in others)
    # One generation at a time: eight answers of ~0.5 s each cannot all overlap.
    assert elapsed > 8 * 0.3


# --------------------------------------------------------------------------- real app


@pytest.mark.integration
@needs_chromium
def test_real_app_answers_a_seed_question_and_an_uploaded_document(
    real_server: Server, page: Any, tmp_path: Path
) -> None:
    open_app(page, real_server.url)
    first = ask(page, "Which agency granted the Breakthrough Therapy Designation?", timeout_s=600)
    shot(page, "ui-real-answer.png")
    assert page.locator("#qa-chat .qa-final").count() == 1, first.text
    assert re.search(r"NMPA|CDE|Center for Drug Evaluation|National Medical Products", first.text), first.text
    page.wait_for_selector("#qa-sources mark")
    assert page.locator("#qa-sources mark").first.inner_text().strip()

    second = ask(page, "What is mesutoclax?", timeout_s=600)
    timings = {
        "first_question": {"first_token_s": first.first_token_s, "total_s": first.total_s},
        "warm_question": {"first_token_s": second.first_token_s, "total_s": second.total_s},
    }

    doc = tmp_path / "lighthouse.md"
    doc.write_text(
        "# Harbour lighthouse\n\nThe Kestrel Point lighthouse was built in 1874 by the engineer Mirabel Okafor. "
        "Its lamp is visible from thirty kilometres away.\n",
        encoding="utf-8",
    )
    status = upload(page, doc)
    assert "Added lighthouse.md" in status, status
    open_tab(page, "Ask")
    third = ask(page, "Who built the Kestrel Point lighthouse?", timeout_s=600)
    timings["uploaded_doc_question"] = {"first_token_s": third.first_token_s, "total_s": third.total_s}
    shot(page, "ui-real-upload-answer.png")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "ui-real-timings.json").write_text(json.dumps(timings, indent=2), encoding="utf-8")
    print("UI timings:", json.dumps(timings))
    assert "Okafor" in third.text, third.text
    assert "lighthouse.md" in page.locator("#qa-sources").inner_text()
    assert first.first_token_s is not None


@pytest.mark.integration
def test_real_app_serves_loopback_only(real_server: Server) -> None:
    assert real_server.url.startswith("http://127.0.0.1:")
    assert "public URL" not in real_server.log.read_text(errors="replace")
