"""Gradio chat UI: streamed answers with linked citations, a sources panel, and document management.

The pure helpers at the top (escaping, marker links, highlighting, upload-name checks) carry the
logic and are unit-tested without a browser. ``ChatHandlers`` and ``DocumentHandlers`` are the event
handlers, written against the ``AssistantLike`` protocol; ``build_app`` lays out the tabs and wires the
handlers to them, and ``serve`` launches the app on the loopback interface (no public share link unless
asked).

Every piece of document, passage, question or answer text is escaped with ``html.escape``
*before* any markup of ours is added, so a document containing ``<script>`` shows as text.
"""

from __future__ import annotations

import html
import logging
import re
import shutil
import threading
import time
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from qa.access import AccessPolicy
from qa.citations import MARKER, marker_numbers, strip_markers
from qa.types import Answer, Citation, Document, Passage

if TYPE_CHECKING:
    import gradio as gr

    from qa.index import BuildReport, DocInfo
    from qa.settings import Settings

log = logging.getLogger(__name__)

ALLOWED_UPLOAD_EXTENSIONS: tuple[str, ...] = (".txt", ".md", ".html", ".pdf")
EXAMPLE_QUESTIONS: tuple[str, ...] = (
    "Which agency granted the Breakthrough Therapy Designation?",
    "What is mesutoclax?",
    "Which company markets venetoclax?",
)
PRESET_CHOICES: tuple[str, ...] = ("fast", "accurate")
CONTEXT_CHARS = 300
_MAX_NAME_CHARS = 120


# --------------------------------------------------------------------------- what the UI needs


class IndexLike(Protocol):
    """The index as the UI reads it: the documents table and a document's text for the sources panel."""

    def documents(self) -> Sequence[DocInfo]: ...

    def get_document(self, doc_id: str) -> Document: ...


class AssistantLike(Protocol):
    """Exactly what the UI uses of ``qa.pipeline.Assistant`` (which satisfies it as is)."""

    @property
    def index(self) -> IndexLike: ...

    def ask_stream(
        self, question: str, *, history: Sequence[tuple[str, str]], top_k: int | None
    ) -> Iterator[str | Answer]: ...

    def add_documents(self, paths: Sequence[Path]) -> BuildReport: ...

    def remove_documents(self, doc_ids: Sequence[str]) -> BuildReport: ...


class ProgressLike(Protocol):
    """How the upload handler reports progress (``gr.Progress`` is one)."""

    def __call__(self, fraction: float, /, *, desc: str) -> object: ...


@dataclass(frozen=True)
class ChatTurn:
    """One question and its reply as shown; ``answer_text`` is empty when there was no answer."""

    question: str
    answer_text: str
    html: str


# --------------------------------------------------------------------------- pure helpers


def esc(text: object) -> str:
    """``html.escape`` for any value (quotes included)."""
    return html.escape("" if text is None else str(text), quote=True)


def _text_html(text: str) -> str:
    """Escape ``text`` and keep its line breaks, with no blank lines (one HTML block for markdown)."""
    escaped = esc(text.strip())
    return re.sub(r"\r?\n", "<br>", escaped)


def link_markers(escaped_text: str, valid: Collection[int] | None = None) -> str:
    """Turn each ``[n]`` (and ``[n, m]``) in already-escaped text into links to ``#src-n``.

    Numbers not in ``valid`` (when given) are left as plain text: a marker without a verified
    citation must not pretend to point somewhere.
    """

    def replace(match: re.Match[str]) -> str:
        numbers = marker_numbers(match.group(1))
        if valid is not None and not all(n in valid for n in numbers):
            return match.group(0)
        links = [f'<a class="qa-cite" href="#src-{n}" data-src="{n}">[{n}]</a>' for n in numbers]
        return "".join(links)

    return MARKER.sub(replace, escaped_text)


def confidence_label(confidence: float) -> str:
    if confidence >= 0.7:
        return "high"
    if confidence >= 0.4:
        return "medium"
    return "low"


def _confidence_html(confidence: float, *, refused: bool = False) -> str:
    """An answer's confidence; for a refusal, worded as what it is (how sure we are that the documents
    don't say), in a neutral colour, so that a sure refusal never reads as a green, sure answer."""
    pct = round(max(0.0, min(1.0, confidence)) * 100)
    if refused:
        return f'<span class="qa-confidence qa-conf-refusal">Sure the documents don\'t answer this: {pct}%</span>'
    level = confidence_label(confidence)
    return f'<span class="qa-confidence qa-conf-{level}">Confidence: {pct}% ({level})</span>'


def render_streaming_html(partial_text: str, *, status: str = "Searching the documents…") -> str:
    """The answer while it streams in (markers not yet verified, so not linked)."""
    status = "" if partial_text.strip() else f'<div class="qa-status">{esc(status)}</div>'
    return (
        f'<div class="qa-answer qa-streaming">{status}<div class="qa-text">{_text_html(partial_text)}'
        '<span class="qa-cursor">▍</span></div></div>'
    )


def render_answer_html(answer: Answer, *, seconds: float | None = None) -> str:
    """The final, verified answer (or refusal) as one chat message."""
    meta = [_confidence_html(answer.confidence, refused=answer.refused)]
    if seconds is not None:
        shown = f"{seconds:.1f} s" if seconds >= 0.05 else "under 0.1 s"  # never a "0.0 s"
        meta.append(f'<span class="qa-time">{shown}</span>')
    if answer.standalone_question and answer.standalone_question.strip() != answer.question.strip():
        meta.append(f'<span class="qa-standalone">Understood as: {esc(answer.standalone_question)}</span>')
    meta_html = '<div class="qa-meta">' + " · ".join(meta) + "</div>"
    meta_html += "".join(f'<div class="qa-note">Note: {esc(note)}</div>' for note in answer.notes)
    if answer.refused:
        reason = answer.refusal_reason or "The documents do not support an answer."
        return (
            '<div class="qa-refusal"><div class="qa-refusal-head"><span class="qa-refusal-icon">⚠️</span> '
            "Not answered from the documents</div>"
            f'<div class="qa-text">{_text_html(answer.text if answer.citations else strip_markers(answer.text))}</div>'
            f'<div class="qa-reason">Reason: {esc(reason)}</div>{meta_html}</div>'
        )
    valid = {c.n for c in answer.citations}
    count = len(valid)
    meta_html = meta_html.replace(
        '<div class="qa-meta">',
        f'<div class="qa-meta"><span class="qa-nsources">{count} source{"s" if count != 1 else ""}</span> · ',
        1,
    )
    text = link_markers(_text_html(answer.text), valid)
    short = f'<div class="qa-short">{esc(answer.short.text)}</div>' if answer.short else ""
    return (
        f'<div class="qa-answer qa-final">{short}<div class="qa-text">{text}</div>'
        f"{_proof_html(answer)}{meta_html}</div>"
    )


def _proof_html(answer: Answer) -> str:
    """The sentence that proves the short answer, quoted from its first citation, the phrase marked."""
    if not answer.citations:
        return ""
    citation = answer.citations[0]
    quote = " ".join(citation.quote.split())
    body = esc(quote)
    if answer.short is not None and answer.short.n == citation.n:
        at = answer.short.start - citation.start
        raw = citation.quote
        body = esc(" ".join(raw[:at].split())) + (" " if raw[:at][-1:].isspace() else "")
        body += f"<mark>{esc(answer.short.text)}</mark>"
        tail = raw[at + len(answer.short.text) :]
        body += (" " if tail[:1].isspace() else "") + esc(" ".join(tail.split()))
    return f'<div class="qa-proof">“{body}” {link_markers(f"[{citation.n}]", {citation.n})}</div>'


def render_error_html(message: str) -> str:
    return f'<div class="qa-error"><span class="qa-refusal-icon">❌</span> {esc(message)}</div>'


def highlight_context(doc_text: str | None, start: int, end: int, quote: str, *, context: int = CONTEXT_CHARS) -> str:
    """Escaped surrounding text with the cited span in ``<mark>``; degrades to the quote alone."""
    if doc_text:
        if not (0 <= start < end <= len(doc_text)):
            found = doc_text.find(quote) if quote else -1
            start, end = (found, found + len(quote)) if found >= 0 else (-1, -1)
        if start >= 0:
            lo, hi = max(0, start - context), min(len(doc_text), end + context)
            # Do not cut words in half at the window edges.
            if lo > 0:
                space = doc_text.find(" ", lo, start)
                lo = space + 1 if space >= 0 else lo
            if hi < len(doc_text):
                space = doc_text.rfind(" ", end, hi)
                hi = space if space >= 0 else hi
            before, span, after = doc_text[lo:start], doc_text[start:end], doc_text[end:hi]
            return (
                ("… " if lo > 0 else "")
                + esc(before)
                + f"<mark>{esc(span)}</mark>"
                + esc(after)
                + (" …" if hi < len(doc_text) else "")
            )
    return f'<mark>{esc(quote)}</mark> <span class="qa-note">(source text unavailable)</span>'


def _unique_citations(citations: Iterable[Citation]) -> list[Citation]:
    seen: dict[int, Citation] = {}
    for citation in citations:
        seen.setdefault(citation.n, citation)
    return [seen[n] for n in sorted(seen)]


def render_sources_html(answer: Answer | None, get_text: Callable[[str], str | None] | None = None) -> str:
    """The sources panel: each cited passage, titled, with its quoted span highlighted in context."""
    if answer is None:
        return '<div class="qa-sources-empty">Sources for the latest answer appear here.</div>'
    if answer.refused or not answer.citations:
        reason = answer.refusal_reason or "no passage supported an answer"
        return f'<div class="qa-sources-empty">No sources cited: {esc(reason)}.</div>'
    cache: dict[str, str | None] = {}
    parts = ['<div class="qa-sources-list">']
    for citation in _unique_citations(answer.citations):
        if citation.doc_id not in cache:
            cache[citation.doc_id] = _safe_text(get_text, citation.doc_id)
        body = highlight_context(cache[citation.doc_id], citation.start, citation.end, citation.quote)
        parts.append(
            f'<div class="qa-source" id="src-{citation.n}">'
            f'<div class="qa-source-head"><span class="qa-source-n">[{citation.n}]</span> '
            f'<span class="qa-source-title">{esc(citation.title or citation.doc_id)}</span></div>'
            f'<div class="qa-source-meta">{esc(citation.doc_id)} · characters {citation.start}–{citation.end}'
            f" · support {citation.support:.2f}</div>"
            f'<blockquote class="qa-source-text">{body}</blockquote></div>'
        )
    parts.append("</div>")
    return "".join(parts)


def _safe_text(get_text: Callable[[str], str | None] | None, doc_id: str) -> str | None:
    if get_text is None:
        return None
    try:
        return get_text(doc_id)
    except Exception:  # a missing document must not break the answer
        log.debug("document %s unavailable for the sources panel", doc_id, exc_info=True)
        return None


def render_passages_html(passages: Sequence[Passage]) -> str:
    """The retrieved passages (what the generator saw), with fused and dense scores."""
    if not passages:
        return '<div class="qa-sources-empty">No passages retrieved.</div>'
    parts = ['<div class="qa-passages-list">']
    for rank, passage in enumerate(passages, 1):
        chunk = passage.chunk
        scores = f"score {passage.score:.4f}"
        if passage.dense_score is not None:
            scores += f" · cosine {passage.dense_score:.3f}"
        where = [esc(chunk.doc_id)]
        if chunk.page is not None:
            where.append(f"page {chunk.page}")
        if chunk.section:
            where.append(esc(chunk.section))
        parts.append(
            f'<div class="qa-passage"><div class="qa-source-head"><span class="qa-source-n">#{rank}</span> '
            f'<span class="qa-source-title">{esc(chunk.title or chunk.doc_id)}</span></div>'
            f'<div class="qa-source-meta">{" · ".join(where)} · {scores}</div>'
            f'<div class="qa-passage-text">{esc(chunk.text)}</div></div>'
        )
    parts.append("</div>")
    return "".join(parts)


class UploadRejected(ValueError):
    """An uploaded file the UI refuses, with a message meant for the user."""


def sanitize_filename(name: str, allowed: Collection[str] = ALLOWED_UPLOAD_EXTENSIONS) -> str:
    """A safe base name for an uploaded file, or ``UploadRejected``.

    Only the last path component is kept (``../../etc/passwd.txt`` → ``passwd.txt``), characters
    outside ``[A-Za-z0-9._-]`` become ``_``, leading dots are dropped (no hidden files, no ``..``),
    the extension is lower-cased and must be in ``allowed``.
    """
    base = unicodedata.normalize("NFKC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = base.replace("\x00", "").strip()
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    ext = "." + ext.lower() if ext else ""
    allowed_text = ", ".join(allowed)
    if ext not in allowed:
        shown = ext or "no extension"
        raise UploadRejected(f"{base or name!r}: unsupported file type ({shown}); allowed: {allowed_text}.")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
    stem = re.sub(r"_{2,}", "_", stem).lstrip("._-").rstrip(".")
    stem = stem[: _MAX_NAME_CHARS - len(ext)] or "upload"
    return stem + ext


def validate_upload(name: str, size_bytes: int, max_mb: float) -> str:
    """Check the extension and the size cap; return the sanitised name."""
    safe = sanitize_filename(name)
    if size_bytes <= 0:
        raise UploadRejected(f"{safe}: the file is empty.")
    if size_bytes > max_mb * 1024 * 1024:
        raise UploadRejected(f"{safe}: {size_bytes / (1024 * 1024):.1f} MB is over the {max_mb:g} MB upload limit.")
    return safe


def save_upload(source: Path, upload_dir: Path, max_mb: float, *, original_name: str | None = None) -> Path:
    """Validate an uploaded temp file and copy it into ``upload_dir`` under its sanitised name."""
    safe = validate_upload(original_name or source.name, source.stat().st_size, max_mb)
    upload_dir.mkdir(parents=True, exist_ok=True)
    target = (upload_dir / safe).resolve()
    if target.parent != upload_dir.resolve():  # belt and braces: sanitize_filename already prevents it
        raise UploadRejected(f"{safe}: refused (path outside the upload folder).")
    tmp = target.with_name(f".{target.name}.part")
    shutil.copyfile(source, tmp)
    tmp.replace(target)
    return target


def uploaded_file(source: str | None, upload_dir: Path) -> Path | None:
    """The file behind a document if it is one of ours in ``upload_dir`` (else ``None``: never touched)."""
    if not source:
        return None
    try:
        path = Path(source).resolve()
    except (OSError, ValueError):
        return None
    return path if path.parent == upload_dir.resolve() and path.is_file() else None


def document_rows(infos: Iterable[DocInfo]) -> list[list[str | int]]:
    """The documents table (id, title, chunks), sorted by id; an empty title shows the id."""
    ordered = sorted(infos, key=lambda info: info.doc_id)
    return [[info.doc_id, info.title or info.doc_id, info.n_chunks] for info in ordered]


def history_pairs(turns: Sequence[ChatTurn]) -> list[tuple[str, str]]:
    """The conversation so far as ``(question, answer_text)`` pairs for ``ask_stream``."""
    return [(turn.question, turn.answer_text) for turn in turns if turn.answer_text]


def chat_messages(turns: Sequence[ChatTurn]) -> list[dict[str, str]]:
    """Chatbot messages (role/content dicts) for the stored turns."""
    messages: list[dict[str, str]] = []
    for turn in turns:
        messages.append({"role": "user", "content": f'<div class="qa-question">{_text_html(turn.question)}</div>'})
        messages.append({"role": "assistant", "content": turn.html})
    return messages


# --------------------------------------------------------------------------- app

APP_CSS = """
.qa-answer, .qa-refusal, .qa-error { line-height: 1.5; }
.qa-text { white-space: normal; }
.qa-short { font-weight: 600; font-size: 1.1em; margin-bottom: 0.3em; }
.qa-proof { margin-top: 0.4em; padding-left: 0.6em; border-left: 3px solid #ccc; color: #444; font-size: 0.95em; }
.qa-proof mark { background: #fff3b0; }
.qa-cite { font-weight: 600; text-decoration: none; color: #1d4ed8 !important; padding: 0 1px; }
.qa-cite:hover { text-decoration: underline; }
.qa-meta { margin-top: 6px; font-size: 0.85em; color: #4b5563; }
.qa-confidence { font-weight: 600; }
.qa-conf-high { color: #047857; } .qa-conf-medium { color: #b45309; } .qa-conf-low { color: #b91c1c; }
.qa-conf-refusal { color: inherit; font-weight: 400; }
.qa-refusal { border-left: 4px solid #d97706; background: #fffbeb; padding: 6px 10px; border-radius: 4px; }
.qa-refusal-head { font-weight: 700; color: #92400e; }
.qa-reason { font-style: italic; color: #78350f; margin-top: 4px; }
.qa-error { border-left: 4px solid #dc2626; background: #fef2f2; padding: 6px 10px; border-radius: 4px; }
.qa-status { color: #6b7280; font-style: italic; font-size: 0.9em; }
.qa-cursor { animation: qa-blink 1s steps(2) infinite; color: #6b7280; }
@keyframes qa-blink { 50% { opacity: 0; } }
.qa-source, .qa-passage { border: 1px solid #e5e7eb; border-radius: 6px; padding: 8px 10px;
  margin: 0 0 10px 0; scroll-margin-top: 16px; }
.qa-source:target { border-color: #2563eb; box-shadow: 0 0 0 2px #bfdbfe; }
.qa-source-head { font-weight: 600; }
.qa-source-n { color: #1d4ed8; }
.qa-source-meta { font-size: 0.8em; color: #6b7280; margin: 2px 0 6px 0; }
.qa-source-text { margin: 0; padding: 6px 10px; border-left: 3px solid #d1d5db; white-space: pre-wrap;
  font-size: 0.92em; color: #374151; }
.qa-source-text mark { background: #fde68a; color: #111827; padding: 0 1px; }
.qa-passage-text { white-space: pre-wrap; font-size: 0.88em; color: #374151; }
.qa-sources-empty { color: #6b7280; font-style: italic; padding: 6px 0; }
.qa-note { color: #6b7280; font-size: 0.85em; }
#qa-sources, #qa-passages { max-height: 640px; overflow-y: auto; }
"""

# Citation links scroll the sources panel in place (no navigation, no new tab).
APP_HEAD = """
<script>
document.addEventListener("click", function (event) {
  const link = event.target.closest ? event.target.closest("a.qa-cite") : null;
  if (!link) { return; }
  event.preventDefault();
  event.stopPropagation();
  const target = document.getElementById((link.getAttribute("href") || "").replace(/^#/, ""));
  if (target) {
    target.scrollIntoView({behavior: "smooth", block: "nearest"});
    document.querySelectorAll(".qa-source.qa-active").forEach(function (el) {
      el.classList.remove("qa-active");
    });
    target.classList.add("qa-active");
  }
}, true);
</script>
<style>.qa-source.qa-active { border-color: #2563eb; box-shadow: 0 0 0 2px #bfdbfe; }</style>
"""


class _AssistantHolder:
    """At most one assistant per known preset, built on first use and shared by every session, so
    switching presets back and forth never loads a model twice (memory stays bounded by the presets).
    A preset that is not one of ``PRESET_CHOICES`` is refused; ``get()`` without one gives the last chosen."""

    def __init__(
        self,
        assistant: AssistantLike,
        preset: str,
        factory: Callable[[str], AssistantLike] | None,
    ) -> None:
        self.preset = preset
        self._by_preset: dict[str, AssistantLike] = {preset: assistant}
        self._factory = factory
        self._lock = threading.Lock()

    @property
    def assistant(self) -> AssistantLike:
        return self._by_preset[self.preset]

    def get(self, preset: str | None = None) -> AssistantLike:
        with self._lock:
            if preset and preset != self.preset and self._factory is not None:
                if preset not in PRESET_CHOICES:
                    raise ValueError(f"Unknown preset {preset!r}; choose one of: {', '.join(PRESET_CHOICES)}.")
                if preset not in self._by_preset:
                    log.info("loading preset %s", preset)
                    self._by_preset[preset] = self._factory(preset)
                self.preset = preset
            return self.assistant

    def document_text(self, doc_id: str) -> str:
        return self.assistant.index.get_document(doc_id).text


def _default_factory(settings: Settings) -> Callable[[str], AssistantLike]:
    def build(preset: str) -> AssistantLike:
        from qa.pipeline import Assistant
        from qa.settings import load_settings

        new = Assistant(
            load_settings(
                preset=preset,
                paths=settings.paths.model_dump(),
                ui=settings.ui.model_dump(),
                generation={"isolate": settings.generation.isolate},
            )
        )
        new.warm_up()
        return new

    return build


# --------------------------------------------------------------------------- handlers


class ChatHandlers:
    """The Ask tab: show a question at once, stream its answer, clear the conversation.

    ``respond`` yields values for (question box, chat, turns, sources panel, passages panel).
    """

    def __init__(self, holder: _AssistantHolder) -> None:
        self.holder = holder

    def show_pending(self, question: str, turns: list[ChatTurn] | None) -> Any:
        import gradio as gr

        question = (question or "").strip()
        if not question:
            return gr.skip()
        waiting = render_streaming_html("", status="Waiting for the assistant…")
        return chat_messages([*(turns or []), ChatTurn(question, "", waiting)])

    def respond(
        self, question: str, turns: list[ChatTurn] | None, top_k: float | None, preset: str | None
    ) -> Iterator[tuple[Any, ...]]:
        import gradio as gr

        history = list(turns or [])
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        started = time.perf_counter()
        pending = ChatTurn(question, "", render_streaming_html(""))
        yield "", chat_messages([*history, pending]), history, gr.skip(), gr.skip()
        answer: Answer | None = None
        error = "The assistant finished without an answer."
        streamed = ""
        try:
            assistant = self.holder.get(preset)
            pairs = history_pairs(history)
            for item in assistant.ask_stream(question, history=pairs, top_k=int(top_k) if top_k else None):
                if isinstance(item, Answer):
                    answer = item  # the last item
                    continue
                streamed += item
                pending = ChatTurn(question, "", render_streaming_html(streamed))
                yield gr.skip(), chat_messages([*history, pending]), gr.skip(), gr.skip(), gr.skip()
        except Exception as exc:
            log.exception("answering %r failed", question)
            answer, error = None, f"Could not answer: {exc}"
        yield self._finish(question, history, answer, error, time.perf_counter() - started)

    def _finish(
        self, question: str, history: list[ChatTurn], answer: Answer | None, error: str, seconds: float
    ) -> tuple[Any, ...]:
        import gradio as gr

        if answer is None:  # shown, but not passed on as history (no answer text)
            turns = [*history, ChatTurn(question, "", render_error_html(error))]
            return gr.skip(), chat_messages(turns), turns, gr.skip(), gr.skip()
        turns = [*history, ChatTurn(question, answer.text, render_answer_html(answer, seconds=seconds))]
        sources = render_sources_html(answer, self.holder.document_text)
        return gr.skip(), chat_messages(turns), turns, sources, render_passages_html(answer.passages)

    def clear_chat(self) -> tuple[Any, ...]:
        return [], [], render_sources_html(None), render_passages_html([]), ""


class DocumentHandlers:
    """The Documents tab: list the indexed documents, upload (checked, then indexed), remove."""

    def __init__(
        self, holder: _AssistantHolder, upload_dir: Path, max_mb: float, policy: AccessPolicy | None = None
    ) -> None:
        self.holder = holder
        self.upload_dir = upload_dir
        self.max_mb = max_mb
        self.policy = policy or AccessPolicy()

    def list_documents(self) -> tuple[list[list[str | int]], Any]:
        """The table rows and the choices of the remove dropdown."""
        import gradio as gr

        try:
            infos = self.holder.assistant.index.documents()
        except Exception:
            log.exception("listing documents failed")
            infos = []
        return document_rows(infos), gr.update(choices=sorted(info.doc_id for info in infos), value=None)

    def upload(
        self, files: list[str] | str | None, progress: ProgressLike, *, username: str | None = None
    ) -> tuple[Any, ...]:
        """Status, table, remove choices and the cleared upload box."""
        import gradio as gr

        if not files:
            return (gr.skip(), gr.skip(), gr.skip(), gr.skip())
        if refused := self.policy.refuse_change(username):
            log.warning("upload refused: %s", refused)
            return (
                f'<ul class="qa-upload-status"><li class="qa-upload-rejected">{esc(refused)}</li></ul>',
                gr.skip(),
                gr.skip(),
                None,
            )
        progress(0.0, desc="Checking files")
        saved, messages = self._save([files] if isinstance(files, str) else list(files))
        if saved:
            progress(0.2, desc=f"Indexing {len(saved)} file(s)")
            messages.insert(0, self._add(saved))
        progress(1.0, desc="Done")
        table, choices = self.list_documents()
        return f'<ul class="qa-upload-status">{"".join(messages)}</ul>', table, choices, None

    def _save(self, raw_paths: Sequence[str]) -> tuple[list[Path], list[str]]:
        """Copy the acceptable files into the upload folder; a status line for each refused one."""
        saved: list[Path] = []
        refused: list[str] = []
        for raw in raw_paths:
            try:
                saved.append(save_upload(Path(raw), self.upload_dir, self.max_mb))
            except UploadRejected as exc:
                refused.append(f'<li class="qa-upload-rejected">Refused: {esc(exc)}</li>')
            except OSError as exc:
                refused.append(f'<li class="qa-upload-rejected">Could not save {esc(Path(raw).name)}: {esc(exc)}</li>')
        return saved, refused

    def _add(self, saved: Sequence[Path]) -> str:
        """Index the saved files; the status line says what happened."""
        try:
            summary = self.holder.get().add_documents(saved).summary()
        except Exception as exc:
            log.exception("indexing uploads failed")
            return f'<li class="qa-upload-rejected">Indexing failed: {esc(exc)}</li>'
        names = ", ".join(p.name for p in saved)
        return f'<li class="qa-upload-ok">Added {esc(names)}: {esc(summary)}</li>'

    def remove(self, doc_id: str | None, *, username: str | None = None) -> tuple[Any, ...]:
        """Status, table and remove choices; an uploaded file goes too, any other file is kept."""
        import gradio as gr

        if not doc_id:
            return '<div class="qa-upload-status">Choose a document to remove.</div>', gr.skip(), gr.skip()
        if refused := self.policy.refuse_change(username):
            log.warning("removing %s refused: %s", doc_id, refused)
            return f'<div class="qa-upload-status qa-upload-rejected">{esc(refused)}</div>', gr.skip(), gr.skip()
        try:
            sources = {info.doc_id: info.source for info in self.holder.assistant.index.documents()}
            self.holder.get().remove_documents([doc_id])
            status = f'<div class="qa-upload-status qa-upload-ok">Removed {esc(doc_id)} from the index.</div>'
            uploaded = uploaded_file(sources.get(doc_id), self.upload_dir)
            if uploaded is not None:
                uploaded.unlink(missing_ok=True)
        except Exception as exc:
            log.exception("removing %s failed", doc_id)
            status = (
                f'<div class="qa-upload-status qa-upload-rejected">Could not remove {esc(doc_id)}: {esc(exc)}</div>'
            )
        table, choices = self.list_documents()
        return status, table, choices


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class _AskTab:
    chatbot: gr.Chatbot
    question: gr.Textbox
    ask: gr.Button
    examples: list[gr.Button]
    clear: gr.Button
    show_passages: gr.Checkbox
    sources: gr.HTML
    passages_group: gr.Group
    passages: gr.HTML


@dataclass(frozen=True)
class _DocumentsTab:
    table: gr.Dataframe
    upload: gr.File
    status: gr.HTML
    remove_choice: gr.Dropdown
    remove: gr.Button


@dataclass(frozen=True)
class _SettingsTab:
    preset: gr.Radio
    top_k: gr.Slider


def _chat_box() -> tuple[gr.Chatbot, gr.Textbox, gr.Button]:
    """The conversation, and the question box with its Ask button below it."""
    import gradio as gr

    chatbot = gr.Chatbot(
        label="Conversation",
        elem_id="qa-chat",
        height=520,
        feedback_options=None,
        placeholder="Ask a question about the indexed documents.",
        group_consecutive_messages=False,
        buttons=["copy", "copy_all"],
    )
    with gr.Row():
        question = gr.Textbox(
            show_label=False,
            placeholder="Ask a question…",
            elem_id="qa-question",
            scale=6,
            lines=1,
            max_lines=4,
            autofocus=True,
        )
        ask = gr.Button("Ask", variant="primary", elem_id="qa-ask", scale=1, min_width=80)
    return chatbot, question, ask


def _ask_tab() -> _AskTab:
    """The chat column (examples, clear, passages toggle) beside the sources panel."""
    import gradio as gr

    with gr.Tab("Ask", id="ask"), gr.Row(equal_height=False):  # noqa: SIM117
        with gr.Column(scale=3):
            chatbot, question, ask = _chat_box()
            with gr.Row():
                examples = [gr.Button(q, size="sm", elem_classes=["qa-example"]) for q in EXAMPLE_QUESTIONS]
            with gr.Row():
                clear = gr.Button("Clear chat", size="sm", elem_id="qa-clear")
                show_passages = gr.Checkbox(label="Show retrieved passages", value=False, elem_id="qa-show-passages")
        with gr.Column(scale=2):
            gr.Markdown("### Sources")
            sources = gr.HTML(render_sources_html(None), elem_id="qa-sources")
            with gr.Group(visible=False) as passages_group:
                gr.Markdown("### Retrieved passages")
                passages = gr.HTML(render_passages_html([]), elem_id="qa-passages")
    return _AskTab(chatbot, question, ask, examples, clear, show_passages, sources, passages_group, passages)


def _documents_tab(max_mb: float) -> _DocumentsTab:
    """The documents table, the upload box and the remove control."""
    import gradio as gr

    with gr.Tab("Documents", id="documents"):
        table = gr.Dataframe(
            headers=["Document id", "Title", "Chunks"],
            datatype=["str", "str", "number"],
            interactive=False,
            elem_id="qa-docs",
            label="Indexed documents",
        )
        allowed = ", ".join(ALLOWED_UPLOAD_EXTENSIONS)
        upload = gr.File(
            label=f"Add documents ({allowed}; up to {max_mb:g} MB each)",
            file_count="multiple",
            elem_id="qa-upload",
        )
        status = gr.HTML("", elem_id="qa-upload-status")
        with gr.Row():
            remove_choice = gr.Dropdown(label="Remove a document", choices=[], elem_id="qa-remove-choice")
            remove = gr.Button("Remove", variant="stop", elem_id="qa-remove")
    return _DocumentsTab(table, upload, status, remove_choice, remove)


def _settings_tab(settings: Settings) -> _SettingsTab:
    """The preset (model size) and how many passages the model is given."""
    import gradio as gr

    with gr.Tab("Settings", id="settings"):
        preset = gr.Radio(
            list(PRESET_CHOICES),
            value=settings.preset if settings.preset in PRESET_CHOICES else None,
            label="Preset",
            info="fast: smaller model; accurate: larger model. Switching reloads the model on the next question.",
            elem_id="qa-preset",
        )
        top_k = gr.Slider(
            1,
            10,
            value=settings.retrieval.top_k,
            step=1,
            label="Passages given to the model",
            elem_id="qa-top-k",
        )
    return _SettingsTab(preset, top_k)


# --------------------------------------------------------------------------- events

# Everything that uses the assistant shares one queue: one generation or index update at a time.
_QUEUE_KW: dict[str, Any] = {"concurrency_id": "assistant"}
# Show the question at once (no queue), then answer it in the queue (one generation at a time).
_AT_ONCE_KW: dict[str, Any] = {"queue": False, "api_visibility": "private", "show_progress": "hidden"}


def toggle_passages(show: bool) -> Any:
    import gradio as gr

    return gr.update(visible=bool(show))


def _wire_chat(chat: ChatHandlers, tab: _AskTab, settings_tab: _SettingsTab, turns: gr.State) -> None:
    """Ask (button, Enter, examples), clear, and the passages toggle; only the button is the ``ask`` API."""
    chat_inputs = [tab.question, turns, settings_tab.top_k, settings_tab.preset]
    chat_outputs = [tab.question, tab.chatbot, turns, tab.sources, tab.passages]
    ask_kw: dict[str, Any] = {**_QUEUE_KW, "show_progress_on": tab.chatbot}
    pending_io = ([tab.question, turns], tab.chatbot)
    tab.ask.click(chat.show_pending, *pending_io, **_AT_ONCE_KW).then(
        chat.respond, chat_inputs, chat_outputs, api_name="ask", **ask_kw
    )
    tab.question.submit(chat.show_pending, *pending_io, **_AT_ONCE_KW).then(
        chat.respond, chat_inputs, chat_outputs, api_visibility="private", **ask_kw
    )
    for button, text in zip(tab.examples, EXAMPLE_QUESTIONS, strict=True):
        button.click(lambda t=text: t, None, tab.question, **_AT_ONCE_KW).then(
            chat.show_pending, *pending_io, **_AT_ONCE_KW
        ).then(chat.respond, chat_inputs, chat_outputs, api_visibility="private", **ask_kw)
    cleared = [tab.chatbot, turns, tab.sources, tab.passages, tab.question]
    for clear_event in (tab.clear.click, tab.chatbot.clear):
        clear_event(chat.clear_chat, None, cleared, queue=False, api_visibility="private")
    tab.show_passages.change(
        toggle_passages, tab.show_passages, tab.passages_group, queue=False, api_visibility="private"
    )


def _wire_documents(docs: DocumentHandlers, tab: _DocumentsTab, demo: gr.Blocks) -> None:
    """Upload and remove (in the assistant's queue), and the documents table on page load."""
    import gradio as gr

    # Gradio hands its progress tracker to the parameter whose default is one, and the session's
    # request to a parameter annotated gr.Request (set as a real class: this module's annotations are strings).
    def upload(
        files: list[str] | str | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008
    ) -> tuple[Any, ...]:
        return docs.upload(files, progress, username=request.username)

    def remove(doc_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        return docs.remove(doc_id, username=request.username)

    upload.__annotations__ = {"request": gr.Request}
    remove.__annotations__ = {"request": gr.Request}
    listing = [tab.table, tab.remove_choice]
    private: dict[str, Any] = {"api_visibility": "private"}
    tab.upload.upload(upload, tab.upload, [tab.status, *listing, tab.upload], **private, **_QUEUE_KW)
    tab.remove.click(remove, tab.remove_choice, [tab.status, *listing], **private, **_QUEUE_KW)
    demo.load(docs.list_documents, None, listing, **private, concurrency_limit=None)


def build_app(
    assistant: AssistantLike,
    settings: Settings | None = None,
    *,
    assistant_factory: Callable[[str], AssistantLike] | None = None,
    policy: AccessPolicy | None = None,
) -> gr.Blocks:
    """The Gradio app around ``assistant``; launch it with ``serve`` (which adds the CSS)."""
    from qa.offline import enforce_offline

    enforce_offline()  # before gradio (and huggingface_hub under it) is imported
    import gradio as gr

    from qa.settings import load_settings

    settings = settings or load_settings()
    holder = _AssistantHolder(assistant, settings.preset, assistant_factory or _default_factory(settings))
    docs = DocumentHandlers(holder, Path(settings.paths.index) / "uploads", settings.ui.max_upload_mb, policy)
    with gr.Blocks(title="Document Q&A", analytics_enabled=False) as demo:
        turns = gr.State([])
        gr.Markdown("## Document Q&A\nAnswers come only from your indexed documents, each claim linked to its source.")
        with gr.Tabs():
            ask_tab = _ask_tab()
            documents_tab = _documents_tab(docs.max_mb)
            settings_tab = _settings_tab(settings)
        _wire_chat(ChatHandlers(holder), ask_tab, settings_tab, turns)
        _wire_documents(docs, documents_tab, demo)
    demo.queue(default_concurrency_limit=settings.ui.concurrency)
    return demo


def gradio_file_size(max_mb: float) -> str:
    """``max_mb`` as Gradio's ``max_file_size`` string, which takes whole numbers only: ``"20mb"``,
    or whole bytes for a fractional cap (``0.5`` → ``"524288b"``; ``"0.5mb"`` would stop the launch)."""
    return f"{int(max_mb)}mb" if float(max_mb).is_integer() else f"{max(1, int(max_mb * 1024 * 1024))}b"


def _theme() -> Any:
    """The default theme with system fonts: nothing is fetched from a font CDN (offline)."""
    import gradio as gr

    system = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
    return gr.themes.Default(font=system, font_mono=mono)


def launch(
    demo: gr.Blocks,
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    share: bool = False,
    prevent_thread_lock: bool = False,
    policy: AccessPolicy | None = None,
) -> None:
    """Launch ``demo`` on ``host:port`` (loopback by default) with the app's CSS and theme; with the
    policy's users, every route needs a login."""
    demo.launch(
        auth=list(policy.users) if policy and policy.users else None,
        server_name=host or settings.ui.host,
        server_port=port or settings.ui.port,
        share=share,
        prevent_thread_lock=prevent_thread_lock,
        max_file_size=gradio_file_size(settings.ui.max_upload_mb),
        show_error=False,
        ssr_mode=False,
        theme=_theme(),
        css=APP_CSS,
        head=APP_HEAD,
        footer_links=["settings"],
        quiet=False,
    )


def with_isolated_generator(settings: Settings) -> Settings:
    """The settings with the generator in a worker process, if ``ui.isolate_generator`` asks for it."""
    if not settings.ui.isolate_generator or settings.generation.isolate:
        return settings
    generation = settings.generation.model_copy(update={"isolate": True})
    return settings.model_copy(update={"generation": generation})


def serve(
    settings: Settings | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    share: bool = False,
    no_auth: bool = False,
    assistant: AssistantLike | None = None,
    assistant_factory: Callable[[str], AssistantLike] | None = None,
    prevent_thread_lock: bool = False,
) -> gr.Blocks:
    """Start the UI (blocking unless ``prevent_thread_lock``); loads and warms the assistant first.

    A server other machines can reach needs users to log in (``qa.access``); ``no_auth`` allows
    anonymous questions there, with read-only documents. ``assistant_factory(preset)`` builds the
    assistant for another preset chosen in the UI (default: a real ``Assistant`` with that preset).
    """
    import sys

    from qa.offline import enforce_offline
    from qa.settings import load_settings

    enforce_offline()  # before the models load
    settings = with_isolated_generator(settings or load_settings())
    host = host or settings.ui.host
    policy = AccessPolicy.for_server(settings.ui, host=host, share=share, no_auth=no_auth)  # before models load
    if policy.exposed and not policy.login:
        print(
            f"warning: serving on {host} without login (--no-auth): anyone who can reach it can ask "
            "questions; documents are read-only.",
            file=sys.stderr,
        )
    if assistant is None:
        from qa.pipeline import Assistant

        real = Assistant(settings)
        real.warm_up()
        assistant = real
    demo = build_app(assistant, settings, assistant_factory=assistant_factory, policy=policy)
    launch(demo, settings, host=host, port=port, share=share, prevent_thread_lock=prevent_thread_lock, policy=policy)
    return demo
