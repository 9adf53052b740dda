"""The native self-check: crashes become clear errors, results are cached, AMX is compiled out."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from qa import native
from qa.native import (
    CheckResult,
    GeneratorCrashed,
    amx_kernels,
    cpu_info,
    describe_exit,
    ensure_runs,
    run_check,
)

SEGFAULT = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
SAPPHIRE_RAPIDS_INFO = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 1 | AVX512_VNNI = 1 | "
    "AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"
)
ZEN4_INFO = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_BF16 = 1 | LLAMAFILE = 1 | REPACK = 1 |"


def _result(**changes: object) -> CheckResult:
    values: dict[str, object] = dict(
        ok=True,
        text=" one, two",
        prompt_tokens=12,
        prompt_tokens_per_s=100.0,
        decode_tokens=8,
        decode_tokens_per_s=25.0,
        system_info=ZEN4_INFO,
        seconds=1.0,
    )
    values.update(changes)
    return CheckResult(**values)  # type: ignore[arg-type]


def test_a_crashing_child_becomes_a_clear_error_naming_the_fix(tmp_path: Path) -> None:
    with pytest.raises(GeneratorCrashed) as caught:
        run_check(tmp_path / "model.gguf", n_threads=1, command=SEGFAULT)
    message = str(caught.value)
    assert "crashed (signal SIGSEGV) in its self-check on this CPU" in message
    assert "llama.cpp issue #20824" in message
    assert "scripts/setup.sh" in message and "qa doctor" in message


def test_a_failing_child_reports_its_exit_code_and_last_output(tmp_path: Path) -> None:
    failing = [sys.executable, "-c", "import sys; print('bad kernel', file=sys.stderr); sys.exit(3)"]
    with pytest.raises(GeneratorCrashed, match=r"\(exit code 3\).*Last output: bad kernel"):
        run_check(tmp_path / "model.gguf", n_threads=1, command=failing)


def test_a_child_that_generates_nothing_fails_the_check(tmp_path: Path) -> None:
    import json
    from dataclasses import asdict

    empty = [sys.executable, "-c", f"print({json.dumps(json.dumps(asdict(_result(ok=False, text=''))))})"]
    with pytest.raises(GeneratorCrashed, match="produced no text"):
        run_check(tmp_path / "model.gguf", n_threads=1, command=empty)


def test_a_passing_check_is_cached_per_build_model_and_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []

    def fake_run(path: Path, *, n_threads: int, measure: bool = False) -> CheckResult:
        calls.append(path)
        return _result()

    monkeypatch.setattr(native, "run_check", fake_run)
    model = tmp_path / "m.gguf"
    model.write_bytes(b"weights")
    assert ensure_runs(model, None, n_threads=2, cache_dir=tmp_path) == _result()
    assert ensure_runs(model, None, n_threads=2, cache_dir=tmp_path) is None  # cached
    assert len(calls) == 1
    ensure_runs(model, None, n_threads=1, cache_dir=tmp_path)  # another thread count: checked again
    model.write_bytes(b"other weights")
    ensure_runs(model, None, n_threads=2, cache_dir=tmp_path)  # another model file: checked again
    assert len(calls) == 3


def test_a_failed_check_is_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(path: Path, *, n_threads: int, measure: bool = False) -> CheckResult:
        raise GeneratorCrashed("crashed")

    monkeypatch.setattr(native, "run_check", crash)
    model = tmp_path / "m.gguf"
    model.write_bytes(b"weights")
    for _ in range(2):
        with pytest.raises(GeneratorCrashed):
            ensure_runs(model, None, n_threads=2, cache_dir=tmp_path)
    assert not list((tmp_path / "selfcheck").glob("*.json"))


def test_amx_kernels_are_read_from_llama_cpp_system_info() -> None:
    assert amx_kernels(SAPPHIRE_RAPIDS_INFO) == ["AMX_INT8"]
    assert amx_kernels(ZEN4_INFO) == []
    assert amx_kernels("CPU : AMX_INT8 = 0 |") == []


def test_describe_exit_names_signals() -> None:
    assert describe_exit(-11) == "signal SIGSEGV"
    assert describe_exit(-9) == "signal SIGKILL"
    assert describe_exit(2) == "exit code 2"


def test_cpu_info_reads_model_and_features(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
        "flags\t\t: fpu sse4_2 avx avx2 fma avx512f amx_tile amx_int8 amx_bf16\n\n"
        "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu\n"
    )
    cpu = cpu_info(cpuinfo)
    assert cpu.model == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu.features == ("sse4_2", "avx", "avx2", "fma", "avx512f", "amx_tile", "amx_int8", "amx_bf16")
    assert cpu.has_amx


@pytest.mark.integration
def test_the_installed_llama_cpp_build_has_no_amx_kernels() -> None:
    info = native.system_info()
    assert "CPU :" in info
    assert amx_kernels(info) == []
    stamp = native.build_stamp()
    assert stamp, "llama-cpp-python was not built by scripts/build_llama.sh"
    assert "-mno-amx-int8" in stamp["cflags"] and "-mno-amx-tile" in stamp["cflags"]
    assert stamp["system_info"].strip() == info


@pytest.mark.integration
def test_the_real_generator_passes_its_self_check() -> None:
    from qa.models import resolve_model
    from qa.settings import load_settings

    settings = load_settings(environ={}, preset="fast")
    path = resolve_model(settings.generation.model, settings.paths.cache, show_progress=False)
    result = run_check(path, n_threads=2, measure=True)
    assert result.ok and result.decode_tokens >= 8
    assert result.prompt_tokens > 100 and result.prompt_tokens_per_s > 0 and result.decode_tokens_per_s > 0
