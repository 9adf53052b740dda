"""The Documents tab of the UI: the indexed documents, uploads (checked, then indexed one file at a
time with progress) and removal behind a confirmation step.

The pure helpers (upload-name checks, the table rows, the plain-language status lines) are unit-tested
without a browser; ``DocumentHandlers`` holds the event handlers; ``documents_tab`` lays the tab out and
``wire_documents`` connects them. ``qa.ui`` builds the app around them and re-exports the helpers.
"""

from __future__ import annotations

import html
import logging
import re
import shutil
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from qa.access import AccessPolicy
from qa.ingest import SUPPORTED_EXTENSIONS

if TYPE_CHECKING:
    import gradio as gr

    from qa.index import BuildReport, DocInfo
    from qa.ui import _AssistantHolder

log = logging.getLogger(__name__)

# The file picker and the server-side check offer exactly what ingest reads.
ALLOWED_UPLOAD_EXTENSIONS: tuple[str, ...] = SUPPORTED_EXTENSIONS
_MAX_NAME_CHARS = 120

DOCUMENTS_CSS = """
.qa-upload-status { list-style: none; padding-left: 0; margin: 4px 0; }
.qa-upload-ok { color: #065f46; } .qa-upload-rejected { color: #991b1b; }
.qa-upload-status li::before { content: "✓ "; } .qa-upload-status li.qa-upload-rejected::before { content: "✗ "; }
#qa-remove-confirm { align-items: center; border: 1px solid #fca5a5; background: #fef2f2; border-radius: 6px;
  padding: 6px 10px; }
.qa-remove-prompt { color: #7f1d1d; }
.qa-ask-notes { color: #6b7280; font-size: 0.85em; margin-top: -4px; }
"""

Outcome = Literal["added", "updated", "unchanged", "failed", "refused"]


class ProgressLike(Protocol):
    """How the upload handler reports progress (``gr.Progress`` is one)."""

    def __call__(self, fraction: float, /, *, desc: str) -> object: ...


class UploadRejected(ValueError):
    """An uploaded file the UI refuses, with a message meant for the user."""


def esc(text: object) -> str:
    """``html.escape`` for any value (quotes included)."""
    return html.escape("" if text is None else str(text), quote=True)


# --------------------------------------------------------------------------- upload checks


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


# --------------------------------------------------------------------------- plain-language status


@dataclass(frozen=True)
class FileStatus:
    """What happened to one uploaded file, said the way a user would say it."""

    outcome: Outcome
    message: str

    @property
    def ok(self) -> bool:
        return self.outcome in ("added", "updated", "unchanged")

    def html(self) -> str:
        kind = "qa-upload-ok" if self.ok else "qa-upload-rejected"
        return f'<li class="{kind}">{esc(self.message)}</li>'


def _passages(count: int | None) -> str:
    if count is None:
        return ""
    return f" ({count} passage{'s' if count != 1 else ''})"


def _without_path(reason: str, path: Path) -> str:
    """An ingest message with the server's folder left out: ``/srv/index/uploads/a.docx: …`` → ``…``."""
    for shown in (f"{path}: ", str(path)):
        if shown in reason:
            reason = reason.replace(shown, "", 1) if shown.endswith(": ") else reason.replace(shown, path.name)
    return reason.strip() or "it could not be read"


def file_status(path: Path, report: BuildReport, passages: int | None) -> FileStatus:
    """One file's line from the index's report on adding it: added, updated, already there, or not read."""
    name = path.name
    if name in report.added:
        return FileStatus("added", f"Added {name}{_passages(passages)}")
    if name in report.changed:
        return FileStatus("updated", f"Updated {name}{_passages(passages)}")
    if name in report.unchanged:
        return FileStatus("unchanged", f"Already indexed: {name} (no change)")
    reasons = [reason for source, reason in report.skipped if Path(source).name == name]
    reason = _without_path(reasons[0], path) if reasons else "it was not indexed"
    return FileStatus("failed", f"Could not add {name}: {reason}")


def report_notes(report: BuildReport) -> list[FileStatus]:
    """What else the index did while adding (a full rebuild, documents it could not restore)."""
    notes: list[FileStatus] = []
    if report.full_rebuild_reason and report.full_rebuild_reason != "no index yet":
        notes.append(FileStatus("unchanged", f"The whole index was rebuilt ({report.full_rebuild_reason})."))
    if report.lost:
        gone = ", ".join(doc_id for doc_id, _source in report.lost)
        notes.append(FileStatus("failed", f"Not restored, their files are gone: {gone}"))
    return notes


def status_html(lines: Sequence[FileStatus]) -> str:
    """The upload status: one line per file, in the order the files were given."""
    return f'<ul class="qa-upload-status">{"".join(line.html() for line in lines)}</ul>'


def confirm_prompt_html(doc_id: str, *, uploaded: bool) -> str:
    """The question asked before a document is removed: what goes, and what stays."""
    gone = " Its uploaded file is deleted too." if uploaded else " Its file on disk is kept."
    return (
        f'<div class="qa-remove-prompt">Remove <b>{esc(doc_id)}</b> from the index? '
        f"Answers will no longer use it.{gone}</div>"
    )


# --------------------------------------------------------------------------- handlers


class DocumentHandlers:
    """The Documents tab: list the indexed documents, upload (checked, then indexed), remove."""

    def __init__(
        self, holder: _AssistantHolder, upload_dir: Path, max_mb: float, policy: AccessPolicy | None = None
    ) -> None:
        self.holder = holder
        self.upload_dir = upload_dir
        self.max_mb = max_mb
        self.policy = policy or AccessPolicy()

    def _infos(self) -> Sequence[DocInfo]:
        try:
            return self.holder.assistant.index.documents()
        except Exception:
            log.exception("listing documents failed")
            return []

    def list_documents(self) -> tuple[list[list[str | int]], Any]:
        """The table rows and the choices of the remove dropdown."""
        import gradio as gr

        infos = self._infos()
        return document_rows(infos), gr.update(choices=sorted(info.doc_id for info in infos), value=None)

    def upload(
        self, files: list[str] | str | None, progress: ProgressLike, *, username: str | None = None
    ) -> tuple[Any, ...]:
        """Status, table, remove choices and the cleared upload box; files are indexed one at a time."""
        import gradio as gr

        if not files:
            return (gr.skip(), gr.skip(), gr.skip(), gr.skip())
        if refused := self.policy.refuse_change(username):
            log.warning("upload refused: %s", refused)
            return status_html([FileStatus("refused", refused)]), gr.skip(), gr.skip(), None
        raw_paths = [files] if isinstance(files, str) else list(files)
        progress(0.0, desc=f"Checking {len(raw_paths)} file{'s' if len(raw_paths) != 1 else ''}")
        saved, refused_lines = self._save(raw_paths)
        lines: list[FileStatus] = []
        for i, path in enumerate(saved):
            progress(i / len(saved), desc=f"Indexing {path.name} ({i + 1} of {len(saved)})")
            lines += self._add(path)
        progress(1.0, desc="Done")
        table, choices = self.list_documents()
        return status_html([*lines, *refused_lines]), table, choices, None

    def _save(self, raw_paths: Sequence[str]) -> tuple[list[Path], list[FileStatus]]:
        """Copy the acceptable files into the upload folder; a status line for each refused one."""
        saved: list[Path] = []
        refused: list[FileStatus] = []
        for raw in raw_paths:
            try:
                saved.append(save_upload(Path(raw), self.upload_dir, self.max_mb))
            except UploadRejected as exc:
                refused.append(FileStatus("refused", f"Refused: {exc}"))
            except OSError as exc:
                refused.append(FileStatus("failed", f"Could not save {Path(raw).name}: {exc}"))
        return saved, refused

    def _add(self, path: Path) -> list[FileStatus]:
        """Index one saved file; its status line, then any note on what else the index did."""
        try:
            report = self.holder.get().add_documents([path])
        except Exception as exc:
            log.exception("indexing %s failed", path)
            return [FileStatus("failed", f"Could not add {path.name}: {_without_path(str(exc), path)}")]
        counts = {info.doc_id: info.n_chunks for info in self._infos()}
        return [file_status(path, report, counts.get(path.name)), *report_notes(report)]

    def ask_to_remove(self, doc_id: str | None, *, username: str | None = None) -> tuple[Any, ...]:
        """First step of a removal: status, the confirmation row (shown or hidden) and its question.
        A session that may not change documents is told so at once, not after confirming."""
        import gradio as gr

        if not doc_id:
            status = '<div class="qa-upload-status">Choose a document to remove.</div>'
            return status, gr.update(visible=False), gr.skip()
        if refused := self.policy.refuse_change(username):
            status = f'<div class="qa-upload-status qa-upload-rejected">{esc(refused)}</div>'
            return status, gr.update(visible=False), gr.skip()
        sources = {info.doc_id: info.source for info in self._infos()}
        prompt = confirm_prompt_html(doc_id, uploaded=uploaded_file(sources.get(doc_id), self.upload_dir) is not None)
        return "", gr.update(visible=True), prompt

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


# --------------------------------------------------------------------------- layout and events


@dataclass(frozen=True)
class DocumentsTab:
    """The Documents tab's components."""

    table: gr.Dataframe
    upload: gr.File
    status: gr.HTML
    remove_choice: gr.Dropdown
    remove: gr.Button
    confirm_row: gr.Row
    confirm_prompt: gr.HTML
    confirm: gr.Button
    cancel: gr.Button


def upload_label(max_mb: float) -> str:
    """The upload box's label: the accepted types and the size cap, and that several files may go at once."""
    return f"Add documents, one or several at once ({', '.join(ALLOWED_UPLOAD_EXTENSIONS)}; up to {max_mb:g} MB each)"


def documents_tab(max_mb: float) -> DocumentsTab:
    """The documents table, the upload box (filtered to the allowed types), and remove with its confirmation."""
    import gradio as gr

    with gr.Tab("Documents", id="documents"):
        table = gr.Dataframe(
            headers=["Document id", "Title", "Chunks"],
            datatype=["str", "str", "number"],
            interactive=False,
            elem_id="qa-docs",
            label="Indexed documents",
        )
        upload = gr.File(
            label=upload_label(max_mb),
            file_count="multiple",
            file_types=list(ALLOWED_UPLOAD_EXTENSIONS),
            elem_id="qa-upload",
        )
        status = gr.HTML("", elem_id="qa-upload-status")
        with gr.Row():
            remove_choice = gr.Dropdown(label="Remove a document", choices=[], elem_id="qa-remove-choice")
            remove = gr.Button("Remove…", variant="secondary", elem_id="qa-remove")
        with gr.Row(visible=False, elem_id="qa-remove-confirm") as confirm_row:
            confirm_prompt = gr.HTML("", elem_id="qa-remove-prompt")
            confirm = gr.Button("Yes, remove", variant="stop", elem_id="qa-remove-yes", scale=0, min_width=120)
            cancel = gr.Button("Cancel", elem_id="qa-remove-cancel", scale=0, min_width=100)
    return DocumentsTab(table, upload, status, remove_choice, remove, confirm_row, confirm_prompt, confirm, cancel)


def uploaded_paths(payload: list[dict[str, Any]] | dict[str, Any] | None) -> list[str]:
    """The server paths of the files in a ``gr.File`` payload that Gradio did not preprocess."""
    if not payload:
        return []
    items = [payload] if isinstance(payload, dict) else payload
    return [str(item["path"]) for item in items if isinstance(item, dict) and item.get("path")]


def _hide() -> Any:
    import gradio as gr

    return gr.update(visible=False)


def wire_documents(docs: DocumentHandlers, tab: DocumentsTab, demo: gr.Blocks, queue_kw: dict[str, Any]) -> None:
    """Upload and remove after a confirmation (in the documents' queue, ``queue_kw``), and the table on page load."""
    import gradio as gr

    # Gradio hands its progress tracker to the parameter whose default is one, and the session's
    # request to a parameter annotated gr.Request (set as a real class: this module's annotations are strings).
    def upload(
        files: list[dict[str, Any]] | dict[str, Any] | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[Any, ...]:
        return docs.upload(uploaded_paths(files), progress, username=request.username)

    def ask_to_remove(doc_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        return docs.ask_to_remove(doc_id, username=request.username)

    def remove(doc_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        return docs.remove(doc_id, username=request.username)

    for handler in (upload, ask_to_remove, remove):
        handler.__annotations__ = {"request": gr.Request}
    listing = [tab.table, tab.remove_choice]
    private: dict[str, Any] = {"api_visibility": "private"}
    at_once: dict[str, Any] = {**private, "queue": False, "show_progress": "hidden"}
    # Not preprocessed: gr.File would refuse the whole batch for one file of another type (its
    # ``file_types`` check); each file is checked here instead and refused on its own line. Gradio
    # still moves the files into its cache and refuses paths outside its upload folder before this runs.
    outputs = [tab.status, *listing, tab.upload]
    tab.upload.upload(upload, tab.upload, outputs, preprocess=False, **private, **queue_kw)
    asked = [tab.status, tab.confirm_row, tab.confirm_prompt]
    tab.remove.click(ask_to_remove, tab.remove_choice, asked, **at_once)
    tab.confirm.click(_hide, None, tab.confirm_row, **at_once).then(
        remove, tab.remove_choice, [tab.status, *listing], **private, **queue_kw
    )
    for event in (tab.cancel.click, tab.remove_choice.change):
        event(_hide, None, tab.confirm_row, **at_once)
    demo.load(docs.list_documents, None, listing, **private, concurrency_limit=None)
