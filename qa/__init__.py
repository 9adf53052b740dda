"""Offline question answering over your documents, every answer proved by cited passages.

    >>> from qa import ask
    >>> answer = ask("Which agency granted the designation?")
    >>> answer.text, answer.citations

Importing this package loads no model and changes no environment variable: the offline
switches are set where models load and where the CLI, the UI and ``Assistant`` start.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from qa.offline import block_network
from qa.types import Answer, Chunk, Citation, Document, Passage

if os.environ.get("QA_BLOCK_NETWORK") == "1":  # opt-in, for test runs: refuse non-loopback connections
    block_network()

if TYPE_CHECKING:
    from qa.pipeline import Assistant, ask
    from qa.settings import Settings, load_settings

__all__ = ["Answer", "Assistant", "Chunk", "Citation", "Document", "Passage", "Settings", "ask", "load_settings"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("Assistant", "ask"):
        from qa import pipeline

        return getattr(pipeline, name)
    if name in ("Settings", "load_settings"):
        from qa import settings

        return getattr(settings, name)
    raise AttributeError(f"module 'qa' has no attribute {name!r}")
