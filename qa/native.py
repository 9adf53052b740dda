"""The native generator stack on this CPU: what it is, and whether it runs.

llama.cpp is native code compiled for the CPU it was built on; a bad kernel (such as its
AMX path on Q4_K weights, upstream issue #20824) kills the whole process with a signal,
which no Python ``try`` can catch. So before the first question the generator is run once
in a child process (``python -m qa.native``): a crash there becomes a ``GeneratorCrashed``
error that names the fix, never a dead app. A passing check is cached per build, model
and CPU, so it is paid once, not on every start.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

FIX_HINT = (
    "Rebuild llama-cpp-python for this CPU with `rm .venv/qa-llama-build.txt && scripts/setup.sh` "
    "(it compiles llama.cpp without the AMX kernels), then run `qa doctor`."
)
_CHECK_PROMPT = "Count from one to ten in words, separated by commas:"
_CPU_FEATURES = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)


class GeneratorCrashed(RuntimeError):
    """The native generator died (a signal such as SIGSEGV) or failed its self-check."""


@dataclass(frozen=True)
class CpuInfo:
    model: str
    logical_cpus: int
    features: tuple[str, ...]

    @property
    def has_amx(self) -> bool:
        return any(f.startswith("amx") for f in self.features)


@dataclass(frozen=True)
class CheckResult:
    """What one run of the generator in a child process showed."""

    ok: bool
    text: str
    prompt_tokens: int
    prompt_tokens_per_s: float
    decode_tokens: int
    decode_tokens_per_s: float
    system_info: str
    seconds: float


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """The CPU's model name and the instruction-set features that matter to llama.cpp."""
    model, flags = platform.processor() or platform.machine(), set[str]()
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return CpuInfo(model, os.cpu_count() or 1, tuple(f for f in _CPU_FEATURES if f in flags))


def _cpu_identity(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The model name and every flag of the first CPU: a native build is good for exactly this."""
    wanted: list[str] = []
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key = line.partition(":")[0].strip()
            if key in ("model name", "flags") and not any(w.startswith(key) for w in wanted):
                wanted.append(line.strip())
    except OSError:
        wanted.append(platform.machine())
    return "\n".join(wanted)


def llama_library_files() -> list[Path]:
    """The shared libraries of the installed llama-cpp-python (its native build)."""
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return []
    lib = Path(spec.origin).parent / "lib"
    return sorted(p for p in lib.glob("*.so*") if p.is_file()) if lib.is_dir() else []


@functools.cache
def _build_digest() -> bytes:
    """The installed llama.cpp build (version and library files) on this CPU; hashed once per process,
    since the self-check and the thread choice both key on it at start-up."""
    digest = hashlib.sha256()
    try:
        digest.update(metadata.version("llama-cpp-python").encode())
    except metadata.PackageNotFoundError:
        digest.update(b"no-llama-cpp")
    for path in llama_library_files():
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(_cpu_identity().encode())
    return digest.digest()


def build_key(model_identity: str, n_threads: int) -> str:
    """A key for one build of llama.cpp, one model file and one CPU (and thread count)."""
    digest = hashlib.sha256(_build_digest())
    digest.update(model_identity.encode())
    digest.update(str(n_threads).encode())
    return digest.hexdigest()[:24]


def model_identity(path: Path, sha256: str | None) -> str:
    """The pinned SHA-256 of a packaged model, else the file's path, size and mtime."""
    if sha256:
        return sha256
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def describe_exit(returncode: int) -> str:
    """``-11`` → ``"signal SIGSEGV"``, ``3`` → ``"exit code 3"``."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def run_check(
    model_path: Path,
    *,
    n_threads: int,
    measure: bool = False,
    timeout: float = 300.0,
    command: Sequence[str] | None = None,
) -> CheckResult:
    """Generate a few tokens with ``model_path`` in a child process; a crash raises ``GeneratorCrashed``.

    ``command`` replaces the child's command line (the tests use it to simulate a crash).
    """
    argv = (
        list(command)
        if command
        else [
            sys.executable,
            "-m",
            "qa.native",
            str(model_path),
            "--threads",
            str(n_threads),
            *(["--measure"] if measure else []),
        ]
    )
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise GeneratorCrashed(f"The generator self-check did not finish in {timeout:.0f} s. {FIX_HINT}") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or "").strip().splitlines()[-3:]
        cpu = cpu_info()
        raise GeneratorCrashed(
            f"The generator crashed ({describe_exit(proc.returncode)}) in its self-check on this CPU "
            f"({cpu.model}{', with AMX' if cpu.has_amx else ''}). llama.cpp was probably built with kernels this "
            f"CPU cannot run, such as its AMX path (llama.cpp issue #20824). {FIX_HINT}"
            + (f" Last output: {' | '.join(detail)}" if detail else "")
        )
    try:
        result = CheckResult(**json.loads(proc.stdout.strip().splitlines()[-1]))
    except (ValueError, TypeError, IndexError) as exc:
        printed = proc.stdout[-200:]
        raise GeneratorCrashed(f"The generator self-check printed no result ({printed!r}). {FIX_HINT}") from exc
    if not result.ok:
        raise GeneratorCrashed(f"The generator self-check produced no text on this CPU. {FIX_HINT}")
    return result


def ensure_runs(model_path: Path, sha256: str | None, *, n_threads: int, cache_dir: Path) -> CheckResult | None:
    """Run the self-check unless it already passed for this build, model and CPU; ``None`` if cached."""
    key = build_key(model_identity(model_path, sha256), n_threads)
    marker = cache_dir / "selfcheck" / f"{key}.json"
    if marker.is_file():
        return None
    result = run_check(model_path, n_threads=n_threads)
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(result)), encoding="utf-8")
    os.replace(tmp, marker)
    return result


def build_stamp() -> dict[str, str]:
    """What scripts/build_llama.sh recorded about the installed build (empty if it did not build it)."""
    path = Path(sys.prefix) / "qa-llama-build.txt"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in lines if "=" in line)


def system_info() -> str:
    """llama.cpp's own list of the CPU features and kernels it was built with."""
    import llama_cpp

    return str(llama_cpp.llama_print_system_info().decode("utf-8", errors="replace")).strip()


def amx_kernels(info: str) -> list[str]:
    """The AMX entries that llama.cpp's system info reports as on (``AMX_INT8 = 1``)."""
    return [part.split("=")[0].strip() for part in info.split("|") if "AMX" in part and part.strip().endswith("= 1")]


def _child(model_path: str, n_threads: int, measure: bool) -> CheckResult:
    """The child's side: load the model, prefill a prompt, decode greedily, time both."""
    from llama_cpp import Llama

    started = time.perf_counter()
    llm = Llama(
        model_path=model_path,
        n_ctx=1024,
        n_threads=n_threads,
        n_threads_batch=n_threads,
        n_batch=512,
        seed=0,
        verbose=False,
    )
    text = _CHECK_PROMPT + (" The quick brown fox jumps over the lazy dog." * 18 if measure else "")
    tokens = llm.tokenize(text.encode("utf-8"))
    t0 = time.perf_counter()
    llm.eval(tokens)
    t1 = time.perf_counter()
    out: list[int] = []
    for _ in range(32 if measure else 8):
        token = llm.sample(top_k=1, temp=0.0)
        if llm.token_eos() == token:
            break
        out.append(token)
        llm.eval([token])
    t2 = time.perf_counter()
    decoded = llm.detokenize(out).decode("utf-8", errors="replace")
    return CheckResult(
        ok=bool(decoded.strip()),
        text=decoded,
        prompt_tokens=len(tokens),
        prompt_tokens_per_s=len(tokens) / max(t1 - t0, 1e-9),
        decode_tokens=len(out),
        decode_tokens_per_s=len(out) / max(t2 - t1, 1e-9),
        system_info=system_info(),
        seconds=time.perf_counter() - started,
    )


def check_presets() -> int:
    """Self-check every preset's generator (cached), as scripts/setup.sh does; 1 if one crashes."""
    from qa.models import pinned_sha256, resolve_model
    from qa.settings import PRESETS, load_settings
    from qa.threads import resolve

    status = 0
    for preset in PRESETS:
        settings = load_settings(preset=preset)
        generation, cache = settings.generation, settings.paths.cache
        path = resolve_model(generation.model, cache, show_progress=False)
        sha = pinned_sha256(generation.model)
        threads = resolve(generation, cache, path, sha).n_threads
        try:
            result = ensure_runs(path, sha, n_threads=threads, cache_dir=cache)
        except GeneratorCrashed as exc:
            print(f"{preset}: {exc}", file=sys.stderr)
            status = 1
            continue
        said = "passed before (cached)" if result is None else f"generated {result.text.strip()[:40]!r}"
        print(f"{preset} preset ({generation.model}): generation self-check ok, {said}")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.native", description="Run the generator once (self-check).")
    parser.add_argument("model", nargs="?", help="path to a GGUF file (the child side of the check)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--measure", action="store_true", help="a longer prompt and decode, for tokens/s")
    parser.add_argument("--presets", action="store_true", help="self-check every preset's generator (cached)")
    args = parser.parse_args(argv)
    if args.presets or not args.model:
        return check_presets()
    print(json.dumps(asdict(_child(args.model, args.threads, args.measure))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
