"""Eval reports: ``report.json``, ``predictions.jsonl``, ``report.md``, ``report.html`` and PNG plots.

The Markdown and HTML versions are rendered from one list of typed blocks, so they
always show the same tables. The HTML embeds its plots as data URIs and escapes every
piece of text, so it is a single self-contained file.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, assert_never

from qa.evaluation.metrics import (
    EvalItem,
    ItemScore,
    external_metrics,
    summarize,
    summarize_by_kind,
)
from qa.measure import markdown_table, peak_rss_mb
from qa.types import Answer

PLOT_FILES = ("accuracy_by_kind.png", "latency_hist.png", "reliability.png")
N_WORST = 10

REFERENCES: tuple[dict[str, Any], ...] = (
    {
        "set": "squad2",
        "metric": "has_ans_f1",
        "label": "SQuAD 2.0 dev HasAns F1",
        "system": "deepset/tinyroberta-squad2",
        "value": 82.66,
    },
    {
        "set": "squad2",
        "metric": "no_ans_accuracy",
        "label": "SQuAD 2.0 dev NoAns accuracy",
        "system": "deepset/tinyroberta-squad2",
        "value": 81.18,
    },
    {
        "set": "squad2",
        "metric": "has_ans_f1",
        "label": "SQuAD 2.0 dev HasAns F1",
        "system": "deepset/roberta-base-squad2",
        "value": 84.03,
    },
    {
        "set": "squad2",
        "metric": "no_ans_accuracy",
        "label": "SQuAD 2.0 dev NoAns accuracy",
        "system": "deepset/roberta-base-squad2",
        "value": 81.80,
    },
    {
        "set": "pubmedqa",
        "metric": "accuracy",
        "label": "PubMedQA test accuracy (reasoning-required)",
        "system": "BioBERT",
        "value": 68.1,
    },
    {
        "set": "pubmedqa",
        "metric": "accuracy",
        "label": "PubMedQA test accuracy (reasoning-required)",
        "system": "single human annotator",
        "value": 78.0,
    },
    {
        "set": "pubmedqa",
        "metric": "accuracy",
        "label": "PubMedQA test accuracy (reasoning-required)",
        "system": 'always "yes"',
        "value": 55.2,
    },
    {
        "set": "covid_qa",
        "metric": "em",
        "label": "COVID-QA EM",
        "system": "roberta-base-squad2 fine-tuned on COVID-QA (5-fold CV)",
        "value": 17.9,
    },
    {
        "set": "covid_qa",
        "metric": "f1",
        "label": "COVID-QA F1",
        "system": "roberta-base-squad2 fine-tuned on COVID-QA (5-fold CV)",
        "value": 49.9,
    },
)
REFERENCE_NOTE = (
    "Published numbers are for the full official sets, with the gold context handed to a reader "
    "model; ours are for a 100-item development sample (external_dev.jsonl) answered by the whole "
    "assistant (retrieval, generation, refusal). Compare orders of magnitude, not decimals."
)

# (key, label, format) of the headline metrics shown in reports and in --compare.
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("n", "items", "int"),
    ("n_errors", "errors", "int"),
    ("accuracy", "accuracy (all items)", "pct"),
    ("answer_accuracy", "answer accuracy (answerable)", "pct"),
    ("refusal_accuracy", "refusal accuracy (unanswerable, false premise)", "pct"),
    ("false_refusal_rate", "false refusal rate (answerable)", "pct"),
    ("em", "EM (SQuAD 2.0 rules)", "pct"),
    ("f1", "F1 (SQuAD 2.0 rules)", "pct"),
    ("yes_no_maybe_accuracy", "yes/no/maybe accuracy", "pct"),
    ("recall@1", "retrieval recall@1", "pct"),
    ("recall@3", "retrieval recall@3", "pct"),
    ("recall@all", "retrieval recall@all retrieved", "pct"),
    ("evidence_recall_all@all", "all evidence retrieved", "pct"),
    ("mrr", "MRR", "num"),
    ("citation_precision", "citation precision", "pct"),
    ("citation_coverage", "citation coverage (sentences)", "pct"),
    ("cited_answer_rate", "answers with citations", "pct"),
    ("ece", "ECE (10 bins)", "num"),
    ("latency_p50_s", "latency p50", "s"),
    ("latency_p95_s", "latency p95", "s"),
    ("median_uncached_prompt_tokens", "median uncached prompt tokens", "num"),
)
EXTERNAL_HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("squad2.has_ans_f1", "SQuAD 2.0 HasAns F1", "pct"),
    ("squad2.has_ans_em", "SQuAD 2.0 HasAns EM", "pct"),
    ("squad2.no_ans_accuracy", "SQuAD 2.0 NoAns accuracy", "pct"),
    ("pubmedqa.accuracy", "PubMedQA accuracy", "pct"),
    ("covid_qa.em", "COVID-QA EM", "pct"),
    ("covid_qa.f1", "COVID-QA F1", "pct"),
)


@dataclass
class ItemRecord:
    """One answered (or failed) item: what was asked, what came back, how it scored."""

    item: EvalItem
    answer: Answer | None
    score: ItemScore
    error: str | None = None
    latency_s: float | None = None


# --------------------------------------------------------------------------- JSON records


def prediction_row(record: ItemRecord) -> dict[str, Any]:
    """One ``predictions.jsonl`` line."""
    answer = record.answer
    return {
        "id": record.item.id,
        "kind": record.item.kind,
        "answerable": record.item.answerable,
        "answer": answer.text if answer else "",
        "short": answer.short.text if answer and answer.short else None,
        "refused": bool(answer.refused) if answer else False,
        "citations": [
            {"doc": c.doc_id, "text": c.quote, "start": c.start, "end": c.end}
            for c in (answer.citations if answer else [])
        ],
        "latency_s": record.latency_s,
        "confidence": answer.confidence if answer else None,
        "correct": record.score.correct,
        "error": record.error,
        "refusal": str(answer.refusal) if answer and answer.refusal else None,
        "signals": dict(answer.signals) if answer else {},
    }


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def worst_items(records: Sequence[ItemRecord], n: int = N_WORST) -> list[dict[str, Any]]:
    """Wrong items, worst first: errors, then confidently wrong, then lowest F1."""
    wrong = [r for r in records if not r.score.correct]
    wrong.sort(key=lambda r: (r.error is None, -r.score.confidence, r.score.f1 or 0.0))
    out: list[dict[str, Any]] = []
    for r in wrong[:n]:
        answer = r.answer
        top = answer.passages[0] if answer and answer.passages else None
        if r.error:
            prediction = f"ERROR: {r.error}"
        elif answer and answer.refused:
            prediction = f"[refused] {answer.refusal_reason or answer.text}"
        else:
            prediction = answer.text if answer else ""
        out.append(
            {
                "id": r.item.id,
                "kind": r.item.kind,
                "question": r.item.question,
                "gold": list(r.item.answers) if r.item.answers else ["(unanswerable: should refuse)"],
                "prediction": _shorten(prediction, 600),
                "confidence": r.score.confidence,
                "f1": r.score.f1,
                "top_passage": (
                    {"doc": top.chunk.doc_id, "text": _shorten(top.text, 500)} if top is not None else None
                ),
            }
        )
    return out


def build_report(
    records: Sequence[ItemRecord],
    *,
    dataset: Path,
    n_items: int,
    started: str,
    finished: str,
    partial: bool,
    run_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``report.json`` content."""
    scores = [r.score for r in records]
    external = external_metrics(scores)
    kinds: dict[str, int] = {}
    for s in scores:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
    report: dict[str, Any] = {
        "schema": 1,
        "dataset": str(dataset),
        "dataset_stem": dataset.stem,
        "partial": partial,
        "started": started,
        "finished": finished,
        "counts": {
            "items_in_dataset": n_items,
            "items_done": len(records),
            "errors": sum(1 for r in records if r.error is not None),
            "answerable": sum(1 for s in scores if s.answerable),
            "unanswerable": sum(1 for s in scores if not s.answerable),
            "by_kind": dict(sorted(kinds.items())),
        },
        "metrics": summarize(scores),
        "by_kind": summarize_by_kind(scores),
        "external": external,
        "references": [r for r in REFERENCES if r["set"] in external],
        "reference_note": REFERENCE_NOTE if external else None,
        "peak_memory_mb": peak_rss_mb(),
        "worst": worst_items(records),
    }
    for key, value in (run_info or {}).items():
        report.setdefault(key, value)
    return report


# --------------------------------------------------------------------------- formatting


def fmt(value: Any, kind: str = "num") -> str:
    if value is None:
        return "–"
    if kind == "int":
        return str(int(value))
    if kind == "pct":
        return f"{100 * float(value):.1f}%"
    if kind == "s":
        return f"{float(value):.2f} s"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def lookup(report: dict[str, Any], key: str) -> Any:
    """A headline value: plain keys from ``metrics``, dotted keys from ``external``."""
    if "." in key:
        family, name = key.split(".", 1)
        return report.get("external", {}).get(family, {}).get(name)
    return report.get("metrics", {}).get(key)


# --------------------------------------------------------------------------- blocks
# What a human report shows, independent of Markdown or HTML.


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Alert:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    name: str


@dataclass(frozen=True)
class Code:
    text: str


Block: TypeAlias = Heading | Paragraph | Alert | Bullets | Table | Image | Code


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    return Table(tuple(headers), tuple(tuple(r) for r in rows))


def _by_kind_table(report: dict[str, Any]) -> Table:
    cols = (
        ("n", "int"),
        ("accuracy", "pct"),
        ("answer_accuracy", "pct"),
        ("refusal_accuracy", "pct"),
        ("f1", "pct"),
        ("recall@3", "pct"),
        ("citation_precision", "pct"),
        ("citation_coverage", "pct"),
        ("ece", "num"),
        ("latency_p50_s", "s"),
    )
    rows = [[kind] + [fmt(m.get(k), f) for k, f in cols] for kind, m in report.get("by_kind", {}).items()]
    return _table(["kind"] + [k for k, _ in cols], rows)


def _family_n(metrics: dict[str, Any], name: str) -> Any:
    """How many items a family metric is computed over (HasAns / NoAns subsets for SQuAD)."""
    if name.startswith("has_ans") or (name == "answer_accuracy" and "n_has_ans" in metrics):
        return metrics.get("n_has_ans", metrics.get("n"))
    if name.startswith("no_ans"):
        return metrics.get("n_no_ans", metrics.get("n"))
    return metrics.get("n")


def _external_blocks(report: dict[str, Any]) -> list[Block]:
    external = report.get("external") or {}
    if not external:
        return []
    rows: list[list[str]] = []
    for family, metrics in external.items():
        for name, value in metrics.items():
            if name.startswith("n") or isinstance(value, dict):
                continue
            refs = [r for r in report.get("references", []) if r["set"] == family and r["metric"] == name]
            ref_text = "; ".join(f"{r['system']}: {r['value']:.1f}%" for r in refs) or "–"
            rows.append([family, name, fmt(value, "pct"), ref_text, str(_family_n(metrics, name))])
    blocks: list[Block] = [
        Heading(2, "External sets beside published references"),
        _table(["set", "metric", "ours", "published (full official set)", "our n"], rows),
        Paragraph(report.get("reference_note") or REFERENCE_NOTE),
    ]
    confusion = external.get("pubmedqa", {}).get("confusion")
    if confusion:
        labels = ["yes", "no", "maybe", "error"]
        crow = [[gold] + [str(confusion[gold].get(p, 0)) for p in labels] for gold in sorted(confusion)]
        blocks += [
            Heading(3, "PubMedQA confusion (rows gold, columns predicted)"),
            _table(["gold"] + labels, crow),
        ]
    return blocks


def _mb(value: Any) -> str:
    return "–" if value is None else f"{float(value):.0f} MB"


def _latency_blocks(report: dict[str, Any]) -> list[Block]:
    stages = report.get("metrics", {}).get("stage_latency", {})
    rows = [
        [name, fmt(v.get("p50"), "s"), fmt(v.get("p95"), "s"), fmt(v.get("mean"), "s")] for name, v in stages.items()
    ]
    m = report.get("metrics", {})
    wall = [fmt(m.get(k), "s") for k in ("latency_p50_s", "latency_p95_s", "latency_mean_s")]
    rows.insert(0, ["wall clock per ask()", *wall])
    return [
        Heading(2, "Latency and memory"),
        _table(["stage", "p50", "p95", "mean"], rows),
        Paragraph(f"Peak resident memory of the eval process: {_mb(report.get('peak_memory_mb'))}."),
        Paragraph(
            "Mean tokens per question: "
            + (
                ", ".join(
                    f"{name} {value:.0f}" for name, value in m.get("mean_tokens", {}).items() if value is not None
                )
                or "–"
            )
            + "."
        ),
    ]


def _calibration_blocks(report: dict[str, Any]) -> list[Block]:
    m = report.get("metrics", {})
    rows = [
        [f"{b['lo']:.1f}–{b['hi']:.1f}", str(b["count"]), fmt(b["confidence"]), fmt(b["accuracy"], "pct")]
        for b in m.get("reliability", [])
    ]
    return [
        Heading(2, "Calibration"),
        Paragraph(
            f"Expected calibration error (10 bins): {fmt(m.get('ece'))}; "
            f"mean confidence {fmt(m.get('mean_confidence'))}."
        ),
        _table(["confidence bin", "items", "mean confidence", "accuracy"], rows),
    ]


def _worst_blocks(report: dict[str, Any]) -> list[Block]:
    worst = report.get("worst", [])
    if not worst:
        return [Heading(2, "Worst items"), Paragraph("No wrong answers.")]
    rows = []
    for w in worst:
        top = w.get("top_passage")
        top_text = f"[{top['doc']}] {top['text']}" if top else "–"
        rows.append(
            [
                w["id"],
                w["kind"],
                w["question"],
                " | ".join(w["gold"]),
                w["prediction"],
                fmt(w.get("confidence")),
                top_text,
            ]
        )
    return [
        Heading(2, "Worst items"),
        Paragraph(f"The {len(worst)} wrong answers ranked worst: errors first, then the most confident."),
        _table(["id", "kind", "question", "gold", "prediction", "confidence", "retrieved top passage"], rows),
    ]


def report_blocks(report: dict[str, Any], plots: Sequence[str]) -> list[Block]:
    """Everything a human report shows, as typed blocks."""
    title = f"Eval report: {report.get('dataset_stem', '')}"
    counts = report.get("counts", {})
    models = report.get("models", {})
    facts = [
        f"dataset: {report.get('dataset')}",
        f"scope: {report.get('scope', '–')}; corpus: {', '.join(report.get('corpus') or []) or '–'}; "
        f"preset: {report.get('preset', '–')}",
        f"items: {counts.get('items_done')} of {counts.get('items_in_dataset')} done, {counts.get('errors')} errors",
        f"started {report.get('started')}, finished {report.get('finished')}",
        f"git commit: {report.get('git_commit') or 'unknown'}",
        f"models: {json.dumps(models, sort_keys=True)}",
    ]
    blocks: list[Block] = [Heading(1, title)]
    if report.get("partial"):
        blocks.append(Alert("PARTIAL REPORT: the run was interrupted; only the items done are scored."))
    blocks.append(Bullets(tuple(facts)))
    head_rows = [[label, fmt(lookup(report, key), f)] for key, label, f in HEADLINE]
    blocks += [Heading(2, "Headline metrics"), _table(["metric", "value"], head_rows)]
    blocks += [Heading(2, "By kind"), _by_kind_table(report)]
    blocks += _external_blocks(report)
    blocks += _latency_blocks(report)
    blocks += _calibration_blocks(report)
    if plots:
        blocks.append(Heading(2, "Plots"))
        blocks += [Image(name) for name in plots]
    blocks += _worst_blocks(report)
    settings = report.get("settings")
    if settings:
        blocks += [Heading(2, "Settings"), Code(json.dumps(settings, indent=2, sort_keys=True))]
    return blocks


# --------------------------------------------------------------------------- renderers


def render_markdown(blocks: Sequence[Block]) -> str:
    return "\n".join(line for block in blocks for line in _markdown_lines(block))


def _markdown_lines(block: Block) -> list[str]:
    match block:
        case Heading(level, text):
            return ["#" * level + " " + text, ""]
        case Paragraph(text):
            return [text, ""]
        case Alert(text):
            return [f"> **{text}**", ""]
        case Bullets(items):
            return [f"- {item}" for item in items] + [""]
        case Table(headers, rows):
            return [markdown_table(headers, rows), ""]
        case Image(name):
            return [f"![{name}]({name})", ""]
        case Code(text):
            return ["```json", text, "```", ""]
        case _:
            assert_never(block)


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
    "vertical-align:top;text-align:left}th{background:#f3f3f3}.warn{background:#fee;padding:8px;"
    "border:1px solid #c00;font-weight:bold}pre{background:#f7f7f7;padding:8px;overflow:auto}"
    "img{max-width:640px;display:block;margin:1em 0}"
)


def render_html(blocks: Sequence[Block], images: dict[str, bytes]) -> str:
    """A self-contained page: escaped text, plots inlined as data URIs."""
    body = [element for block in blocks if (element := _html_element(block, images))]
    title = html.escape(next((b.text for b in blocks if isinstance(b, Heading) and b.level == 1), "Eval report"))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _html_element(block: Block, images: dict[str, bytes]) -> str:
    """One block as HTML, every text escaped ("" for a plot that was not written)."""
    e = html.escape
    match block:
        case Heading(level, text):
            return f"<h{level}>{e(text)}</h{level}>"
        case Paragraph(text):
            return f"<p>{e(text)}</p>"
        case Alert(text):
            return f'<p class="warn">{e(text)}</p>'
        case Bullets(items):
            return "<ul>" + "".join(f"<li>{e(str(i))}</li>" for i in items) + "</ul>"
        case Table(headers, rows):
            head = "".join(f"<th>{e(str(h))}</th>" for h in headers)
            cells = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
            return f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>"
        case Image(name):
            if name not in images:
                return ""
            data = base64.b64encode(images[name]).decode("ascii")
            return f'<img alt="{e(name)}" src="data:image/png;base64,{data}">'
        case Code(text):
            return f"<details><summary>show</summary><pre>{e(text)}</pre></details>"
        case _:
            assert_never(block)


# --------------------------------------------------------------------------- plots


def make_plots(report: dict[str, Any], latencies: Sequence[float], out_dir: Path) -> list[str]:
    """Write the PNG plots (matplotlib, Agg backend); returns the file names written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a declared dependency
        return []
    written: list[str] = []

    by_kind = report.get("by_kind", {})
    fig, ax = plt.subplots(figsize=(7, 3.5))
    kinds = list(by_kind)
    values = [100 * (by_kind[k].get("accuracy") or 0.0) for k in kinds]
    bars = ax.bar(kinds, values, color="#4a7ab5")
    for bar, kind in zip(bars, kinds, strict=True):
        ax.annotate(
            f"n={by_kind[kind]['n']}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy by kind")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(out_dir / PLOT_FILES[0], dpi=100)
    plt.close(fig)
    written.append(PLOT_FILES[0])

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(list(latencies) or [0.0], bins=min(30, max(5, len(latencies) // 2)), color="#5a9e6f")
    ax.set_xlabel("seconds per ask()")
    ax.set_ylabel("items")
    ax.set_title("Latency")
    fig.tight_layout()
    fig.savefig(out_dir / PLOT_FILES[1], dpi=100)
    plt.close(fig)
    written.append(PLOT_FILES[1])

    bins = report.get("metrics", {}).get("reliability", [])
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    centers = [(b["lo"] + b["hi"]) / 2 for b in bins]
    accs = [b["accuracy"] if b["accuracy"] is not None else 0.0 for b in bins]
    ax.bar(centers, accs, width=0.1, edgecolor="black", color="#c98b3b", label="accuracy")
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    for c, b in zip(centers, bins, strict=True):
        if b["count"]:
            ax.annotate(str(b["count"]), (c, (b["accuracy"] or 0.0) + 0.02), ha="center", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ece = report.get("metrics", {}).get("ece")
    ax.set_title(f"Reliability (ECE {fmt(ece)})")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / PLOT_FILES[2], dpi=100)
    plt.close(fig)
    written.append(PLOT_FILES[2])
    return written


# --------------------------------------------------------------------------- writing


def write_report(report_dir: Path, report: dict[str, Any], records: Sequence[ItemRecord]) -> None:
    """Write every report file into ``report_dir`` (created if needed)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    with (report_dir / "predictions.jsonl").open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(prediction_row(record), ensure_ascii=False) + "\n")
    latencies = [r.latency_s for r in records if r.latency_s is not None and r.error is None]
    plots = make_plots(report, latencies, report_dir)
    report["plots"] = plots
    (report_dir / "report.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
    blocks = report_blocks(report, plots)
    (report_dir / "report.md").write_text(render_markdown(blocks), encoding="utf-8")
    images = {name: (report_dir / name).read_bytes() for name in plots}
    (report_dir / "report.html").write_text(render_html(blocks, images), encoding="utf-8")


def headline(report: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    keys = [k for k in HEADLINE if lookup(report, k[0]) is not None]
    keys += [k for k in EXTERNAL_HEADLINE if lookup(report, k[0]) is not None]
    width = max(len(label) for _, label, _ in keys) if keys else 0
    lines = [f"{label:<{width}}  {fmt(lookup(report, key), f)}" for key, label, f in keys]
    lines.append(f"{'peak memory':<{width}}  {_mb(report.get('peak_memory_mb'))}")
    if report.get("partial"):
        lines.insert(0, "PARTIAL: interrupted before the end of the dataset.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- compare


def load_report(path: Path) -> dict[str, Any]:
    """A report from its folder or its ``report.json``."""
    file = path / "report.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"No report.json at {path}.")
    data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    return data


def _delta(a: Any, b: Any, kind: str) -> str:
    if a is None or b is None:
        return "–"
    diff = float(b) - float(a)
    if kind == "pct":
        return f"{100 * diff:+.1f} pp"
    if kind == "s":
        return f"{diff:+.2f} s"
    if kind == "int":
        return f"{int(diff):+d}"
    return f"{diff:+.3f}"


def compare_reports(a: dict[str, Any], b: dict[str, Any], *, names: tuple[str, str] = ("A", "B")) -> str:
    """A side-by-side table of headline metrics with deltas (B minus A)."""
    rows: list[tuple[str, str, str, str]] = []
    for key, label, kind in HEADLINE + EXTERNAL_HEADLINE:
        va, vb = lookup(a, key), lookup(b, key)
        if va is None and vb is None:
            continue
        rows.append((label, fmt(va, kind), fmt(vb, kind), _delta(va, vb, kind)))
    pa, pb = a.get("peak_memory_mb"), b.get("peak_memory_mb")
    rows.append(("peak memory", _mb(pa), _mb(pb), "–" if pa is None or pb is None else f"{pb - pa:+.0f} MB"))
    header = ("metric", names[0], names[1], "delta (B - A)")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    out = [
        f"A: {a.get('dataset')} ({a.get('started')}){' PARTIAL' if a.get('partial') else ''}",
        f"B: {b.get('dataset')} ({b.get('started')}){' PARTIAL' if b.get('partial') else ''}",
    ]
    if a.get("dataset_sha256") != b.get("dataset_sha256") or lookup(a, "n") != lookup(b, "n"):
        out.append("note: A and B were not run on the same items; deltas compare different samples.")
    out.append("")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        out.append("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
    return "\n".join(out)
