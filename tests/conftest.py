"""Shared test setup: offline switches and a network guard for the whole session.

Every test runs with outbound network blocked (loopback allowed), so any hidden model
download fails a test instead of passing on a connected machine. Subprocesses started
by tests inherit the guard through ``QA_BLOCK_NETWORK=1``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["QA_BLOCK_NETWORK"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from qa.offline import block_network  # noqa: E402

block_network()

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def seed_file() -> Path:
    return SEEDS / "innocare-mesutoclax-btd.txt"
