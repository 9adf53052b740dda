"""The Documents tab and the Ask tab's notes in headless Chromium, against the fake-backed server.

Remove asks before it deletes; several files go up at once, each with a plain status line (a Word file
among them, answered from afterwards); the file picker offers only the allowed types; the Ask tab
shows the active preset and that English questions work best, and a question in another language is
refused saying so. The harness (servers, browser, helpers) is tests/test_ui_browser.py's. Screenshots
go to docs/screenshots/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import test_ui_browser as harness
from test_ingest_formats import make_csv, make_docx
from test_ui_browser import SCREENSHOTS, Server, ask, needs_chromium, open_app, open_tab, shot, upload

from qa.ui_documents import ALLOWED_UPLOAD_EXTENSIONS

pytestmark = pytest.mark.browser

# The harness's fixtures: one fake-backed server for this module, one Chromium, a fresh page per test.
browser = harness.browser
fake_server = harness.fake_server
page = harness.page

STATUS = "#qa-upload-status .qa-upload-status"


def choose_for_removal(page: Any, doc_id: str) -> None:
    page.locator("#qa-remove-choice input").click()
    page.get_by_role("option", name=doc_id).click()


def status_lines(page: Any) -> list[str]:
    return [line.strip() for line in page.locator(f"{STATUS} li").all_inner_texts()]


@needs_chromium
def test_remove_asks_first_and_only_confirming_deletes(fake_server: Server, page: Any, tmp_path: Path) -> None:
    doc = tmp_path / "keep me.txt"
    doc.write_text("Keep me notes\n\nThe quillfeather archive opened in 1911.\n", encoding="utf-8")
    open_app(page, fake_server.url)
    assert "Added keep_me.txt" in upload(page, doc)
    saved = fake_server.index_dir / "uploads" / "keep_me.txt"
    page.wait_for_selector("#qa-docs :text('keep_me.txt')")

    choose_for_removal(page, "keep_me.txt")
    page.click("#qa-remove")  # one click only asks
    prompt = page.locator("#qa-remove-confirm")
    prompt.wait_for(state="visible")
    assert "Remove keep_me.txt from the index?" in prompt.inner_text()
    assert "uploaded file is deleted too" in prompt.inner_text()
    shot(page, "documents-confirm-remove.png", folder=SCREENSHOTS)
    page.wait_for_timeout(500)
    assert "keep_me.txt" in page.locator("#qa-docs").inner_text() and saved.is_file()

    page.click("#qa-remove-cancel")
    prompt.wait_for(state="hidden")
    assert "keep_me.txt" in page.locator("#qa-docs").inner_text() and saved.is_file()

    page.click("#qa-remove")
    prompt.wait_for(state="visible")
    page.click("#qa-remove-yes")
    page.wait_for_selector(f"{STATUS}:has-text('Removed keep_me.txt from the index.')")
    page.wait_for_function("() => !document.querySelector('#qa-docs').innerText.includes('keep_me.txt')")
    assert not prompt.is_visible() and not saved.exists()
    shot(page, "documents-removed.png", folder=SCREENSHOTS)
    assert not page.js_errors


@needs_chromium
def test_several_files_at_once_get_a_plain_line_each(fake_server: Server, page: Any, tmp_path: Path) -> None:
    notes = tmp_path / "venetoclax notes.txt"
    notes.write_text("Venetoclax notes\n\nVenetoclax is taken once a day with food.\n", encoding="utf-8")
    files = [notes, make_docx(tmp_path / "harbour.docx"), make_csv(tmp_path / "lights.csv")]
    broken = tmp_path / "broken.pptx"
    broken.write_bytes(b"PK\x03\x04 not a presentation")
    open_app(page, fake_server.url)
    open_tab(page, "Documents")
    page.set_input_files("#qa-upload input[type=file]", [str(p) for p in [*files, broken]])
    page.wait_for_selector(f"{STATUS} li >> nth=3", timeout=120_000)
    lines = status_lines(page)
    assert lines[0] == "Added venetoclax_notes.txt (1 passage)"
    assert lines[1].startswith("Added harbour.docx (") and lines[2].startswith("Added lights.csv (")
    assert "Could not add broken.pptx: cannot parse PPTX" in lines[3]
    assert not any(str(tmp_path) in line or "/uploads/" in line for line in lines)
    for name in ("venetoclax_notes.txt", "harbour.docx", "lights.csv"):
        page.wait_for_selector(f"#qa-docs :text('{name}')")
    shot(page, "documents-upload-several.png", folder=SCREENSHOTS)

    open_tab(page, "Ask")
    answer = ask(page, "Which engineer built the Kestrel Point lighthouse?")
    assert "Mirabel Okafor" in answer.text
    page.wait_for_selector("#qa-sources mark")
    sources = page.locator("#qa-sources").inner_text()
    assert "harbour.docx" in sources or "lights.csv" in sources  # both say who built it
    assert not page.js_errors


@needs_chromium
def test_the_file_picker_offers_only_the_allowed_types(fake_server: Server, page: Any) -> None:
    open_app(page, fake_server.url)
    open_tab(page, "Documents")
    picker = page.locator("#qa-upload input[type=file]")
    accept = picker.get_attribute("accept") or ""
    assert sorted(t.strip() for t in accept.split(",")) == sorted(ALLOWED_UPLOAD_EXTENSIONS)
    assert picker.get_attribute("multiple") is not None
    label = page.locator("#qa-upload").inner_text()
    assert "one or several at once" in label and ".docx" in label


@needs_chromium
def test_the_ask_tab_shows_the_preset_and_a_question_in_another_language_is_refused_honestly(
    fake_server: Server, page: Any
) -> None:
    open_app(page, fake_server.url)
    notes = page.locator("#qa-ask-notes")
    assert "Preset: accurate (larger model), set in Settings" in notes.inner_text()
    assert "Questions in English work best: the search model here reads English only." in notes.inner_text()
    assert "Settings" not in (page.locator("footer").all_inner_texts() or [""])[0]  # no stray footer link

    refused = ask(page, "哪个机构授予了突破性疗法认定？")
    assert "Not answered from the documents" in refused.text
    assert "Questions in English work best" in refused.text
    assert "No passage mentions" not in refused.text
    shot(page, "ask-language-notice.png", folder=SCREENSHOTS)

    open_tab(page, "Settings")
    page.get_by_label("fast").check()
    open_tab(page, "Ask")
    page.wait_for_selector("#qa-ask-notes :text('Preset: fast (smaller model, quicker)')")
    assert not page.js_errors
