"""``qa eval``: run an eval set through the assistant and write a report, or compare two reports.

    qa eval [--dataset FILE] [--corpus PATH ...] [--scope corpus|item] [--limit N]
            [--preset NAME] [--out DIR] [--compare A B] [--no-progress]

Defaults: ``eval/seed_qa.jsonl`` over ``seeds/``; a dataset whose name starts with
``topic`` uses ``eval/corpora/topic/``; a dataset of reading-comprehension items (with a
``context``) is answered per item over its own context unless ``--scope corpus``, which
indexes all distinct contexts together.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from qa.evaluation.report import compare_reports, headline, load_report
from qa.evaluation.runner import (
    DEFAULT_DATASET,
    DEFAULT_REPORTS,
    SEED_CORPUS,
    TOPIC_CORPUS,
    CorpusAssistantFactory,
    DatasetError,
    ItemAssistantFactory,
    corpus_name,
    external_corpus_dir,
    is_external,
    load_dataset,
    run_evaluation,
    write_contexts,
)

INDEX_ROOT = Path("index")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        type=Path,
        default=DEFAULT_DATASET,
        metavar="FILE",
        help=f"JSONL eval set (default: {DEFAULT_DATASET}).",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        nargs="+",
        default=None,
        metavar="PATH",
        help="Documents to answer from (default: seeds/, or eval/corpora/topic/ for topic_* "
        "sets; external sets use their own contexts).",
    )
    parser.add_argument(
        "--scope",
        choices=("corpus", "item"),
        default=None,
        help="corpus: one index over the corpus; item: each item answered over its own "
        "context (default for sets with a 'context' field).",
    )
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="Only the first N items.")
    parser.add_argument("--preset", default=None, metavar="NAME", help="Settings preset (e.g. fast, accurate).")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_REPORTS,
        metavar="DIR",
        help=f"Folder the report folder is created in (default: {DEFAULT_REPORTS}).",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        nargs=2,
        default=None,
        metavar=("A", "B"),
        help="Print headline metrics of two reports (folders or report.json) side by side "
        "with deltas; runs nothing, writes nothing.",
    )
    parser.add_argument(
        "--fit-confidence",
        type=Path,
        nargs="+",
        default=None,
        metavar="REPORT",
        help="Fit the confidence model and the min_answer threshold on these reports' predictions "
        "(the tuning split); prints [confidence] settings as TOML; runs nothing, writes nothing.",
    )
    parser.add_argument(
        "--holdout",
        type=Path,
        nargs="+",
        default=(),
        metavar="REPORT",
        help="With --fit-confidence: reports the fit is checked on (not fitted on), with an ablation per signal group.",
    )
    parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
    parser.add_argument(
        "--retrieval-only",
        action="store_true",
        help="Score retrieval alone (no generator): recall@k and MRR of the evidence; prints, writes no report.",
    )


def default_corpus(dataset: Path) -> Path:
    return TOPIC_CORPUS if dataset.name.startswith("topic") else SEED_CORPUS


def _compare(a: Path, b: Path) -> int:
    try:
        left, right = load_report(a), load_report(b)
    except (OSError, ValueError) as exc:
        print(f"qa eval --compare: {exc}", file=sys.stderr)
        return 2
    print(compare_reports(left, right))
    return 0


def _fail(message: str, code: int = 2) -> int:
    print(f"qa eval: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    if args.compare:
        return _compare(*args.compare)
    if args.fit_confidence:
        from qa.evaluation.fit import run_fit

        try:
            return run_fit(args.fit_confidence, args.holdout)
        except (OSError, ValueError) as exc:
            return _fail(f"--fit-confidence: {exc}")
    if args.limit is not None and args.limit < 1:
        return _fail("--limit must be at least 1.")
    try:
        items = load_dataset(args.dataset, args.limit)
    except DatasetError as exc:
        return _fail(str(exc))
    external = is_external(items)
    scope = args.scope or ("item" if external else "corpus")
    if scope == "item" and not external:
        return _fail("--scope item needs items with a 'context' field (an external reading-comprehension set).")
    progress = not args.no_progress
    run_info: dict[str, Any] = {"scope": scope, "limit": args.limit, "external": external}
    if args.retrieval_only:
        return _retrieval_only(args, items)

    factory: CorpusAssistantFactory | ItemAssistantFactory
    try:
        if scope == "item":
            factory = ItemAssistantFactory(preset=args.preset)
            run_info["corpus"] = ["(each item's own context)"]
        else:
            if args.corpus:
                corpus = list(args.corpus)
                index_dir = INDEX_ROOT / f"eval-{corpus_name(corpus)}"
            elif external:
                corpus = [external_corpus_dir(args.dataset, INDEX_ROOT)]
                write_contexts(load_dataset(args.dataset), corpus[0])
                index_dir = INDEX_ROOT / f"eval-{corpus_name([args.dataset.with_suffix('')])}"
            else:
                corpus = [default_corpus(args.dataset)]
                index_dir = INDEX_ROOT / f"eval-{corpus_name(corpus)}"
            run_info["corpus"] = [str(p) for p in corpus]
            factory = CorpusAssistantFactory(corpus, preset=args.preset, index_dir=index_dir, progress=progress)
            print(f"Indexing {', '.join(run_info['corpus'])} into {index_dir} ...", file=sys.stderr)
            factory.prepare()
            if factory.build_summary:
                print(f"Index: {factory.build_summary}", file=sys.stderr)
        run_info["preset"] = factory.settings.preset
    except KeyboardInterrupt:
        return _fail("interrupted before the first question; no report written.", 130)
    except Exception as exc:  # setup failures end the command with a clear message
        return _fail(f"cannot set up the assistant: {type(exc).__name__}: {exc}", 1)

    result = run_evaluation(
        items, factory, dataset=args.dataset, out_root=args.out, run_info=run_info, progress=progress
    )
    print(headline(result.report))
    print(f"Report: {result.report_dir}")
    return 130 if result.partial else 0


def _retrieval_only(args: argparse.Namespace, items: list[Any]) -> int:
    from qa.evaluation.retrieval import score_retrieval
    from qa.evaluation.runner import _settings

    if is_external(items) or not any(item.evidence for item in items):
        return _fail("--retrieval-only needs a corpus set whose items list their evidence.")
    corpus = list(args.corpus) if args.corpus else [default_corpus(args.dataset)]
    settings = _settings(args.preset, INDEX_ROOT / f"eval-{corpus_name(corpus)}")
    print(score_retrieval(items, corpus, settings).render())
    return 0


run_cli = run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qa eval", description="Run an eval set or compare two reports.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
