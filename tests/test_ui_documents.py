"""The Documents tab without a browser: plain-language upload status, several files with progress, remove
after a confirmation, the picker's extension filter, and the notes under the question box."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qa.index import BuildReport
from qa.ingest import SUPPORTED_EXTENSIONS
from qa.ui_documents import (
    ALLOWED_UPLOAD_EXTENSIONS,
    FileStatus,
    confirm_prompt_html,
    file_status,
    report_notes,
    status_html,
    upload_label,
    uploaded_paths,
)

UPLOADS = Path("/srv/qa/index/uploads")


def test_the_upload_list_follows_what_ingest_reads() -> None:
    assert ALLOWED_UPLOAD_EXTENSIONS == SUPPORTED_EXTENSIONS
    assert {".docx", ".pptx", ".epub", ".csv"} <= set(ALLOWED_UPLOAD_EXTENSIONS)
    label = upload_label(20)
    assert label.startswith("Add documents, one or several at once (") and "up to 20 MB each" in label
    assert all(ext in label for ext in ALLOWED_UPLOAD_EXTENSIONS)


def test_each_file_gets_a_plain_line() -> None:
    path = UPLOADS / "venetoclax.txt"
    assert file_status(path, BuildReport(added=["venetoclax.txt"]), 24) == FileStatus(
        "added", "Added venetoclax.txt (24 passages)"
    )
    assert file_status(path, BuildReport(changed=["venetoclax.txt"]), 1).message == "Updated venetoclax.txt (1 passage)"
    unchanged = file_status(path, BuildReport(unchanged=["venetoclax.txt"]), 24)
    assert unchanged == FileStatus("unchanged", "Already indexed: venetoclax.txt (no change)") and unchanged.ok
    bad = UPLOADS / "broken.docx"
    skipped = BuildReport(skipped=[(str(bad), f"{bad}: cannot parse DOCX (is the file damaged?): Bad zip")])
    failed = file_status(bad, skipped, None)
    assert failed.message == "Could not add broken.docx: cannot parse DOCX (is the file damaged?): Bad zip"
    assert "/srv" not in failed.message and not failed.ok  # the server's folders are not shown
    assert file_status(bad, BuildReport(), None).message == "Could not add broken.docx: it was not indexed"


def test_the_status_escapes_names_and_says_what_else_happened() -> None:
    lines = [FileStatus("added", "Added <b>.txt (2 passages)"), FileStatus("refused", "Refused: 'x.exe': no")]
    assert status_html(lines) == (
        '<ul class="qa-upload-status"><li class="qa-upload-ok">Added &lt;b&gt;.txt (2 passages)</li>'
        '<li class="qa-upload-rejected">Refused: &#x27;x.exe&#x27;: no</li></ul>'
    )
    assert report_notes(BuildReport(full_rebuild_reason="no index yet")) == []
    notes = report_notes(BuildReport(full_rebuild_reason="settings changed", lost=[("old.txt", "/gone/old.txt")]))
    assert [n.message for n in notes] == [
        "The whole index was rebuilt (settings changed).",
        "Not restored, their files are gone: old.txt",
    ]


def test_the_raw_upload_payload_gives_the_cached_paths() -> None:
    payload = [{"path": "/tmp/gradio/a1/x.exe", "orig_name": "x.exe"}, {"path": "/tmp/gradio/b2/notes.txt"}]
    assert uploaded_paths(payload) == ["/tmp/gradio/a1/x.exe", "/tmp/gradio/b2/notes.txt"]  # each checked later
    assert uploaded_paths({"path": "/tmp/gradio/c3/one.md"}) == ["/tmp/gradio/c3/one.md"]
    assert uploaded_paths(None) == [] and uploaded_paths([]) == [] and uploaded_paths([{"url": "x"}]) == []


def test_the_confirmation_says_what_goes_and_what_stays() -> None:
    uploaded = confirm_prompt_html("a<b>.txt", uploaded=True)
    assert "Remove <b>a&lt;b&gt;.txt</b> from the index?" in uploaded and "uploaded file is deleted too" in uploaded
    assert "file on disk is kept" in confirm_prompt_html("seed.txt", uploaded=False)


# --------------------------------------------------------------------------- the handlers


def _handlers(tmp_path: Path) -> tuple[Any, Any]:
    from ui_fake_server import FakeAssistant

    from qa.ui import DocumentHandlers, _AssistantHolder

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "known.md").write_text("Known title\n\nA known seed document.\n", encoding="utf-8")
    fake = FakeAssistant(seeds, delay=0.0)
    return DocumentHandlers(_AssistantHolder(fake, "accurate", None), tmp_path / "up", 1), fake


def test_several_files_are_indexed_one_by_one_with_progress(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    from test_ingest_formats import make_docx

    docs, _fake = _handlers(tmp_path)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    notes = incoming / "reactor notes.txt"
    notes.write_text("Reactor notes\n\nThe reactor is in Tromsø.\n", encoding="utf-8")
    harbour = make_docx(incoming / "harbour.docx")
    broken = incoming / "broken.pptx"
    broken.write_bytes(b"PK\x03\x04 not a presentation")
    (incoming / "x.exe").write_bytes(b"MZ")
    steps: list[str] = []
    status, table, _choices, box = docs.upload(
        [str(p) for p in (notes, harbour, broken, incoming / "x.exe")],
        lambda fraction, desc: steps.append(f"{fraction:.2f}:{desc}"),
    )
    assert steps == [
        "0.00:Checking 4 files",
        "0.00:Indexing reactor_notes.txt (1 of 3)",
        "0.33:Indexing harbour.docx (2 of 3)",
        "0.67:Indexing broken.pptx (3 of 3)",
        "1.00:Done",
    ]
    lines = status.removeprefix('<ul class="qa-upload-status">').removesuffix("</ul>").split("</li>")[:-1]
    assert lines[0] == '<li class="qa-upload-ok">Added reactor_notes.txt (1 passage)'
    assert lines[1].startswith('<li class="qa-upload-ok">Added harbour.docx (') and "passage" in lines[1]
    assert lines[2].startswith('<li class="qa-upload-rejected">Could not add broken.pptx: cannot parse PPTX')
    assert str(tmp_path) not in lines[2]
    assert lines[3].startswith('<li class="qa-upload-rejected">Refused: &#x27;x.exe&#x27;: unsupported file type')
    assert [row[0] for row in table] == ["harbour.docx", "known.md", "reactor_notes.txt"] and box is None
    again, *_ = docs.upload([str(notes)], lambda fraction, desc: None)
    assert again == status_html([FileStatus("updated", "Updated reactor_notes.txt (1 passage)")])


def test_remove_asks_first_and_names_what_goes(tmp_path: Path) -> None:
    gr = pytest.importorskip("gradio")
    from qa.access import AccessPolicy
    from qa.ui import DocumentHandlers

    docs, fake = _handlers(tmp_path)
    upload = tmp_path / "mine.txt"
    upload.write_text("Mine\n\nMy own notes.\n", encoding="utf-8")
    docs.upload([str(upload)], lambda fraction, desc: None)
    assert docs.ask_to_remove(None) == (
        '<div class="qa-upload-status">Choose a document to remove.</div>',
        gr.update(visible=False),
        gr.skip(),
    )
    status, row, prompt = docs.ask_to_remove("mine.txt")
    assert (status, row) == ("", gr.update(visible=True)) and "uploaded file is deleted too" in prompt
    assert "file on disk is kept" in docs.ask_to_remove("known.md")[2]
    assert {d.doc_id for d in fake.index.documents()} == {"known.md", "mine.txt"}  # asking removed nothing
    read_only = DocumentHandlers(docs.holder, docs.upload_dir, 1, AccessPolicy(exposed=True))
    status, row, prompt = read_only.ask_to_remove("mine.txt", username=None)
    assert "qa-upload-rejected" in status and "read-only" in status  # told at once, not after confirming
    assert (row, prompt) == (gr.update(visible=False), gr.skip())


# --------------------------------------------------------------------------- the app


def test_the_picker_filters_and_the_ask_tab_shows_the_preset_and_the_language_hint(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    from ui_fake_server import FakeAssistant

    from qa.settings import load_settings
    from qa.ui import LANGUAGE_HINT, ask_notes_html, build_app

    settings = load_settings(environ={}, paths={"index": tmp_path}, preset="fast")
    demo = build_app(FakeAssistant(None), settings, assistant_factory=lambda preset: FakeAssistant(None))
    components = {c.get("props", {}).get("elem_id"): c["props"] for c in demo.config["components"]}
    assert components["qa-upload"]["file_types"] == list(ALLOWED_UPLOAD_EXTENSIONS)
    assert components["qa-upload"]["file_count"] == "multiple"
    assert components["qa-remove-confirm"]["visible"] is False
    assert components["qa-ask-notes"]["value"] == ask_notes_html("fast")
    assert "Preset: <b>fast</b> (smaller model, quicker), set in Settings" in ask_notes_html("fast")
    assert LANGUAGE_HINT in ask_notes_html("fast") and "Preset" not in ask_notes_html(None)
    names = {fn.api_name for fn in demo.fns.values()}
    assert {"remove", "ask_to_remove", "upload"} <= names


def test_the_footer_has_no_stray_settings_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gr = pytest.importorskip("gradio")
    from ui_fake_server import FakeAssistant

    from qa.settings import load_settings
    from qa.ui import serve

    seen: dict[str, Any] = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: seen.update(kw))
    serve(load_settings(environ={}, paths={"index": tmp_path}), assistant=FakeAssistant(None))
    assert seen["footer_links"] == []
    assert "#qa-remove-confirm" in seen["css"] and ".qa-ask-notes" in seen["css"]
