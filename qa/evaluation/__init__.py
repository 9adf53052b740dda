"""Evaluation: metrics, the eval runner and its reports (``qa eval``).

Importing this package loads no model; the real assistant is only imported when a run starts.
"""

from __future__ import annotations

from qa.evaluation.metrics import EvalItem, Evidence, ItemScore, score_item, summarize
from qa.evaluation.report import ItemRecord, compare_reports, load_report
from qa.evaluation.runner import RunResult, load_dataset, run_evaluation

__all__ = [
    "EvalItem",
    "Evidence",
    "ItemRecord",
    "ItemScore",
    "RunResult",
    "compare_reports",
    "load_dataset",
    "load_report",
    "run_evaluation",
    "score_item",
    "summarize",
]
