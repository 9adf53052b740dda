"""FaissStore: add, search, delete, save/load for the flat and HNSW kinds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.store import FaissStore, StoreError, VectorStore, choose_kind, convert_store, create_store, load_store


def _unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(params=["flat", "hnsw"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_add_search_returns_nearest_with_cosine(kind: str) -> None:
    vectors = _unit(200, 16)
    ids = np.arange(1000, 1200, dtype=np.int64)
    store = create_store(kind, 16)
    store.add(ids, vectors)
    assert len(store) == 200 and store.kind == kind
    scores, found = store.search(vectors[[3, 50]], 5)
    assert found.shape == (2, 5)
    assert list(found[:, 0]) == [1003, 1050]
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    np.testing.assert_allclose(store.get(np.array([1050, 1003])), vectors[[50, 3]])


def test_delete_then_search_skips_deleted(kind: str) -> None:
    vectors = _unit(100, 8, seed=1)
    store = create_store(kind, 8)
    store.add(np.arange(100), vectors)
    store.delete(np.array([7, 8, 999]))  # unknown ids are ignored
    assert len(store) == 98
    _, found = store.search(vectors[[7]], 10)
    assert 7 not in found[0] and 8 not in found[0]
    _, found = store.search(vectors[[9]], 1)
    assert found[0, 0] == 9
    with pytest.raises(KeyError):
        store.get(np.array([7]))


def test_save_load_round_trip(tmp_path: Path, kind: str) -> None:
    vectors = _unit(120, 12, seed=2)
    store = create_store(kind, 12)
    store.add(np.arange(5, 125), vectors)
    store.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"faiss.index", "vectors.npy", "ids.npy"}
    loaded = load_store(kind, tmp_path)
    assert loaded.kind == kind and len(loaded) == 120
    queries = _unit(4, 12, seed=3)
    s1, i1 = store.search(queries, 7)
    s2, i2 = loaded.search(queries, 7)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(s1, s2)
    loaded.delete(np.array([5]))  # a loaded HNSW can still delete (rebuilt from vectors.npy)
    assert len(loaded) == 119


def test_convert_switches_kind_without_reembedding() -> None:
    vectors = _unit(50, 8, seed=4)
    flat: VectorStore = FaissStore(8, "flat")
    flat.add(np.arange(50), vectors)
    assert convert_store(flat, "flat") is flat
    hnsw = convert_store(flat, "hnsw")
    assert hnsw.kind == "hnsw" and len(hnsw) == 50
    assert hnsw.search(vectors[[10]], 1)[1][0, 0] == 10
    assert convert_store(hnsw, "flat").search(vectors[[20]], 1)[1][0, 0] == 20


def test_small_and_empty_stores_pad_with_minus_one(kind: str) -> None:
    store = create_store(kind, 4)
    scores, ids = store.search(_unit(1, 4), 3)
    assert ids.tolist() == [[-1, -1, -1]]
    store.add(np.array([1]), _unit(1, 4))
    _, ids = store.search(_unit(1, 4), 3)
    assert ids[0, 0] == 1 and list(ids[0, 1:]) == [-1, -1]


def test_add_rejects_bad_input() -> None:
    store = create_store("flat", 4)
    store.add(np.array([1, 2]), _unit(2, 4))
    with pytest.raises(ValueError, match="Duplicate"):
        store.add(np.array([2]), _unit(1, 4))
    with pytest.raises(ValueError, match="dimension"):
        store.add(np.array([3]), _unit(1, 5))
    with pytest.raises(ValueError, match="Unknown store kind"):
        create_store("ivf", 4)


def test_load_detects_damage(tmp_path: Path) -> None:
    store = create_store("flat", 4)
    store.add(np.arange(10), _unit(10, 4))
    store.save(tmp_path)
    with pytest.raises(StoreError, match="holds a 'flat'"):
        load_store("hnsw", tmp_path)
    data = (tmp_path / "faiss.index").read_bytes()
    (tmp_path / "faiss.index").write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError):
        load_store("flat", tmp_path)
    store.save(tmp_path)
    np.save(tmp_path / "ids.npy", np.arange(9, dtype=np.int64))
    with pytest.raises(StoreError, match="inconsistent"):
        load_store("flat", tmp_path)
    (tmp_path / "vectors.npy").unlink()
    with pytest.raises(StoreError):
        load_store("flat", tmp_path)


def test_choose_kind() -> None:
    assert choose_kind(100, 100) == "flat"
    assert choose_kind(101, 100) == "hnsw"


def test_hnsw_recall_against_exact_search() -> None:
    rng = np.random.default_rng(5)
    centers = rng.normal(size=(40, 32))
    x = centers[rng.integers(0, 40, 3000)] + 0.5 * rng.normal(size=(3000, 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    queries = x[:50] + 0.1 * rng.normal(size=(50, 32)).astype(np.float32)
    flat, hnsw = create_store("flat", 32), create_store("hnsw", 32)
    flat.add(np.arange(3000), x)
    hnsw.add(np.arange(3000), x)
    exact, approx = flat.search(queries, 10)[1], hnsw.search(queries, 10)[1]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx, strict=True)])
    assert recall >= 0.95
