"""The ``qa`` command: index, ask, eval, serve, bench, doctor."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.offline import enforce_offline

if TYPE_CHECKING:
    from qa.settings import Settings


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    from qa.settings import load_settings

    paths: dict[str, Any] = {}
    if getattr(args, "index_dir", None):
        paths["index"] = Path(args.index_dir)
    return load_settings(
        preset=getattr(args, "preset", None),
        config_file=Path(args.config) if getattr(args, "config", None) else None,
        paths=paths or None,
        **overrides,
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", help="settings preset: accurate (default, 1.5B model) or fast (0.5B)")
    parser.add_argument("--config", metavar="FILE", help="a TOML config file (default: ./qa.toml if present)")
    parser.add_argument("--index-dir", metavar="DIR", help="the index folder (default: index/)")


# -- index ---------------------------------------------------------------------------
def cmd_index(args: argparse.Namespace) -> int:
    from qa.embedding import create_embedder
    from qa.index import build_index, index_location

    settings = _settings(args)
    paths = [Path(p) for p in args.paths] or [settings.paths.seeds]
    embedder = create_embedder(settings.embedding.model, settings.embedding.batch_size)
    report = build_index(paths, settings, embedder, rebuild=args.rebuild, progress=not args.quiet)
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"Index {index_location(settings)}: {report.summary()}")
    if report.chunks_total == 0:
        print("The index is empty: add .txt, .md, .html or .pdf files and run `qa index` again.", file=sys.stderr)
        return 1
    return 0


# -- ask -----------------------------------------------------------------------------
def print_answer(answer: object, *, as_json: bool) -> None:
    from qa.types import Answer

    assert isinstance(answer, Answer)
    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2, default=str))
        return
    if answer.short is not None:
        print(f"{answer.short.text}  [{answer.short.n}]")
    print(answer.text)
    for note in answer.notes:
        print(f"  note: {note}")
    if answer.refused and answer.refusal_reason:
        print(f"  ({answer.refusal_reason})")
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            quote = " ".join(c.quote.split())
            print(f"  [{c.n}] {c.title} ({c.doc_id}, chars {c.start}-{c.end}): “{quote}”")
    sure = "sure the documents don't answer this" if answer.refused else "confidence"
    print(f"\n{sure} {answer.confidence:.2f} · {answer.timings.get('total', 0.0):.1f} s")


def cmd_ask(args: argparse.Namespace) -> int:
    from qa.pipeline import Assistant, QuestionError
    from qa.query import clean_question

    settings = _settings(args, retrieval={"top_k": args.top_k} if args.top_k else None)
    assistant = Assistant(settings)
    if args.question:
        question = " ".join(args.question)
        try:
            clean_question(question, settings.generation.max_question_chars)  # before 2.4 GB of models load
            assistant.warm_up(prime=False)  # loads both models at once
            print_answer(assistant.ask(question), as_json=args.json)
        except QuestionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    history: list[tuple[str, str]] = []
    print("Ask about your documents (empty line or Ctrl-D to quit).")
    while True:
        try:
            question = input("? ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not question:
            return 0
        try:
            answer = assistant.ask(question, history=history)
        except QuestionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            continue
        print_answer(answer, as_json=args.json)
        history.append((question, answer.text))


# -- serve / eval / bench --------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    from qa.access import AccessError
    from qa.ui import serve

    try:
        serve(_settings(args), host=args.host, port=args.port, share=args.share, no_auth=args.no_auth)
    except AccessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from qa.evaluation.cli import run

    return run(args)


def cmd_doctor(args: argparse.Namespace) -> int:
    from qa.doctor import run

    return run(_settings(args), measure=not args.no_measure, as_json=args.json)


def cmd_bench(args: argparse.Namespace) -> int:
    from qa.bench import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qa",
        description="Answer questions from your documents, offline, with every answer proved by cited passages.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("index", help="build or update the index over documents (default: seeds/)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to index (default: seeds/)")
    p.add_argument("--rebuild", action="store_true", help="rebuild from scratch instead of updating")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _common(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("ask", help="ask a question (no question: interactive prompt)")
    p.add_argument("question", nargs="*", help="the question")
    p.add_argument("--json", action="store_true", help="print the Answer as JSON")
    p.add_argument("--top-k", type=int, help="passages given to the model")
    _common(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="run an eval set and write a report under eval/reports/")
    from qa.evaluation.cli import add_arguments

    add_arguments(p)
    if not any(a.dest == "preset" for a in p._actions):
        p.add_argument("--preset", help="settings preset")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("serve", help="open the chat UI in the browser (127.0.0.1:7860)")
    p.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--share", action="store_true", help="also create a public share link (off by default)")
    p.add_argument(
        "--no-auth",
        action="store_true",
        help="allow anonymous access on a non-loopback host or share link (documents become read-only); "
        "otherwise such a server needs users: ui.users_file or QA_UI__USERS",
    )
    _common(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "doctor", help="check this machine: CPU, llama.cpp build (no AMX), models, index, generator speed"
    )
    p.add_argument("--no-measure", action="store_true", help="skip the generator run (tokens/s)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    _common(p)
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("bench", help="measure build speed, latency and memory; writes bench/RESULTS.md")
    from qa.bench import add_arguments as bench_arguments

    bench_arguments(p)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    enforce_offline()
    parser = build_parser()
    args = parser.parse_args(argv)
    from qa.index import QAIndexError
    from qa.models import ModelError
    from qa.native import GeneratorCrashed
    from qa.settings import SettingsError

    try:
        return int(args.func(args) or 0)
    except (SettingsError, QAIndexError, ModelError, GeneratorCrashed, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
