"""The generator in its own process, so a native crash cannot take the app down.

``WorkerGenerator`` has the ``Generator`` interface. It starts a child process (spawned,
so nothing of the parent's threads or locks is copied) that builds the real generator and
streams its text back over a pipe. If the child dies mid-question (SIGSEGV in llama.cpp,
SIGKILL by the OOM killer), that question gets a ``GeneratorCrashed`` error with a clear
message, and the next call starts a fresh child. A remote server speaking the OpenAI chat API
(``qa.remote``) needs no such child: its native code runs in the server, and ``create_generator``
never isolates it.
"""

from __future__ import annotations

import importlib
import itertools
import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from qa.generation import Choice, Generation, Generator, Messages
from qa.native import GeneratorCrashed, describe_exit
from qa.settings import GenerationSettings

DEFAULT_FACTORY = "qa.generation:create_generator"
GeneratorFactory = Callable[[GenerationSettings, Path], Generator]


def load_factory(dotted: str) -> GeneratorFactory:
    """``"package.module:function"`` → the function (importable in the child process)."""
    module_name, _, attr = dotted.partition(":")
    factory: GeneratorFactory = getattr(importlib.import_module(module_name), attr)
    return factory


def _serve(conn: Connection, settings: dict[str, Any], cache_dir: str, factory: str) -> None:
    """The child's loop: build and warm the generator, then answer ``stream`` requests until closed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        generator = load_factory(factory)(GenerationSettings.model_validate(settings), Path(cache_dir))
        generator.warm_up()
    except Exception as exc:  # reported to the parent, which raises it
        conn.send(("error", 0, (type(exc).__name__, str(exc))))
        return
    conn.send(("ready", 0, (generator.model_id, generator.model_sha256)))
    while True:
        try:
            kind, request_id, payload = conn.recv()
        except EOFError:
            return
        if kind != "stream":
            continue  # a late "cancel" for a request that already finished
        messages, max_tokens, choice = payload
        try:
            for item in generator.stream(messages, max_tokens=max_tokens, choice=choice):
                if isinstance(item, Generation):
                    conn.send(("done", request_id, item))
                    break
                conn.send(("delta", request_id, item))
                if conn.poll() and conn.recv()[0] == "cancel":
                    conn.send(("done", request_id, None))
                    break
        except Exception as exc:
            conn.send(("error", request_id, f"{type(exc).__name__}: {exc}"))


def _load_error(type_name: str, message: str) -> Exception:
    """The child's load failure as the parent's own exception type, where it has one."""
    from qa.models import ModelError

    known: dict[str, type[Exception]] = {
        "GeneratorCrashed": GeneratorCrashed,
        "ModelError": ModelError,
        "FileNotFoundError": FileNotFoundError,
    }
    return known.get(type_name, RuntimeError)(message)


class WorkerGenerator:
    """A ``Generator`` whose model lives in a child process that is restarted if it dies."""

    def __init__(
        self,
        settings: GenerationSettings,
        cache_dir: Path,
        *,
        factory: str = DEFAULT_FACTORY,
        start_timeout: float = 600.0,
    ) -> None:
        self.settings = settings
        self.cache_dir = cache_dir
        self.factory = factory
        self.start_timeout = start_timeout
        self.model_id = settings.model
        self.model_sha256: str | None = None
        self.restarts = 0
        self._process: Any = None
        self._conn: Connection | None = None
        self._ids = itertools.count(1)
        # A plain Lock, not an RLock: stream() holds it across yields, and a server (Gradio) may resume
        # the generator on another thread, which must be able to release it.
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else int(self._process.pid)

    def warm_up(self) -> None:
        with self._lock:
            self._ensure_started()

    def _ensure_started(self) -> None:
        if self._process is None or not self._process.is_alive():
            self._start()

    def _start(self) -> None:
        self._stop()
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=_serve,
            args=(child, self.settings.model_dump(), str(self.cache_dir), self.factory),
            name="qa-generator",
            daemon=True,
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        if not parent.poll(self.start_timeout):
            self._stop()
            raise GeneratorCrashed(f"The generator process did not start within {self.start_timeout:.0f} s.")
        kind, _, payload = self._receive("while loading the model")
        if kind == "error":
            self._stop()
            raise _load_error(*payload)
        self.model_id, self.model_sha256 = payload

    def _receive(self, doing: str) -> tuple[str, int, Any]:
        assert self._conn is not None
        try:
            message: tuple[str, int, Any] = self._conn.recv()
            return message
        except (EOFError, OSError) as exc:
            raise self._crashed(doing) from exc

    def _crashed(self, doing: str) -> GeneratorCrashed:
        process = self._process
        if process is not None:
            process.join(timeout=5)
        how = describe_exit(process.exitcode) if process is not None and process.exitcode is not None else "no reply"
        self._stop()
        self.restarts += 1
        return GeneratorCrashed(
            f"The generator stopped unexpectedly ({how}) {doing}. It is restarted for the next question; "
            "please ask again. If this keeps happening, run `qa doctor`."
        )

    def _stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(timeout=5)
        self._process, self._conn = None, None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def stream(
        self, messages: Messages, *, max_tokens: int, choice: Choice | None = None
    ) -> Iterator[str | Generation]:
        with self._lock:
            self._ensure_started()
            assert self._conn is not None
            request_id = next(self._ids)
            try:
                self._conn.send(("stream", request_id, (messages, max_tokens, choice)))
            except OSError as exc:
                raise self._crashed("before answering") from exc
            finished = False
            try:
                while True:
                    kind, rid, payload = self._receive("while answering")
                    if rid != request_id:
                        continue  # the tail of an earlier, abandoned request
                    if kind == "delta":
                        yield str(payload)
                    elif kind == "done":
                        finished = True
                        yield payload
                        return
                    else:
                        finished = True
                        raise RuntimeError(f"The generator failed: {payload}")
            finally:
                if not finished and self._conn is not None:
                    self._cancel(request_id)

    def _cancel(self, request_id: int) -> None:
        """The caller stopped reading: tell the child, and drain what it sent for this request."""
        assert self._conn is not None
        try:
            self._conn.send(("cancel", request_id, None))
            while self._conn.poll(30):
                kind, rid, _ = self._conn.recv()
                if rid == request_id and kind in ("done", "error"):
                    return
        except (EOFError, OSError):
            pass
        self._stop()  # no clean end within 30 s: start afresh next time
