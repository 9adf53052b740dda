"""Switch every library that could reach a model hub to offline mode.

Importing this module has no effect; ``enforce_offline()`` does the switching.
"""

from __future__ import annotations

import os
from typing import Any

# Always forced: nothing may reach a model hub at run time.
_FORCED = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
}
# Defaults only: a value the user set explicitly is kept.
_DEFAULTS = {
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}


def enforce_offline() -> None:
    """Force the hub switches offline, and set telemetry, analytics and tokenizer threads where unset.

    Idempotent; called where a process starts (the CLI, ``Assistant``, the UI) and where models load,
    always before the model libraries are imported (they read these variables at import).
    """
    os.environ.update(_FORCED)
    for name, value in _DEFAULTS.items():
        os.environ.setdefault(name, value)


_LOOPBACK_PREFIXES = ("127.", "::1", "localhost", "0:0:0:0:0:0:0:1")


class NetworkBlocked(OSError):
    """Raised when code tries to reach a non-loopback address while the network guard is on."""


def block_network() -> None:
    """Refuse every outbound connection except to loopback (used by the test suite).

    A hidden download then fails loudly instead of silently working on a connected machine.
    Subprocesses inherit it through ``QA_BLOCK_NETWORK=1`` (see ``qa/__init__.py``).
    """
    import socket

    if getattr(socket.socket.connect, "_qa_guard", False):
        return
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def allowed(address: object) -> bool:
        if isinstance(address, tuple) and address:
            host = str(address[0])
            return host.startswith(_LOOPBACK_PREFIXES) or host in ("", "0.0.0.0")
        return True  # AF_UNIX paths

    def connect(self: socket.socket, address: object) -> None:
        if not allowed(address):
            raise NetworkBlocked(f"network access to {address!r} is blocked (offline mode)")
        return original_connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        if not allowed(address):
            raise NetworkBlocked(f"network access to {address!r} is blocked (offline mode)")
        return original_connect_ex(self, address)  # type: ignore[arg-type]

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if host is not None and not (name.startswith(_LOOPBACK_PREFIXES) or name in ("", "0.0.0.0")):
            raise NetworkBlocked(f"name lookup of {name!r} is blocked (offline mode)")
        return original_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    connect._qa_guard = True  # type: ignore[attr-defined]
    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo
