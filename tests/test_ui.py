"""Fast tests of the UI's pure helpers (no browser, no server)."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Any

import pytest

from qa.types import Answer, Chunk, Citation, Passage
from qa.ui import (
    ALLOWED_UPLOAD_EXTENSIONS,
    CONTEXT_CHARS,
    UploadRejected,
    chat_messages,
    document_rows,
    highlight_context,
    history_pairs,
    link_markers,
    render_answer_html,
    render_passages_html,
    render_sources_html,
    render_streaming_html,
    sanitize_filename,
    save_upload,
    uploaded_file,
    validate_upload,
)

DOC = (
    "Intro paragraph. " * 40
    + "The NMPA granted Breakthrough Therapy Designation to mesutoclax. "
    + "Closing words <script>alert(1)</script> & more. " * 20
)
QUOTE = "The NMPA granted Breakthrough Therapy Designation to mesutoclax."
START = DOC.index(QUOTE)
END = START + len(QUOTE)


def citation(
    n: int = 1, *, start: int = START, end: int = END, quote: str = QUOTE, title: str = "Seed"
) -> Citation:
    return Citation(
        n=n,
        doc_id="seed.txt",
        title=title,
        chunk_id="seed.txt#0",
        start=start,
        end=end,
        quote=quote,
        support=0.9,
    )


def answer(text: str = "The NMPA granted it [1].", **kw: Any) -> Answer:
    kw.setdefault("citations", [citation()])
    kw.setdefault("confidence", 0.82)
    return Answer(question="Which agency?", text=text, **kw)


def passage(text: str = "A <b>bold</b> passage & more", title: str = "T<i>itle") -> Passage:
    chunk = Chunk(id="d#0", doc_id="d.txt", title=title, text=text, start=0, end=len(text), ordinal=0, page=2)
    return Passage(chunk=chunk, score=0.0325, dense_score=0.61)


# --------------------------------------------------------------------------- markers


def test_link_markers_links_valid_numbers_to_source_anchors() -> None:
    out = link_markers("Fact one [1]. Fact two [2].", {1, 2})
    assert out.count('class="qa-cite"') == 2
    assert 'href="#src-1"' in out and 'href="#src-2"' in out


def test_link_markers_splits_grouped_markers() -> None:
    out = link_markers("Both [1, 2].", {1, 2})
    assert re.findall(r'href="#src-(\d)"', out) == ["1", "2"]


def test_link_markers_leaves_unverified_numbers_as_text() -> None:
    out = link_markers("Claim [3].", {1})
    assert out == "Claim [3]."
    assert "href" not in link_markers("[7] and [x]", {1})


def test_link_markers_without_valid_set_links_everything() -> None:
    assert 'href="#src-9"' in link_markers("x [9]")


# --------------------------------------------------------------------------- answers


def test_answer_html_escapes_text_and_links_markers() -> None:
    html_out = render_answer_html(answer("Use <script>alert(1)</script> & see [1]."))
    assert "<script>" not in html_out
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; see" in html_out
    assert 'href="#src-1"' in html_out
    assert 'class="qa-answer qa-final"' in html_out


def test_answer_html_shows_confidence_and_source_count() -> None:
    html_out = render_answer_html(answer(), seconds=2.345)
    assert "Confidence: 82% (high)" in html_out
    assert "1 source<" in html_out
    assert "2.3 s" in html_out


def test_answer_html_is_one_html_block_for_markdown() -> None:
    # A blank line would end the HTML block and let markdown rewrite the rest.
    html_out = render_answer_html(answer("Line one [1].\n\nLine two."))
    assert "\n" not in html_out
    assert "Line one" in html_out and "<br><br>Line two" in html_out


def test_refusal_looks_different_and_shows_reason() -> None:
    refused = Answer(
        question="q",
        text="I can't answer that from the documents [1].",
        refused=True,
        confidence=0.3,
        refusal_reason="No passage is <relevant>.",
    )
    html_out = render_answer_html(refused)
    assert 'class="qa-refusal"' in html_out and "qa-answer" not in html_out
    assert "qa-refusal-icon" in html_out
    assert "Reason: No passage is &lt;relevant&gt;." in html_out
    assert "qa-cite" not in html_out
    assert "Confidence: 30% (low)" in html_out


def test_answer_html_shows_standalone_question_and_notes_escaped() -> None:
    ans = answer(standalone_question="What about <AML>?")
    ans.notes = ["trimmed <long> question"]
    html_out = render_answer_html(ans)
    assert "Understood as: What about &lt;AML&gt;?" in html_out
    assert "Note: trimmed &lt;long&gt; question" in html_out


def test_streaming_html_escapes_partial_text() -> None:
    out = render_streaming_html("partial <img src=x onerror=alert(1)> [1]")
    assert "<img" not in out and "&lt;img" in out
    assert "qa-streaming" in out
    assert "href" not in out  # markers are linked only once verified
    assert "qa-status" not in out
    assert "Searching the documents" in render_streaming_html("")


# --------------------------------------------------------------------------- sources


def test_sources_highlight_exact_offsets_with_context() -> None:
    out = render_sources_html(answer(), lambda doc_id: DOC)
    assert 'id="src-1"' in out
    marked = re.findall(r"<mark>(.*?)</mark>", out)
    assert marked == [QUOTE]
    body = re.search(r'<blockquote class="qa-source-text">(.*?)</blockquote>', out, re.S)
    assert body is not None
    visible = html.unescape(re.sub(r"<[^>]+>", "", body.group(1)))
    before, after = visible.split(QUOTE)
    assert before.startswith("… ") and after.endswith(" …")
    assert CONTEXT_CHARS - 30 < len(before) <= CONTEXT_CHARS + 2
    assert CONTEXT_CHARS - 30 < len(after) <= CONTEXT_CHARS + 2
    assert (before[2:] + QUOTE + after[:-2]) in DOC


def test_sources_escape_document_text_and_title() -> None:
    ans = answer(citations=[citation(title="<img src=x onerror=alert(1)>")])
    out = render_sources_html(ans, lambda doc_id: DOC)
    assert "<script>" not in out and "<img" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out


def test_highlight_marks_offsets_at_document_edges() -> None:
    text = "Alpha beta gamma."
    assert highlight_context(text, 0, 5, "Alpha") == "<mark>Alpha</mark> beta gamma."
    assert highlight_context(text, 11, 17, "gamma.") == "Alpha beta <mark>gamma.</mark>"


def test_highlight_falls_back_to_quote_search_when_offsets_are_bad() -> None:
    out = highlight_context(DOC, 10**9, 10**9 + 5, QUOTE)
    assert re.findall(r"<mark>(.*?)</mark>", out) == [QUOTE]


def test_sources_degrade_when_document_is_unavailable() -> None:
    def missing(doc_id: str) -> str:
        raise KeyError(doc_id)

    out = render_sources_html(answer(citations=[citation(quote="a <quote>")]), missing)
    assert "<mark>a &lt;quote&gt;</mark>" in out
    assert "source text unavailable" in out
    out_none = render_sources_html(answer(citations=[citation(quote="q")]), None)
    assert "<mark>q</mark>" in out_none


def test_sources_one_entry_per_citation_number_in_order() -> None:
    ans = answer("A [2]. B [1].", citations=[citation(2), citation(1), citation(1)])
    out = render_sources_html(ans, lambda doc_id: DOC)
    assert re.findall(r'id="src-(\d)"', out) == ["1", "2"]


def test_sources_placeholder_and_refusal() -> None:
    assert "appear here" in render_sources_html(None)
    refused = Answer(question="q", text="no", refused=True, refusal_reason="nothing <relevant>")
    out = render_sources_html(refused, lambda doc_id: DOC)
    assert "No sources cited: nothing &lt;relevant&gt;." in out


def test_passages_are_escaped_with_title_and_scores() -> None:
    out = render_passages_html([passage()])
    assert "<b>" not in out and "&lt;b&gt;bold&lt;/b&gt; passage &amp; more" in out
    assert "T&lt;i&gt;itle" in out
    assert "score 0.0325" in out and "cosine 0.610" in out and "page 2" in out
    assert "No passages" in render_passages_html([])


# --------------------------------------------------------------------------- uploads


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("notes.txt", "notes.txt"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\system32\\evil.md", "evil.md"),
        ("/abs/path/Report (final) v2.PDF", "Report_final_v2.pdf"),
        (".hidden.html", "hidden.html"),
        ("..txt", "upload.txt"),
        ("a;rm -rf $HOME`.md", "a_rm_-rf_HOME_.md"),
        ("naïve café.txt", "na_ve_caf_.txt"),
    ],
)
def test_sanitize_filename_keeps_a_safe_basename(name: str, expected: str) -> None:
    assert sanitize_filename(name) == expected


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "evil.exe", "archive.txt.exe", "script.sh", "noext", "..", "", "x.docx"]
)
def test_sanitize_filename_rejects_other_types_with_a_clear_message(name: str) -> None:
    with pytest.raises(UploadRejected, match="unsupported file type") as info:
        sanitize_filename(name)
    for ext in ALLOWED_UPLOAD_EXTENSIONS:
        assert ext in str(info.value)


def test_sanitize_filename_caps_length() -> None:
    out = sanitize_filename("x" * 500 + ".md")
    assert out.endswith(".md") and len(out) <= 120


def test_validate_upload_enforces_size_cap_and_rejects_empty() -> None:
    assert validate_upload("a.txt", 1024, max_mb=1) == "a.txt"
    assert validate_upload("a.txt", 1024 * 1024, max_mb=1) == "a.txt"
    with pytest.raises(UploadRejected, match=r"over the 1 MB upload limit"):
        validate_upload("a.txt", 1024 * 1024 + 1, max_mb=1)
    with pytest.raises(UploadRejected, match="empty"):
        validate_upload("a.txt", 0, max_mb=1)
    with pytest.raises(UploadRejected, match="unsupported"):
        validate_upload("a.exe", 10, max_mb=1)


def test_save_upload_stays_inside_the_upload_folder(tmp_path: Path) -> None:
    src = tmp_path / "incoming" / "tmp123"
    src.parent.mkdir()
    src.write_text("hello", encoding="utf-8")
    uploads = tmp_path / "index" / "uploads"
    saved = save_upload(src, uploads, max_mb=1, original_name="../../../outside.txt")
    assert saved == (uploads / "outside.txt").resolve()
    assert saved.read_text(encoding="utf-8") == "hello"
    assert not (tmp_path / "outside.txt").exists()
    assert [p.name for p in uploads.iterdir()] == ["outside.txt"]


def test_save_upload_refuses_oversized_file(tmp_path: Path) -> None:
    src = tmp_path / "big.txt"
    src.write_bytes(b"x" * (2 * 1024 * 1024))
    with pytest.raises(UploadRejected, match="upload limit"):
        save_upload(src, tmp_path / "uploads", max_mb=1)
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())


def test_uploaded_file_only_inside_upload_folder(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    inside = uploads / "a.txt"
    inside.write_text("x", encoding="utf-8")
    outside = tmp_path / "seed.txt"
    outside.write_text("x", encoding="utf-8")
    assert uploaded_file(str(inside), uploads) == inside.resolve()
    assert uploaded_file(str(outside), uploads) is None
    assert uploaded_file(str(uploads / ".." / "seed.txt"), uploads) is None
    assert uploaded_file(None, uploads) is None


# --------------------------------------------------------------------------- misc


def test_document_rows_accepts_docinfo_tuples_and_dicts() -> None:
    from typing import NamedTuple

    class DocInfo(NamedTuple):
        doc_id: str
        title: str
        n_chunks: int
        source: str

    rows = document_rows(
        [DocInfo("b.txt", "B", 3, "/x/b.txt"), {"id": "a.md", "title": "A", "chunk_count": 1}]
    )
    assert [(r.doc_id, r.title, r.chunks) for r in rows] == [("a.md", "A", 1), ("b.txt", "B", 3)]
    assert rows[1].source == "/x/b.txt"


def test_history_pairs_and_chat_messages() -> None:
    turns = [
        {"question": "Q1 <b>", "answer_text": "A1 [1]", "html": "<div>a1</div>"},
        {"question": "Q2", "answer_text": "", "html": "<div>err</div>"},
    ]
    assert history_pairs(turns) == [("Q1 <b>", "A1 [1]")]
    messages = chat_messages(turns)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert "Q1 &lt;b&gt;" in messages[0]["content"]
    assert messages[1]["content"] == "<div>a1</div>"


def test_build_app_wires_a_queue_with_the_concurrency_limit(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    from ui_fake_server import FakeAssistant

    from qa.settings import load_settings
    from qa.ui import build_app

    settings = load_settings(environ={}, paths={"index": tmp_path}, ui={"concurrency": 1})
    demo = build_app(FakeAssistant(None), settings, assistant_factory=lambda preset: FakeAssistant(None))
    assert demo._queue.default_concurrency_limit == 1
    names = {fn.api_name for fn in demo.fns.values()}
    assert "ask" in names


def test_preset_change_rebuilds_the_assistant_once() -> None:
    from ui_fake_server import FakeAssistant

    from qa.ui import _AssistantHolder

    built: list[str] = []

    def factory(preset: str) -> FakeAssistant:
        built.append(preset)
        return FakeAssistant(None)

    first = FakeAssistant(None)
    holder = _AssistantHolder(first, "accurate", factory)
    assert holder.get("accurate") is first and holder.get(None) is first
    fast = holder.get("fast")
    assert fast is not first and holder.get("fast") is fast
    assert built == ["fast"]


def test_serve_binds_loopback_without_share_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gr = pytest.importorskip("gradio")
    from ui_fake_server import FakeAssistant

    from qa.settings import load_settings
    from qa.ui import serve

    seen: dict[str, Any] = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: seen.update(kw))
    monkeypatch.delenv("GRADIO_ANALYTICS_ENABLED", raising=False)
    serve(load_settings(environ={}, paths={"index": tmp_path}), assistant=FakeAssistant(None))
    assert seen["server_name"] == "127.0.0.1" and seen["server_port"] == 7860
    assert seen["share"] is False
    assert seen["max_file_size"] == "20mb"
    assert ".qa-refusal" in seen["css"]
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    serve(
        load_settings(environ={}, paths={"index": tmp_path}),
        host="0.0.0.0",
        port=8000,
        share=True,
        assistant=FakeAssistant(None),
    )
    assert (seen["server_name"], seen["server_port"], seen["share"]) == ("0.0.0.0", 8000, True)
