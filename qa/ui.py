"""Gradio UI: the Ask tab (``qa.ui_chat``), the Documents tab (``qa.ui_documents``) and Settings.

``build_app`` lays out the tabs and wires their handlers, written against the ``AssistantLike``
protocol; ``serve`` launches the app on the loopback interface (no public share link unless asked).
The chat's and the documents' pure helpers are re-exported here.

Every piece of document, passage, question or answer text is escaped with ``html.escape``
*before* any markup of ours is added, so a document containing ``<script>`` shows as text.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from qa.access import AccessPolicy
from qa.conversations import ChatTurn as ChatTurn
from qa.conversations import open_store
from qa.ui_chat import CHAT_CSS, CHAT_HEAD, ChatAssistant, ChatHandlers, ask_tab, esc, wire_chat
from qa.ui_chat import CONTEXT_CHARS as CONTEXT_CHARS
from qa.ui_chat import EXAMPLE_QUESTIONS as EXAMPLE_QUESTIONS
from qa.ui_chat import chat_messages as chat_messages
from qa.ui_chat import highlight_context as highlight_context
from qa.ui_chat import history_pairs as history_pairs
from qa.ui_chat import link_markers as link_markers
from qa.ui_chat import render_answer_html as render_answer_html
from qa.ui_chat import render_answer_sources as render_answer_sources
from qa.ui_chat import render_document_html as render_document_html
from qa.ui_chat import render_error_html as render_error_html
from qa.ui_chat import render_passages_html as render_passages_html
from qa.ui_chat import render_sources_panel as render_sources_panel
from qa.ui_chat import render_streaming_html as render_streaming_html
from qa.ui_documents import ALLOWED_UPLOAD_EXTENSIONS as ALLOWED_UPLOAD_EXTENSIONS
from qa.ui_documents import DOCUMENTS_CSS, DocumentHandlers, documents_tab, wire_documents
from qa.ui_documents import UploadRejected as UploadRejected
from qa.ui_documents import document_rows as document_rows
from qa.ui_documents import sanitize_filename as sanitize_filename
from qa.ui_documents import save_upload as save_upload
from qa.ui_documents import uploaded_file as uploaded_file
from qa.ui_documents import validate_upload as validate_upload

if TYPE_CHECKING:
    import gradio as gr

    from qa.index import BuildReport
    from qa.settings import Settings

log = logging.getLogger(__name__)

PRESET_CHOICES: tuple[str, ...] = ("fast", "accurate")


# --------------------------------------------------------------------------- what the UI needs


class AssistantLike(ChatAssistant, Protocol):
    """Exactly what the UI uses of ``qa.pipeline.Assistant`` (which satisfies it as is): the chat's
    part (:class:`qa.ui_chat.ChatAssistant`) and the Documents tab's writes."""

    def add_documents(self, paths: Sequence[Path]) -> BuildReport: ...

    def remove_documents(self, doc_ids: Sequence[str]) -> BuildReport: ...


# --------------------------------------------------------------------------- app

APP_CSS = CHAT_CSS
APP_HEAD = CHAT_HEAD


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


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class _SettingsTab:
    preset: gr.Radio
    top_k: gr.Slider


PRESET_DESCRIPTIONS: dict[str, str] = {"fast": "smaller model, quicker", "accurate": "larger model"}
LANGUAGE_HINT = "Questions in English work best: the search model here reads English only."


def ask_notes_html(preset: str | None) -> str:
    """The line under the question box: the active preset (changed in Settings), and the language hint."""
    shown = ""
    if preset:
        described = PRESET_DESCRIPTIONS.get(preset)
        about = f" ({esc(described)})" if described else ""
        shown = f'<span class="qa-preset-note">Preset: <b>{esc(preset)}</b>{about}, set in Settings</span> · '
    return f'<div class="qa-ask-notes">{shown}<span class="qa-lang-hint">{esc(LANGUAGE_HINT)}</span></div>'


def _wire_ask_notes(preset: gr.Radio, notes: gr.HTML) -> None:
    """The preset shown on the Ask tab follows the Settings tab's choice."""
    preset.change(ask_notes_html, preset, notes, queue=False, api_visibility="private", show_progress="hidden")


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

# Everything that uses the assistant's generator shares one queue: one generation at a time.
_QUEUE_KW: dict[str, Any] = {"concurrency_id": "assistant"}
# Index updates take turns with each other but not with answers: a large upload is indexed while other
# users keep getting answers (each question reads one index snapshot, which a write never changes).
_DOCUMENTS_QUEUE_KW: dict[str, Any] = {"concurrency_id": "documents", "concurrency_limit": 1}


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
    store = open_store(settings)
    chat = ChatHandlers(holder, store, exposed=bool(policy and policy.exposed))
    with gr.Blocks(title="Document Q&A", analytics_enabled=False) as demo:
        gr.Markdown("## Document Q&A\nAnswers come only from your indexed documents, each claim linked to its source.")
        with gr.Tabs():
            chat_tab = ask_tab(ask_notes_html(settings.preset))
            docs_tab = documents_tab(docs.max_mb)
            settings_tab = _settings_tab(settings)
        wire_chat(chat, chat_tab, top_k=settings_tab.top_k, preset=settings_tab.preset, demo=demo)
        wire_documents(docs, docs_tab, demo, _DOCUMENTS_QUEUE_KW)
        _wire_ask_notes(settings_tab.preset, chat_tab.notes)
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
        css=APP_CSS + DOCUMENTS_CSS,
        head=APP_HEAD,
        footer_links=[],  # no footer: a second "Settings" beside the Settings tab only confused
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
