"""One typed settings object for the whole assistant.

Precedence, lowest to highest: built-in defaults < named preset < config file
(``qa.toml`` in the working directory, or the file named by ``QA_CONFIG``) <
``QA_*`` environment variables (``QA_RETRIEVAL__TOP_K=4``; ``QA_PRESET=fast``) <
call arguments (``load_settings(preset="fast", retrieval={"top_k": 4})``).
Unknown keys and bad values are errors that name the offending key.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PathSettings(_Section):
    seeds: Path = Path("seeds")
    index: Path = Path("index")
    cache: Path = Field(default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "qa")


class IndexSettings(_Section):
    """Where the index lives: folder files (``local``, the default) or a shared PostgreSQL database."""

    backend: Literal["local", "postgres"] = Field(
        "local", description="local: FAISS + BM25 + SQLite files in paths.index; postgres: pgvector tables at url."
    )
    url: str = Field(
        "", description="postgresql://user:password@host:5432/db (PostgreSQL >= 15 with the vector extension)."
    )
    schema_name: str = Field(
        "qa",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="The PostgreSQL schema holding this index's tables; one schema per index.",
    )
    hnsw_ef_search: int = Field(
        100, ge=10, le=1000, description="pgvector's HNSW search breadth, once the index passes hnsw_threshold chunks."
    )
    pool_size: int = Field(4, ge=1, le=64, description="PostgreSQL connections each process may hold for reading.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to wait for the PostgreSQL server.")


class ChunkSettings(_Section):
    target_words: int = Field(90, ge=10, le=2000)
    overlap_words: int = Field(20, ge=0, le=500)
    contextual_keywords: bool = Field(
        False,
        description="Keyword-index (BM25) each chunk with its document title and section heading first. "
        "Measured on the topic set: evidence retrieved 83 -> 92%, but answer accuracy 63.6 -> 54.5%, so off.",
    )


class EmbeddingSettings(_Section):
    model: str = "all-MiniLM-L6-v2"
    batch_size: int = Field(32, ge=1, le=1024)
    hnsw_threshold: int = Field(20000, ge=1, description="Use an HNSW index past this many chunks.")


class RetrievalSettings(_Section):
    candidates: int = Field(20, ge=1, le=500, description="Hits taken from each retriever before fusion.")
    top_k: int = Field(6, ge=1, le=50, description="Retrieved chunks whose best sentences go to the generator.")
    rrf_k: int = Field(60, ge=1)
    min_dense_score: float = Field(
        0.22, ge=-1.0, le=1.0, description="Below this cosine similarity nothing is relevant: refuse."
    )
    premise_candidates: int = Field(
        8, ge=1, le=500, description="At least this many candidates (else 2 x top_k) are searched for premise terms."
    )
    neighbour_chunks: int = Field(2, ge=0, le=50, description="The best chunks whose neighbours join the pool.")


class FocusSettings(_Section):
    """Weights of the sentence selector (context): embedding similarity has weight 1."""

    lexical_weight: float = Field(0.3, ge=0.0, description="Weight of the IDF-weighted share of question words.")
    chunk_weight: float = Field(0.3, ge=0.0, description="Weight of the sentence's chunk's retrieval similarity.")
    number_bonus: float = Field(0.15, ge=0.0, description="Added for sentences with a digit, for number questions.")


class GenerationSettings(_Section):
    backend: Literal["llama_cpp", "transformers", "openai"] = Field(
        "llama_cpp",
        description="llama_cpp: the packaged GGUF model in this process; transformers: a local Hugging Face folder; "
        "openai: a server speaking the OpenAI chat-completions API at url (llama.cpp's server, vLLM, Ollama). "
        "A remote server cannot have its first token overridden, so yes/no answers are not re-ranked by the "
        "calibrated label prior there; its label probabilities still inform the confidence.",
    )
    model: str = Field("qwen2.5-coder-1.5b", description="A packaged model name or a path (llama_cpp, transformers).")
    url: str = Field(
        "", description="openai backend: the server's API root, e.g. http://127.0.0.1:8080/v1 (no /chat/completions)."
    )
    remote_model: str = Field(
        "", description="openai backend: the model name sent to the server; empty: the first one its /models lists."
    )
    api_key_env: str = Field(
        "QA_GENERATION_API_KEY",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="openai backend: the NAME of the environment variable holding the API key, sent as a Bearer "
        "token when set (the key itself never goes in a settings file). Other QA_* names are read as settings.",
    )
    connect_timeout: float = Field(5.0, gt=0, le=600, description="openai backend: seconds to wait for a connection.")
    read_timeout: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="openai backend: seconds the server may stay silent (before its first token, or between two).",
    )
    remote_logprobs: bool = Field(
        True,
        description="openai backend: ask for token log-probabilities, which the confidence uses. llama-cpp-python's "
        "server computes them in Python (decoding about 7x slower on 2 cores): turn off there for speed; "
        "llama.cpp's llama-server and vLLM give them cheaply.",
    )
    n_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="Decoding threads (and prompt threads unless n_threads_batch is set); "
        "0: the count `qa doctor` measured fastest on this CPU, else every usable core.",
    )
    n_threads_batch: int = Field(0, ge=0, le=256, description="Prompt-processing threads; 0: as n_threads.")
    n_ctx: int = Field(2048, ge=256, le=32768)
    max_tokens: int = Field(80, ge=8, le=1024)
    context_words: int = Field(
        170, ge=20, le=4000, description="Words of the most relevant passage sentences shown to the model."
    )
    max_question_chars: int = Field(2000, ge=50, description="Longer questions are truncated, with a note.")
    rewrite_max_tokens: int = Field(48, ge=8, le=512, description="Tokens a follow-up's rewrite may take.")
    rewrite_max_chars: int = Field(400, ge=20, description="A longer rewrite is discarded for a plain join.")
    self_check: bool = Field(
        True, description="Run the generator once in a child process before first use (cached per build, model, CPU)."
    )
    isolate: bool = Field(False, description="Run the generator in a worker process (qa serve always does).")
    calibrate_yes_no: bool = Field(
        True, description="Divide out the model's prior for Yes/No, measured on content-free input (Zhao et al.)."
    )

    @field_validator("api_key_env")
    @classmethod
    def _not_a_setting(cls, value: str) -> str:
        if value.startswith("QA_") and value != API_KEY_ENV:
            raise ValueError(f"a QA_* variable is read as a setting: use {API_KEY_ENV} or a name outside QA_*")
        return value

    @field_validator("url")
    @classmethod
    def _api_root(cls, value: str) -> str:
        """``http(s)://host:port/v1``; a trailing slash or ``/chat/completions`` is dropped."""
        value = value.strip().rstrip("/").removesuffix("/chat/completions")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://, e.g. http://127.0.0.1:8080/v1")
        return value


class ConflictSettings(_Section):
    """When another document speaks to the question as well as the cited one, ask it too: differing
    answers are shown side by side, cited, with lower confidence."""

    enabled: bool = Field(True, description="Check the answer against the best other relevant document.")
    min_relative_relevance: float = Field(
        0.9, ge=0.0, le=1.0, description="Its best passage's cosine, as a share of the cited passages' best."
    )
    min_relative_overlap: float = Field(
        0.8, ge=0.0, le=1.0, description="Question words its passage holds, as a share of the cited passages' most."
    )
    max_passages: int = Field(2, ge=1, le=10, description="Chunks of the other document its sentences come from.")
    context_words: int = Field(
        60,
        ge=20,
        le=4000,
        description="Words of the other document's best sentences shown to the model (only its answer is "
        "needed). Measured on the topic set: 170 -> 60 words left all 43 answers unchanged and cut the "
        "check's p50 from 4.3 to 1.5 s.",
    )
    confidence_factor: float = Field(0.5, ge=0.0, le=1.0, description="Confidence multiplier when they disagree.")


class CitationSettings(_Section):
    min_support: float = Field(0.5, ge=0.0, le=1.0, description="Content-word support a sentence needs.")
    min_relevance: float = Field(
        0.2, ge=-1.0, le=2.0, description="Question-relevance score a cited sentence needs (cosine + overlap)."
    )


FITTED_ANSWER_WEIGHTS = {
    "bias": 0.7913, "mean_logprob": 0.0206, "min_logprob": 0.7825, "first_prob": 0.0985, "p_not_found": -0.6661,
    "relevance": 0.6162, "support": 0.27, "cited_ok": 0.7264, "yes_no": -0.3924, "label_margin": -1.0542,
}  # fmt: skip
"""Fitted for qwen2.5-coder-1.5b by ``qa eval --fit-confidence`` on the seed set and the external
development sample (171 items, 2026-12-01); checked on the topic set, which it never saw."""
FITTED_REFUSAL_WEIGHTS = {
    "bias": 0.733, "relevance": 0.0787, "generated": -0.4608, "p_not_found": 1.1201, "mean_logprob": -0.1393,
}  # fmt: skip


class ConfidenceSettings(_Section):
    """The confidence shown with an answer or a refusal, from relevance and citation support.

    relevance is scaled to [0, 1] over ``[relevance_floor, relevance_floor + relevance_span]``;
    an answer gets ``base + relevance_weight * support * scaled + support_weight * support``
    (+ ``cited_bonus`` when the model's own markers held), a refusal ``refusal_base +
    refusal_weight * (1 - scaled)``.
    """

    relevance_floor: float = 0.2
    relevance_span: float = Field(0.5, gt=0.0)
    base: float = 0.25
    relevance_weight: float = 0.35
    support_weight: float = 0.25
    cited_bonus: float = 0.1
    refusal_base: float = 0.55
    refusal_weight: float = 0.4
    answer_weights: dict[str, float] = Field(
        default_factory=lambda: dict(FITTED_ANSWER_WEIGHTS),
        description="Logistic weights (with 'bias') over an answer's signals; fitted by `qa eval --fit-confidence`. "
        "Empty: the formula above.",
    )
    refusal_weights: dict[str, float] = Field(
        default_factory=lambda: dict(FITTED_REFUSAL_WEIGHTS),
        description="Logistic weights over a refusal's signals; empty: the formula above.",
    )
    self_judge: bool = Field(
        False,
        description="Ask the model whether the passages state its answer (P(True)): about 0.4 s more; "
        "it did not improve held-out calibration, so it is off.",
    )
    min_answer: float = Field(
        0.0, ge=0.0, le=1.0, description="Answers whose calibrated confidence is below this are withheld."
    )


class UISettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    users_file: Path | None = Field(None, description="Who may log in: one user:password per line.")
    users: str = Field("", description="Who may log in, as user:password pairs separated by commas.")
    max_upload_mb: float = Field(20.0, gt=0)
    concurrency: int = Field(1, ge=1, description="Generations at once; the generator is not thread-safe.")
    isolate_generator: bool = Field(
        True, description="Run the generator in a worker process, so a native crash cannot stop the server."
    )


class Settings(_Section):
    preset: str = "accurate"
    paths: PathSettings = PathSettings()
    index: IndexSettings = IndexSettings()
    chunking: ChunkSettings = ChunkSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    generation: GenerationSettings = GenerationSettings()
    focus: FocusSettings = FocusSettings()
    citations: CitationSettings = CitationSettings()
    conflicts: ConflictSettings = ConflictSettings()
    confidence: ConfidenceSettings = ConfidenceSettings()
    ui: UISettings = UISettings()


PRESETS: dict[str, dict[str, Any]] = {
    "accurate": {},
    "fast": {
        "generation": {"model": "qwen2.5-0.5b", "max_tokens": 64},
        # the fitted weights are the 1.5B model's: the 0.5B model keeps the plain formula
        "confidence": {"answer_weights": {}, "refusal_weights": {}},
    },
}


class SettingsError(ValueError):
    """A configuration problem, with a message that says how to fix it."""


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


API_KEY_ENV = "QA_GENERATION_API_KEY"  # holds a secret for the openai backend, not a setting
_NOT_SETTINGS = frozenset({"QA_CONFIG", "QA_BLOCK_NETWORK", API_KEY_ENV})


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("QA_") or name in _NOT_SETTINGS:
            continue
        parts = name[3:].lower().split("__")
        if not all(parts):
            continue
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _config_file(environ: dict[str, str]) -> Path | None:
    named = environ.get("QA_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise SettingsError(f"QA_CONFIG names {path}, which is not a file.")
        return path
    default = Path("qa.toml")
    return default if default.is_file() else None


def load_settings(
    preset: str | None = None,
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings from every layer; see the module docstring for the order."""
    env = dict(os.environ if environ is None else environ)
    layers: list[tuple[str, dict[str, Any]]] = []
    path = config_file or _config_file(env)
    if path is not None:
        try:
            layers.append((str(path), tomllib.loads(path.read_text(encoding="utf-8"))))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"Cannot read config file {path}: {exc}") from exc
    layers.append(("QA_* environment variables", _env_overrides(env)))
    layers.append(("arguments", {k: v for k, v in overrides.items() if v is not None}))

    chosen = preset
    if chosen is None:
        for _, layer in layers:
            chosen = layer.get("preset", chosen)
    chosen = chosen or "accurate"
    if chosen not in PRESETS:
        raise SettingsError(f"Unknown preset {chosen!r}; choose one of: {', '.join(sorted(PRESETS))}.")

    merged: dict[str, Any] = _deep_merge({}, PRESETS[chosen])
    for source, layer in layers:
        try:
            Settings.model_validate(_deep_merge(merged, layer))
        except ValidationError as exc:
            raise SettingsError(_explain(exc, source)) from None
        merged = _deep_merge(merged, layer)
    merged["preset"] = chosen
    settings = Settings.model_validate(merged)
    _check_complete(settings)
    return settings


def _check_complete(settings: Settings) -> None:
    """Settings that only make sense together, checked once every layer is in (a layer may set half)."""
    generation = settings.generation
    if generation.backend == "openai" and not generation.url:
        raise SettingsError(
            "generation.backend is 'openai' but generation.url is empty: set QA_GENERATION__URL to the server's "
            "API root (e.g. QA_GENERATION__URL=http://127.0.0.1:8080/v1), or url under [generation] in qa.toml."
        )


def _explain(exc: ValidationError, source: str) -> str:
    lines = [f"Invalid settings from {source}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        lines.append(f"  {key}: {err['msg']}")
    lines.append("Known sections: " + ", ".join(Settings.model_fields))
    return "\n".join(lines)
