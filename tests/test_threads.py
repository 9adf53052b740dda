"""Thread counts: explicit settings win, then what ``qa doctor`` measured, then every usable core."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qa import threads
from qa.native import CheckResult
from qa.settings import GenerationSettings
from qa.threads import ThreadChoice, ThreadSpeed


def _model(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    return path


def _fake_check(rates: dict[int, tuple[float, float]]) -> Any:
    """A run_check stand-in: (prompt, decode) tokens/s for each thread count."""

    def check(path: Path, *, n_threads: int, measure: bool = False) -> CheckResult:
        prompt, decode = rates[n_threads]
        return CheckResult(True, "one, two", 192, prompt, 32, decode, "", 1.0)

    return check


def test_best_takes_the_fewest_threads_within_3_percent_of_the_fastest() -> None:
    speeds = [ThreadSpeed(1, 60.0, 10.0), ThreadSpeed(2, 66.0, 10.2), ThreadSpeed(3, 67.0, 9.0)]
    choice = threads.best(speeds)
    assert (choice.n_threads, choice.n_threads_batch) == (1, 2)  # decode: 10.0 is within 3% of 10.2


def test_measure_stores_the_best_and_resolve_follows_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    model = _model(tmp_path)
    auto = GenerationSettings()
    before = threads.resolve(auto, tmp_path, model, None)
    assert (before.n_threads, before.n_threads_batch) == (2, 2) and "qa doctor" in before.source
    speeds, choice = threads.measure(model, None, tmp_path, check=_fake_check({1: (100.0, 30.0), 2: (90.0, 20.0)}))
    assert [s.threads for s in speeds] == [1, 2]
    assert choice == ThreadChoice(1, 1, "measured by `qa doctor`")
    assert threads.resolve(auto, tmp_path, model, None) == choice  # a new process reads the stored measurement


def test_explicit_settings_win_over_the_measurement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    model = _model(tmp_path)
    threads.measure(model, None, tmp_path, check=_fake_check({1: (100.0, 30.0), 2: (50.0, 20.0)}))
    assert threads.resolve(GenerationSettings(n_threads=2), tmp_path, model, None) == ThreadChoice(2, 2, "settings")
    mixed = threads.resolve(GenerationSettings(n_threads_batch=2), tmp_path, model, None)
    assert (mixed.n_threads, mixed.n_threads_batch) == (1, 2)


def test_a_measurement_for_another_model_file_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    model = _model(tmp_path)
    threads.measure(model, None, tmp_path, check=_fake_check({1: (100.0, 30.0), 2: (50.0, 20.0)}))
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF2")
    assert threads.resolve(GenerationSettings(), tmp_path, other, None).n_threads == 2
