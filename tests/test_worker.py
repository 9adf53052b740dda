"""The generator worker process: streaming across the boundary, crashes contained, restarts."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.generation import Generation, generate
from qa.models import ModelError
from qa.native import GeneratorCrashed
from qa.prompts import answer_messages
from qa.settings import GenerationSettings
from qa.worker import WorkerGenerator

PASSAGES = [("", "The CDE granted the designation in 2024. It was the second one.")]


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerGenerator]:
    generator = WorkerGenerator(GenerationSettings(model="fake"), tmp_path, factory="fakes:make_generator")
    yield generator
    generator.close()


def _ask(worker: WorkerGenerator, question: str) -> str:
    return generate(worker, answer_messages(question, PASSAGES), max_tokens=40).text


def test_worker_streams_from_a_child_process_with_stats(worker: WorkerGenerator) -> None:
    *pieces, final = worker.stream(answer_messages("Who granted it?", PASSAGES), max_tokens=40)
    assert "".join(str(p) for p in pieces) == "The CDE granted the designation in 2024. [1]"
    assert len(pieces) == 8
    assert isinstance(final, Generation)
    assert final.text == "The CDE granted the designation in 2024. [1]" and final.stats.completion_tokens == 8
    assert worker.pid is not None and worker.pid != os.getpid()
    assert worker.model_id == f"fake:fake:{worker.pid}"


def _kill_when_streaming(worker: WorkerGenerator, sig: signal.Signals) -> None:
    stream = worker.stream(answer_messages("HANG who granted it?", PASSAGES), max_tokens=40)
    assert next(stream) == "The"  # the child is now mid-answer
    pid = worker.pid
    assert pid is not None
    os.kill(pid, sig)
    with pytest.raises(GeneratorCrashed, match=f"stopped unexpectedly \\(signal {sig.name}\\) while answering"):
        list(stream)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_a_worker_killed_mid_question_is_replaced_for_the_next(worker: WorkerGenerator, sig: signal.Signals) -> None:
    worker.warm_up()
    first_pid = worker.pid
    _kill_when_streaming(worker, sig)
    assert worker.restarts == 1 and worker.pid is None
    assert _ask(worker, "Who granted it?") == "The CDE granted the designation in 2024. [1]"
    assert worker.pid not in (None, first_pid)


def test_a_native_crash_inside_the_model_is_an_error_not_a_dead_process(worker: WorkerGenerator) -> None:
    with pytest.raises(GeneratorCrashed, match=r"signal SIGSEGV.*ask again.*qa doctor"):
        _ask(worker, "SEGV who granted it?")
    assert _ask(worker, "Who granted it?") == "The CDE granted the designation in 2024. [1]"
    assert worker.restarts == 1


def test_an_abandoned_stream_does_not_leak_into_the_next_answer(worker: WorkerGenerator) -> None:
    other = [("", "Venetoclax is marketed by AbbVie. It is a BCL-2 inhibitor.")]
    stream = worker.stream(answer_messages("Who markets it?", other), max_tokens=40)
    assert next(stream) == "Venetoclax"
    stream.close()  # the caller stops reading after one word
    assert _ask(worker, "Who granted it?") == "The CDE granted the designation in 2024. [1]"
    assert worker.restarts == 0


def test_a_stream_resumed_on_other_threads_releases_the_worker(worker: WorkerGenerator) -> None:
    """A server resumes a streaming generator on whichever pool thread is free (Gradio does): the
    lock taken by the first step must be released by the last, or the next question and close() hang."""
    stream = worker.stream(answer_messages("HANG who granted it?", PASSAGES), max_tokens=40)
    pieces: list[str | Generation] = []
    errors: list[BaseException] = []

    def drain() -> None:
        try:
            list(stream)
        except (GeneratorCrashed, RuntimeError) as exc:
            errors.append(exc)

    stepped, done = threading.Event(), threading.Event()

    def first_step() -> None:  # a pool thread that stays alive, as a server's do
        pieces.append(next(stream))
        stepped.set()
        done.wait(60)

    first = threading.Thread(target=first_step)
    first.start()
    assert stepped.wait(60) and pieces == ["The"]  # the child is mid-answer
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    rest = threading.Thread(target=drain)
    rest.start()
    rest.join(timeout=60)
    done.set()
    first.join(timeout=60)
    assert [type(e) for e in errors] == [GeneratorCrashed]
    assert _ask(worker, "Who granted it?") == "The CDE granted the designation in 2024. [1]"
    closing = threading.Thread(target=worker.close)
    closing.start()
    closing.join(timeout=30)
    assert not closing.is_alive()


def test_a_load_failure_in_the_child_is_raised_as_its_own_type(tmp_path: Path) -> None:
    broken = WorkerGenerator(GenerationSettings(model="missing"), tmp_path, factory="fakes:make_generator")
    with pytest.raises(ModelError, match="Unknown model 'missing'"):
        broken.warm_up()
    assert broken.pid is None


def test_concurrent_callers_are_served_one_at_a_time(worker: WorkerGenerator) -> None:
    answers: list[str] = []

    def one() -> None:
        answers.append(_ask(worker, "Who granted it?"))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == ["The CDE granted the designation in 2024. [1]"] * 4


def test_close_stops_the_child(worker: WorkerGenerator) -> None:
    worker.warm_up()
    pid = worker.pid
    assert pid is not None
    worker.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the worker process outlived close()")
