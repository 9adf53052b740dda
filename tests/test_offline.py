import os
import socket
import subprocess
import sys

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


def test_importing_qa_sets_offline_switches_and_loads_no_model() -> None:
    code = (
        "import sys, os; import qa; "
        "print(os.environ['HF_HUB_OFFLINE'], 'torch' in sys.modules, 'llama_cpp' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["1", "False", "False"]
