"""The Ask tab without a browser: its rendering, and its handlers driven by hand over the fake assistant
(``tests/ui_fake_server.py``) and a real conversation store."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from qa.conversations import LOCAL_OWNER, STOPPED_TEXT, ChatTurn, ConversationStore
from qa.types import Answer, Citation, Document, Page
from qa.ui_chat import (
    VIEW_FIELDS,
    ChatHandlers,
    ChatSession,
    LiveAnswer,
    chat_messages,
    export_file_name,
    highlight_context,
    history_pairs,
    owner_for,
    plain_attr,
    render_document_html,
    render_error_html,
    render_question_html,
    render_sources_panel,
    render_streaming_html,
    render_waiting_html,
)

gr = pytest.importorskip("gradio")

QUESTION = "What is mesutoclax?"


def cite(n: int, start: int, quote: str, doc_id: str = "d.txt") -> Citation:
    return Citation(n, doc_id, "Doc", f"{doc_id}#0", start, start + len(quote), quote, 1.0)


# --------------------------------------------------------------------------- rendering


def test_plain_attr_keeps_one_html_block_and_escapes() -> None:
    assert plain_attr('a "quoted" <b>\n\nline') == ' data-plain="a &quot;quoted&quot; &lt;b&gt;&#10;&#10;line"'


def test_chat_messages_show_turns_then_the_live_answer_then_the_queue() -> None:
    answer = Answer(question="Q1", text="A1 [1].", citations=[cite(1, 0, "A1")], confidence=0.9)
    turns = [ChatTurn("Q1", answer), ChatTurn("Q2 <b>", error="Could not answer: boom"), ChatTurn("Q3", stopped=True)]
    live = LiveAnswer("Q4", draft="NOT FOUND [3]")
    messages = chat_messages(turns, live=live, waiting=["Q5", "Q6"])
    assert [m["role"] for m in messages] == ["user", "assistant"] * 6
    assert messages[0]["content"] == '<div class="qa-question" data-plain="Q1">Q1</div>'
    assert 'href="#src-0-1"' in messages[1]["content"]  # the first answer's own sources
    assert messages[2]["content"] == '<div class="qa-question" data-plain="Q2 &lt;b&gt;">Q2 &lt;b&gt;</div>'
    assert messages[3]["content"] == render_error_html("Could not answer: boom")
    assert STOPPED_TEXT in messages[5]["content"] and "qa-stopped" in messages[5]["content"]
    assert messages[7]["content"] == render_streaming_html("NOT FOUND [3]")
    assert messages[9]["content"] == render_waiting_html(1) and "Queued (next)" in messages[9]["content"]
    assert "Queued (number 2 in line)" in messages[11]["content"]
    assert history_pairs(turns) == [("Q1", "A1 [1].")]  # only answers are history
    assert render_question_html(" Q ") == '<div class="qa-question" data-plain="Q">Q</div>'


def test_the_sources_panel_keeps_each_answers_own_passages() -> None:
    doc = "Alpha one. Beta two. Gamma three."
    first = Answer(question="First?", text="Alpha [1].", citations=[cite(1, 0, "Alpha one.")], confidence=0.9)
    second = Answer(question="Second?", text="Beta [1].", citations=[cite(1, 11, "Beta two.")], confidence=0.9)
    turns = [ChatTurn("First?", first), ChatTurn("Broken", error="x"), ChatTurn("Second?", second)]
    panel = render_sources_panel(turns, lambda doc_id: doc)
    sections = re.findall(r'<section class="([^"]+)" id="sources-(\d)"', panel)
    assert sections == [("qa-turn-sources", "0"), ("qa-turn-sources qa-shown", "2")]  # the latest shown
    first_section = panel[panel.index('id="sources-0"') : panel.index('id="sources-2"')]
    assert 'id="src-0-1"' in first_section and "<mark>Alpha one.</mark>" in first_section
    assert 'id="src-2-1"' in panel and "<mark>Beta two.</mark>" in panel[panel.index('id="sources-2"') :]
    assert 'data-doc="d.txt" data-start="0" data-end="10" data-quote="Alpha one."' in first_section
    assert 'class="qa-turn-sources qa-shown" id="sources-0"' in render_sources_panel(turns, None, shown=0)


def test_highlight_finds_the_quote_when_the_document_changed_under_its_offsets() -> None:
    changed = "New first sentence. The NMPA granted it."
    out = highlight_context(changed, 0, 14, "The NMPA granted it.")  # in range, but other text now
    assert re.findall(r"<mark>(.*?)</mark>", out) == ["The NMPA granted it."]


def test_the_document_viewer_shows_every_page_with_the_span_marked() -> None:
    text = "Page one <b>text</b>.\n\nPage two has the cited span here.\n\nPage three."
    start = text.index("the cited span")
    pages = (Page(1, 0, 21), Page(2, 23, 56), Page(3, 58, len(text)))
    doc = Document(id="r.pdf", title="Report", text=text, source="r.pdf", content_hash="h", pages=pages)
    out = render_document_html(doc, start, start + 14, "the cited span")
    assert re.findall(r'<div class="qa-doc-page-no">Page (\d)</div>', out) == ["1", "2", "3"]
    assert '<mark class="qa-doc-mark">the cited span</mark>' in out
    assert "page 2" in out and "Page one &lt;b&gt;text&lt;/b&gt;." in out and "<b>" not in out
    assert "Page three." in out  # the whole document, not a window
    moved = render_document_html(doc, 0, 5, "the cited span")  # stale offsets: found by its quote
    assert '<mark class="qa-doc-mark">the cited span</mark>' in moved
    gone = render_document_html(doc, 0, 5, "a sentence no longer there")
    assert "qa-doc-mark" not in gone and "no longer in this document" in gone
    plain = Document(id="n.txt", title="", text="Just text.", source="n.txt", content_hash="h")
    assert render_document_html(plain, 5, 9, "text") == (
        '<div class="qa-doc"><div class="qa-doc-head"><span class="qa-doc-title">n.txt</span> '
        '<span class="qa-source-meta">n.txt · characters 5–9</span></div>'
        '<div class="qa-doc-text"><div class="qa-doc-page">Just <mark class="qa-doc-mark">text</mark>.</div>'
        "</div></div>"
    )


def test_owners_and_export_names() -> None:
    assert owner_for("alice", "c1", exposed=True) == "user:alice"
    assert owner_for(None, "c1", exposed=True) == "browser:c1"  # anonymous on a reachable server: per browser
    assert owner_for(None, "c1", exposed=False) == LOCAL_OWNER  # loopback: one person's tool
    assert export_file_name("Q&A about ../mesutoclax?") == "Q-A-about-mesutoclax.md"
    assert export_file_name("???") == "conversation.md"


# --------------------------------------------------------------------------- handlers


@pytest.fixture
def fake_seeds(tmp_path: Path, seed_file: Path) -> Path:
    folder = tmp_path / "seeds"
    folder.mkdir()
    (folder / seed_file.name).write_bytes(seed_file.read_bytes())
    return folder


def handlers(tmp_path: Path, seeds: Path | None, assistant: Any = None) -> tuple[ChatHandlers, Any]:
    from ui_fake_server import FakeAssistant

    from qa.ui import _AssistantHolder

    fake = assistant or FakeAssistant(seeds, delay=0.0)
    store = ConversationStore(tmp_path / "conversations.sqlite3")
    # Drains are driven by hand in one thread here: one never waits for another to let go.
    return ChatHandlers(_AssistantHolder(fake, "accurate", None), store, writer_wait=0), fake


def shown(view: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(VIEW_FIELDS, view, strict=True))


def ask(chat: ChatHandlers, session: ChatSession, question: str) -> tuple[ChatSession, list[dict[str, Any]]]:
    """Submit and answer ``question``; the session (saved on the first question) and the last render."""
    box, *view = chat.submit(question, session, [])
    assert box == ""
    session = shown(view)["session"]
    renders = [shown(v) for v in chat.drain(session, 3, None)]
    return session, renders


def test_a_question_is_queued_streamed_answered_and_saved(tmp_path: Path, fake_seeds: Path) -> None:
    chat, fake = handlers(tmp_path, fake_seeds)
    session = chat.session_for({}, None)
    assert session.owner == LOCAL_OWNER and session.conversation_id is None and len(session.client) == 32
    box, *view = chat.submit(f"  {QUESTION} ", session, [])
    first = shown(view)
    assert first["chatbot"][-1]["content"] == render_waiting_html(1)  # shown at once, waiting its turn
    session = first["session"]
    assert first["saved"] == {"client": session.client, "conversation": session.conversation_id}
    assert first["conversations"] == gr.update(
        choices=[(QUESTION, session.conversation_id)], value=session.conversation_id
    )
    assert first["stop"] == gr.update(interactive=True) and first["regenerate"] == gr.update(interactive=False)
    renders = [shown(v) for v in chat.drain(session, 2, None)]
    *streamed, final = renders
    drafts = [r["chatbot"][-1]["content"] for r in streamed]
    assert all("qa-streaming" in d for d in drafts) and "qa-drafting" in drafts[-1]
    assert all(r["sources"] == gr.skip() for r in streamed[:-1])
    (turn,) = chat.store.turns(LOCAL_OWNER, session.conversation_id or "")
    assert (
        turn.question == QUESTION and turn.answer is not None and "(You asked: What is mesutoclax?)" in turn.answer.text
    )
    assert final["chatbot"] == chat_messages([turn])
    assert 'id="src-0-1"' in final["sources"] and "<mark>" in final["sources"]
    assert final["passages"].count('class="qa-passage"') == 2  # the top_k reached ask_stream
    assert final["stop"] == gr.update(interactive=False) and final["regenerate"] == gr.update(interactive=True)
    assert chat.submit("   ", session, []) == (gr.skip(),) * (1 + len(VIEW_FIELDS))

    session, renders = ask(chat, session, "Who developed it?")  # a follow-up sees the first answer
    assert "Understood as: What is mesutoclax? Who developed it?" in renders[-1]["chatbot"][-1]["content"]
    assert (
        chat.load({"client": session.client, "conversation": session.conversation_id}, None, None)[1]
        == (renders[-1]["chatbot"])
    )  # a reload reopens it as it was


def test_a_question_asked_while_an_answer_streams_waits_and_is_answered(tmp_path: Path, fake_seeds: Path) -> None:
    chat, fake = handlers(tmp_path, fake_seeds)
    _, *view = chat.submit(QUESTION, chat.session_for({}, None), [])
    session = shown(view)["session"]
    drain = chat.drain(session, 3, None)
    for _ in range(3):
        next(drain)  # the first answer is being written
    _, *view = chat.submit("Who developed it?", session, [])
    messages = shown(view)["chatbot"]
    assert [m["content"] for m in messages if m["role"] == "user"] == [
        render_question_html(QUESTION),
        render_question_html("Who developed it?"),
    ]  # the first turn stays in view, the second waits under it
    assert "qa-streaming" in messages[1]["content"] and messages[3]["content"] == render_waiting_html(1)
    assert list(chat.drain(session, 3, None)) == [chat.view(session)]  # a second drain leaves them to the first
    *_, final = drain
    turns = chat.store.turns(session.owner, session.conversation_id or "")
    assert [t.question for t in turns] == [QUESTION, "Who developed it?"] and all(t.answer for t in turns)
    assert turns[1].answer is not None and turns[1].answer.standalone_question == f"{QUESTION} Who developed it?"
    assert shown(final)["chatbot"] == chat_messages(turns) and fake.calls == 2


def test_stop_ends_the_answer_and_withdraws_the_waiting_questions(tmp_path: Path, fake_seeds: Path) -> None:
    chat, fake = handlers(tmp_path, fake_seeds)
    _, *view = chat.submit(QUESTION, chat.session_for({}, None), [])
    session = shown(view)["session"]
    chat.submit("A second question?", session, [])
    drain = chat.drain(session, 3, None)
    for _ in range(3):
        next(drain)
    stopped = shown(chat.stop(session))
    turns = [ChatTurn(QUESTION, stopped=True), ChatTurn("A second question?", stopped=True)]
    assert chat.store.turns(session.owner, session.conversation_id or "") == turns  # recorded at once
    assert stopped["chatbot"] == chat_messages(turns) and stopped["stop"] == gr.update(interactive=False)
    rest = list(drain)  # the answering loop sees the flag and ends without recording anything
    assert len(rest) == 1 and chat.store.turns(session.owner, session.conversation_id or "") == turns
    assert fake.calls == 1 and fake._busy.acquire(blocking=False)  # the generation was closed
    fake._busy.release()
    session, renders = ask(chat, session, QUESTION)  # and the conversation goes on
    assert "qa-final" in renders[-1]["chatbot"][-1]["content"]


def test_regenerate_replaces_the_last_answer(tmp_path: Path, fake_seeds: Path) -> None:
    chat, fake = handlers(tmp_path, fake_seeds)
    session, _ = ask(chat, chat.session_for({}, None), QUESTION)
    session, _ = ask(chat, session, "Please explode")
    before = chat.store.turns(session.owner, session.conversation_id or "")
    assert before[1].error == "Could not answer: the fake generator <exploded> as asked"
    view = shown(chat.regenerate(session))
    assert view["chatbot"][-1]["content"] == render_waiting_html(1)
    assert chat.regenerate(session) == (gr.skip(),) * len(VIEW_FIELDS)  # not while it is being answered
    list(chat.drain(session, 3, None))
    after = chat.store.turns(session.owner, session.conversation_id or "")
    assert len(after) == 2 and after[0] == before[0] and after[1].question == "Please explode" and fake.calls == 3


def test_a_question_whose_page_went_away_mid_answer_is_answered_when_the_page_is_back(
    tmp_path: Path, fake_seeds: Path
) -> None:
    chat, fake = handlers(tmp_path, fake_seeds)
    _, *view = chat.submit(QUESTION, chat.session_for({}, None), [])
    session = shown(view)["session"]
    chat.submit("Who developed it?", session, [])
    drain = chat.drain(session, 3, None)
    next(drain), next(drain)
    drain.close()  # Gradio closes the generator when the page goes away (a reload, a closed tab)
    cid = session.conversation_id or ""
    assert chat.store.turns(session.owner, cid) == [] and chat.runtime.live(cid) is None
    assert chat.runtime.waiting(cid) == (QUESTION, "Who developed it?")  # back at the head of the queue
    assert fake._busy.acquire(blocking=False)  # the generation was closed
    fake._busy.release()
    reloaded = shown(chat.load({"client": session.client, "conversation": cid}, None, None))
    assert [m["content"] for m in reloaded["chatbot"]][1::2] == [render_waiting_html(1), render_waiting_html(2)]
    *_, final = chat.drain(reloaded["session"], 3, None)  # what the reloaded page runs after loading
    assert [t.question for t in chat.store.turns(session.owner, cid) if t.answer] == [QUESTION, "Who developed it?"]
    assert shown(final)["chatbot"] == chat_messages(chat.store.turns(session.owner, cid))


def test_the_scope_limits_the_documents_searched(tmp_path: Path, fake_seeds: Path) -> None:
    from ui_fake_server import FakeAssistant

    seen: list[Collection[str] | None] = []

    class Spy(FakeAssistant):
        def ask_stream(
            self,
            question: str,
            *,
            history: Sequence[tuple[str, str]] | None = None,
            top_k: int | None = None,
            doc_ids: Collection[str] | None = None,
        ) -> Iterator[str | Answer]:
            seen.append(doc_ids)
            yield from super().ask_stream(question, history=history, top_k=top_k, doc_ids=doc_ids)

    other = fake_seeds / "other.txt"
    other.write_text("Other notes\n\nThe zorblax reactor runs on glorbium.\n", encoding="utf-8")
    chat, _ = handlers(tmp_path, fake_seeds, Spy(fake_seeds, delay=0.0))
    assert chat.doc_ids() == ["innocare-mesutoclax-btd.txt", "other.txt"]
    _, *view = chat.submit(QUESTION, chat.session_for({}, None), ["other.txt", "gone.txt"])
    session = shown(view)["session"]
    assert shown(view)["scope"] == gr.update(choices=chat.doc_ids(), value=["other.txt"])
    *_, final = chat.drain(session, 3, None)
    assert seen == [["other.txt"]]  # a removed document drops out of the scope
    assert "innocare" not in shown(final)["passages"]
    chat.set_scope(session, [])
    ask(chat, session, "And the reactor?")
    assert seen[-1] is None  # no scope: every document


def test_conversations_are_listed_opened_renamed_exported_and_deleted(tmp_path: Path, fake_seeds: Path) -> None:
    chat, _ = handlers(tmp_path, fake_seeds)
    first, _ = ask(chat, chat.session_for({}, None), QUESTION)
    fresh = shown(chat.new_chat(first))
    assert fresh["chatbot"] == [] and fresh["title"] == "" and fresh["session"].conversation_id is None
    second, _ = ask(chat, fresh["session"], "Which company markets venetoclax?")
    listed = shown(chat.view(second))["conversations"]
    assert [cid for _, cid in listed["choices"]] == [second.conversation_id, first.conversation_id]
    opened = shown(chat.open(second, first.conversation_id))
    assert opened["session"] == first and opened["title"] == QUESTION and len(opened["chatbot"]) == 2
    renamed = shown(chat.rename(first, "  Mesutoclax basics "))
    assert renamed["title"] == "Mesutoclax basics"
    exported = chat.export(first)
    path = Path(exported["value"])
    assert path.name == "Mesutoclax-basics.md" and exported["visible"] is True
    markdown = path.read_text(encoding="utf-8")
    assert markdown.startswith("# Mesutoclax basics\n") and "## 1. What is mesutoclax?" in markdown
    assert "> [1] " in markdown and "(You asked: What is mesutoclax?)" in markdown
    deleted = shown(chat.delete(first))
    assert deleted["session"].conversation_id is None
    assert [cid for _, cid in deleted["conversations"]["choices"]] == [second.conversation_id]
    assert chat.open(first, first.conversation_id) == (gr.skip(),) * len(VIEW_FIELDS)
    intruder = ChatSession("user:eve", "x")  # another owner cannot open it
    assert chat.open(intruder, second.conversation_id) == (gr.skip(),) * len(VIEW_FIELDS)


def test_the_api_answers_in_the_callers_conversation(tmp_path: Path, fake_seeds: Path) -> None:
    chat, _ = handlers(tmp_path, fake_seeds)
    box, messages, session, sources, passages = chat.ask_once(QUESTION, None, 3, "accurate", session_hash="abc")
    assert box == "" and session.owner == LOCAL_OWNER and "qa-final" in messages[-1]["content"]
    assert 'id="src-0-1"' in sources and passages.count('class="qa-passage"') == 3
    _, messages, again, *_ = chat.ask_once("Who developed it?", session, 3, "accurate", session_hash="abc")
    assert again == session and "Understood as: What is mesutoclax? Who developed it?" in messages[-1]["content"]
    assert chat.ask_once("  ", session, 3, None) == (gr.skip(),) * 5


def test_the_document_viewer_opens_at_the_cited_span(tmp_path: Path, fake_seeds: Path) -> None:
    chat, fake = handlers(tmp_path, fake_seeds)
    text = fake.index.get_document("innocare-mesutoclax-btd.txt").text
    at = text.index("Center for Drug Evaluation")
    request = {
        "doc_id": "innocare-mesutoclax-btd.txt",
        "start": at,
        "end": at + 26,
        "quote": "Center for Drug Evaluation",
    }
    group, body = chat.open_document(request)
    assert group == gr.update(visible=True)
    assert '<mark class="qa-doc-mark">Center for Drug Evaluation</mark>' in body
    assert len(re.sub(r"<[^>]+>", "", body)) > len(text) * 0.9  # the whole document
    _, missing = chat.open_document({"doc_id": "gone.txt", "start": 0, "end": 1})
    assert "gone.txt is no longer in the index." in missing


def test_an_answer_goes_on_in_the_background_when_the_page_opens_another_conversation(
    tmp_path: Path, fake_seeds: Path
) -> None:
    chat, _ = handlers(tmp_path, fake_seeds)
    earlier, _ = ask(chat, chat.session_for({}, None), "Which company markets venetoclax?")
    _, *view = chat.submit(QUESTION, shown(chat.new_chat(earlier))["session"], [])
    session = shown(view)["session"]
    drain = chat.drain(session, 3, None)
    next(drain), next(drain)
    reopened = shown(chat.open(session, earlier.conversation_id))  # the page shows the earlier one now
    assert len(reopened["chatbot"]) == 2
    rest = list(drain)
    assert rest and all(r == (gr.skip(),) * len(VIEW_FIELDS) for r in rest)  # nothing drawn over it
    (turn,) = chat.store.turns(session.owner, session.conversation_id or "")
    assert turn.answer is not None and turn.question == QUESTION  # answered and saved all the same


def test_with_logins_each_user_sees_only_their_own_conversations(tmp_path: Path, fake_seeds: Path) -> None:
    chat, _ = handlers(tmp_path, fake_seeds)
    alice, _ = ask(chat, chat.session_for({}, "alice"), QUESTION)
    assert alice.owner == "user:alice"
    saved = {"client": alice.client, "conversation": alice.conversation_id}  # the same browser, another login
    bob = shown(chat.load(saved, None, "bob"))
    assert bob["session"].owner == "user:bob" and bob["session"].conversation_id is None
    assert bob["chatbot"] == [] and bob["conversations"]["choices"] == []
    again = shown(chat.load(saved, None, "alice"))
    assert again["session"].conversation_id == alice.conversation_id and len(again["chatbot"]) == 2


def test_a_reloaded_page_takes_over_the_answer_its_old_page_left(tmp_path: Path, fake_seeds: Path) -> None:
    import threading

    chat, fake = handlers(tmp_path, fake_seeds)
    chat.writer_wait = 10.0  # the reloaded page's drain may start before the old one is closed
    _, *view = chat.submit(QUESTION, chat.session_for({}, None), [])
    session = shown(view)["session"]
    old = chat.drain(session, 3, None)
    next(old), next(old)  # the old page's answer is being written
    renders: list[tuple[Any, ...]] = []
    new = threading.Thread(target=lambda: renders.extend(chat.drain(session, 3, None)))
    new.start()  # the new page's drain: the conversation is busy, it waits for the writer
    old.close()  # then Gradio closes the old page's generator: the question goes back to the queue
    new.join(timeout=30)
    assert not new.is_alive()
    (turn,) = chat.store.turns(session.owner, session.conversation_id or "")
    assert turn.question == QUESTION and turn.answer is not None  # answered by the new page
    assert shown(renders[-1])["chatbot"] == chat_messages([turn]) and fake.calls == 2


def test_a_question_asked_before_the_pages_load_ran_is_kept_and_answered(tmp_path: Path, fake_seeds: Path) -> None:
    # The page's load started before the question (its session input was still empty) and returns after
    # the question was queued: it must show the asked conversation, not a new empty one that hides the answer.
    chat, fake = handlers(tmp_path, fake_seeds)
    _, *view = chat.submit(QUESTION, chat.session_for({}, None, "page-1"), [])
    session = shown(view)["session"]
    loaded = shown(chat.load({}, None, None, "page-1"))
    assert loaded["session"] == session and loaded["chatbot"][-1]["content"] == render_waiting_html(1)
    final = shown(list(chat.drain(session, 3, None))[-1])
    (turn,) = chat.store.turns(session.owner, session.conversation_id or "")
    assert turn.answer is not None and final["chatbot"] == chat_messages([turn])
    other = shown(chat.load({}, None, None, "page-2"))  # another page: a conversation of its own
    assert other["session"].conversation_id is None and other["session"].page == "page-2"
