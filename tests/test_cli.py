"""The ``qa`` command surface: help everywhere, clear errors, exit codes (fast: hashing embedder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa.cli import build_parser, main

SUBCOMMANDS = ("index", "ask", "eval", "serve", "bench")


def _run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "QA_EMBEDDING__MODEL": "hashing-64", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "qa.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        input=stdin,
    )


def _seeds(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    """A ``seeds/`` folder in ``tmp_path`` holding ``files``."""
    docs = tmp_path / "seeds"
    docs.mkdir()
    for name, content in files.items():
        if isinstance(content, bytes):
            (docs / name).write_bytes(content)
        else:
            (docs / name).write_text(content, encoding="utf-8")
    return docs


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SUBCOMMANDS)


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert "usage: qa " + name in capsys.readouterr().out


def test_parser_defaults() -> None:
    args = build_parser().parse_args(["serve"])
    assert args.host is None and args.port is None and args.share is False


def test_index_then_report_no_change(tmp_path: Path) -> None:
    _seeds(tmp_path, {"a.txt": "Alpha is a drug. It treats lymphoma in adults.\n"})
    first = _run("index", "--quiet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "1 added" in first.stdout
    second = _run("index", "--quiet", cwd=tmp_path)
    assert "0 added, 0 changed, 0 removed, 1 unchanged" in second.stdout


def test_empty_seeds_folder_says_what_to_do(tmp_path: Path) -> None:
    _seeds(tmp_path, {})
    result = _run("index", "--quiet", cwd=tmp_path)
    assert result.returncode == 1
    assert "add .txt, .md, .html or .pdf files" in result.stderr


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    result = _run("index", "--quiet", "no-such-folder", cwd=tmp_path)
    assert result.returncode == 2
    assert "no-such-folder" in result.stderr and "Traceback" not in result.stderr


def test_unsupported_and_binary_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "good.md": "# Title\n\nBeta is studied in AML.\n",
        "image.png": b"\x89PNG\r\n",
        "fake.txt": bytes(range(256)) * 4,
        "empty.txt": "",
    }
    _seeds(tmp_path, files)
    result = _run("index", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 added" in result.stdout
    assert result.stderr.count("skipped") >= 2


def test_bad_setting_value_is_reported(tmp_path: Path) -> None:
    result = _run("index", "--quiet", cwd=tmp_path, env={"QA_RETRIEVAL__TOP_K": "lots"})
    assert result.returncode == 2
    assert "retrieval.top_k" in result.stderr


def test_empty_question_is_refused_politely(tmp_path: Path) -> None:
    result = _run("ask", "   ", cwd=tmp_path)
    assert result.returncode == 2
    assert "empty" in result.stderr and "Traceback" not in result.stderr


NO_MODEL = {"QA_GENERATION__MODEL": "no-such-model"}  # loading a model would fail with another error


def test_a_control_character_question_is_refused_before_any_model_loads(tmp_path: Path) -> None:
    result = _run("ask", "\x01\x02", cwd=tmp_path, env=NO_MODEL)
    assert result.returncode == 2
    assert "empty" in result.stderr and "no-such-model" not in result.stderr and "Traceback" not in result.stderr


def test_interactive_ask_reports_a_bad_question_and_goes_on(tmp_path: Path) -> None:
    result = _run("ask", cwd=tmp_path, env=NO_MODEL, stdin="\x01\x02\n")
    assert result.returncode == 0
    assert "error: The question is empty" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.integration
def test_quiet_index_with_the_real_embedder_prints_no_library_progress_bar(tmp_path: Path) -> None:
    _seeds(tmp_path, {"a.txt": "Gamma is a drug for CLL. It was approved in 2024.\n"})
    result = _run("index", "--quiet", cwd=tmp_path, env={"QA_EMBEDDING__MODEL": "all-MiniLM-L6-v2"})
    assert result.returncode == 0, result.stderr
    assert "Loading weights" not in result.stderr and "it/s" not in result.stderr


def test_serve_on_an_exposed_host_without_users_is_refused_at_once(tmp_path: Path) -> None:
    result = _run("serve", "--host", "0.0.0.0", cwd=tmp_path, env=NO_MODEL)
    assert result.returncode == 2
    assert "without login" in result.stderr and "--no-auth" in result.stderr and "Traceback" not in result.stderr


def test_corrupt_index_names_the_fix(tmp_path: Path) -> None:
    _seeds(tmp_path, {"a.txt": "Gamma is a drug for CLL.\n"})
    assert _run("index", "--quiet", cwd=tmp_path).returncode == 0
    for path in (tmp_path / "index").rglob("faiss.index"):
        path.write_bytes(b"garbage")
    result = _run("ask", "What is gamma?", cwd=tmp_path)
    assert result.returncode == 2
    assert "qa index --rebuild" in result.stderr
    rebuilt = _run("index", "--quiet", "--rebuild", cwd=tmp_path)
    assert rebuilt.returncode == 0 and "1 added" in rebuilt.stdout


def test_ask_prints_the_short_phrase_first_then_the_answer_and_its_sources(capsys: pytest.CaptureFixture[str]) -> None:
    from qa.cli import print_answer
    from qa.types import Answer, Citation, Span

    quote = "Gamma was approved in 2021 for CLL."
    citation = Citation(1, "a.txt", "A", "a.txt#0", 10, 10 + len(quote), quote, 1.0)
    answer = Answer(
        "When was gamma approved?", "It was approved in 2021 [1].", [citation], short=Span("2021", "a.txt", 31, 35, 1)
    )
    print_answer(answer, as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["2021  [1]", "It was approved in 2021 [1]."]
    assert f"  [1] A (a.txt, chars 10-45): “{quote}”" in lines
    assert lines[-1].startswith("confidence ")
    print_answer(answer, as_json=True)
    assert '"short": {\n    "text": "2021"' in capsys.readouterr().out
    refusal = Answer("Who is the CEO?", "The documents don't say.", [], refused=True, confidence=0.9)
    print_answer(refusal, as_json=False)
    assert capsys.readouterr().out.splitlines()[-1].startswith("sure the documents don't answer this 0.90")
