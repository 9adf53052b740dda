"""A generator on a server speaking the OpenAI chat-completions API: llama.cpp's server, vLLM, Ollama.

One server can answer for a whole team, so no one else needs the model (or its RAM) on their own
machine. Each request is greedy (``temperature`` 0, ``top_p`` 1, ``seed`` 0), streamed as
server-sent events, and (unless ``generation.remote_logprobs`` is off) asks for each token's
log-probability with its five most likely alternatives, which the confidence signals use
(``qa.signals``); a server that gives none leaves them empty, and the confidence falls back to the
checks' own scores.

Against the in-process llama.cpp backend:

- a server's first token cannot be overridden, so a ``Choice`` (the calibrated Yes/No re-ranking)
  is not applied: its labels' log-probabilities are reported from the first token's alternatives,
  and inform the confidence only;
- prompt tokens, completion tokens and cached tokens come from the server's ``usage`` report when it
  sends one; the timings are measured here (prompt time = time to the first token, network included);
- no llama.cpp self-check runs and no worker process is started: the native code runs in the server.

Every network wait has a timeout (``generation.connect_timeout``, ``generation.read_timeout``), and
every failure is a ``RemoteGeneratorError`` that names the URL and what to do. The API key comes
from the environment variable named by ``generation.api_key_env`` and is never logged or shown.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from qa.generation import Choice, Generation, GenerationStats, Messages
from qa.native import GeneratorCrashed
from qa.settings import GenerationSettings, SettingsError

log = logging.getLogger(__name__)

TOP_LOGPROBS = 5
FLOOR_MARGIN = math.log(2.0)
"""A label missing from the first token's top list had at most the lowest probability listed; it is
given half of that (the lowest log-probability minus ln 2), so it ranks below every listed token."""
MIN_LOGPROB = -9999.0  # OpenAI's own stand-in for a log-probability of minus infinity
OPTIONAL_FIELDS = ("seed", "logprobs", "top_logprobs", "stream_options")
_MESSAGE_CHARS = 300


class RemoteGeneratorError(GeneratorCrashed):
    """The generator server could not be reached, timed out, refused the request or answered badly.

    A ``GeneratorCrashed``, so the CLI and the UI report it as they report a failed local generator:
    one line that names the server and the fix, never a traceback or a hang."""


class StreamError(ValueError):
    """A streamed reply that breaks off, is not what the OpenAI chat API sends, or reports an error."""


class StreamStalled(StreamError):
    """A stream that sends only keep-alives, no data, for longer than the read timeout."""


@dataclass(frozen=True)
class TokenStep:
    """One generated token: its log-probability, and the most likely tokens at its step, best first."""

    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass
class Reply:
    """What a streamed reply has said so far (``add`` one parsed chunk at a time)."""

    pieces: list[str] = field(default_factory=list)
    steps: list[TokenStep] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    finished: bool = False

    def add(self, chunk: Any) -> list[str]:
        """Take one chunk of the stream; the text pieces it carries."""
        choices = (chunk.get("choices") or []) if isinstance(chunk, dict) else None
        if not isinstance(choices, list):
            raise StreamError(f"a chunk without a list of choices: {_clip(json.dumps(chunk))}")
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        added: list[str] = []
        for choice in choices:
            delta = (choice.get("delta") or {}) if isinstance(choice, dict) else None
            content = delta.get("content") if isinstance(delta, dict) else False
            if not isinstance(content, str | None):
                raise StreamError(f"a choice without a text delta: {_clip(json.dumps(choice))}")
            self.steps.extend(token_steps(choice.get("logprobs")))
            self.finished = self.finished or bool(choice.get("finish_reason"))
            if content:
                self.pieces.append(content)
                added.append(content)
        return added


def sse_data(lines: Iterable[str], *, patience: float = math.inf) -> Iterator[Any]:
    """The JSON of each ``data:`` line of a server-sent event stream, up to ``data: [DONE]``.

    Blank separators, ``: keep-alive`` comments and other fields are skipped, for at most ``patience``
    seconds in a row (``StreamStalled``); an error event raises ``StreamError``."""
    last = time.monotonic()
    for line in lines:
        if not line.startswith("data:"):
            if time.monotonic() - last > patience:
                raise StreamStalled(f"only keep-alives for {patience:g} s")
            continue
        last = time.monotonic()
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError as exc:
            raise StreamError(f"a line that is not JSON: {_clip(data)!r}") from exc
        if isinstance(chunk, dict) and chunk.get("error"):
            raise StreamError(f"an error in the stream: {server_message(json.dumps(chunk))}")
        yield chunk


def token_steps(logprobs: Any) -> list[TokenStep]:
    """The tokens of a choice's ``logprobs`` (OpenAI's ``{"content": [{"token", "logprob",
    "top_logprobs"}]}``), each with its top alternatives (one per distinct text, best first, at most
    ``TOP_LOGPROBS``); none when the server sent no log-probabilities."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if content is None:
        return []
    if not isinstance(content, list):
        raise StreamError(f"logprobs whose content is not a list: {_clip(json.dumps(logprobs))}")
    steps = []
    for entry in content:
        if not isinstance(entry, dict) or not _is_number(entry.get("logprob")):
            raise StreamError(f"a token without a numeric logprob: {_clip(json.dumps(entry))}")
        best: dict[str, float] = {}
        for alternative in entry.get("top_logprobs") or []:
            if isinstance(alternative, dict) and _is_number(alternative.get("logprob")):
                text, lp = str(alternative.get("token", "")), _logprob(alternative["logprob"])
                best[text] = max(lp, best.get(text, lp))
        top = sorted(best.items(), key=lambda pair: -pair[1])[:TOP_LOGPROBS]
        steps.append(TokenStep(_logprob(entry["logprob"]), tuple(top)))
    return steps


def label_logprobs(labels: Sequence[str], top: Sequence[tuple[str, float]]) -> tuple[float, ...]:
    """Each label's first-token log-probability, read from the first step's top alternatives: the best
    listed token whose text is the label (surrounding whitespace ignored). A label not listed gets the
    floor described at ``FLOOR_MARGIN``. Empty when no label is listed at all (the step was about
    something else, e.g. "NOT FOUND") or the server listed no alternatives: no label information."""
    found = [max((lp for text, lp in top if text.strip() == label), default=None) for label in labels]
    if not top or all(lp is None for lp in found):
        return ()
    floor = min(lp for _, lp in top) - FLOOR_MARGIN
    return tuple(floor if lp is None else lp for lp in found)


def server_message(body: str) -> str:
    """The error message in a server's reply (``{"error": {"message": ...}}``, ``{"detail": ...}``,
    ``{"message": ...}`` or plain text), on one line and clipped."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        said = data.get("error") or data.get("detail") or data.get("message")
        if isinstance(said, dict):
            said = said.get("message") or said
        if said:
            body = said if isinstance(said, str) else json.dumps(said)
    return _clip(" ".join(body.split())) or "no message"


def build_generation(
    reply: Reply, choice: Choice | None, *, started: float, first: float | None, end: float
) -> Generation:
    """The final ``Generation`` of a reply: its text, the server's token counts (else the tokens seen),
    the client-side timings, and the log-probabilities the server gave."""
    usage = reply.usage
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    first = first or end
    stats = GenerationStats(
        prompt_tokens=_count(usage.get("prompt_tokens"), 0),
        completion_tokens=_count(usage.get("completion_tokens"), len(reply.steps) or len(reply.pieces)),
        prompt_seconds=first - started,
        decode_seconds=end - first,
        cached_tokens=_count(cached, 0),
    )
    top = reply.steps[0].top if reply.steps else ()
    labels = label_logprobs(choice.labels, top) if choice is not None else ()
    return Generation("".join(reply.pieces), stats, tuple(s.logprob for s in reply.steps), top, labels)


class OpenAIGenerator:
    """A ``Generator`` on a server speaking the OpenAI chat-completions API (see the module docstring).

    A ``Choice`` is not applied, since a server's first token cannot be overridden: its labels'
    log-probabilities are reported from the first token's alternatives. Safe to share between
    threads: concurrent questions go to the server at once, and it queues or batches them.
    """

    def __init__(self, settings: GenerationSettings) -> None:
        if settings.backend != "openai" or not settings.url:
            raise SettingsError(
                "The openai generation backend needs the server's API root: set QA_GENERATION__BACKEND=openai "
                "and QA_GENERATION__URL (e.g. http://127.0.0.1:8080/v1)."
            )
        self.settings = settings
        self.url = settings.url
        self.shown_url = _without_password(settings.url)
        self.model_id = settings.remote_model
        self.model_sha256: str | None = None
        self._extras = True  # the OPTIONAL_FIELDS are sent until the server rejects them
        self._ready = False
        timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout, pool=settings.connect_timeout)
        self._client = httpx.Client(timeout=timeout, headers=self._headers())

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.settings.api_key_env, "").strip()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def warm_up(self) -> None:
        """Check, cheaply, that the server answers ``GET {url}/models``; learn the model's name there
        when ``generation.remote_model`` is empty. Raises ``RemoteGeneratorError`` if it does not."""
        if self._ready:
            return
        try:
            response = self._client.get(f"{self.url}/models")
            self._check(response, "/models")
            listed = response.json().get("data") or []
            names = [str(m["id"]) for m in listed if isinstance(m, dict) and m.get("id")]
        except (httpx.HTTPError, ValueError, AttributeError, TypeError) as exc:
            raise self._error(exc, "checking that it is up") from exc
        if not self.model_id:
            if not names:
                raise RemoteGeneratorError(
                    f"The generator server at {self.shown_url} lists no model at /models; name the one to use "
                    "in QA_GENERATION__REMOTE_MODEL."
                )
            self.model_id = names[0]
        self._ready = True

    def close(self) -> None:
        self._client.close()

    def stream(
        self, messages: Messages, *, max_tokens: int, choice: Choice | None = None
    ) -> Iterator[str | Generation]:
        """Stream the server's greedy reply, then its ``Generation``; ``choice`` is reported, not applied."""
        self.warm_up()
        started = time.perf_counter()
        first: float | None = None
        reply = Reply()
        try:
            with self._open(messages, max_tokens) as response:
                for chunk in sse_data(response.iter_lines(), patience=self.settings.read_timeout):
                    for piece in reply.add(chunk):
                        first = first or time.perf_counter()
                        yield piece
            if not reply.finished:
                raise StreamError("the stream ended before the reply did (no finish_reason)")
        except (httpx.HTTPError, StreamError) as exc:
            raise self._error(exc, "answering") from exc
        yield build_generation(reply, choice, started=started, first=first, end=time.perf_counter())

    def _body(self, messages: Messages, max_tokens: int, extras: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": messages,
            "max_tokens": max_tokens,
            "stream": True,
            "temperature": 0.0,
            "top_p": 1.0,
        }
        if self.model_id:
            body["model"] = self.model_id
        if extras:
            body.update(seed=0, stream_options={"include_usage": True})
            if self.settings.remote_logprobs:
                body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        return body

    @contextlib.contextmanager
    def _open(self, messages: Messages, max_tokens: int) -> Iterator[httpx.Response]:
        """POST the streamed request. A server that rejects it while it carries the ``OPTIONAL_FIELDS``
        (HTTP 400 or 422, or any error about logprobs, as llama-cpp-python's server started with
        ``--logits_all false`` gives) is asked again without them, and, if that works, never sent them again."""
        url, extras = f"{self.url}/chat/completions", self._extras
        with self._client.stream("POST", url, json=self._body(messages, max_tokens, extras)) as response:
            rejected = ""
            if extras and response.status_code >= 400:
                response.read()
                rejected = server_message(response.text)
            if not rejected or (response.status_code not in (400, 422) and "logprob" not in rejected.lower()):
                self._check(response, "/chat/completions")
                yield response
                return
        with self._client.stream("POST", url, json=self._body(messages, max_tokens, False)) as response:
            self._check(response, "/chat/completions")
            log.warning(
                "The generator server at %s rejected %s (%s); asking without them from now on",
                self.shown_url,
                ", ".join(k for k in OPTIONAL_FIELDS if k in self._body([], 1, True)),
                rejected,
            )
            self._extras = False
            yield response

    def _check(self, response: httpx.Response, path: str) -> None:
        """Raise ``RemoteGeneratorError`` with the server's own message unless ``response`` succeeded."""
        if response.is_success:
            return
        response.read()
        said = f"HTTP {response.status_code}: {server_message(response.text)}"
        where = f"The generator server at {self.shown_url}"
        if response.status_code in (401, 403):
            name = self.settings.api_key_env
            state = "is set, so the key may be wrong" if os.environ.get(name) else "is not set"
            raise RemoteGeneratorError(
                f"{where} refused the request ({said}). Put its API key in the environment variable {name} "
                f"(it {state}), or name another variable in QA_GENERATION__API_KEY_ENV."
            )
        if response.status_code == 404:
            model = f" or no model {self.model_id!r}" if self.model_id else ""
            raise RemoteGeneratorError(
                f"{where} has no {path}{model} ({said}). QA_GENERATION__URL must be the API root, usually ending "
                "in /v1 (e.g. http://127.0.0.1:8080/v1), and QA_GENERATION__REMOTE_MODEL a model it serves (or empty)."
            )
        raise RemoteGeneratorError(f"{where} failed ({said}). Check the server's log.")

    def _error(self, exc: BaseException, doing: str) -> RemoteGeneratorError:
        """A clear ``RemoteGeneratorError`` for a network failure or a bad stream while ``doing``."""
        if isinstance(exc, RemoteGeneratorError):
            return exc
        server, settings = f"the generator server at {self.shown_url}", self.settings
        if isinstance(exc, httpx.ConnectTimeout):
            what = (
                f"No connection to {server} within {settings.connect_timeout:g} s ({doing}). Check that it is "
                "running and reachable from here, or raise QA_GENERATION__CONNECT_TIMEOUT."
            )
        elif isinstance(exc, httpx.ConnectError):
            what = (
                f'Cannot reach {server} ({doing}: {exc or type(exc).__name__}). Start the server (README: "A '
                'shared generator server") or point QA_GENERATION__URL at a running one.'
            )
        elif isinstance(exc, httpx.TimeoutException | StreamStalled):
            what = (
                f"No reply from {server} for {settings.read_timeout:g} s ({doing}). It may be overloaded or "
                "stuck: check its log, or raise QA_GENERATION__READ_TIMEOUT."
            )
        elif isinstance(exc, httpx.HTTPError):
            what = f"The connection to {server} failed ({doing}: {type(exc).__name__}: {exc}). Check its log."
        else:
            what = (
                f"Unreadable reply from {server} ({doing}: {exc}). QA_GENERATION__URL must be the root of an "
                "OpenAI-compatible API (e.g. http://127.0.0.1:8080/v1)."
            )
        return RemoteGeneratorError(what)


def _is_number(value: Any) -> bool:
    """A real log-probability: a number, not NaN (``-Infinity``, which some servers send, becomes ``MIN_LOGPROB``)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


def _logprob(value: float) -> float:
    return max(float(value), MIN_LOGPROB)


def _count(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _clip(text: str) -> str:
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"


def _without_password(url: str) -> str:
    """``url`` as shown in messages: any ``user:password@`` is dropped."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
