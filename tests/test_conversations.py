"""The saved-conversation store (SQLite), and a conversation's plain-text and Markdown forms."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from qa.conversations import (
    LOCAL_OWNER,
    STOPPED_TEXT,
    ChatTurn,
    ConversationNotFound,
    ConversationStore,
    answer_plain_text,
    conversation_markdown,
    default_title,
    store_path,
    turn_from_json,
    turn_plain_text,
    turn_to_json,
)
from qa.types import Answer, Chunk, Citation, Passage, RefusalReason, Span

QUOTE = "The NMPA granted Breakthrough Therapy Designation to mesutoclax."


def cited(n: int = 1, quote: str = QUOTE, doc_id: str = "seed.txt", title: str = "Seed *news*") -> Citation:
    return Citation(
        n=n, doc_id=doc_id, title=title, chunk_id=f"{doc_id}#0", start=40, end=40 + len(quote), quote=quote, support=0.9
    )


def answered(text: str = "The NMPA granted it [1].") -> Answer:
    chunk = Chunk(id="seed.txt#0", doc_id="seed.txt", title="Seed", text=QUOTE, start=40, end=104, ordinal=0, page=3)
    return Answer(
        question="Which agency?",
        text=text,
        citations=[cited()],
        confidence=0.82,
        passages=[Passage(chunk=chunk, score=0.03, dense_rank=1, dense_score=0.7)],
        short=Span("NMPA", "seed.txt", 44, 48, 1),
        timings={"total": 1.5},
        notes=["trimmed"],
    )


def refused() -> Answer:
    return Answer(
        question="Who?",
        text="I can't answer that from the documents [1].",
        refused=True,
        confidence=0.7,
        refusal=RefusalReason.MODEL_NOT_FOUND,
        refusal_reason="The passages do not state the answer.",
    )


# --------------------------------------------------------------------------- plain text


def test_plain_text_keeps_markers_and_lists_each_source_once() -> None:
    answer = answered("The NMPA granted it [1]. It is <b>fast</b> [1].")
    answer = Answer(**{**answer.__dict__, "citations": [cited(), cited()]})
    assert answer_plain_text(answer) == (
        f"The NMPA granted it [1]. It is <b>fast</b> [1].\n\nSources:\n[1] Seed *news* (seed.txt): “{QUOTE}”"
    )


def test_plain_text_of_a_refusal_says_so_without_a_dead_marker() -> None:
    assert answer_plain_text(refused()) == (
        "Not answered from the documents: I can't answer that from the documents.\n"
        "Reason: The passages do not state the answer."
    )


def test_plain_text_of_turns_without_an_answer() -> None:
    assert turn_plain_text(ChatTurn("Q", stopped=True)) == STOPPED_TEXT
    assert turn_plain_text(ChatTurn("Q", error="Could not answer: boom")) == "Could not answer: boom"
    assert turn_plain_text(ChatTurn("Q", answered())).startswith("The NMPA granted it [1].")
    assert ChatTurn("Q", answered()).answer_text == "The NMPA granted it [1]."
    assert ChatTurn("Q", error="x").answer_text == ""


def test_default_title_is_the_question_cut_at_a_word() -> None:
    assert default_title("  What is\nmesutoclax? ") == "What is mesutoclax?"
    long = "Which agency granted the Breakthrough Therapy Designation to mesutoclax in relapsed lymphoma?"
    assert default_title(long) == "Which agency granted the Breakthrough Therapy Designation…"
    assert len(default_title(long)) <= 60
    assert default_title("   ") == "New conversation"


# --------------------------------------------------------------------------- JSON


def test_a_turn_survives_its_json_form() -> None:
    for turn in (
        ChatTurn("Which agency?", answered(), seconds=1.25),
        ChatTurn("Who?", refused()),
        ChatTurn("Stop me", stopped=True),
        ChatTurn("Boom", error="Could not answer: boom"),
    ):
        assert turn_from_json(turn_to_json(turn)) == turn
    assert turn_from_json('{"question": "Old", "answer": null, "extra": 1}') == ChatTurn("Old")


# --------------------------------------------------------------------------- the store


def test_store_creates_lists_renames_and_deletes_per_owner(tmp_path: Path) -> None:
    store = ConversationStore(store_path(tmp_path / "index"))
    assert store.path == tmp_path / "index" / "conversations.sqlite3"
    first = store.create(LOCAL_OWNER, "First", scope=["a.txt"])
    second = store.create(LOCAL_OWNER, "Second")
    theirs = store.create("user:bob", "Bob's")
    store.append(LOCAL_OWNER, first.id, ChatTurn("Q1", answered()))  # first is now the most recent
    listed = store.conversations(LOCAL_OWNER)
    assert [(c.id, c.title, c.turns, c.scope) for c in listed] == [
        (first.id, "First", 1, ("a.txt",)),
        (second.id, "Second", 0, ()),
    ]
    assert [c.id for c in store.conversations("user:bob")] == [theirs.id]
    store.rename(LOCAL_OWNER, second.id, "  Renamed \n title ")
    assert store.get(LOCAL_OWNER, second.id).title == "Renamed title"
    with pytest.raises(ValueError, match="needs a title"):
        store.rename(LOCAL_OWNER, second.id, "   ")
    store.set_scope(LOCAL_OWNER, second.id, ["b.md", "c.pdf"])
    assert store.get(LOCAL_OWNER, second.id).scope == ("b.md", "c.pdf")
    store.delete(LOCAL_OWNER, first.id)
    assert [c.id for c in store.conversations(LOCAL_OWNER)] == [second.id]
    with sqlite3.connect(store.path) as db:  # its turns went with it
        assert db.execute("SELECT count(*) FROM turns WHERE conversation_id = ?", (first.id,)).fetchone() == (0,)


def test_store_refuses_another_owners_conversation(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    bobs = store.create("user:bob", "Bob's")
    store.append("user:bob", bobs.id, ChatTurn("Q", answered()))
    for attempt in (
        lambda: store.turns("user:eve", bobs.id),
        lambda: store.append("user:eve", bobs.id, ChatTurn("x")),
        lambda: store.rename("user:eve", bobs.id, "mine"),
        lambda: store.delete("user:eve", bobs.id),
        lambda: store.pop_last("user:eve", bobs.id),
        lambda: store.get("user:eve", bobs.id),
        lambda: store.export_markdown("user:eve", bobs.id),
    ):
        with pytest.raises(ConversationNotFound):
            attempt()
    assert not store.exists("user:eve", bobs.id) and store.exists("user:bob", bobs.id)
    assert not store.exists("user:bob", None) and not store.exists("user:bob", "")
    assert [t.question for t in store.turns("user:bob", bobs.id)] == ["Q"]


def test_turns_are_kept_in_order_across_a_reopened_store(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    store = ConversationStore(path)
    cid = store.create(LOCAL_OWNER, "Talk").id
    turns = [ChatTurn("Q1", answered(), seconds=0.5), ChatTurn("Q2", refused()), ChatTurn("Q3", stopped=True)]
    assert [store.append(LOCAL_OWNER, cid, t) for t in turns] == [0, 1, 2]
    reopened = ConversationStore(path)  # a server restart
    assert reopened.turns(LOCAL_OWNER, cid) == turns
    assert reopened.pop_last(LOCAL_OWNER, cid) == turns[2]
    assert reopened.append(LOCAL_OWNER, cid, ChatTurn("Q3 again", answered())) == 2  # takes its place
    assert [t.question for t in reopened.turns(LOCAL_OWNER, cid)] == ["Q1", "Q2", "Q3 again"]
    assert reopened.secret() == store.secret() and len(store.secret()) == 64  # made once, kept


def test_appends_from_many_threads_all_land(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    cids = [store.create(LOCAL_OWNER, f"T{i}").id for i in range(4)]

    def add(cid: str) -> None:
        for n in range(10):
            store.append(LOCAL_OWNER, cid, ChatTurn(f"Q{n}"))

    threads = [threading.Thread(target=add, args=(cid,)) for cid in cids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for cid in cids:
        assert [t.question for t in store.turns(LOCAL_OWNER, cid)] == [f"Q{n}" for n in range(10)]


# --------------------------------------------------------------------------- Markdown export


def test_markdown_export_has_every_question_answer_citation_and_quote(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    cid = store.create(LOCAL_OWNER, "Mesutoclax # notes").id
    for turn in (
        ChatTurn("Which *agency*?", answered()),
        ChatTurn("Who?", refused()),
        ChatTurn("Stopped one", stopped=True),
        ChatTurn("Broken", error="Could not answer: boom"),
    ):
        store.append(LOCAL_OWNER, cid, turn)
    markdown = store.export_markdown(LOCAL_OWNER, cid)
    exported = markdown.split("\n")[2]
    assert exported.startswith("_Exported from Document Q&A on ")
    expected = conversation_markdown("Mesutoclax # notes", store.turns(LOCAL_OWNER, cid), exported=0)
    assert markdown.split("\n")[3:] == expected.split("\n")[3:]
    body = "\n".join(markdown.split("\n")[3:])
    assert body == (
        "\n"
        "## 1. Which \\*agency\\*?\n"
        "\n"
        "The NMPA granted it [1].\n"
        "\n"
        "> [1] Seed \\*news\\* (seed.txt, characters 40–104)  \n"
        f"> “{QUOTE}”\n"
        "\n"
        "_Confidence: 82%_\n"
        "\n"
        "## 2. Who?\n"
        "\n"
        "**Not answered from the documents.** I can't answer that from the documents.\n"
        "\n"
        "Reason: The passages do not state the answer.\n"
        "\n"
        "_Sure the documents don't answer this: 70%_\n"
        "\n"
        "## 3. Stopped one\n"
        "\n"
        f"_{STOPPED_TEXT}_\n"
        "\n"
        "## 4. Broken\n"
        "\n"
        "_Could not answer: boom_\n"
    )
    assert markdown.startswith("# Mesutoclax \\# notes\n")


@pytest.mark.postgres
def test_on_a_shared_postgresql_index_every_server_sees_the_same_conversations(pg_url: str, pg_schema: str) -> None:
    from qa.conversations import open_store
    from qa.settings import Settings

    settings = Settings.model_validate({"index": {"backend": "postgres", "url": pg_url, "schema_name": pg_schema}})
    first, second = open_store(settings), open_store(settings)  # two `qa serve` on one index
    assert first.path is None and first.postgres == settings.index
    cid = first.create(LOCAL_OWNER, "Shared", scope=["a.txt"]).id
    turns = [ChatTurn("Q1", answered(), seconds=0.5), ChatTurn("Q2", refused()), ChatTurn("Q3", stopped=True)]
    for turn in turns:
        first.append(LOCAL_OWNER, cid, turn)
    assert second.turns(LOCAL_OWNER, cid) == turns
    assert [(c.title, c.turns, c.scope) for c in second.conversations(LOCAL_OWNER)] == [("Shared", 3, ("a.txt",))]
    second.rename(LOCAL_OWNER, cid, "Renamed")
    assert first.get(LOCAL_OWNER, cid).title == "Renamed"
    with pytest.raises(ConversationNotFound):
        second.turns("user:eve", cid)
    assert second.pop_last(LOCAL_OWNER, cid) == turns[2]
    assert first.secret() == second.secret() and len(first.secret()) == 64

    def add(n: int) -> None:
        for i in range(5):
            (first if n % 2 else second).append(LOCAL_OWNER, cid, ChatTurn(f"T{n}-{i}"))

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]  # one conversation, both servers
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(first.turns(LOCAL_OWNER, cid)) == 2 + 20
    first.delete(LOCAL_OWNER, cid)
    assert second.conversations(LOCAL_OWNER) == []
