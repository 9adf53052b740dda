"""Fast tests of the UI's pure helpers (no browser, no server)."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Any

import pytest

from qa.index import BuildReport, DocInfo
from qa.types import Answer, Chunk, Citation, Passage, Span
from qa.ui import (
    ALLOWED_UPLOAD_EXTENSIONS,
    CONTEXT_CHARS,
    UploadRejected,
    document_rows,
    highlight_context,
    link_markers,
    render_answer_html,
    render_answer_sources,
    render_passages_html,
    render_sources_panel,
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


def citation(n: int = 1, *, start: int = START, end: int = END, quote: str = QUOTE, title: str = "Seed") -> Citation:
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
    in_turn = render_answer_html(answer("See [1]."), turn=3)
    assert '<a class="qa-cite" href="#src-3-1" data-src="1">[1]</a>' in in_turn  # the sources of answer 3
    assert '<a class="qa-show-sources" href="#sources-3">1 source</a>' in in_turn


def test_answer_html_shows_confidence_and_source_count() -> None:
    html_out = render_answer_html(answer(), seconds=2.345)
    assert "Confidence: 82% (high)" in html_out
    assert "1 source<" in html_out
    assert "2.3 s" in html_out
    assert '<span class="qa-time">under 0.1 s</span>' in render_answer_html(answer(), seconds=0.01)


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
    assert "I can&#x27;t answer that from the documents." in html_out  # no dead [1]: nothing is cited
    assert "Sure the documents don't answer this: 30%" in html_out
    assert "Confidence:" not in html_out and "qa-conf-high" not in html_out


def test_answer_html_shows_standalone_question_and_notes_escaped() -> None:
    html_out = render_answer_html(answer(standalone_question="What about <AML>?", notes=["trimmed <long> question"]))
    assert "Understood as: What about &lt;AML&gt;?" in html_out
    assert "Note: trimmed &lt;long&gt; question" in html_out


def test_streaming_html_escapes_partial_text() -> None:
    out = render_streaming_html("partial <img src=x onerror=alert(1)> [1]")
    assert "<img" not in out and "&lt;img" in out
    assert "qa-streaming" in out
    assert "href" not in out  # markers are linked only once verified
    assert "qa-status" not in out
    assert "Searching the documents" in render_streaming_html("")


def test_streamed_raw_text_is_marked_as_an_unchecked_draft() -> None:
    out = render_streaming_html("NOT FOUND [3] 文档中没有。")
    assert '<div class="qa-drafting">Drafting: not yet checked against the documents…</div>' in out
    assert '<div class="qa-text qa-draft">NOT FOUND [3] 文档中没有。<span class="qa-cursor">▍</span></div>' in out
    assert 'data-plain="Drafting an answer (not yet checked against the documents)…"' in out  # never copied as final
    assert "qa-final" not in out and "qa-drafting" not in render_streaming_html("")


# --------------------------------------------------------------------------- sources


def test_sources_highlight_exact_offsets_with_context() -> None:
    out = render_answer_sources(answer(), lambda doc_id: DOC, turn=2)
    assert 'id="src-2-1"' in out
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
    out = render_answer_sources(ans, lambda doc_id: DOC)
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

    out = render_answer_sources(answer(citations=[citation(quote="a <quote>")]), missing)
    assert "<mark>a &lt;quote&gt;</mark>" in out
    assert "source text unavailable" in out
    out_none = render_answer_sources(answer(citations=[citation(quote="q")]), None)
    assert "<mark>q</mark>" in out_none


def test_sources_one_entry_per_citation_number_in_order() -> None:
    ans = answer("A [2]. B [1].", citations=[citation(2), citation(1), citation(1)])
    out = render_answer_sources(ans, lambda doc_id: DOC)
    assert re.findall(r'id="src-0-(\d)"', out) == ["1", "2"]


def test_sources_placeholder_and_refusal() -> None:
    assert "appear here" in render_sources_panel([])
    refused = Answer(question="q", text="no", refused=True, refusal_reason="nothing <relevant>.")
    out = render_answer_sources(refused, lambda doc_id: DOC)
    assert "No sources cited: nothing &lt;relevant&gt;.</div>" in out  # one full stop, not two


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
    "name", ["../../etc/passwd", "evil.exe", "archive.txt.exe", "script.sh", "noext", "..", "", "x.xlsx", "x.doc"]
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


def test_document_rows_are_real_docinfo_sorted_by_id() -> None:
    rows = document_rows([DocInfo("b.txt", "B", 3, "/x/b.txt"), DocInfo("a.md", "", 1, "/x/a.md")])
    assert rows == [["a.md", "a.md", 1], ["b.txt", "B", 3]]  # an empty title shows the id
    assert document_rows([]) == []


# --------------------------------------------------------------------------- handlers (no server)
# (the chat's handlers are tested in tests/test_ui_chat.py)


def test_document_handlers_upload_list_and_remove(tmp_path: Path) -> None:
    gr = pytest.importorskip("gradio")
    from ui_fake_server import FakeAssistant

    from qa.ui import DocumentHandlers, _AssistantHolder

    seeds, incoming = tmp_path / "seeds", tmp_path / "incoming"
    seeds.mkdir()
    incoming.mkdir()
    seed = seeds / "known.md"
    seed.write_text("Known title\n\nA known seed document.\n", encoding="utf-8")
    holder = _AssistantHolder(FakeAssistant(seeds, delay=0.0), "accurate", None)
    docs = DocumentHandlers(holder, tmp_path / "up", 1)
    (incoming / "Reactor notes.txt").write_text("Reactor notes\n\nIt is in Tromsø.\n", encoding="utf-8")
    (incoming / "payload.exe").write_bytes(b"MZ")
    steps: list[str] = []
    status, table, choices, box = docs.upload(
        [str(incoming / "Reactor notes.txt"), str(incoming / "payload.exe")],
        lambda fraction, desc: steps.append(f"{fraction}:{desc}"),
    )
    assert status == (
        '<ul class="qa-upload-status"><li class="qa-upload-ok">Added Reactor_notes.txt (1 passage)</li>'
        '<li class="qa-upload-rejected">Refused: &#x27;payload.exe&#x27;: unsupported file type (.exe); '
        "allowed: .csv, .docx, .epub, .htm, .html, .md, .pdf, .pptx, .txt.</li></ul>"
    ), status
    assert steps == ["0.0:Checking 2 files", "0.0:Indexing Reactor_notes.txt (1 of 1)", "1.0:Done"]
    assert table == [["Reactor_notes.txt", "Reactor notes", 1], ["known.md", "Known title", 1]]
    assert choices == gr.update(choices=["Reactor_notes.txt", "known.md"], value=None) and box is None
    assert [p.name for p in (tmp_path / "up").iterdir()] == ["Reactor_notes.txt"]

    status, table, choices = docs.remove("Reactor_notes.txt")
    assert status == ('<div class="qa-upload-status qa-upload-ok">Removed Reactor_notes.txt from the index.</div>')
    assert table == [["known.md", "Known title", 1]]
    assert choices == gr.update(choices=["known.md"], value=None)
    assert not (tmp_path / "up" / "Reactor_notes.txt").exists()
    docs.remove("known.md")
    assert seed.is_file()  # only uploaded files are deleted, never a document's own source
    assert docs.list_documents() == ([], gr.update(choices=[], value=None))
    choose = '<div class="qa-upload-status">Choose a document to remove.</div>'
    assert docs.remove(None) == (choose, gr.skip(), gr.skip())
    assert docs.upload(None, lambda fraction, desc: steps.append(desc)) == (gr.skip(),) * 4


def test_fake_assistant_speaks_the_real_types(tmp_path: Path) -> None:
    from ui_fake_server import FakeAssistant

    fake = FakeAssistant(None, delay=0.0)
    doc = tmp_path / "a.txt"
    doc.write_text("Alpha title\n\nAlpha beta gamma.\n", encoding="utf-8")
    added = fake.add_documents([doc])
    assert type(added) is BuildReport
    assert (added.added, added.changed, added.chunks_added, added.chunks_total) == (["a.txt"], [], 1, 1)
    assert fake.index.documents() == [DocInfo("a.txt", "Alpha title", 1, str(doc))]
    missing = tmp_path / "missing.txt"
    again = fake.add_documents([doc, missing])
    assert (again.added, again.changed, [s[0] for s in again.skipped]) == ([], ["a.txt"], [str(missing)])
    assert fake.remove_documents(["a.txt", "nope"]) == BuildReport(removed=["a.txt"], chunks_total=0)
    *_, final = fake.ask_stream("Alpha?", history=[], top_k=None)
    assert type(final) is Answer and final.refused


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
    for _ in range(3):  # back and forth: each preset's assistant is built once and kept
        assert holder.get("accurate") is first and holder.get("fast") is fast
    assert built == ["fast"]
    with pytest.raises(ValueError, match="Unknown preset 'huge'"):
        holder.get("huge")
    assert built == ["fast"] and holder.get() is fast


def test_serve_binds_loopback_without_share_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
    assert seen["auth"] is None  # loopback: one person's tool, no login
    serve(
        load_settings(environ={}, paths={"index": tmp_path}, ui={"users": "alice:pw"}),
        host="0.0.0.0",
        port=8000,
        share=True,
        assistant=FakeAssistant(None),
    )
    assert (seen["server_name"], seen["server_port"], seen["share"]) == ("0.0.0.0", 8000, True)
    assert seen["auth"] == [("alice", "pw")]


# --------------------------------------------------------------------------- a crashing generator


def _ask_server(url: str, question: str) -> str:
    from gradio_client import Client

    result = Client(url, verbose=False).predict(question, 3, "accurate", api_name="/ask")
    return str(result[1][-1])


@pytest.mark.parametrize("how", ["segv", "sigkill"])
def test_server_survives_a_generator_crash_and_answers_the_next_question(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed_file: Path, how: str
) -> None:
    pytest.importorskip("gradio")
    import signal
    import socket
    import threading
    import time

    from qa.embedding import HashingEmbedder
    from qa.index import build_index
    from qa.pipeline import Assistant
    from qa.settings import load_settings
    from qa.ui import serve
    from qa.worker import WorkerGenerator

    trigger = tmp_path / "trigger"
    monkeypatch.setenv("QA_FAKE_TRIGGER", str(trigger))
    settings = load_settings(environ={}, paths={"index": tmp_path / "index", "cache": tmp_path / "cache"})
    build_index([seed_file], settings, HashingEmbedder(), progress=False)
    worker = WorkerGenerator(settings.generation, settings.paths.cache, factory="fakes:make_generator")
    assistant = Assistant(settings, embedder=HashingEmbedder(), generator=worker)
    assistant.warm_up()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo = serve(settings, port=port, assistant=assistant, prevent_thread_lock=True)
    url = f"http://127.0.0.1:{port}/"
    question = "Which agency granted the Breakthrough Therapy Designation to mesutoclax?"
    try:
        first_pid = worker.pid
        assert first_pid is not None  # warm_up() started the worker
        if how == "segv":
            trigger.write_text("segv")
            crashed = _ask_server(url, question)
        else:
            trigger.write_text("hang")
            replies: list[str] = []
            asking = threading.Thread(target=lambda: replies.append(_ask_server(url, question)))
            asking.start()
            deadline = time.monotonic() + 60
            while trigger.exists() and time.monotonic() < deadline:
                time.sleep(0.05)  # the worker deletes the trigger when it starts this answer
            time.sleep(0.3)
            os.kill(first_pid, signal.SIGKILL)
            asking.join(timeout=60)
            crashed = replies[0]
        expected = "SIGSEGV" if how == "segv" else "SIGKILL"
        assert f"The generator stopped unexpectedly (signal {expected}) while answering" in crashed
        assert "qa-error" in crashed
        answered = _ask_server(url, question)
        assert "qa-error" not in answered and "qa-final" in answered
        assert '<a class="qa-cite" href="#src-0-1" data-src="1">[1]</a>' in answered
        assert worker.pid not in (None, first_pid) and worker.restarts == 1
    finally:
        demo.close()
        worker.close()


def test_answer_html_shows_the_proving_sentence_with_the_short_phrase_marked() -> None:
    at = QUOTE.index("NMPA")
    short = Span("NMPA", "seed.txt", START + at, START + at + 4, 1)
    html_out = render_answer_html(answer("The NMPA granted it [1].", short=short))
    assert html_out.index('<div class="qa-short">NMPA</div>') < html_out.index('class="qa-text"')  # phrase first
    proof = html_out[html_out.index('class="qa-proof"') :]
    assert "“The <mark>NMPA</mark> granted Breakthrough Therapy Designation to mesutoclax.”" in proof
    assert 'href="#src-1"' in proof
    assert "<mark>" not in render_answer_html(answer("NMPA [1]"))
    assert "qa-proof" not in render_answer_html(answer("NMPA", citations=[]))


def _post_json(url: str, payload: dict[str, Any]) -> int:
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_a_server_with_users_refuses_anonymous_document_changes_over_http(tmp_path: Path) -> None:
    """Drive the real server as an anonymous client: the hidden list and remove handlers are posted
    to the queue directly (as an attacker would, not through the page); nothing changes. A logged-in
    client still gets answers."""
    pytest.importorskip("gradio")
    import socket
    import time

    from gradio_client import Client
    from ui_fake_server import FakeAssistant

    from qa.settings import load_settings
    from qa.ui import serve

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "known.md").write_text("Known title\n\nThe CDE granted the designation.\n", encoding="utf-8")
    fake = FakeAssistant(seeds, delay=0.0)
    settings = load_settings(environ={}, paths={"index": tmp_path / "index"}, ui={"users": "alice:s3cret"})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo = serve(settings, port=port, assistant=fake, prevent_thread_lock=True)
    url = f"http://127.0.0.1:{port}"
    try:
        names = [d["api_name"] for d in demo.config["dependencies"]]
        for name, data in (("list_documents", []), ("remove", ["known.md"])):
            status = _post_json(
                f"{url}/gradio_api/queue/join",
                {"fn_index": names.index(name), "data": data, "session_hash": "anon", "trigger_id": None},
            )
            assert status in (401, 403), (name, status)
        time.sleep(0.5)
        assert [d.doc_id for d in fake.index.documents()] == ["known.md"]
        with pytest.raises(Exception):  # noqa: B017 - gradio_client raises its own error types
            Client(url, verbose=False)
        client = Client(url, auth=("alice", "s3cret"), verbose=False)
        reply = client.predict("Who granted the designation?", 3, "accurate", api_name="/ask")
        assert "qa-final" in str(reply[1][-1])
    finally:
        demo.close()


def test_document_changes_are_refused_by_the_handlers_without_a_logged_in_user(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    from ui_fake_server import FakeAssistant

    from qa.access import AccessPolicy
    from qa.ui import DocumentHandlers, _AssistantHolder

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "known.md").write_text("Known title\n\nA known seed document.\n", encoding="utf-8")
    upload = tmp_path / "new.txt"
    upload.write_text("New\n\nA new document.\n", encoding="utf-8")
    fake = FakeAssistant(seeds, delay=0.0)
    holder = _AssistantHolder(fake, "accurate", None)
    for policy, user in ((AccessPolicy((("alice", "pw"),), exposed=True), None), (AccessPolicy(exposed=True), "x")):
        docs = DocumentHandlers(holder, tmp_path / "up", 1, policy)
        status, *_ = docs.remove("known.md", username=user)
        assert "qa-upload-rejected" in status
        status, *_ = docs.upload([str(upload)], lambda fraction, desc: None, username=user)
        assert "qa-upload-rejected" in status
    assert [d.doc_id for d in fake.index.documents()] == ["known.md"]
    team = DocumentHandlers(holder, tmp_path / "up", 1, AccessPolicy((("alice", "pw"),), exposed=True))
    status, *_ = team.remove("known.md", username="alice")
    assert "Removed known.md" in status and fake.index.documents() == []


def test_serve_refuses_an_exposed_host_without_users_before_loading_anything(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    from qa.access import AccessError
    from qa.settings import load_settings
    from qa.ui import serve

    class Unloadable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError("the assistant was used before the refusal")

    settings = load_settings(environ={}, paths={"index": tmp_path / "index"})
    with pytest.raises(AccessError, match="--no-auth"):
        serve(settings, host="0.0.0.0", port=1, assistant=Unloadable())  # type: ignore[arg-type]
