import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from qa.offline import NetworkBlocked


def test_outbound_network_is_blocked_in_tests() -> None:
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("93.184.216.34", 80), timeout=1)
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("huggingface.co", 443)


def test_loopback_is_allowed() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=1)
    client.close()
    server.close()


def test_importing_qa_changes_no_environment_and_loads_no_model() -> None:
    code = (
        "import sys, os; before = dict(os.environ); import qa; "
        "print(dict(os.environ) == before, 'torch' in sys.modules, 'llama_cpp' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "QA_BLOCK_NETWORK")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["True", "False", "False"]


def test_enforce_offline_forces_the_hub_off_and_keeps_explicit_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from qa.offline import enforce_offline

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")
    monkeypatch.delenv("GRADIO_ANALYTICS_ENABLED", raising=False)
    enforce_offline()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TOKENIZERS_PARALLELISM"] == "true"
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


def test_an_assistant_turns_the_offline_switches_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from fakes import ScriptedGenerator

    from qa.embedding import HashingEmbedder
    from qa.pipeline import Assistant
    from qa.settings import load_settings

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    Assistant(
        load_settings(environ={}, paths={"index": tmp_path}),
        embedder=HashingEmbedder(),
        generator=ScriptedGenerator(lambda m: ""),
    )
    assert (os.environ["HF_HUB_OFFLINE"], os.environ["TRANSFORMERS_OFFLINE"]) == ("1", "1")
