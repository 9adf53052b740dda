"""``qa doctor``: every section is reported, problems are marked and set the exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa import doctor
from qa.cli import main
from qa.doctor import Finding, render
from qa.settings import load_settings


def test_render_marks_problems_and_counts_them() -> None:
    text = render([Finding("CPU", "AMD EPYC"), Finding("index", "No index in x/", ok=False)])
    assert text.splitlines() == [
        "  CPU    AMD EPYC",
        "! index  No index in x/",
        "",
        "1 problem(s), marked with '!'.",
    ]
    assert render([Finding("CPU", "x")]).endswith("All checks passed.")


def test_doctor_without_an_index_reports_it_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor, "check_models", lambda settings: [Finding("models", "fine")])
    code = main(["doctor", "--no-measure", "--index-dir", str(tmp_path / "none")])
    out = capsys.readouterr().out
    assert code == 1
    assert "! index" in out and "run `qa index` to build it" in out
    for topic in ("CPU ", "CPU features", "threads", "llama-cpp-python", "llama.cpp system info", "AMX kernels"):
        assert topic in out
    assert "speed" not in out  # --no-measure


def test_diagnose_includes_speed_only_when_measuring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(doctor, "check_models", lambda settings: [])
    monkeypatch.setattr(doctor, "check_speed", lambda settings: [Finding("speed", "100 tokens/s")])
    settings = load_settings(environ={}, paths={"index": tmp_path})
    assert [f.topic for f in doctor.diagnose(settings, measure=True)][-1] == "speed"
    assert "speed" not in [f.topic for f in doctor.diagnose(settings, measure=False)]


@pytest.mark.integration
def test_doctor_on_this_machine_measures_the_generator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed_file: Path
) -> None:
    assert main(["index", "--quiet", "--index-dir", str(tmp_path / "ix"), str(seed_file)]) == 0
    capsys.readouterr()
    code = main(["doctor", "--preset", "fast", "--index-dir", str(tmp_path / "ix")])
    out = capsys.readouterr().out
    assert "AMX kernels" in out and "absent (compiled out" in out
    assert "model qwen2.5-coder-1.5b" in out and "SHA-256 verified" in out
    assert "1 documents" in out
    assert "prompt processing" in out and "tokens/s" in out and "self-check" in out
    assert code == 0, out
