"""Saved conversations: a small SQLite store of each user's chats, and their plain-text and Markdown forms.

The store is one file, ``<paths.index>/conversations.sqlite3`` (:func:`store_path`), beside the index the
conversations are about: index builds only ever replace their own ``gen-*`` folders, so the file survives
rebuilds. With the PostgreSQL backend (:func:`open_store`) the same tables live in the index's schema, so
every server on a shared index sees the same conversations. Each conversation belongs to an *owner*: the
logged-in user name when the server has logins, else one local owner (a loopback server is one
person's tool), else, on a server other machines reach without login, a random per-browser id; every
read and write names the owner, so nobody reaches another's conversations.

A turn is stored as JSON: the question and the verified :class:`~qa.types.Answer` (text with ``[n]``
markers, citations with their quotes, the retrieved passages), or why there is none (an error, or
stopped). Everything shown is rendered again from it, so a reloaded conversation looks as it did.
:func:`turn_plain_text` is what a copy gives; :func:`conversation_markdown` is the export.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.citations import strip_markers
from qa.types import Answer, Chunk, Citation, Passage, RefusalReason, Span

if TYPE_CHECKING:
    from qa.settings import IndexSettings, Settings

LOCAL_OWNER = "local"
STORE_NAME = "conversations.sqlite3"
TITLE_CHARS = 60
STOPPED_TEXT = "Stopped before an answer was checked against the documents."

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    updated DOUBLE PRECISION NOT NULL,
    scope TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS conversations_by_owner ON conversations (owner, updated);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (conversation_id, position)
);
"""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ChatTurn:
    """One question and what came of it: a verified ``answer`` (which may be a refusal), or none,
    with the ``error`` that prevented it, or ``stopped`` by the user. ``seconds``: how long answering took."""

    question: str
    answer: Answer | None = None
    error: str = ""
    stopped: bool = False
    seconds: float | None = None

    @property
    def answer_text(self) -> str:
        """The answer's text with its ``[n]`` markers; empty when there is no answer."""
        return self.answer.text if self.answer is not None else ""


@dataclass(frozen=True)
class ConversationInfo:
    """A saved conversation as listed: ``scope`` holds the document ids its questions search (empty: all)."""

    id: str
    title: str
    created: float
    updated: float
    turns: int
    scope: tuple[str, ...] = ()


class ConversationNotFound(KeyError):
    """No conversation with that id belongs to that owner."""


def default_title(question: str) -> str:
    """A conversation's first title: its first question, cut at a word to ``TITLE_CHARS``."""
    text = " ".join(question.split())
    if len(text) <= TITLE_CHARS:
        return text or "New conversation"
    cut = text[: TITLE_CHARS - 1].rsplit(" ", 1)[0]
    return cut + "…"


# --------------------------------------------------------------------------- JSON


def turn_to_json(turn: ChatTurn) -> str:
    """The stored form of ``turn``."""
    record: dict[str, Any] = asdict(turn)
    return json.dumps(record, ensure_ascii=False)


def turn_from_json(text: str) -> ChatTurn:
    """``turn_to_json`` undone; fields a later version added or dropped are tolerated."""
    record = json.loads(text)
    answer = record.get("answer")
    return ChatTurn(
        question=str(record.get("question", "")),
        answer=_answer_from(answer) if answer else None,
        error=str(record.get("error") or ""),
        stopped=bool(record.get("stopped")),
        seconds=record.get("seconds"),
    )


def _known(cls: type, record: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in record.items() if k in names}


def _answer_from(record: dict[str, Any]) -> Answer:
    values = _known(Answer, record)
    values["citations"] = [Citation(**_known(Citation, c)) for c in values.get("citations") or []]
    values["passages"] = [_passage_from(p) for p in values.get("passages") or []]
    short = values.get("short")
    values["short"] = Span(**_known(Span, short)) if short else None
    refusal = values.get("refusal")
    values["refusal"] = RefusalReason(refusal) if refusal else None
    return Answer(**values)


def _passage_from(record: dict[str, Any]) -> Passage:
    values = _known(Passage, record)
    values["chunk"] = Chunk(**_known(Chunk, values["chunk"]))
    return Passage(**values)


# --------------------------------------------------------------------------- plain text and Markdown


def answer_plain_text(answer: Answer) -> str:
    """An answer as plain text: its text with ``[n]`` markers, then each cited source and quote."""
    if answer.refused:
        text = answer.text if answer.citations else strip_markers(answer.text)
        reason = answer.refusal_reason or "The documents do not support an answer."
        lines = [f"Not answered from the documents: {text.strip()}", f"Reason: {reason}"]
    else:
        lines = [answer.text.strip()]
    sources = [f"[{c.n}] {c.title or c.doc_id} ({c.doc_id}): “{_one_line(c.quote)}”" for c in unique_citations(answer)]
    if sources:
        lines += ["", "Sources:", *sources]
    return "\n".join(lines)


def turn_plain_text(turn: ChatTurn) -> str:
    """The reply of ``turn`` as plain text (what the chat's copy button gives)."""
    if turn.answer is not None:
        return answer_plain_text(turn.answer)
    if turn.stopped:
        return STOPPED_TEXT
    return turn.error or "No answer."


def unique_citations(answer: Answer) -> list[Citation]:
    """The answer's citations, one per number, in number order."""
    seen: dict[int, Citation] = {}
    for citation in answer.citations:
        seen.setdefault(citation.n, citation)
    return [seen[n] for n in sorted(seen)]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _markdown_escape(text: str) -> str:
    """Text safe to put in Markdown as is: markup characters backslashed (``[n]`` markers are kept)."""
    out = []
    for char in text:
        out.append("\\" + char if char in "\\`*_{}<>#|" else char)
    return "".join(out)


def turn_markdown(number: int, turn: ChatTurn) -> str:
    """One turn of the Markdown export: the question as a heading, the answer, its quotes and sources."""
    parts = [f"## {number}. {_markdown_escape(_one_line(turn.question))}", ""]
    answer = turn.answer
    if answer is None:
        parts.append(f"_{_markdown_escape(turn_plain_text(turn))}_")
        return "\n".join(parts)
    if answer.refused:
        text = answer.text if answer.citations else strip_markers(answer.text)  # no dead markers
        parts.append("**Not answered from the documents.** " + _markdown_escape(text.strip()))
        parts += ["", f"Reason: {_markdown_escape(answer.refusal_reason or 'no passage supported an answer')}"]
    else:
        parts.append(_markdown_escape(answer.text.strip()))
    for citation in unique_citations(answer):
        where = f"{citation.doc_id}, characters {citation.start}–{citation.end}"
        title = _markdown_escape(citation.title or citation.doc_id)
        parts += [
            "",
            f"> [{citation.n}] {title} ({_markdown_escape(where)})  ",
            f"> “{_markdown_escape(_one_line(citation.quote))}”",
        ]
    pct = round(max(0.0, min(1.0, answer.confidence)) * 100)
    sure = f"Sure the documents don't answer this: {pct}%" if answer.refused else f"Confidence: {pct}%"
    parts += ["", f"_{sure}_"]
    return "\n".join(parts)


def conversation_markdown(title: str, turns: Sequence[ChatTurn], *, exported: float | None = None) -> str:
    """A whole conversation as Markdown: every question, answer, citation and quote."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(exported if exported is not None else time.time()))
    head = [f"# {_markdown_escape(_one_line(title))}", "", f"_Exported from Document Q&A on {when}._"]
    body = [turn_markdown(i, turn) for i, turn in enumerate(turns, 1)]
    return "\n\n".join(["\n".join(head), *body]) + "\n"


# --------------------------------------------------------------------------- the store


def store_path(index_dir: Path | str) -> Path:
    """Where the conversations of the index in ``index_dir`` are kept."""
    return Path(index_dir) / STORE_NAME


def open_store(settings: Settings) -> ConversationStore:
    """The conversation store beside the index ``settings`` point at: a file in the index folder, or
    tables in the PostgreSQL index's schema."""
    if settings.index.backend == "postgres":
        return ConversationStore(postgres=settings.index)
    return ConversationStore(store_path(settings.paths.index))


class _PgCursor:
    """The few calls the store makes, on a psycopg connection: ``?`` placeholders become ``%s``."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), params)


class ConversationStore:
    """Conversations and their turns in one SQLite file, or with ``postgres`` in the PostgreSQL index's
    schema (so every server on a shared index sees the same conversations); safe to share between
    threads (one connection per call, writes in transactions)."""

    def __init__(self, path: Path | str | None = None, *, postgres: IndexSettings | None = None) -> None:
        if (path is None) == (postgres is None):
            raise ValueError("A conversation store needs a file path or PostgreSQL index settings, not both.")
        self.path = Path(path) if path is not None else None
        self.postgres = postgres
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        if self.postgres is not None:
            yield from self._connect_postgres(self.postgres)
            return
        db = sqlite3.connect(self.path or "", timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            with db:  # one transaction: committed, or rolled back on error
                yield db
        finally:
            db.close()

    @staticmethod
    def _connect_postgres(settings: IndexSettings) -> Iterator[Any]:
        from psycopg import sql

        from qa.pg_store import connect

        conn = connect(settings, autocommit=True)
        try:
            schema = sql.Identifier(settings.schema_name)
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            conn.execute(sql.SQL("SET search_path TO {}, public").format(schema))
            with conn.transaction():
                yield _PgCursor(conn)
        finally:
            conn.close()

    def secret(self) -> str:
        """A random key kept in the store (made once): what the browser's saved state is sealed with,
        so that it still opens after a restart."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('secret', ?) ON CONFLICT (key) DO NOTHING",
                (secrets.token_hex(32),),
            )
            return str(db.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()[0])

    def create(self, owner: str, title: str, scope: Sequence[str] = ()) -> ConversationInfo:
        """A new, empty conversation of ``owner``."""
        now = time.time()
        cid = uuid.uuid4().hex
        with self._connect() as db:
            db.execute(
                "INSERT INTO conversations (id, owner, title, created, updated, scope) VALUES (?, ?, ?, ?, ?, ?)",
                (cid, owner, title, now, now, json.dumps(list(scope))),
            )
        return ConversationInfo(cid, title, now, now, 0, tuple(scope))

    def conversations(self, owner: str) -> list[ConversationInfo]:
        """``owner``'s conversations, the most recently changed first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT c.id, c.title, c.created, c.updated, count(t.position), c.scope FROM conversations c "
                "LEFT JOIN turns t ON t.conversation_id = c.id WHERE c.owner = ? "
                "GROUP BY c.id ORDER BY c.updated DESC, c.created DESC",
                (owner,),
            ).fetchall()
        return [ConversationInfo(r[0], r[1], r[2], r[3], r[4], tuple(json.loads(r[5]))) for r in rows]

    def get(self, owner: str, conversation_id: str) -> ConversationInfo:
        """One of ``owner``'s conversations (``ConversationNotFound`` if it is not theirs or not there)."""
        for info in self.conversations(owner):
            if info.id == conversation_id:
                return info
        raise ConversationNotFound(conversation_id)

    def exists(self, owner: str, conversation_id: str | None) -> bool:
        if not conversation_id:
            return False
        with self._connect() as db:
            row = db.execute(
                "SELECT 1 FROM conversations WHERE id = ? AND owner = ?", (conversation_id, owner)
            ).fetchone()
        return row is not None

    def turns(self, owner: str, conversation_id: str) -> list[ChatTurn]:
        """The turns of a conversation, in order."""
        with self._connect() as db:
            self._check(db, owner, conversation_id)
            rows = db.execute(
                "SELECT record FROM turns WHERE conversation_id = ? ORDER BY position", (conversation_id,)
            ).fetchall()
        return [turn_from_json(row[0]) for row in rows]

    def append(self, owner: str, conversation_id: str, turn: ChatTurn) -> int:
        """Add ``turn`` at the end; returns its position (0 for the first)."""
        with self._connect() as db:
            self._check(db, owner, conversation_id)
            self._touch(db, conversation_id)  # first: it locks the conversation, so appends take turns
            row = db.execute(
                "SELECT coalesce(max(position) + 1, 0) FROM turns WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
            db.execute(
                "INSERT INTO turns (conversation_id, position, record) VALUES (?, ?, ?)",
                (conversation_id, row[0], turn_to_json(turn)),
            )
        return int(row[0])

    def pop_last(self, owner: str, conversation_id: str) -> ChatTurn | None:
        """Remove and return the last turn (``None`` when there is none)."""
        with self._connect() as db:
            self._check(db, owner, conversation_id)
            row = db.execute(
                "SELECT position, record FROM turns WHERE conversation_id = ? ORDER BY position DESC LIMIT 1",
                (conversation_id,),
            ).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM turns WHERE conversation_id = ? AND position = ?", (conversation_id, row[0]))
            self._touch(db, conversation_id)
        return turn_from_json(row[1])

    def rename(self, owner: str, conversation_id: str, title: str) -> None:
        title = " ".join(title.split())
        if not title:
            raise ValueError("A conversation needs a title.")
        with self._connect() as db:
            self._check(db, owner, conversation_id)
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    def set_scope(self, owner: str, conversation_id: str, scope: Sequence[str]) -> None:
        """The documents the conversation's questions search (empty: all)."""
        with self._connect() as db:
            self._check(db, owner, conversation_id)
            db.execute("UPDATE conversations SET scope = ? WHERE id = ?", (json.dumps(list(scope)), conversation_id))

    def delete(self, owner: str, conversation_id: str) -> None:
        """Delete a conversation and its turns."""
        with self._connect() as db:
            self._check(db, owner, conversation_id)
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def export_markdown(self, owner: str, conversation_id: str) -> str:
        """The conversation as Markdown (:func:`conversation_markdown`)."""
        info = self.get(owner, conversation_id)
        return conversation_markdown(info.title, self.turns(owner, conversation_id))

    @staticmethod
    def _check(db: Any, owner: str, conversation_id: str) -> None:
        row = db.execute("SELECT 1 FROM conversations WHERE id = ? AND owner = ?", (conversation_id, owner)).fetchone()
        if row is None:
            raise ConversationNotFound(conversation_id)

    @staticmethod
    def _touch(db: Any, conversation_id: str) -> None:
        db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (time.time(), conversation_id))
