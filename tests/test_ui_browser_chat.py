"""The chat of issue #15 in headless Chromium: every answer keeps its own sources, a question asked
while an answer streams is answered, Stop stops, Regenerate replaces, copies are plain text, drafts are
marked as drafts, conversations survive a reload and a restart, and a chat can be limited to documents.

The harness (servers, browser, ``ask``) is ``tests/test_ui_browser.py``'s. The server here is the
fake-backed app (``tests/ui_fake_server.py``) over two documents: the seed article and a short note
about a "zorblax reactor". A question containing "in detail" is streamed slowly (a quarter second a
word), so that it can be stopped or queued behind; one containing "refuse" streams raw model text
("NOT FOUND [3]", a Chinese sentence) before its refusal. Screenshots go to ``docs/screenshots/``.
"""

# ruff: noqa: F811 - the harness's fixtures (browser, page) are imported by name and received as parameters

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_ui_browser import (  # noqa: F401 - browser and page are the harness's fixtures
    FINISHED,
    ROOT,
    SCREENSHOTS,
    Server,
    ask,
    browser,
    free_port,
    needs_chromium,
    open_app,
    page,
    shot,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.browser

ZORBLAX = (
    "Zorblax reactor notes\n\nThe zorblax reactor was commissioned in Tromsø in 2031 by Vantablue Energy. "
    "Its output is forty megawatts.\n"
)
SEED = "innocare-mesutoclax-btd.txt"
SLOW = "Tell me in detail: what is mesutoclax?"  # about six seconds of streaming


def _command(base: Path, port: int) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "tests" / "ui_fake_server.py"),
        "--port",
        str(port),
        "--seeds",
        str(base / "seeds"),
        "--index-dir",
        str(base / "index"),
        "--delay",
        "0.02",
    ]


def _seeds(base: Path) -> None:
    seeds = base / "seeds"
    seeds.mkdir(parents=True, exist_ok=True)
    (seeds / SEED).write_bytes((ROOT / "seeds" / SEED).read_bytes())
    (seeds / "zorblax-notes.txt").write_text(ZORBLAX, encoding="utf-8")


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("ui-chat")
    _seeds(base)
    port = free_port()
    server = start_server(_command(base, port), base / "server.log", base / "index", port, timeout=120)
    yield server
    stop_server(server.process)


MARK_IN_VIEW = """() => {
  const box = document.querySelector('#qa-viewer-doc .qa-doc-text').getBoundingClientRect();
  const mark = document.querySelector('#qa-viewer-doc mark.qa-doc-mark').getBoundingClientRect();
  return mark.top >= box.top && mark.bottom <= box.bottom;
}"""


def start_asking(browser_page: Any, question: str) -> None:
    """Type ``question`` and press Ask, without waiting for the answer."""
    browser_page.fill("#qa-question textarea", question)
    browser_page.click("#qa-ask")


def wait_finished(browser_page: Any, count: int, timeout_s: float = 60) -> None:
    browser_page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length >= n", arg=[FINISHED, count], timeout=timeout_s * 1000
    )


def user_questions(browser_page: Any) -> list[str]:
    return [t.strip() for t in browser_page.locator("#qa-chat .qa-question").all_inner_texts()]


# --------------------------------------------------------------------------- every answer, its own sources


@needs_chromium
def test_an_earlier_answers_citation_highlights_its_own_passage(chat_server: Server, page: Any) -> None:
    open_app(page, chat_server.url)
    first = ask(page, "Which agency granted the Breakthrough Therapy Designation?")
    second = ask(page, "Which company markets venetoclax?")
    first_quote = page.locator("#qa-chat .qa-final .qa-proof").first.inner_text()
    second_quote = page.locator("#qa-chat .qa-final .qa-proof").last.inner_text()
    assert first_quote != second_quote and "[1]" in first.text and "[1]" in second.text
    assert page.locator("#qa-sources #sources-1").is_visible()  # the latest answer's sources at first
    assert not page.locator("#qa-sources #sources-0").is_visible()

    page.locator("#qa-chat .qa-final").first.locator(".qa-text a.qa-cite").first.click()
    page.wait_for_selector("#src-0-1.qa-active")
    assert page.locator("#qa-sources #sources-0").is_visible()
    assert not page.locator("#qa-sources #sources-1").is_visible()
    marked = page.locator("#src-0-1 mark").inner_text()
    assert marked.strip() and " ".join(marked.split()) in " ".join(first_quote.split())  # its own passage
    assert " ".join(marked.split()) not in " ".join(second_quote.split())
    assert page.url.rstrip("/") == chat_server.url.rstrip("/") and len(page.context.pages) == 1
    page.locator("#qa-chat .qa-question").first.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    shot(page, "chat-earlier-citation.png", folder=SCREENSHOTS, full_page=False)

    page.locator("#qa-chat .qa-final").last.locator(".qa-show-sources").click()  # "1 source" shows them too
    page.wait_for_selector("#qa-sources #sources-1", state="visible")
    assert not page.js_errors


@needs_chromium
def test_a_source_opens_the_whole_document_at_the_cited_span(chat_server: Server, page: Any) -> None:
    open_app(page, chat_server.url)
    ask(page, "Which company markets venetoclax?")  # cites a sentence from the middle of the article
    quote = page.locator("#qa-sources .qa-shown .qa-source mark").first.inner_text()
    page.locator("#qa-sources .qa-shown .qa-open-doc").first.click()
    page.wait_for_selector("#qa-viewer-doc mark.qa-doc-mark")
    assert page.locator("#qa-viewer-doc mark.qa-doc-mark").inner_text() == quote
    text = page.locator("#qa-viewer-doc .qa-doc-text").inner_text()
    seed = (ROOT / "seeds" / SEED).read_text(encoding="utf-8")
    assert len(text) > 0.9 * len(seed.strip())  # the whole document, not a window around the quote
    page.wait_for_function(MARK_IN_VIEW)  # scrolled so that the cited span is in view
    assert page.evaluate("() => document.querySelector('#qa-viewer-doc .qa-doc-text').scrollTop") > 0
    shot(page, "chat-document-viewer.png", folder=SCREENSHOTS, full_page=False)

    page.click("#qa-new-chat")  # (the fake would read the next question as a follow-up of the first)
    page.wait_for_function("() => !document.querySelector('#qa-chat .qa-final')")
    ask(page, "Which agency granted the Breakthrough Therapy Designation?")  # cites the first line
    page.locator("#qa-sources .qa-shown .qa-open-doc").first.click()
    page.wait_for_function("() => document.querySelector('#qa-viewer-doc .qa-doc-text').scrollTop === 0")
    page.wait_for_function(MARK_IN_VIEW)
    assert "InnoCare’s Mesutoclax Granted" in page.locator("#qa-viewer-doc mark.qa-doc-mark").inner_text()
    page.click("#qa-viewer-close")
    page.wait_for_selector("#qa-viewer-doc", state="hidden")


# --------------------------------------------------------------------------- stop, queue, regenerate


@needs_chromium
def test_a_second_question_asked_during_streaming_is_queued_and_answered(chat_server: Server, page: Any) -> None:
    open_app(page, chat_server.url)
    start_asking(page, SLOW)
    page.wait_for_selector("#qa-chat .qa-drafting")
    start_asking(page, "Which company markets venetoclax?")
    page.wait_for_selector("#qa-chat .qa-waiting")
    assert user_questions(page) == [SLOW, "Which company markets venetoclax?"]  # the first turn stays in view
    assert "Queued (next)" in page.locator("#qa-chat .qa-waiting").inner_text()
    assert page.locator("#qa-chat .qa-streaming").count() == 1  # the first is still being written
    assert page.locator("#qa-question textarea").input_value() == ""  # taken, not lost
    shot(page, "chat-queued-question.png", folder=SCREENSHOTS, full_page=False)
    wait_finished(page, 2)
    finals = page.locator("#qa-chat .qa-final").all_inner_texts()
    assert f"(You asked: {SLOW})" in finals[0]
    assert "(You asked: Which company markets venetoclax?)" in finals[1]
    assert page.locator("#qa-chat .qa-waiting, #qa-chat .qa-streaming").count() == 0
    assert user_questions(page) == [SLOW, "Which company markets venetoclax?"]


@needs_chromium
def test_stop_stops_the_answer_being_written(chat_server: Server, page: Any) -> None:
    open_app(page, chat_server.url)
    assert page.locator("#qa-stop").is_disabled()
    start_asking(page, SLOW)
    page.wait_for_selector("#qa-chat .qa-drafting")
    page.wait_for_function("() => !document.querySelector('#qa-stop').disabled")
    draft = page.locator("#qa-chat .qa-draft").inner_text()
    page.click("#qa-stop")
    page.wait_for_selector("#qa-chat .qa-stopped")
    assert page.locator("#qa-chat .qa-streaming").count() == 0
    time.sleep(1.5)  # the answer would have gone on streaming for seconds
    assert page.locator(FINISHED).count() == 0 and page.locator("#qa-chat .qa-streaming").count() == 0
    assert "Stopped before an answer was checked against the documents." in page.locator("#qa-chat").inner_text()
    assert draft.strip() and draft.strip().split()[0] not in page.locator("#qa-chat .qa-stopped").inner_text()
    assert page.locator("#qa-stop").is_disabled() and page.locator("#qa-regenerate").is_enabled()
    shot(page, "chat-stopped.png", folder=SCREENSHOTS, full_page=False)
    result = ask(page, "Which company markets venetoclax?")  # the assistant is free again
    assert "(You asked: Which company markets venetoclax?)" in result.text


@needs_chromium
def test_regenerate_replaces_the_last_answer(chat_server: Server, page: Any) -> None:
    open_app(page, chat_server.url)
    ask(page, "Which agency granted the Breakthrough Therapy Designation?")
    ask(page, "Please explode now")
    assert page.locator("#qa-chat .qa-error").count() == 1
    page.click("#qa-regenerate")
    page.wait_for_function("() => !document.querySelector('#qa-chat .qa-error')")  # the old reply is gone
    wait_finished(page, 2)
    assert user_questions(page) == ["Which agency granted the Breakthrough Therapy Designation?", "Please explode now"]
    assert page.locator("#qa-chat .qa-error").count() == 1  # asked again, in its place (it fails again)
    assert page.locator("#qa-chat .qa-final").count() == 1

    page.fill("#qa-question textarea", "")
    ask(page, "Which company markets venetoclax?")
    page.click("#qa-regenerate")
    page.wait_for_function("() => document.querySelectorAll('#qa-chat .qa-final').length === 1")
    wait_finished(page, 3)
    finals = page.locator("#qa-chat .qa-final").all_inner_texts()
    assert len(finals) == 2 and "(You asked: Which company markets venetoclax?)" in finals[1]
    assert len(user_questions(page)) == 3


# --------------------------------------------------------------------------- plain text and honest drafts


@needs_chromium
def test_copy_gives_plain_text_with_markers(chat_server: Server, page: Any) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=chat_server.url.rstrip("/"))
    open_app(page, chat_server.url)
    result = ask(page, "Which agency granted the Breakthrough Therapy Designation?")
    bot = page.locator('#qa-chat [aria-label^="bot\'s message"]').last
    bot.hover()
    page.locator("#qa-chat button[aria-label='Copy message']").last.click()
    page.wait_for_timeout(300)
    copied = page.evaluate("() => navigator.clipboard.readText()")
    answer_line = result.text.splitlines()[0]
    assert copied.startswith(answer_line) and "[1]" in copied.splitlines()[0]
    assert "Sources:\n[1] " in copied and f"({SEED}): “" in copied
    assert "<" not in copied and "qa-" not in copied and "href" not in copied
    label = bot.get_attribute("aria-label")
    assert label.startswith("bot's message: ") and "<" not in label and "[1]" in label
    page.locator("#qa-chat button[aria-label='Copy conversation']").click()
    page.wait_for_timeout(300)
    everything = page.evaluate("() => navigator.clipboard.readText()")
    assert "Which agency granted the Breakthrough Therapy Designation?" in everything and "<" not in everything
    assert copied in everything


@needs_chromium
def test_raw_model_text_streams_as_a_draft_then_gives_way_to_the_refusal(chat_server: Server, page: Any) -> None:
    open_app(page, chat_server.url)
    start_asking(page, "Please refuse, in detail: what is the airspeed of a swallow?")
    page.wait_for_function("() => (document.querySelector('#qa-chat .qa-draft') || {}).textContent?.includes('[3]')")
    assert page.locator("#qa-chat .qa-drafting").text_content() == "Drafting: not yet checked against the documents…"
    assert page.locator("#qa-chat .qa-draft a").count() == 0  # a raw marker is not a link
    shot(page, "chat-drafting.png", folder=SCREENSHOTS, full_page=False)
    wait_finished(page, 1)
    chat = page.locator("#qa-chat").inner_text()
    assert "Not answered from the documents" in chat
    assert "NOT FOUND" not in chat and "[3]" not in chat and "文档" not in chat  # the draft was replaced


# --------------------------------------------------------------------------- saved conversations and scope


@needs_chromium
def test_conversations_are_saved_renamed_exported_and_reopened_after_a_reload(chat_server: Server, page: Any) -> None:
    open_app(page, chat_server.url)
    ask(page, "Which agency granted the Breakthrough Therapy Designation?")
    page.fill("#qa-conv-title textarea, #qa-conv-title input", "Mesutoclax approval")
    page.click("#qa-rename")
    page.wait_for_selector("#qa-conversations label:has-text('Mesutoclax approval')")
    page.reload()
    open_app(page, chat_server.url)
    page.wait_for_selector("#qa-chat .qa-final")
    assert user_questions(page) == ["Which agency granted the Breakthrough Therapy Designation?"]
    assert page.locator("#qa-conversations input:checked").count() == 1
    with page.expect_download() as download_info:
        page.click("#qa-export")
        page.locator("#qa-export-file a").first.click()
    markdown = Path(download_info.value.path()).read_text(encoding="utf-8")
    assert markdown.startswith("# Mesutoclax approval\n")
    assert "## 1. Which agency granted the Breakthrough Therapy Designation?" in markdown
    assert "> [1] " in markdown and "“" in markdown  # the citation and its quote

    page.click("#qa-new-chat")
    page.wait_for_function("() => !document.querySelector('#qa-chat .qa-final')")
    page.locator("#qa-conversations label:has-text('Mesutoclax approval')").click()
    page.wait_for_selector("#qa-chat .qa-final")
    shot(page, "chat-saved-conversations.png", folder=SCREENSHOTS, full_page=False)
    page.click("#qa-delete")
    page.click("#qa-delete-yes")
    page.wait_for_function("() => !document.querySelector('#qa-chat .qa-final')")
    assert page.locator("#qa-conversations label:has-text('Mesutoclax approval')").count() == 0


@needs_chromium
def test_a_question_being_answered_during_a_reload_is_answered_after_it(chat_server: Server, page: Any) -> None:
    open_app(page, chat_server.url)
    start_asking(page, SLOW)
    page.wait_for_selector("#qa-chat .qa-drafting")
    page.reload()  # the page goes away mid-answer: the question goes back to the head of its queue
    open_app(page, chat_server.url)
    wait_finished(page, 1)
    assert user_questions(page) == [SLOW]
    assert f"(You asked: {SLOW})" in page.locator("#qa-chat .qa-final").inner_text()


@needs_chromium
def test_a_conversation_survives_a_server_restart(browser: Any, tmp_path: Path) -> None:
    _seeds(tmp_path)
    port = free_port()
    server = start_server(_command(tmp_path, port), tmp_path / "one.log", tmp_path / "index", port, timeout=120)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        open_app(page, server.url)
        ask(page, "Which company markets venetoclax?")
        stop_server(server.process)
        server = start_server(_command(tmp_path, port), tmp_path / "two.log", tmp_path / "index", port, timeout=120)
        page.reload()
        open_app(page, server.url)
        page.wait_for_selector("#qa-chat .qa-final")  # reopened by itself: same browser, same store
        assert user_questions(page) == ["Which company markets venetoclax?"]
        assert "(You asked: Which company markets venetoclax?)" in page.locator("#qa-chat .qa-final").inner_text()
    finally:
        context.close()
        stop_server(server.process)


@needs_chromium
def test_a_chat_limited_to_chosen_documents_searches_only_those(chat_server: Server, page: Any) -> None:
    open_app(page, chat_server.url)
    question = "Where was the zorblax reactor commissioned?"
    page.locator("#qa-scope input").click()
    page.get_by_role("option", name=SEED).click()
    page.keyboard.press("Escape")
    scoped = ask(page, question)
    assert "Not answered from the documents" in scoped.text  # the reactor note is outside the scope
    assert "zorblax-notes.txt" not in page.locator("#qa-sources").inner_text()
    shot(page, "chat-scoped-to-documents.png", folder=SCREENSHOTS, full_page=False)
    page.locator("#qa-scope .token-remove, #qa-scope [aria-label^='Remove']").first.click()
    unscoped = ask(page, "Where was the zorblax reactor commissioned, then?")
    assert "Tromsø" in unscoped.text
    assert "zorblax-notes.txt" in page.locator("#qa-sources .qa-shown").inner_text()
