"""The Ask tab of the UI: a chat kept all day, every answer with its own sources, saved conversations.

What the user sees, and where it is made:

* each answer links its ``[n]`` markers to *its own* passages: the sources panel keeps one section per
  answer (``render_sources_panel``), and a marker shows its answer's section with the passage
  highlighted; from a passage, "Open the document" shows the whole document text (page by page for a
  PDF) scrolled to the cited span (``render_document_html``);
* while an answer is written the text is shown as a draft, marked as not yet checked, and replaced by
  the verified answer or the refusal (``render_streaming_html``); a question asked meanwhile waits,
  visibly, in the conversation's queue and is answered next; Stop ends the answer being written (and
  withdraws the questions waiting behind it, which stay in the conversation marked as stopped);
  Regenerate asks the last question again in place of its answer;
* every message carries its plain text (``data-plain``): the page's copy buttons and the messages'
  accessibility labels use it instead of the markup (``CHAT_HEAD``);
* conversations are saved (``qa.conversations``), listed, renamed, deleted and exported as Markdown,
  and reopen after a reload or a restart; each can be limited to chosen documents.

Every piece of document, passage, question or answer text is escaped with ``html.escape`` *before*
any markup of ours is added, so a document containing ``<script>`` shows as text.

The conversation's live state (the answer being written, the questions waiting) is kept on the server
in ``ChatRuntime``, shared by every session, and each event renders the chat from it and from the
store; so an event never works from a stale copy of the conversation, and a question asked during an
answer is never lost. Gradio's ``cancels=`` is not used for Stop: the page tracks one submission per
event, so it could cancel a waiting question's event instead of the running answer, and a cancelled
generator would leave the waiting questions unanswered; Stop sets a flag the answering loop checks at
every streamed piece instead, and the Stop handler records the outcome at once.
"""

from __future__ import annotations

import html
import logging
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Generator, Iterator, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from qa.citations import MARKER, marker_numbers, strip_markers
from qa.conversations import (
    LOCAL_OWNER,
    STOPPED_TEXT,
    ChatTurn,
    ConversationNotFound,
    ConversationStore,
    answer_plain_text,
    default_title,
    unique_citations,
)
from qa.types import Answer, Document, Passage

if TYPE_CHECKING:
    import gradio as gr

    from qa.index import DocInfo

log = logging.getLogger(__name__)

EXAMPLE_QUESTIONS: tuple[str, ...] = (
    "Which agency granted the Breakthrough Therapy Designation?",
    "What is mesutoclax?",
    "Which company markets venetoclax?",
)
CONTEXT_CHARS = 300
SEARCHING = "Searching the documents…"
DRAFTING = "Drafting: not yet checked against the documents"
DRAFT_PLAIN = "Drafting an answer (not yet checked against the documents)…"


# --------------------------------------------------------------------------- what the chat needs


class ChatIndex(Protocol):
    """The index as the chat reads it: the documents, and a document's text for the sources."""

    def documents(self) -> Sequence[DocInfo]: ...

    def get_document(self, doc_id: str) -> Document: ...


class ChatAssistant(Protocol):
    """What the chat uses of ``qa.pipeline.Assistant``."""

    @property
    def index(self) -> ChatIndex: ...

    def ask_stream(
        self,
        question: str,
        *,
        history: Sequence[tuple[str, str]],
        top_k: int | None,
        doc_ids: Collection[str] | None = None,
    ) -> Iterator[str | Answer]: ...


class AssistantSource(Protocol):
    """Where the chat gets the assistant: the current one, or the one of a chosen preset."""

    @property
    def assistant(self) -> ChatAssistant: ...

    def get(self, preset: str | None = None) -> ChatAssistant: ...


# --------------------------------------------------------------------------- small HTML helpers


def esc(text: object) -> str:
    """``html.escape`` for any value (quotes included)."""
    return html.escape("" if text is None else str(text), quote=True)


def _text_html(text: str) -> str:
    """Escape ``text`` and keep its line breaks, with no blank lines (one HTML block for markdown)."""
    escaped = esc(text.strip())
    return re.sub(r"\r?\n", "<br>", escaped)


def plain_attr(text: str) -> str:
    """`` data-plain="…"``: a message's plain text, for the copy buttons and the accessibility label.
    Line breaks are written as ``&#10;`` so that the message stays one HTML block for markdown."""
    return ' data-plain="' + esc(text).replace("\r", "").replace("\n", "&#10;") + '"'


def link_markers(escaped_text: str, valid: Collection[int] | None = None, *, turn: int | None = None) -> str:
    """Turn each ``[n]`` (and ``[n, m]``) in already-escaped text into links to the sources of answer
    ``turn`` (``#src-<turn>-<n>``; ``#src-<n>`` without a turn).

    Numbers not in ``valid`` (when given) are left as plain text: a marker without a verified
    citation must not pretend to point somewhere.
    """
    prefix = f"src-{turn}-" if turn is not None else "src-"

    def replace_marker(match: re.Match[str]) -> str:
        numbers = marker_numbers(match.group(1))
        if valid is not None and not all(n in valid for n in numbers):
            return match.group(0)
        return "".join(f'<a class="qa-cite" href="#{prefix}{n}" data-src="{n}">[{n}]</a>' for n in numbers)

    return MARKER.sub(replace_marker, escaped_text)


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


# --------------------------------------------------------------------------- chat messages


def render_question_html(question: str) -> str:
    return f'<div class="qa-question"{plain_attr(question.strip())}>{_text_html(question)}</div>'


def render_streaming_html(draft: str, *, status: str = SEARCHING) -> str:
    """The answer while it is written: the model's raw text, marked as a draft not yet checked (its
    markers are not linked), or before any text the ``status``."""
    if draft.strip():
        head = f'<div class="qa-drafting">{esc(DRAFTING)}…</div>'
        body = f'<div class="qa-text qa-draft">{_text_html(draft)}<span class="qa-cursor">▍</span></div>'
    else:
        head = f'<div class="qa-status">{esc(status)}</div>'
        body = '<div class="qa-text"><span class="qa-cursor">▍</span></div>'
    return f'<div class="qa-answer qa-streaming"{plain_attr(DRAFT_PLAIN)}>{head}{body}</div>'


def render_waiting_html(position: int) -> str:
    """A question waiting in the conversation's queue (``position`` 1: next)."""
    place = "next" if position == 1 else f"number {position} in line"
    text = f"Queued ({place}): answered when the answer before it is done."
    return f'<div class="qa-waiting"{plain_attr(text)}>{esc(text)}</div>'


def render_stopped_html() -> str:
    return f'<div class="qa-stopped"{plain_attr(STOPPED_TEXT)}>{esc(STOPPED_TEXT)}</div>'


def render_error_html(message: str) -> str:
    return f'<div class="qa-error"{plain_attr(message)}><span class="qa-refusal-icon">❌</span> {esc(message)}</div>'


def _meta_html(answer: Answer, seconds: float | None, turn: int | None) -> str:
    """The line under an answer: its sources (a link to them), confidence, time, how it was understood."""
    meta = [_confidence_html(answer.confidence, refused=answer.refused)]
    if seconds is not None:
        shown = f"{seconds:.1f} s" if seconds >= 0.05 else "under 0.1 s"  # never a "0.0 s"
        meta.append(f'<span class="qa-time">{shown}</span>')
    if answer.standalone_question and answer.standalone_question.strip() != answer.question.strip():
        meta.append(f'<span class="qa-standalone">Understood as: {esc(answer.standalone_question)}</span>')
    if not answer.refused:
        count = len({c.n for c in answer.citations})
        label = f"{count} source{'s' if count != 1 else ''}"
        if turn is not None:
            label = f'<a class="qa-show-sources" href="#sources-{turn}">{label}</a>'
        meta.insert(0, f'<span class="qa-nsources">{label}</span>')
    notes = "".join(f'<div class="qa-note">Note: {esc(note)}</div>' for note in answer.notes)
    return '<div class="qa-meta">' + " · ".join(meta) + "</div>" + notes


def render_answer_html(answer: Answer, *, seconds: float | None = None, turn: int | None = None) -> str:
    """The final, verified answer (or refusal) as one chat message; its markers link to the sources
    of answer ``turn``."""
    plain = plain_attr(answer_plain_text(answer))
    meta_html = _meta_html(answer, seconds, turn)
    if answer.refused:
        reason = answer.refusal_reason or "The documents do not support an answer."
        text = answer.text if answer.citations else strip_markers(answer.text)
        linked = link_markers(_text_html(text), {c.n for c in answer.citations}, turn=turn)
        return (
            f'<div class="qa-refusal"{plain}><div class="qa-refusal-head"><span class="qa-refusal-icon">⚠️</span> '
            f'Not answered from the documents</div><div class="qa-text">{linked}</div>'
            f'<div class="qa-reason">Reason: {esc(reason)}</div>{meta_html}</div>'
        )
    text = link_markers(_text_html(answer.text), {c.n for c in answer.citations}, turn=turn)
    short = f'<div class="qa-short">{esc(answer.short.text)}</div>' if answer.short else ""
    return (
        f'<div class="qa-answer qa-final"{plain}>{short}<div class="qa-text">{text}</div>'
        f"{_proof_html(answer, turn)}{meta_html}</div>"
    )


def _proof_html(answer: Answer, turn: int | None = None) -> str:
    """The sentence that proves the short answer, quoted from its first citation, the phrase marked."""
    if not answer.citations:
        return ""
    citation = answer.citations[0]
    body = esc(" ".join(citation.quote.split()))
    if answer.short is not None and answer.short.n == citation.n:
        at = answer.short.start - citation.start
        raw = citation.quote
        body = esc(" ".join(raw[:at].split())) + (" " if raw[:at][-1:].isspace() else "")
        body += f"<mark>{esc(answer.short.text)}</mark>"
        tail = raw[at + len(answer.short.text) :]
        body += (" " if tail[:1].isspace() else "") + esc(" ".join(tail.split()))
    return f'<div class="qa-proof">“{body}” {link_markers(f"[{citation.n}]", {citation.n}, turn=turn)}</div>'


def render_turn_html(turn: ChatTurn, index: int | None = None) -> str:
    """The reply of a stored turn, its markers linked to the sources of answer ``index``."""
    if turn.answer is not None:
        return render_answer_html(turn.answer, seconds=turn.seconds, turn=index)
    if turn.stopped:
        return render_stopped_html()
    return render_error_html(turn.error or "No answer.")


@dataclass
class LiveAnswer:
    """The question being answered in a conversation and the draft so far. Mutable on purpose: the
    answering loop appends to ``draft`` as the model writes; ``stop`` is set by the Stop button."""

    question: str
    draft: str = ""
    started: float = field(default_factory=time.perf_counter)
    stop: threading.Event = field(default_factory=threading.Event)


def chat_messages(
    turns: Sequence[ChatTurn], *, live: LiveAnswer | None = None, waiting: Sequence[str] = ()
) -> list[dict[str, str]]:
    """Chatbot messages (role/content dicts): the stored turns, the answer being written, the queue."""
    messages: list[dict[str, str]] = []
    for index, turn in enumerate(turns):
        messages.append({"role": "user", "content": render_question_html(turn.question)})
        messages.append({"role": "assistant", "content": render_turn_html(turn, index)})
    if live is not None:
        messages.append({"role": "user", "content": render_question_html(live.question)})
        messages.append({"role": "assistant", "content": render_streaming_html(live.draft)})
    for position, question in enumerate(waiting, 1):
        messages.append({"role": "user", "content": render_question_html(question)})
        messages.append({"role": "assistant", "content": render_waiting_html(position)})
    return messages


def history_pairs(turns: Sequence[ChatTurn]) -> list[tuple[str, str]]:
    """The conversation so far as ``(question, answer_text)`` pairs for ``ask_stream``."""
    return [(turn.question, turn.answer_text) for turn in turns if turn.answer_text]


# --------------------------------------------------------------------------- sources and documents


def locate_span(doc_text: str, start: int, end: int, quote: str) -> tuple[int, int]:
    """The cited span in ``doc_text``: the stored offsets when they still hold the quote, else where
    the quote is found now (the document changed), else ``(-1, -1)``."""
    if 0 <= start < end <= len(doc_text) and (not quote or doc_text[start:end] == quote):
        return start, end
    found = doc_text.find(quote) if quote else -1
    return (found, found + len(quote)) if found >= 0 else (-1, -1)


def highlight_context(doc_text: str | None, start: int, end: int, quote: str, *, context: int = CONTEXT_CHARS) -> str:
    """Escaped surrounding text with the cited span in ``<mark>``; degrades to the quote alone."""
    if doc_text:
        start, end = locate_span(doc_text, start, end, quote)
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


TextSource = Callable[[str], "str | None"]


def _memo(get_text: TextSource | None) -> TextSource:
    """``get_text`` asked once per document, and never raising (a missing document must not break the chat)."""
    cache: dict[str, str | None] = {}

    def text(doc_id: str) -> str | None:
        if doc_id not in cache:
            try:
                cache[doc_id] = get_text(doc_id) if get_text is not None else None
            except Exception:
                log.debug("document %s unavailable for the sources panel", doc_id, exc_info=True)
                cache[doc_id] = None
        return cache[doc_id]

    return text


def render_answer_sources(answer: Answer, get_text: TextSource | None = None, *, turn: int = 0) -> str:
    """The cited passages of one answer, titled, each quoted span highlighted in context, with a
    button that opens the whole document at it; anchors are ``src-<turn>-<n>``."""
    if not answer.citations:
        reason = (answer.refusal_reason or "no passage supported an answer").rstrip(". ")
        return f'<div class="qa-sources-empty">No sources cited: {esc(reason)}.</div>'
    text = _memo(get_text)
    parts = ['<div class="qa-sources-list">']
    for c in unique_citations(answer):
        body = highlight_context(text(c.doc_id), c.start, c.end, c.quote)
        opener = (
            f'<button class="qa-open-doc" type="button" data-doc="{esc(c.doc_id)}" data-start="{c.start}" '
            f'data-end="{c.end}" data-quote="{esc(c.quote)}">Open the document at this passage</button>'
        )
        parts.append(
            f'<div class="qa-source" id="src-{turn}-{c.n}" data-turn="{turn}" data-src="{c.n}">'
            f'<div class="qa-source-head"><span class="qa-source-n">[{c.n}]</span> '
            f'<span class="qa-source-title">{esc(c.title or c.doc_id)}</span></div>'
            f'<div class="qa-source-meta">{esc(c.doc_id)} · characters {c.start}–{c.end}'
            f" · support {c.support:.2f}</div>"
            f'<blockquote class="qa-source-text">{body}</blockquote>{opener}</div>'
        )
    parts.append("</div>")
    return "".join(parts)


SOURCES_PLACEHOLDER = '<div class="qa-sources-empty">The sources of each answer appear here.</div>'


def render_sources_panel(
    turns: Sequence[ChatTurn], get_text: TextSource | None = None, *, shown: int | None = None
) -> str:
    """One section per answer with its own sources (``sources-<i>``); only answer ``shown`` (default:
    the latest) is visible, and a citation marker shows its own answer's section."""
    answered = [(i, t.answer) for i, t in enumerate(turns) if t.answer is not None]
    if not answered:
        return SOURCES_PLACEHOLDER
    shown = answered[-1][0] if shown is None else shown
    text = _memo(get_text)
    sections = []
    for i, answer in answered:
        question = answer.question if len(answer.question) <= 90 else answer.question[:89] + "…"
        sections.append(
            f'<section class="qa-turn-sources{" qa-shown" if i == shown else ""}" id="sources-{i}" data-turn="{i}">'
            f'<div class="qa-turn-head">Sources of answer {i + 1}: <span class="qa-turn-q">{esc(question)}</span></div>'
            f"{render_answer_sources(answer, text, turn=i)}</section>"
        )
    return "".join(sections)


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


def _marked(text: str, lo: int, hi: int, start: int, end: int) -> str:
    """``text[lo:hi]`` escaped, with the part inside ``[start, end)`` in a ``<mark>``."""
    a, b = max(lo, start), min(hi, end)
    if a >= b:
        return esc(text[lo:hi])
    return esc(text[lo:a]) + f'<mark class="qa-doc-mark">{esc(text[a:b])}</mark>' + esc(text[b:hi])


def render_document_html(doc: Document, start: int, end: int, quote: str = "") -> str:
    """The whole text of ``doc`` (page by page for a paginated source), the cited span highlighted;
    the viewer scrolls to the first ``mark.qa-doc-mark``."""
    start, end = locate_span(doc.text, start, end, quote)
    where = [esc(doc.id)]
    if start >= 0:
        page = doc.page_at(start)
        where.append(f"page {page}" if page is not None else f"characters {start}–{end}")
    missing = "" if start >= 0 else '<div class="qa-note">The cited passage is no longer in this document.</div>'
    bounds = [p.start for p in doc.pages] or [0]
    numbers: list[int | None] = [p.number for p in doc.pages] or [None]
    cuts = [0 if i == 0 else at for i, at in enumerate(bounds)] + [len(doc.text)]
    pages = []
    for i, number in enumerate(numbers):
        label = f'<div class="qa-doc-page-no">Page {number}</div>' if number is not None else ""
        pages.append(f'<div class="qa-doc-page">{label}{_marked(doc.text, cuts[i], cuts[i + 1], start, end)}</div>')
    return (
        f'<div class="qa-doc"><div class="qa-doc-head"><span class="qa-doc-title">{esc(doc.title or doc.id)}</span>'
        f' <span class="qa-source-meta">{" · ".join(where)}</span></div>{missing}'
        f'<div class="qa-doc-text">{"".join(pages)}</div></div>'
    )


# --------------------------------------------------------------------------- live state


class ChatRuntime:
    """What is happening in each conversation now, shared by every session: the answer being written
    (``LiveAnswer``) and the questions waiting behind it. ``settle`` and ``stop`` decide, under one
    lock, which of "answered" and "stopped" a live answer becomes, and record it while holding the lock,
    so it is recorded once and in order. ``writer(cid)`` is held by whichever session answers that
    conversation's questions, so they are answered one at a time, in the order asked."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._live: dict[str, LiveAnswer] = {}
        self._waiting: dict[str, list[str]] = {}
        self._writers: dict[str, threading.Lock] = {}

    def enqueue(self, cid: str, question: str) -> None:
        with self._lock:
            self._waiting.setdefault(cid, []).append(question)

    def waiting(self, cid: str) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._waiting.get(cid, ()))

    def live(self, cid: str) -> LiveAnswer | None:
        with self._lock:
            return self._live.get(cid)

    def busy(self, cid: str | None) -> bool:
        with self._lock:
            return bool(cid) and (cid in self._live or bool(self._waiting.get(cid or "")))

    def writer(self, cid: str) -> threading.Lock:
        with self._lock:
            return self._writers.setdefault(cid, threading.Lock())

    def start_next(self, cid: str) -> LiveAnswer | None:
        """The first waiting question becomes the live answer (``None`` when none waits)."""
        with self._lock:
            queue = self._waiting.get(cid)
            if not queue:
                return None
            live = LiveAnswer(queue.pop(0))
            self._live[cid] = live
            return live

    def requeue(self, cid: str, live: LiveAnswer) -> None:
        """Put the question of ``live`` back at the head of the queue (the page answering it went away)."""
        with self._lock:
            if self._live.get(cid) is live and not live.stop.is_set():
                del self._live[cid]
                self._waiting.setdefault(cid, []).insert(0, live.question)

    def settle(self, cid: str, live: LiveAnswer, record: Callable[[], object]) -> bool:
        """Record the outcome of ``live`` unless it was stopped (Stop recorded it then); ``True`` if recorded."""
        with self._lock:
            if self._live.get(cid) is not live or live.stop.is_set():
                return False
            record()
            del self._live[cid]
            return True

    def stop(self, cid: str, record: Callable[[list[str]], object]) -> list[str]:
        """Stop the live answer and withdraw the waiting questions; ``record`` gets them all, in order."""
        with self._lock:
            live = self._live.pop(cid, None)
            stopped = [live.question] if live is not None else []
            if live is not None:
                live.stop.set()
            stopped += self._waiting.pop(cid, [])
            if stopped:
                record(stopped)
            return stopped


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class ChatSession:
    """A page's state on the server: whose conversations (``owner``), the browser's random id
    (``client``, kept in its local storage), the conversation open (``None``: a new one, not yet
    saved) and the page itself (``page``: Gradio's session hash)."""

    owner: str
    client: str
    conversation_id: str | None = None
    page: str = ""


def owner_for(username: str | None, client: str, *, exposed: bool) -> str:
    """Whose conversations a session sees: the logged-in user's; else, on a server other machines
    reach without login, this browser's own; else (loopback, one person's tool) the local owner's."""
    if username:
        return f"user:{username}"
    if exposed:
        return f"browser:{client}"
    return LOCAL_OWNER


def export_file_name(title: str) -> str:
    """A safe file name for a conversation's Markdown export."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", title).strip("-")[:60]
    return (stem or "conversation") + ".md"


@dataclass(frozen=True)
class _Listing:
    """The conversation list, the open one's title and scope, as shown."""

    choices: list[tuple[str, str]]
    title: str
    scope: tuple[str, ...]


# The outputs every full render fills, in order (see ``wire_chat``).
VIEW_FIELDS = (
    "session",
    "chatbot",
    "sources",
    "passages",
    "conversations",
    "title",
    "scope",
    "saved",
    "stop",
    "regenerate",
)


class ChatHandlers:
    """The Ask tab's event handlers. None keeps a copy of the conversation: each reads it from the
    store and the runtime, and returns a full render of the session's view (``VIEW_FIELDS``), or while
    an answer streams, the chat alone."""

    def __init__(
        self,
        holder: AssistantSource,
        store: ConversationStore,
        *,
        exposed: bool = False,
        runtime: ChatRuntime | None = None,
        writer_wait: float = 5.0,
    ) -> None:
        self.holder = holder
        self.store = store
        self.exposed = exposed
        self.runtime = runtime or ChatRuntime()
        self.writer_wait = writer_wait  # how long a drain waits for another one to let go of a conversation
        self._showing: dict[str, ChatSession] = {}  # page -> its session, with the conversation it shows
        self._showing_lock = threading.Lock()
        self._exports = tempfile.TemporaryDirectory(prefix="qa-exports-")  # removed when the server stops

    # -- reading ---------------------------------------------------------------------------

    def document_text(self, doc_id: str) -> str:
        return self.holder.assistant.index.get_document(doc_id).text

    def doc_ids(self) -> list[str]:
        """The ids of the indexed documents, sorted (the scope's choices)."""
        try:
            return sorted(info.doc_id for info in self.holder.assistant.index.documents())
        except Exception:
            log.exception("listing documents failed")
            return []

    def turns(self, session: ChatSession) -> list[ChatTurn]:
        if not session.conversation_id:
            return []
        try:
            return self.store.turns(session.owner, session.conversation_id)
        except ConversationNotFound:
            return []

    def _listing(self, session: ChatSession) -> _Listing:
        infos = self.store.conversations(session.owner)
        current = next((info for info in infos if info.id == session.conversation_id), None)
        choices = [(info.title, info.id) for info in infos]
        return _Listing(choices, current.title if current else "", current.scope if current else ())

    def scope(self, session: ChatSession) -> list[str]:
        """The documents the open conversation searches, those still indexed (empty: all)."""
        if not session.conversation_id:
            return []
        try:
            chosen = self.store.get(session.owner, session.conversation_id).scope
        except ConversationNotFound:
            return []
        indexed = set(self.doc_ids())
        return [doc_id for doc_id in chosen if doc_id in indexed]

    def chat_value(self, session: ChatSession, turns: Sequence[ChatTurn] | None = None) -> list[dict[str, str]]:
        """The chat: stored turns, then the answer being written and the questions waiting."""
        turns = self.turns(session) if turns is None else turns
        cid = session.conversation_id
        if not cid:
            return chat_messages(turns)
        return chat_messages(turns, live=self.runtime.live(cid), waiting=self.runtime.waiting(cid))

    def view(self, session: ChatSession) -> tuple[Any, ...]:
        """Everything the Ask tab shows for ``session``, in ``VIEW_FIELDS`` order."""
        import gradio as gr

        self._show(session)
        turns = self.turns(session)
        listing = self._listing(session)
        docs = self.doc_ids()
        busy = self.runtime.busy(session.conversation_id)
        latest = next((t.answer for t in reversed(turns) if t.answer is not None), None)
        return (
            session,
            self.chat_value(session, turns),
            render_sources_panel(turns, self.document_text),
            render_passages_html(latest.passages if latest else []),
            gr.update(choices=listing.choices, value=session.conversation_id),
            listing.title,
            gr.update(choices=docs, value=[d for d in listing.scope if d in docs]),
            {"client": session.client, "conversation": session.conversation_id or ""},
            gr.update(interactive=busy),
            gr.update(interactive=bool(turns) and not busy),
        )

    def _show(self, session: ChatSession) -> None:
        """Note which conversation the page of ``session`` shows now."""
        with self._showing_lock:
            self._showing.pop(session.page, None)
            self._showing[session.page] = session
            while len(self._showing) > 10_000:  # pages come and go: forget the oldest
                self._showing.pop(next(iter(self._showing)))

    def shows(self, session: ChatSession) -> bool:
        """Whether the page of ``session`` still shows its conversation (not another one opened since)."""
        with self._showing_lock:
            shown = self._showing.get(session.page, session)
        return shown.conversation_id == session.conversation_id

    def _shown(self, page: str) -> ChatSession | None:
        """The session a page has shown already (a question asked on it before its load ran)."""
        with self._showing_lock:
            return self._showing.get(page) if page else None

    def _answered_view(self, session: ChatSession) -> tuple[Any, ...]:
        """After an answer: a full render, unless the page has gone on to another conversation
        (the answer is saved all the same)."""
        import gradio as gr

        return self.view(session) if self.shows(session) else (gr.skip(),) * len(VIEW_FIELDS)

    def _streaming_view(self, session: ChatSession, stored: list[dict[str, str]]) -> tuple[Any, ...]:
        """While an answer streams: the chat (``stored``: the stored turns, rendered once per answer, then
        the answer being written and the queue), Stop on, Regenerate off; the rest unchanged (all of it
        when the page shows another conversation now)."""
        import gradio as gr

        if not self.shows(session):
            return (gr.skip(),) * len(VIEW_FIELDS)
        cid = session.conversation_id or ""
        chat = stored + chat_messages((), live=self.runtime.live(cid), waiting=self.runtime.waiting(cid))
        skip = gr.skip()
        stop, regenerate = gr.update(interactive=True), gr.update(interactive=False)
        return (skip, chat, skip, skip, skip, skip, skip, skip, stop, regenerate)

    # -- asking ----------------------------------------------------------------------------

    def session_for(self, saved: Any, username: str | None, page: str = "") -> ChatSession:
        """The session of a page: its owner, and the conversation its browser had open (``saved``, from
        the browser's storage) if that is still there."""
        saved = saved if isinstance(saved, dict) else {}
        client = str(saved.get("client") or uuid.uuid4().hex)
        owner = owner_for(username, client, exposed=self.exposed)
        session = ChatSession(owner, client, page=page or uuid.uuid4().hex)
        cid = str(saved.get("conversation") or "")
        return replace(session, conversation_id=cid) if self.store.exists(session.owner, cid) else session

    def load(self, saved: Any, session: ChatSession | None, username: str | None, page: str = "") -> tuple[Any, ...]:
        """A page (re)loaded: reopen the conversation its browser had open (a question asked before
        this ran has made the session already: it is kept, even when this load started before it)."""
        return self.view(session or self._shown(page) or self.session_for(saved, username, page))

    def submit(self, question: str, session: ChatSession | None, scope: Sequence[str] | None) -> tuple[Any, ...]:
        """Queue ``question`` in the open conversation (made and saved on the first question); the
        question box is emptied. ``drain`` answers it."""
        import gradio as gr

        question = (question or "").strip()
        if session is None or not question:
            return (gr.skip(),) * (1 + len(VIEW_FIELDS))
        if not self.store.exists(session.owner, session.conversation_id):
            info = self.store.create(session.owner, default_title(question), list(scope or ()))
            session = replace(session, conversation_id=info.id)
        assert session.conversation_id is not None
        self.runtime.enqueue(session.conversation_id, question)
        return ("", *self.view(session))

    def drain(self, session: ChatSession | None, top_k: float | None, preset: str | None) -> Iterator[tuple[Any, ...]]:
        """Answer the conversation's waiting questions one by one, streaming each; runs in the
        assistant's queue. If another session is answering them, it waits ``writer_wait`` seconds for
        it to let go (an answer whose page went away comes back to the queue), else leaves them to it."""
        import gradio as gr

        cid = session.conversation_id if session else None
        if session is None or not cid:
            yield (gr.skip(),) * len(VIEW_FIELDS)
            return
        answered = False
        while self.runtime.busy(cid):
            writer = self.runtime.writer(cid)
            if not writer.acquire(True, self.writer_wait):
                break  # the session holding it answers these questions too
            started = False
            try:
                while (live := self.runtime.start_next(cid)) is not None:
                    started = True
                    yield from self._answer(session, live, top_k, preset)  # ends with a full render
                    answered = True
            finally:
                writer.release()
            if not started:
                break
        if not answered:
            yield self._answered_view(session)

    def _answer(
        self, session: ChatSession, live: LiveAnswer, top_k: float | None, preset: str | None
    ) -> Iterator[tuple[Any, ...]]:
        """Stream one answer, then record it (unless Stop did); a failure is recorded as such. If the page
        goes away meanwhile (Gradio closes this generator), the question goes back to the head of the
        queue: the page that opens the conversation next answers it."""
        cid = session.conversation_id
        assert cid is not None
        history = self.turns(session)
        stored = chat_messages(history)
        yield self._streaming_view(session, stored)
        try:
            answer = yield from self._stream(session, live, history, stored, top_k, preset)
            missing = "" if answer is not None else "The assistant finished without an answer."
            outcome = ChatTurn(live.question, answer, missing, seconds=time.perf_counter() - live.started)
        except GeneratorExit:
            self.runtime.requeue(cid, live)
            raise
        except Exception as exc:
            log.exception("answering %r failed", live.question)
            outcome = ChatTurn(live.question, error=f"Could not answer: {exc}")
        self.runtime.settle(cid, live, lambda: self._record(session.owner, cid, [outcome]))
        yield self._answered_view(session)

    def _stream(
        self,
        session: ChatSession,
        live: LiveAnswer,
        history: Sequence[ChatTurn],
        stored: list[dict[str, str]],
        top_k: float | None,
        preset: str | None,
    ) -> Generator[tuple[Any, ...], None, Answer | None]:
        """The assistant's stream as chat renders; returns (as a generator's value) the ``Answer``,
        or ``None`` if stopped or the stream ended without one."""
        assistant = self.holder.get(preset)
        scope = self.scope(session)
        stream = assistant.ask_stream(
            live.question, history=history_pairs(history), top_k=int(top_k) if top_k else None, doc_ids=scope or None
        )
        answer: Answer | None = None
        with closing(_Closable(stream)):
            for item in stream:
                if live.stop.is_set():
                    return None
                if isinstance(item, Answer):
                    answer = item
                    continue
                live.draft += item
                yield self._streaming_view(session, stored)
        return answer

    def _record(self, owner: str, cid: str, turns: Sequence[ChatTurn]) -> None:
        for turn in turns:
            try:
                self.store.append(owner, cid, turn)
            except ConversationNotFound:
                log.info("conversation %s was deleted while it was answered", cid)

    def stop(self, session: ChatSession | None) -> tuple[Any, ...]:
        """Stop the answer being written and withdraw the questions waiting; each stays in the
        conversation, marked as stopped."""
        import gradio as gr

        if session is None or not session.conversation_id:
            return (gr.skip(),) * len(VIEW_FIELDS)
        cid, owner = session.conversation_id, session.owner
        self.runtime.stop(
            cid, lambda questions: self._record(owner, cid, [ChatTurn(q, stopped=True) for q in questions])
        )
        return self.view(session)

    def regenerate(self, session: ChatSession | None) -> tuple[Any, ...]:
        """Ask the last question again; its new answer takes the old one's place."""
        import gradio as gr

        cid = session.conversation_id if session else None
        if session is None or not cid or self.runtime.busy(cid):
            return (gr.skip(),) * len(VIEW_FIELDS)
        last = self.store.pop_last(session.owner, cid)
        if last is None:
            return (gr.skip(),) * len(VIEW_FIELDS)
        self.runtime.enqueue(cid, last.question)
        return self.view(session)

    def ask_once(
        self,
        question: str,
        session: ChatSession | None,
        top_k: float | None,
        preset: str | None,
        *,
        username: str | None = None,
        session_hash: str = "",
    ) -> tuple[Any, ...]:
        """The ``/ask`` API: answer ``question`` in the caller's conversation and return (question box,
        chat, session, sources, passages) once it is answered."""
        import gradio as gr

        if not (question or "").strip():
            return (gr.skip(),) * 5
        owner = owner_for(username, session_hash, exposed=self.exposed)
        session = session or ChatSession(owner, session_hash, page=session_hash)
        submitted = self.submit(question, session, ())
        session = submitted[1]
        final = self.view(session)
        for rendered in self.drain(session, top_k, preset):
            final = rendered
        shown = dict(zip(VIEW_FIELDS, final, strict=True))
        return "", shown["chatbot"], session, shown["sources"], shown["passages"]

    # -- conversations ---------------------------------------------------------------------

    def new_chat(self, session: ChatSession | None) -> tuple[Any, ...]:
        import gradio as gr

        if session is None:
            return (gr.skip(),) * len(VIEW_FIELDS)
        return self.view(replace(session, conversation_id=None))

    def open(self, session: ChatSession | None, conversation_id: str | None) -> tuple[Any, ...]:
        import gradio as gr

        if session is None or not self.store.exists(session.owner, conversation_id):
            return (gr.skip(),) * len(VIEW_FIELDS)
        return self.view(replace(session, conversation_id=conversation_id))

    def rename(self, session: ChatSession | None, title: str) -> tuple[Any, ...]:
        import gradio as gr

        if session is None or not session.conversation_id:
            return (gr.skip(),) * len(VIEW_FIELDS)
        try:
            self.store.rename(session.owner, session.conversation_id, title or "")
        except (ValueError, ConversationNotFound) as exc:
            gr.Warning(str(exc).strip("'"))
        return self.view(session)

    def delete(self, session: ChatSession | None) -> tuple[Any, ...]:
        """Delete the open conversation (stopping its answer, if one is written) and start a new one."""
        import gradio as gr

        if session is None or not session.conversation_id:
            return (gr.skip(),) * len(VIEW_FIELDS)
        self.runtime.stop(session.conversation_id, lambda questions: None)
        with suppress(ConversationNotFound):
            self.store.delete(session.owner, session.conversation_id)
        return self.view(replace(session, conversation_id=None))

    def set_scope(self, session: ChatSession | None, scope: Sequence[str] | None) -> None:
        """Keep the documents chosen for the open conversation (a new one takes them when it is saved)."""
        if session is not None and self.store.exists(session.owner, session.conversation_id):
            assert session.conversation_id is not None
            self.store.set_scope(session.owner, session.conversation_id, list(scope or ()))

    def scope_choices(self, scope: Sequence[str] | None) -> Any:
        """The scope's choices from the index as it is now (documents come and go), keeping the chosen ones."""
        import gradio as gr

        docs = self.doc_ids()
        return gr.update(choices=docs, value=[d for d in scope or () if d in docs])

    def export(self, session: ChatSession | None) -> Any:
        """The open conversation as a Markdown file to download."""
        import gradio as gr

        if session is None or not self.store.exists(session.owner, session.conversation_id):
            gr.Info("Ask a question first: there is nothing to export yet.")
            return gr.skip()
        assert session.conversation_id is not None
        info = self.store.get(session.owner, session.conversation_id)
        path = Path(self._exports.name) / uuid.uuid4().hex / export_file_name(info.title)
        path.parent.mkdir()
        path.write_text(self.store.export_markdown(session.owner, session.conversation_id), encoding="utf-8")
        return gr.update(value=str(path), visible=True)

    # -- the document viewer -----------------------------------------------------------------

    def open_document(self, request: Any) -> tuple[Any, str]:
        """The viewer, shown, with the whole document scrolled to the span ``request`` names
        (``doc_id``, ``start``, ``end``, ``quote``: what "Open the document" sends)."""
        import gradio as gr

        request = request if isinstance(request, dict) else {}
        doc_id = str(request.get("doc_id") or "")
        try:
            doc = self.holder.assistant.index.get_document(doc_id)
        except Exception:
            return gr.update(visible=True), render_error_html(f"{doc_id or 'That document'} is no longer in the index.")
        start, end = _int(request.get("start")), _int(request.get("end"))
        return gr.update(visible=True), render_document_html(doc, start, end, str(request.get("quote") or ""))


class _Closable:
    """``contextlib.closing`` for any iterator: closes it if it is a generator (stops the model)."""

    def __init__(self, iterator: Iterator[Any]) -> None:
        self.iterator = iterator

    def close(self) -> None:
        close = getattr(self.iterator, "close", None)
        if close is not None:
            close()


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class AskTab:
    """The Ask tab's components: saved conversations, the chat, and the sources with the document viewer."""

    tab: gr.Tab
    chatbot: gr.Chatbot
    question: gr.Textbox
    ask: gr.Button
    stop: gr.Button
    regenerate: gr.Button
    examples: list[gr.Button]
    scope: gr.Dropdown
    show_passages: gr.Checkbox
    notes: gr.HTML
    history: _HistoryColumn
    sources: gr.HTML
    viewer_group: gr.Group
    viewer: gr.HTML
    close_viewer: gr.Button
    passages_group: gr.Group
    passages: gr.HTML


@dataclass(frozen=True)
class _HistoryColumn:
    new_chat: gr.Button
    conversations: gr.Radio
    title: gr.Textbox
    rename: gr.Button
    delete: gr.Button
    confirm_group: gr.Group
    confirm_delete: gr.Button
    cancel_delete: gr.Button
    export: gr.Button
    export_file: gr.File


def chat_box() -> tuple[gr.Chatbot, gr.Textbox, gr.Button, gr.Button]:
    """The conversation, and the question box with its Ask and Stop buttons below it."""
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
            placeholder="Ask a question… (asked while an answer is written, it waits its turn)",
            elem_id="qa-question",
            scale=6,
            lines=1,
            max_lines=4,
            autofocus=True,
        )
        ask = gr.Button("Ask", variant="primary", elem_id="qa-ask", scale=1, min_width=80)
        stop = gr.Button("Stop", variant="stop", elem_id="qa-stop", scale=1, min_width=80, interactive=False)
    return chatbot, question, ask, stop


def _history_column() -> _HistoryColumn:
    """Saved conversations: a new one, the list, and rename / delete (confirmed) / export of the open one."""
    import gradio as gr

    with gr.Column(scale=1, min_width=220, elem_id="qa-history"):
        new_chat = gr.Button("New chat", size="sm", variant="secondary", elem_id="qa-new-chat")
        conversations = gr.Radio([], label="Saved conversations", elem_id="qa-conversations")
        title = gr.Textbox(label="Title of the open conversation", max_lines=1, elem_id="qa-conv-title")
        with gr.Row():
            rename = gr.Button("Rename", size="sm", elem_id="qa-rename", min_width=60)
            delete = gr.Button("Delete", size="sm", variant="stop", elem_id="qa-delete", min_width=60)
        with gr.Group(visible=False, elem_id="qa-delete-confirm") as confirm_group:
            gr.HTML('<div class="qa-confirm">Delete this conversation for good?</div>')
            with gr.Row():
                confirm_delete = gr.Button("Yes, delete", size="sm", variant="stop", elem_id="qa-delete-yes")
                cancel_delete = gr.Button("Keep it", size="sm", elem_id="qa-delete-no")
        export = gr.Button("Export as Markdown", size="sm", elem_id="qa-export")
        export_file = gr.File(label="Markdown export", visible=False, interactive=False, elem_id="qa-export-file")
    return _HistoryColumn(
        new_chat,
        conversations,
        title,
        rename,
        delete,
        confirm_group,
        confirm_delete,
        cancel_delete,
        export,
        export_file,
    )


def _sources_column() -> tuple[gr.HTML, gr.Group, gr.HTML, gr.Button, gr.Group, gr.HTML]:
    """Each answer's sources, the document viewer, and (toggled) the retrieved passages."""
    import gradio as gr

    with gr.Column(scale=2):
        gr.Markdown("### Sources")
        sources = gr.HTML(SOURCES_PLACEHOLDER, elem_id="qa-sources", js_on_load=SOURCES_JS, max_height=640)
        with gr.Group(visible=False, elem_id="qa-viewer") as viewer_group:
            with gr.Row():
                gr.Markdown("### Document")
                close_viewer = gr.Button("Close", size="sm", elem_id="qa-viewer-close", min_width=60, scale=0)
            viewer = gr.HTML("", elem_id="qa-viewer-doc", js_on_load=VIEWER_JS)
        with gr.Group(visible=False) as passages_group:
            gr.Markdown("### Retrieved passages")
            passages = gr.HTML(render_passages_html([]), elem_id="qa-passages", max_height=640)
    return sources, viewer_group, viewer, close_viewer, passages_group, passages


def ask_tab(notes_html: str = "") -> AskTab:
    """Saved conversations, the chat (scope, examples, regenerate, passages toggle), the sources."""
    import gradio as gr

    with gr.Tab("Ask", id="ask") as tab, gr.Row(equal_height=False):
        history = _history_column()
        with gr.Column(scale=3):
            scope = gr.Dropdown(
                [],
                value=[],
                multiselect=True,
                label="Search only these documents",
                info="Leave empty to search every document.",
                elem_id="qa-scope",
            )
            chatbot, question, ask, stop = chat_box()
            notes = gr.HTML(notes_html, elem_id="qa-ask-notes")
            with gr.Row():
                regenerate = gr.Button("Regenerate last answer", size="sm", elem_id="qa-regenerate", interactive=False)
                show_passages = gr.Checkbox(label="Show retrieved passages", value=False, elem_id="qa-show-passages")
            with gr.Row():
                examples = [gr.Button(q, size="sm", elem_classes=["qa-example"]) for q in EXAMPLE_QUESTIONS]
        sources, viewer_group, viewer, close_viewer, passages_group, passages = _sources_column()
    return AskTab(
        tab,
        chatbot,
        question,
        ask,
        stop,
        regenerate,
        examples,
        scope,
        show_passages,
        notes,
        history,
        sources,
        viewer_group,
        viewer,
        close_viewer,
        passages_group,
        passages,
    )


# --------------------------------------------------------------------------- events

# Shown at once, outside the queue (the answer itself is written in the assistant's queue).
_AT_ONCE: dict[str, Any] = {"queue": False, "api_visibility": "private", "show_progress": "hidden"}


def toggle_passages(show: bool) -> Any:
    import gradio as gr

    return gr.update(visible=bool(show))


def _with_request(fn: Callable[..., Any], *names: str) -> Callable[..., Any]:
    """Gradio passes the session's request to a parameter annotated ``gr.Request``; this module's
    annotations are strings, so the real class is set here."""
    import gradio as gr

    fn.__annotations__ = {name: gr.Request for name in names}
    return fn


def wire_chat(chat: ChatHandlers, tab: AskTab, *, top_k: gr.Slider, preset: gr.Radio, demo: gr.Blocks) -> None:
    """Every event of the Ask tab. Asking shows the question at once and queues it; ``drain`` then
    answers in the assistant's queue. ``/ask`` is the API (a hidden trigger: the same handlers)."""
    import gradio as gr

    session = gr.State(None)
    saved = gr.BrowserState({}, storage_key="qa-chat", secret=chat.store.secret())
    h = tab.history
    view = [session, tab.chatbot, tab.sources, tab.passages, h.conversations, h.title, tab.scope, saved]
    view += [tab.stop, tab.regenerate]
    drain_kw: dict[str, Any] = {
        "concurrency_id": "assistant",
        "trigger_mode": "always_last",  # asked again while it runs: run once more after it, never dropped
        "show_progress": "hidden",
        "api_visibility": "private",
    }

    def then_drain(event: Any) -> None:
        event.then(chat.drain, [session, top_k, preset], view, **drain_kw)

    def submit(question: str, s: ChatSession | None, scope: Any, stored: Any, request: gr.Request) -> tuple[Any, ...]:
        page = request.session_hash or ""
        return chat.submit(question, s or chat.session_for(stored, request.username, page), scope)

    asked = ([tab.question, session, tab.scope, saved], [tab.question, *view])
    then_drain(tab.ask.click(_with_request(submit, "request"), *asked, **_AT_ONCE))
    then_drain(tab.question.submit(_with_request(submit, "request"), *asked, **_AT_ONCE))
    for button, text in zip(tab.examples, EXAMPLE_QUESTIONS, strict=True):

        def example(s: ChatSession | None, scope: Any, stored: Any, request: gr.Request, text: str = text) -> Any:
            return (gr.skip(), *submit(text, s, scope, stored, request)[1:])

        example_io = ([session, tab.scope, saved], [tab.question, *view])
        then_drain(button.click(_with_request(example, "request"), *example_io, **_AT_ONCE))
    tab.stop.click(chat.stop, session, view, **_AT_ONCE)
    then_drain(tab.regenerate.click(chat.regenerate, session, view, **_AT_ONCE))
    _wire_history(chat, tab, session, view)
    _wire_sources(chat, tab)
    tab.scope.input(chat.set_scope, [session, tab.scope], None, **_AT_ONCE)
    tab.tab.select(chat.scope_choices, tab.scope, tab.scope, **_AT_ONCE)

    def load(stored: Any, s: ChatSession | None, request: gr.Request) -> tuple[Any, ...]:
        return chat.load(stored, s, request.username, request.session_hash or "")

    then_drain(demo.load(_with_request(load, "request"), [saved, session], view, **_AT_ONCE))  # any left waiting
    _wire_api(chat, tab, session, top_k, preset)


def _wire_history(chat: ChatHandlers, tab: AskTab, session: gr.State, view: list[Any]) -> None:
    """New chat, open, rename, delete (after a confirmation), export."""
    import gradio as gr

    h = tab.history
    for new_event in (h.new_chat.click, tab.chatbot.clear):
        new_event(chat.new_chat, session, view, **_AT_ONCE)
    h.conversations.input(chat.open, [session, h.conversations], view, **_AT_ONCE)
    for rename_event in (h.rename.click, h.title.submit):
        rename_event(chat.rename, [session, h.title], view, **_AT_ONCE)
    confirming = [h.confirm_group, h.delete]
    h.delete.click(lambda: (gr.update(visible=True), gr.update(interactive=False)), None, confirming, **_AT_ONCE)
    closed = (gr.update(visible=False), gr.update(interactive=True))
    h.cancel_delete.click(lambda: closed, None, confirming, **_AT_ONCE)
    h.confirm_delete.click(chat.delete, session, view, **_AT_ONCE).then(lambda: closed, None, confirming, **_AT_ONCE)
    h.export.click(chat.export, session, h.export_file, **_AT_ONCE)


def _wire_sources(chat: ChatHandlers, tab: AskTab) -> None:
    """The document viewer (opened from a source) and the retrieved-passages toggle."""
    import gradio as gr

    def open_document(event: gr.EventData) -> tuple[Any, str]:
        return chat.open_document(getattr(event, "_data", None))

    open_document.__annotations__ = {"event": gr.EventData}
    tab.sources.select(open_document, None, [tab.viewer_group, tab.viewer], **_AT_ONCE)
    tab.close_viewer.click(lambda: gr.update(visible=False), None, tab.viewer_group, **_AT_ONCE)
    tab.show_passages.change(toggle_passages, tab.show_passages, tab.passages_group, **_AT_ONCE)


def _wire_api(chat: ChatHandlers, tab: AskTab, session: gr.State, top_k: gr.Slider, preset: gr.Radio) -> None:
    """``/ask``: (question, top_k, preset) → (question box, chat, sources, passages), once answered;
    a client's session keeps its conversation, so a follow-up is understood."""
    import gradio as gr

    def ask(
        question: str, state: ChatSession | None, top_k: float | None, preset: str | None, request: gr.Request
    ) -> tuple[Any, ...]:
        hashed = request.session_hash or ""
        return chat.ask_once(question, state, top_k, preset, username=request.username, session_hash=hashed)

    trigger = gr.Button(visible=False, elem_id="qa-ask-api")
    trigger.click(
        _with_request(ask, "request"),
        [tab.question, session, top_k, preset],
        [tab.question, tab.chatbot, session, tab.sources, tab.passages],
        api_name="ask",
        concurrency_id="assistant",
        show_progress="hidden",
    )


# --------------------------------------------------------------------------- CSS and scripts

CHAT_CSS = """
.qa-answer, .qa-refusal, .qa-error, .qa-stopped, .qa-waiting { line-height: 1.5; }
.qa-text { white-space: normal; }
.qa-short { font-weight: 600; font-size: 1.1em; margin-bottom: 0.3em; }
.qa-proof { margin-top: 0.4em; padding-left: 0.6em; border-left: 3px solid #ccc; color: #444; font-size: 0.95em; }
.qa-proof mark { background: #fff3b0; }
.qa-cite { font-weight: 600; text-decoration: none; color: #1d4ed8 !important; padding: 0 1px; }
.qa-cite:hover, .qa-show-sources:hover { text-decoration: underline; }
.qa-show-sources { color: inherit !important; text-decoration: none; border-bottom: 1px dotted #6b7280; }
.qa-meta { margin-top: 6px; font-size: 0.85em; color: #4b5563; }
.qa-confidence { font-weight: 600; }
.qa-conf-high { color: #047857; } .qa-conf-medium { color: #b45309; } .qa-conf-low { color: #b91c1c; }
.qa-conf-refusal { color: inherit; font-weight: 400; }
.qa-refusal { border-left: 4px solid #d97706; background: #fffbeb; padding: 6px 10px; border-radius: 4px; }
.qa-refusal-head { font-weight: 700; color: #92400e; }
.qa-reason { font-style: italic; color: #78350f; margin-top: 4px; }
.qa-error { border-left: 4px solid #dc2626; background: #fef2f2; padding: 6px 10px; border-radius: 4px; }
.qa-stopped, .qa-waiting { color: #4b5563; font-style: italic; }
.qa-status { color: #6b7280; font-style: italic; font-size: 0.9em; }
.qa-drafting { color: #6b7280; font-size: 0.8em; text-transform: uppercase; letter-spacing: 0.04em; }
.qa-draft { color: #6b7280; font-style: italic; border-left: 3px dashed #d1d5db; padding-left: 8px; }
.qa-cursor { animation: qa-blink 1s steps(2) infinite; color: #6b7280; }
@keyframes qa-blink { 50% { opacity: 0; } }
.qa-turn-sources { display: none; }
.qa-turn-sources.qa-shown { display: block; }
.qa-turn-head { font-size: 0.85em; color: #4b5563; margin: 0 0 8px 0; }
.qa-turn-q { font-style: italic; }
.qa-source, .qa-passage { border: 1px solid #e5e7eb; border-radius: 6px; padding: 8px 10px;
  margin: 0 0 10px 0; scroll-margin-top: 16px; }
.qa-source.qa-active { border-color: #2563eb; box-shadow: 0 0 0 2px #bfdbfe; }
.qa-source-head { font-weight: 600; }
.qa-source-n { color: #1d4ed8; }
.qa-source-meta { font-size: 0.8em; color: #6b7280; margin: 2px 0 6px 0; }
.qa-source-text { margin: 0; padding: 6px 10px; border-left: 3px solid #d1d5db; white-space: pre-wrap;
  font-size: 0.92em; color: #374151; }
.qa-source-text mark, .qa-doc-mark { background: #fde68a; color: #111827; padding: 0 1px; }
.qa-open-doc { margin-top: 6px; font-size: 0.8em; color: #1d4ed8; background: none; border: none; padding: 0;
  cursor: pointer; text-decoration: underline; }
.qa-passage-text { white-space: pre-wrap; font-size: 0.88em; color: #374151; }
.qa-sources-empty { color: #6b7280; font-style: italic; padding: 6px 0; }
.qa-note { color: #6b7280; font-size: 0.85em; }
.qa-doc-head { font-weight: 600; margin-bottom: 6px; }
.qa-doc-text { white-space: pre-wrap; font-size: 0.9em; color: #374151; max-height: 520px; overflow-y: auto;
  border: 1px solid #e5e7eb; border-radius: 6px; padding: 8px 10px; }
.qa-doc-page-no { font-size: 0.8em; color: #6b7280; border-top: 1px solid #e5e7eb; margin: 8px 0 4px 0; }
.qa-confirm { font-weight: 600; color: #b91c1c; padding: 4px 8px; }
#qa-conversations { max-height: 420px; overflow-y: auto; }
#qa-conversations .wrap { flex-direction: column; }
"""

# The sources panel: "Open the document" asks the server for the document viewer.
SOURCES_JS = """
element.addEventListener('click', function (event) {
  const button = event.target.closest ? event.target.closest('.qa-open-doc') : null;
  if (!button) { return; }
  event.preventDefault();
  trigger('select', {doc_id: button.dataset.doc, start: Number(button.dataset.start),
                     end: Number(button.dataset.end), quote: button.dataset.quote || ''});
});
"""

# The document viewer scrolls to the cited span each time it shows a document (and when it is first
# drawn: a hidden group's content is drawn only once it is shown, with its value already set).
VIEWER_JS = """
function toMark() {
  setTimeout(function () {
    const mark = element.querySelector('mark.qa-doc-mark');
    if (mark) { mark.scrollIntoView({block: 'center'}); }
  }, 120);
}
watch('value', toMark);
toMark();
"""

# Citation markers show their own answer's sources, in place (no navigation, no new tab); copying a
# message gives its plain text (data-plain), and so do the messages' accessibility labels.
CHAT_HEAD = r"""
<script>
(function () {
  function plainText(text) {
    if (typeof text !== "string" || text.indexOf("data-plain") < 0) { return text; }
    const doc = new DOMParser().parseFromString(text, "text/html");
    doc.querySelectorAll("[data-plain]").forEach(function (el) {
      el.replaceWith(doc.createTextNode(el.getAttribute("data-plain")));
    });
    return doc.body.textContent;
  }
  window.qaPlainText = plainText;
  if (navigator.clipboard && navigator.clipboard.writeText) {
    const write = navigator.clipboard.writeText.bind(navigator.clipboard);
    navigator.clipboard.writeText = function (text) { return write(plainText(text)); };
  }
  document.addEventListener("copy", function (event) {  // the copy fallback without navigator.clipboard
    const el = event.target;
    if (el && el.tagName === "TEXTAREA" && el.value.indexOf("data-plain") >= 0 && event.clipboardData) {
      event.clipboardData.setData("text/plain", plainText(el.value));
      event.preventDefault();
    }
  }, true);
  function plainLabels() {
    document.querySelectorAll("[aria-label*='data-plain']").forEach(function (el) {
      const label = el.getAttribute("aria-label");
      const at = label.indexOf("<");
      el.setAttribute("aria-label", label.slice(0, at) + plainText(label.slice(at)).trim());
    });
  }
  new MutationObserver(plainLabels).observe(document.documentElement,
    {subtree: true, childList: true, attributes: true, attributeFilter: ["aria-label"]});
  function showSources(turn) {
    let shown = null;
    document.querySelectorAll("#qa-sources .qa-turn-sources").forEach(function (section) {
      const match = section.getAttribute("data-turn") === String(turn);
      section.classList.toggle("qa-shown", match);
      if (match) { shown = section; }
    });
    return shown;
  }
  document.addEventListener("click", function (event) {
    const link = event.target.closest ? event.target.closest("a.qa-cite, a.qa-show-sources") : null;
    if (!link) { return; }
    event.preventDefault();
    event.stopPropagation();
    const id = (link.getAttribute("href") || "").replace(/^#/, "");  // the chat drops data-* attributes
    const answer = id.match(/^src-(\d+)-\d+$/) || id.match(/^sources-(\d+)$/);
    let target = answer ? showSources(answer[1]) : null;
    if (link.classList.contains("qa-cite")) {
      target = document.getElementById(id);
      document.querySelectorAll(".qa-source.qa-active").forEach(function (el) { el.classList.remove("qa-active"); });
      if (target) { target.classList.add("qa-active"); }
    }
    if (target) { target.scrollIntoView({behavior: "smooth", block: "nearest"}); }
  }, true);
})();
</script>
"""
