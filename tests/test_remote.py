"""The OpenAI-compatible remote generator, against a fake server (fast) and llama.cpp's own server
(``integration``: the real 0.5B model behind ``python -m llama_cpp.server``)."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fake_openai_server import MODEL, FakeOpenAIServer
from test_ui_browser import free_port

from qa.calibration import LabelPrior
from qa.generation import Choice, Generation, create_generator, generate
from qa.native import GeneratorCrashed
from qa.prompts import answer_messages
from qa.remote import (
    FLOOR_MARGIN,
    MIN_LOGPROB,
    OpenAIGenerator,
    RemoteGeneratorError,
    Reply,
    StreamError,
    label_logprobs,
    server_message,
    sse_data,
    token_steps,
)
from qa.settings import GenerationSettings, SettingsError, load_settings
from qa.signals import answer_signals

MESSAGES = [{"role": "user", "content": "Who granted it?"}]


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer().start()
    yield server
    server.stop()


def _settings(url: str, **extra: object) -> GenerationSettings:
    return GenerationSettings.model_validate({"backend": "openai", "url": url, **extra})


def _error(generator: OpenAIGenerator, **kwargs: object) -> tuple[str, float]:
    """The message of the error a generation raises, and how long it took to come."""
    started = time.perf_counter()
    with pytest.raises(RemoteGeneratorError) as raised:
        generate(generator, MESSAGES, max_tokens=16, **kwargs)  # type: ignore[arg-type]
    return str(raised.value), time.perf_counter() - started


# -- streaming and the final Generation -----------------------------------------------
def test_streams_the_text_then_a_generation_with_logprobs_and_usage(fake: FakeOpenAIServer) -> None:
    generator = OpenAIGenerator(_settings(fake.url))
    items = list(generator.stream(MESSAGES, max_tokens=16))
    pieces, final = items[:-1], items[-1]
    assert pieces == ["The", " CDE", " granted", " it", " [1]."]
    assert isinstance(final, Generation) and final.text == "The CDE granted it [1]."
    assert final.token_logprobs == pytest.approx((-0.05, -0.1, -0.2, -0.3, -0.4))
    assert final.first_choices == (("The", -0.05), ("NOT", -3.2), ("Yes", -4.0))
    assert final.label_logprobs == ()  # no choice asked
    stats = final.stats
    assert (stats.prompt_tokens, stats.completion_tokens, stats.cached_tokens) == (42, 6, 30)  # the server's usage
    assert stats.prompt_seconds > 0 and stats.decode_seconds >= 0
    assert generator.model_id == MODEL and generator.model_sha256 is None  # learned from /models
    models, chat = fake.requests
    assert (models.method, models.path) == ("GET", "/v1/models")
    assert (chat.method, chat.path) == ("POST", "/v1/chat/completions")
    assert chat.body == {
        "model": MODEL,
        "messages": MESSAGES,
        "max_tokens": 16,
        "stream": True,
        "temperature": 0.0,
        "top_p": 1.0,
        "seed": 0,
        "logprobs": True,
        "top_logprobs": 5,
        "stream_options": {"include_usage": True},
    }
    assert "Authorization" not in chat.headers  # no key configured


def test_the_configured_model_name_is_sent_and_max_tokens_honoured(fake: FakeOpenAIServer) -> None:
    generator = OpenAIGenerator(_settings(fake.url + "/", remote_model="qwen-team"))
    result = generate(generator, MESSAGES, max_tokens=2)
    assert result.text == "The CDE" and generator.model_id == "qwen-team"
    assert fake.requests[-1].body["model"] == "qwen-team" and fake.requests[-1].body["max_tokens"] == 2


def test_a_choice_reports_label_logprobs_from_the_first_step_but_is_not_applied(fake: FakeOpenAIServer) -> None:
    fake.reply, fake.first_top = "No, it did not [1].", (("No", -0.3), ("Yes", -1.5), ("NOT", -2.0))
    generator = OpenAIGenerator(_settings(fake.url))
    found = generate(generator, MESSAGES, max_tokens=16, choice=Choice(("Yes", "No"), bias=(-5.0, 0.0)))
    assert found.label_logprobs == (-1.5, -0.3)
    assert found.text.startswith("No")  # the bias favours "Yes", but a server's first token stays its own
    signals = answer_signals(found, Choice(("Yes", "No")))
    assert signals["label_margin"] == pytest.approx(1.2) and signals["first_prob"] == pytest.approx(
        math.exp(-0.3), abs=1e-4
    )


def test_a_label_outside_the_top_list_gets_a_floor_below_every_listed_token() -> None:
    top = (("Yes", -0.1), (" yes", -2.0), ("Maybe", -4.0))
    assert label_logprobs(("Yes", "No"), top) == pytest.approx((-0.1, -4.0 - FLOOR_MARGIN))
    assert label_logprobs(("Yes", "No"), (("NOT", -0.2), ("The", -1.0))) == ()  # no label at all: no information
    assert label_logprobs(("Yes", "No"), ()) == ()


def test_logprobs_can_be_left_off_for_speed(fake: FakeOpenAIServer) -> None:
    generator = OpenAIGenerator(_settings(fake.url, remote_logprobs=False))
    result = generate(generator, MESSAGES, max_tokens=16)
    body = fake.requests[-1].body
    assert "logprobs" not in body and "top_logprobs" not in body and body["seed"] == 0 and "stream_options" in body
    assert result.token_logprobs == () and result.stats.prompt_tokens == 42


def test_without_logprobs_the_tuples_are_empty_and_the_confidence_code_copes(fake: FakeOpenAIServer) -> None:
    fake.mode = "no_logprobs"
    generator = OpenAIGenerator(_settings(fake.url))
    result = generate(generator, MESSAGES, max_tokens=16, choice=Choice(("Yes", "No")))
    assert result.text == "The CDE granted it [1]."
    assert (result.token_logprobs, result.first_choices, result.label_logprobs) == ((), (), ())
    assert answer_signals(result, Choice(("Yes", "No"))) == {}
    assert LabelPrior(generator).choice() == Choice(("Yes", "No"), ())  # no prior measured: plain argmax


def test_a_server_rejecting_the_optional_fields_is_asked_without_them(fake: FakeOpenAIServer) -> None:
    fake.mode = "reject_extras"
    generator = OpenAIGenerator(_settings(fake.url))
    first = generate(generator, MESSAGES, max_tokens=16)
    second = generate(generator, MESSAGES, max_tokens=16)
    assert first.text == second.text == "The CDE granted it [1]." and first.token_logprobs == ()
    posts = [r.body for r in fake.requests if r.method == "POST"]
    assert ["logprobs" in body for body in posts] == [True, False, False]  # asked once, then never again
    assert first.stats.completion_tokens == 5  # no usage report: the pieces are counted


# -- failures: clear, fast, never a hang --------------------------------------------------
def test_a_server_that_is_down_is_a_clear_and_fast_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    message, seconds = _error(OpenAIGenerator(_settings(url)))
    assert url in message and "Cannot reach" in message and "QA_GENERATION__URL" in message
    assert seconds < 2.0


def test_a_stalled_server_times_out_instead_of_hanging(fake: FakeOpenAIServer) -> None:
    fake.mode = "stall"
    generator = OpenAIGenerator(_settings(fake.url, read_timeout=0.3))
    message, seconds = _error(generator)
    assert fake.url in message and "0.3 s" in message and "QA_GENERATION__READ_TIMEOUT" in message
    assert seconds < 3.0


def test_a_server_sending_only_keep_alives_times_out_too(fake: FakeOpenAIServer) -> None:
    fake.mode = "keepalive"
    message, seconds = _error(OpenAIGenerator(_settings(fake.url, read_timeout=0.3)))
    assert "No reply from" in message and "QA_GENERATION__READ_TIMEOUT" in message and seconds < 3.0


def test_a_server_that_stalls_mid_answer_times_out_after_the_text_so_far(fake: FakeOpenAIServer) -> None:
    fake.mode = "stall_mid"
    generator = OpenAIGenerator(_settings(fake.url, read_timeout=0.3))
    seen: list[str | Generation] = []
    started = time.perf_counter()
    with pytest.raises(RemoteGeneratorError, match="No reply from"):
        seen.extend(generator.stream(MESSAGES, max_tokens=16))
    assert seen == ["The"] and time.perf_counter() - started < 3.0


def test_a_connect_timeout_names_its_setting() -> None:
    generator = OpenAIGenerator(_settings("http://10.255.255.1:9/v1", connect_timeout=0.5))
    error = generator._error(httpx.ConnectTimeout("timed out"), "answering")
    assert "http://10.255.255.1:9/v1" in str(error) and "QA_GENERATION__CONNECT_TIMEOUT" in str(error)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, r"HTTP 500: the model crashed\). Check the server's log"),
        (404, r"HTTP 404: the model crashed\)\. QA_GENERATION__URL must be the API root, usually ending in /v1"),
        (503, r"HTTP 503: the model crashed"),
    ],
)
def test_http_errors_carry_the_servers_message(fake: FakeOpenAIServer, status: int, expected: str) -> None:
    fake.mode, fake.status = "status", status
    message, _ = _error(OpenAIGenerator(_settings(fake.url)))
    assert fake.url in message and re.search(expected, message), message


def test_a_wrong_api_root_is_named(fake: FakeOpenAIServer) -> None:
    root = fake.url.removesuffix("/v1")
    message, _ = _error(OpenAIGenerator(_settings(root)))
    assert "HTTP 404: Not Found" in message and "usually ending in /v1" in message


def test_the_api_key_comes_from_the_named_env_var_and_is_never_shown(
    fake: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.api_key = "team-secret"
    monkeypatch.setenv("TEAM_LLM_KEY_FOR_TESTS", "team-secret")
    generator = OpenAIGenerator(_settings(fake.url, api_key_env="TEAM_LLM_KEY_FOR_TESTS"))
    assert generate(generator, MESSAGES, max_tokens=4).text == "The CDE granted it"
    assert {r.headers.get("Authorization") for r in fake.requests} == {"Bearer team-secret"}

    monkeypatch.setenv("TEAM_LLM_KEY_FOR_TESTS", "wrong-secret")
    message, _ = _error(OpenAIGenerator(_settings(fake.url, api_key_env="TEAM_LLM_KEY_FOR_TESTS")))
    assert "HTTP 401: Invalid API key" in message and "TEAM_LLM_KEY_FOR_TESTS" in message and "may be wrong" in message
    assert "secret" not in message
    monkeypatch.delenv("TEAM_LLM_KEY_FOR_TESTS")
    message, _ = _error(OpenAIGenerator(_settings(fake.url, api_key_env="TEAM_LLM_KEY_FOR_TESTS")))
    assert "is not set" in message


@pytest.mark.parametrize("mode", ["garbage", "truncated"])
def test_a_malformed_or_broken_stream_is_a_clear_error(fake: FakeOpenAIServer, mode: str) -> None:
    fake.mode = mode
    message, _ = _error(OpenAIGenerator(_settings(fake.url)))
    assert fake.url in message and ("not JSON" in message or "no finish_reason" in message), message


def test_a_password_in_the_url_is_not_shown() -> None:
    generator = OpenAIGenerator(_settings(f"http://bob:hunter2@127.0.0.1:{free_port()}/v1"))
    message, _ = _error(generator)
    assert "hunter2" not in message and "http://127.0.0.1:" in message


def test_the_remote_error_is_a_generator_crash_so_the_cli_and_ui_report_it() -> None:
    assert issubclass(RemoteGeneratorError, GeneratorCrashed) and issubclass(RemoteGeneratorError, RuntimeError)


def test_qa_ask_reports_an_unreachable_server_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from qa.cli import main

    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "note.txt").write_text("Mesutoclax was granted a designation by the CDE.", encoding="utf-8")
    url = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QA_EMBEDDING__MODEL", "hashing-64")
    monkeypatch.setenv("QA_GENERATION__BACKEND", "openai")
    monkeypatch.setenv("QA_GENERATION__URL", url)
    assert main(["ask", "Who granted the designation?"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: Cannot reach the generator server at {url}") and "Traceback" not in err


# -- the pure parts --------------------------------------------------------------------------
def test_sse_data_skips_comments_and_stops_at_done() -> None:
    lines = [": keep-alive", "", 'data: {"a": 1}', "event: x", "data:{}", "data: [DONE]", 'data: {"late": 1}']
    assert list(sse_data(lines)) == [{"a": 1}, {}]
    with pytest.raises(StreamError, match="boom"):
        list(sse_data(['data: {"error": {"message": "boom"}}']))


def test_token_steps_keep_the_best_of_each_alternative_and_bound_minus_infinity() -> None:
    entry = {
        "token": "Yes",
        "logprob": -0.2,
        "top_logprobs": [
            {"token": "No", "logprob": float("-inf")},
            {"token": "Yes", "logprob": -0.2},
            {"token": "Yes", "logprob": -0.9},
            *({"token": f"t{i}", "logprob": -3.0 - i} for i in range(6)),
        ],
    }
    (step,) = token_steps({"content": [entry]})
    assert step.logprob == -0.2 and step.top[0] == ("Yes", -0.2) and len(step.top) == 5
    assert token_steps(None) == token_steps({"content": None}) == []
    (low,) = token_steps({"content": [{"token": "x", "logprob": float("-inf")}]})
    assert low.logprob == MIN_LOGPROB
    with pytest.raises(StreamError, match="numeric logprob"):
        token_steps({"content": [{"token": "x", "logprob": None}]})


def test_a_reply_reads_usage_only_chunks_and_rejects_odd_ones() -> None:
    reply = Reply()
    assert reply.add({"choices": None, "usage": {"prompt_tokens": 3}}) == [] and reply.usage == {"prompt_tokens": 3}
    assert reply.add({"choices": [{"delta": {"content": "Hi"}, "finish_reason": "stop"}]}) == ["Hi"]
    assert reply.finished
    with pytest.raises(StreamError, match="text delta"):
        reply.add({"choices": [{"delta": {"content": 3}}]})
    with pytest.raises(StreamError, match="list of choices"):
        reply.add(["not", "a", "chunk"])


def test_server_message_reads_the_common_error_shapes() -> None:
    assert server_message('{"error": {"message": "bad key"}}') == "bad key"
    assert server_message('{"error": "overloaded"}') == "overloaded"
    assert server_message('{"detail": "Not Found"}') == "Not Found"
    assert server_message("<html>\n  Bad   Gateway</html>") == "<html> Bad Gateway</html>"
    assert server_message("") == "no message"
    assert len(server_message("x" * 5000)) == 300


# -- settings and the factory ----------------------------------------------------------------
def test_env_vars_choose_the_remote_backend() -> None:
    env = {
        "QA_GENERATION__BACKEND": "openai",
        "QA_GENERATION__URL": "http://gpu-box:8080/v1/chat/completions",
        "QA_GENERATION__REMOTE_MODEL": "qwen",
        "QA_GENERATION__READ_TIMEOUT": "30",
    }
    generation = load_settings(environ=env).generation
    assert (generation.backend, generation.url, generation.remote_model) == ("openai", "http://gpu-box:8080/v1", "qwen")
    assert generation.read_timeout == 30.0 and generation.api_key_env == "QA_GENERATION_API_KEY"


def test_the_default_key_variable_is_not_read_as_a_setting(fake: FakeOpenAIServer) -> None:
    env = {"QA_GENERATION__BACKEND": "openai", "QA_GENERATION__URL": fake.url, "QA_GENERATION_API_KEY": "k"}
    generation = load_settings(environ=env).generation
    assert generation.api_key_env == "QA_GENERATION_API_KEY"
    with pytest.raises(SettingsError, match="a QA_\\* variable is read as a setting"):
        load_settings(environ={**env, "QA_GENERATION__API_KEY_ENV": "QA_TEAM_KEY"})


def test_the_remote_backend_without_a_url_names_the_variable_to_set() -> None:
    with pytest.raises(SettingsError, match="QA_GENERATION__URL"):
        load_settings(environ={"QA_GENERATION__BACKEND": "openai"})
    with pytest.raises(SettingsError, match=r"generation\.url: Value error, must start with http"):
        load_settings(environ={"QA_GENERATION__BACKEND": "openai", "QA_GENERATION__URL": "gpu-box:8080"})
    with pytest.raises(SettingsError, match="QA_GENERATION__URL"):
        OpenAIGenerator(GenerationSettings(backend="openai"))


def test_backend_and_url_may_come_from_different_layers(tmp_path: Path) -> None:
    config = tmp_path / "qa.toml"
    config.write_text('[generation]\nbackend = "openai"\n', encoding="utf-8")
    settings = load_settings(config_file=config, environ={"QA_GENERATION__URL": "http://127.0.0.1:8080/v1"})
    assert settings.generation.backend == "openai"


def test_the_factory_never_isolates_a_remote_generator(tmp_path: Path) -> None:
    settings = _settings("http://127.0.0.1:8080/v1", isolate=True)
    assert isinstance(create_generator(settings, tmp_path), OpenAIGenerator)
    assert isinstance(create_generator(settings, tmp_path, isolate=True), OpenAIGenerator)


# -- integration: llama.cpp's own OpenAI-compatible server -------------------------------------
@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` over the fast preset's 0.5B model on a free port; its API root."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server] (pip install -e '.[dev]')")
    from qa.models import resolve_model

    settings = load_settings(preset="fast")
    model = resolve_model(settings.generation.model, settings.paths.cache, show_progress=False)
    port = free_port()
    log = (tmp_path_factory.mktemp("llama-server") / "server.log").open("w")
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--n_ctx", "2048", "--model_alias", "qwen2.5-0.5b"]
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_for(url, process, deadline=time.monotonic() + 180)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _wait_for(url: str, process: subprocess.Popen[bytes], *, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode} before answering")
        try:
            if httpx.get(f"{url}/models", timeout=2).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"llama_cpp.server did not answer {url}/models in time")


@pytest.mark.integration
def test_llama_cpp_server_streams_greedy_text_with_probabilities(llama_server: str) -> None:
    generator = OpenAIGenerator(_settings(llama_server))
    passages = [("", "Mesutoclax received Breakthrough Therapy Designation from the Center for Drug Evaluation.")]
    messages = answer_messages("Which agency granted the designation?", passages)
    items = list(generator.stream(messages, max_tokens=24))
    pieces, final = items[:-1], items[-1]
    assert isinstance(final, Generation) and len(pieces) > 3 and "".join(map(str, pieces)) == final.text
    assert "Center for Drug Evaluation" in final.text
    assert generator.model_id == "qwen2.5-0.5b"
    assert len(final.token_logprobs) == final.stats.completion_tokens > 0
    assert all(lp <= 1e-6 for lp in final.token_logprobs) and len(final.first_choices) >= 2
    assert final.first_choices[0][1] == pytest.approx(final.token_logprobs[0], abs=1e-4)  # greedy: the top token
    local = create_generator(load_settings(preset="fast", environ={}).generation, load_settings(environ={}).paths.cache)
    here = generate(local, messages, max_tokens=24)  # the same model in this process: the same greedy answer
    assert here.text == final.text
    assert here.token_logprobs == pytest.approx(final.token_logprobs, abs=0.05)
    assert [t for t, _ in here.first_choices[:2]] == [t for t, _ in final.first_choices[:2]]


@pytest.mark.integration
@pytest.mark.postgres
def test_the_answer_path_runs_end_to_end_through_the_server_on_both_index_backends(
    llama_server: str, tmp_path: Path, repo_root: Path, pg_url: str, pg_schema: str
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(repo_root / "seeds" / "innocare-mesutoclax-btd.txt", seeds)
    questions = ["Which agency granted the Breakthrough Therapy Designation to mesutoclax?", "What is mesutoclax?"]
    backends = {
        "local": {"backend": "local"},
        "postgres": {"backend": "postgres", "url": pg_url, "schema_name": pg_schema},
    }
    answers = {
        name: _answers_through(llama_server, tmp_path / name, seeds, index, questions)
        for name, index in backends.items()
    }
    assert answers["postgres"] == answers["local"]  # the same passages, prompt and greedy answer on either index


def _answers_through(
    url: str, folder: Path, seeds: Path, index: dict[str, str], questions: list[str]
) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """Ask through the whole answer path with the generator at ``url``: each answer's text and citations."""
    from qa.pipeline import Assistant

    settings = load_settings(
        preset="fast",
        environ={k: v for k, v in os.environ.items() if not k.startswith(("QA_GENERATION", "QA_INDEX"))},
        paths={"index": folder / "index", "seeds": seeds},
        generation={"backend": "openai", "url": url},
        index=index,
    )
    assistant = Assistant(settings)
    try:
        assistant.warm_up()  # finds no index and builds it over the seeds
        items = list(assistant.ask_stream(questions[0]))
        answer = items[-1]
        assert len(items) > 3  # streamed in several pieces before the final Answer
        assert not answer.refused, answer  # type: ignore[union-attr]
        assert re.search(r"Center for Drug Evaluation|CDE|NMPA|National Medical Products", answer.text)  # type: ignore[union-attr]
        assert answer.citations and "[1]" in answer.text  # type: ignore[union-attr]
        for c in answer.citations:  # type: ignore[union-attr]
            assert assistant.index.get_document(c.doc_id).text[c.start : c.end] == c.quote
        assert assistant.ask("What is the capital of France?").refused
        answers = [answer, *(assistant.ask(q) for q in questions[1:])]
        return [(a.text, [(c.doc_id, c.start, c.end) for c in a.citations]) for a in answers]  # type: ignore[union-attr]
    finally:
        assistant.close()
