"""The eval runner end to end with a fake assistant: report files, partial runs, errors, --compare."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from qa.evaluation import cli
from qa.evaluation.metrics import EvalItem
from qa.evaluation.report import (
    PLOT_FILES,
    Alert,
    Block,
    Bullets,
    Code,
    Heading,
    Image,
    Paragraph,
    Table,
    render_html,
    render_markdown,
)
from qa.evaluation.runner import RunResult, load_dataset, run_evaluation
from qa.measure import git_commit
from qa.types import Answer, Chunk, Citation, Passage

EVIDENCE = "Mesutoclax (ICP-248) has received Breakthrough Therapy Designation"
ROWS: list[dict[str, Any]] = [
    {
        "id": "t-1",
        "question": "What is the code name of mesutoclax?",
        "answers": ["ICP-248"],
        "answerable": True,
        "evidence": [{"doc": "a.txt", "text": EVIDENCE}],
        "kind": "fact",
    },
    {
        "id": "t-2",
        "question": "How much does it cost? <script>alert(1)</script>",
        "answers": [],
        "answerable": False,
        "evidence": [],
        "kind": "unanswerable",
    },
    {
        "id": "t-3",
        "question": "Which protein does it inhibit?",
        "answers": ["BCL2"],
        "answerable": True,
        "evidence": [{"doc": "a.txt", "text": "selectively inhibit the BCL2 protein"}],
        "kind": "fact",
    },
]


def _passage(text: str) -> Passage:
    chunk = Chunk(id="a.txt#0", doc_id="a.txt", title="A", text=text, start=0, end=len(text), ordinal=0)
    return Passage(chunk=chunk, score=1.0, dense_score=0.7)


CANNED: dict[str, Answer] = {
    ROWS[0]["question"]: Answer(
        question="",
        text="Its code name is ICP-248 [1].",
        confidence=0.9,
        citations=[Citation(1, "a.txt", "A", "a.txt#0", 10, 60, EVIDENCE, 1.0)],
        passages=[_passage("InnoCare announced that " + EVIDENCE + " in China.")],
        timings={"retrieval": 0.01, "prompt": 0.2, "decode": 0.3, "total": 0.52},
    ),
    ROWS[1]["question"]: Answer(
        question="",
        text="The documents do not say.",
        refused=True,
        confidence=0.1,
        refusal_reason="no relevant passage",
    ),
    ROWS[2]["question"]: Answer(
        question="",
        text="It inhibits MCL1 <b>bold</b>.",
        confidence=0.8,
        passages=[_passage("Unrelated text about prices.")],
    ),
}


class FakeAssistant:
    """Canned answers; optionally raises after some calls (KeyboardInterrupt or an error)."""

    def __init__(
        self,
        *,
        fail_on_call: int | None = None,
        exc: BaseException | None = None,
        answers: dict[str, Answer] | None = None,
    ) -> None:
        self.calls = 0
        self.fail_on_call = fail_on_call
        self.exc = exc
        self.answers = answers or CANNED
        self.seen: list[str] = []

    def ask(self, question: str) -> Answer:
        self.calls += 1
        self.seen.append(question)
        if self.fail_on_call is not None and self.calls == self.fail_on_call and self.exc is not None:
            raise self.exc
        return self.answers[question]


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_qa.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n", encoding="utf-8")
    return path


def _run(dataset: Path, out: Path, fake: FakeAssistant) -> RunResult:
    items = load_dataset(dataset)

    def factory(item: EvalItem) -> FakeAssistant:
        return fake

    return run_evaluation(
        items,
        factory,
        dataset=dataset,
        out_root=out,
        commit=lambda: "deadbeef",
        describe=lambda: {"settings": {"preset": "fake"}},
        progress=False,
    )


def _predictions(report_dir: Path) -> list[dict[str, object]]:
    lines = (report_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_full_run_writes_every_file(dataset: Path, tmp_path: Path) -> None:
    result = _run(dataset, tmp_path / "reports", FakeAssistant())
    d = result.report_dir
    assert d.parent == tmp_path / "reports" and d.name.startswith("tiny_qa-")
    for name in ("report.json", "predictions.jsonl", "report.md", "report.html", *PLOT_FILES):
        assert (d / name).is_file(), name
        assert (d / name).stat().st_size > 0
    preds = _predictions(d)
    assert [p["id"] for p in preds] == ["t-1", "t-2", "t-3"]
    assert preds[0]["citations"] == [{"doc": "a.txt", "text": EVIDENCE, "start": 10, "end": 60}]
    assert preds[1]["refused"] is True

    report = json.loads((d / "report.json").read_text(encoding="utf-8"))
    assert report["partial"] is False
    assert report["git_commit"] == "deadbeef"
    assert report["settings"] == {"preset": "fake"}
    assert report["counts"]["items_done"] == 3
    m = report["metrics"]
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["answer_accuracy"] == pytest.approx(0.5)
    assert m["refusal_accuracy"] == 1.0
    assert m["recall@1"] == pytest.approx(0.5)
    assert m["citation_precision"] == 1.0
    assert set(report["by_kind"]) == {"fact", "unanswerable"}
    assert [w["id"] for w in report["worst"]] == ["t-3"]

    html_text = (d / "report.html").read_text(encoding="utf-8")
    assert "&lt;b&gt;bold&lt;/b&gt;" in html_text
    assert "<script>" not in html_text and "<b>bold</b>" not in html_text
    assert "data:image/png;base64," in html_text
    md = (d / "report.md").read_text(encoding="utf-8")
    assert "Headline metrics" in md and "Worst items" in md
    assert "| metric | value |\n| --- | --- |\n| items | 3 |\n" in md
    assert isinstance(report["peak_memory_mb"], float) and report["peak_memory_mb"] > 0


def test_blocks_render_the_same_content_as_markdown_and_html() -> None:
    blocks: list[Block] = [
        Heading(1, "T <1>"),
        Alert("partial"),
        Bullets(("a", "b")),
        Table(("k", "v|w"), (("x", "<b>"),)),
        Paragraph("p & q"),
        Image("plot.png"),
        Image("missing.png"),
        Code('{"a": 1}'),
    ]
    assert render_markdown(blocks) == (
        "# T <1>\n\n> **partial**\n\n- a\n- b\n\n| k | v\\|w |\n| --- | --- |\n| x | &lt;b&gt; |\n\n"
        'p & q\n\n![plot.png](plot.png)\n\n![missing.png](missing.png)\n\n```json\n{"a": 1}\n```\n'
    )
    page = render_html(blocks, {"plot.png": b"PNG"})
    assert "<title>T &lt;1&gt;</title>" in page and "<h1>T &lt;1&gt;</h1>" in page
    assert '<p class="warn">partial</p>\n<ul><li>a</li><li>b</li></ul>\n' in page
    assert "<thead><tr><th>k</th><th>v|w</th></tr></thead><tbody><tr><td>x</td><td>&lt;b&gt;</td></tr>" in page
    assert 'src="data:image/png;base64,UE5H"' in page and "missing.png" not in page


def test_default_commit_is_read_from_the_repository(dataset: Path, tmp_path: Path) -> None:
    items = load_dataset(dataset)
    result = run_evaluation(items, lambda _: FakeAssistant(), dataset=dataset, out_root=tmp_path, progress=False)
    assert result.report["git_commit"] == git_commit()


def test_keyboard_interrupt_writes_partial_report(dataset: Path, tmp_path: Path) -> None:
    fake = FakeAssistant(fail_on_call=3, exc=KeyboardInterrupt())
    result = _run(dataset, tmp_path / "reports", fake)
    assert result.partial
    report = json.loads((result.report_dir / "report.json").read_text(encoding="utf-8"))
    assert report["partial"] is True
    assert report["counts"] == {**report["counts"], "items_done": 2, "items_in_dataset": 3}
    assert len(_predictions(result.report_dir)) == 2
    assert "PARTIAL" in (result.report_dir / "report.md").read_text(encoding="utf-8")


def test_item_error_is_recorded_and_run_goes_on(dataset: Path, tmp_path: Path) -> None:
    result = _run(dataset, tmp_path / "reports", FakeAssistant(fail_on_call=1, exc=RuntimeError("boom")))
    preds = _predictions(result.report_dir)
    assert len(preds) == 3
    assert preds[0]["error"] == "RuntimeError: boom" and preds[0]["correct"] is False
    assert result.report["metrics"]["n_errors"] == 1
    assert result.report["worst"][0]["id"] == "t-1"


def test_compare_prints_deltas_and_writes_nothing(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "reports"
    a = _run(dataset, out, FakeAssistant()).report_dir
    better = dict(CANNED)
    better[ROWS[2]["question"]] = Answer(question="", text="BCL2 [1].", confidence=0.9)
    b = _run(dataset, out, FakeAssistant(answers=better)).report_dir
    before = sorted(p.name for p in out.iterdir())
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    code = cli.run(parser.parse_args(["--compare", str(a), str(b / "report.json")]))
    assert code == 0
    text = capsys.readouterr().out
    assert "delta" in text
    assert "+33.3 pp" in text  # accuracy 2/3 -> 3/3
    assert sorted(p.name for p in out.iterdir()) == before


def test_cli_rejects_bad_arguments_without_models(dataset: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["--dataset", str(dataset), "--scope", "item"])) == 2
    assert cli.run(parser.parse_args(["--dataset", str(dataset), "--limit", "0"])) == 2
    assert cli.run(parser.parse_args(["--compare", str(dataset.parent / "nope"), str(dataset)])) == 2


def test_external_items_never_carry_the_long_answer(tmp_path: Path) -> None:
    row = {
        "id": "pm-1",
        "source": "PubMedQA PQA-L",
        "title": "T",
        "context": "Abstract text.",
        "question": "Does it work?",
        "answers": ["yes"],
        "answerable": True,
        "answer_type": "yes/no/maybe",
        "meta": {"long_answer": "SECRET CONCLUSION"},
    }
    path = tmp_path / "ext.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    (item,) = load_dataset(path)
    assert item.family == "pubmedqa" and item.kind == "pubmedqa" and item.context == "Abstract text."
    assert "SECRET" not in repr(item)
    fake = FakeAssistant(answers={"Does it work?": Answer(question="", text="Yes [1].")})
    result = run_evaluation(
        [item], lambda _: fake, dataset=path, out_root=tmp_path / "r", commit=lambda: None, progress=False
    )
    assert fake.seen == ["Does it work?"]
    assert result.report["external"]["pubmedqa"]["accuracy"] == 1.0
    assert any(r["system"] == "BioBERT" for r in result.report["references"])
    assert "BioBERT" in (result.report_dir / "report.md").read_text(encoding="utf-8")


class _FakeFactory:
    """Stands in for the real factories the CLI builds; records how it was configured."""

    made: list[dict[str, Any]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.settings = argparse.Namespace(preset=kwargs.get("preset") or "accurate")
        self.build_summary = "fake index"
        self.fake = FakeAssistant(answers={**CANNED, "Does it work?": Answer(question="", text="Yes.")})
        _FakeFactory.made.append({"args": args, **kwargs})

    def prepare(self) -> None:
        return None

    def __call__(self, item: EvalItem) -> FakeAssistant:
        return self.fake


def test_cli_run_end_to_end_with_fake_factories(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import qa.evaluation.runner as runner

    monkeypatch.setattr(runner, "git_commit", lambda: "cafe")
    monkeypatch.setattr(cli, "CorpusAssistantFactory", _FakeFactory)
    monkeypatch.setattr(cli, "ItemAssistantFactory", _FakeFactory)
    _FakeFactory.made.clear()
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    out = tmp_path / "reports"

    code = cli.run(
        parser.parse_args(
            ["--dataset", str(dataset), "--out", str(out), "--no-progress", "--limit", "2", "--preset", "fast"]
        )
    )
    assert code == 0
    made = _FakeFactory.made[-1]
    assert made["args"] == ([Path("seeds")],) and made["preset"] == "fast"
    assert made["index_dir"] == Path("index/eval-seeds")
    text = capsys.readouterr().out
    assert "accuracy" in text and "Report: " in text
    (report_dir,) = out.iterdir()
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert report["git_commit"] == "cafe" and report["scope"] == "corpus" and report["preset"] == "fast"
    assert len(_predictions(report_dir)) == 2

    topic = tmp_path / "topic_qa.jsonl"
    topic.write_text(dataset.read_text(encoding="utf-8"), encoding="utf-8")
    assert cli.run(parser.parse_args(["--dataset", str(topic), "--out", str(out), "--no-progress"])) == 0
    assert _FakeFactory.made[-1]["args"] == ([Path("eval/corpora/topic")],)

    ext = tmp_path / "ext.jsonl"
    ext.write_text(
        json.dumps(
            {
                "id": "e1",
                "source": "PubMedQA",
                "context": "c",
                "question": "Does it work?",
                "answers": ["yes"],
                "answerable": True,
                "answer_type": "yes/no/maybe",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    assert cli.run(parser.parse_args(["--dataset", str(ext), "--out", str(out), "--no-progress"])) == 0
    assert "index_dir" not in _FakeFactory.made[-1]  # item scope by default
