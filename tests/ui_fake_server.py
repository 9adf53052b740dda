"""A fake-backed UI server: the real ``qa.ui`` app around a fake assistant, ready in about a second.

The fake keeps a tiny in-memory index (``HashingEmbedder`` vectors plus word overlap) over
``seeds/`` and anything added through the UI, and "generates" a canned answer: the best-matching
sentence of the top passage, cited as ``[1]``, followed by an echo of the question so that
answers sent to concurrent users cannot be mixed up unnoticed. Generation is deliberately not
re-entrant: a second concurrent ``ask_stream`` raises, which proves the UI queues requests.

Run: ``python tests/ui_fake_server.py --port 7861 [--index-dir DIR] [--delay 0.03]``.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from qa.chunking import chunk_document  # noqa: E402
from qa.embedding import HashingEmbedder  # noqa: E402
from qa.index import BuildReport, DocInfo  # noqa: E402
from qa.ingest import IngestError  # noqa: E402
from qa.query import mostly_english  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.types import Answer, Chunk, Citation, Document, Passage, RefusalReason  # noqa: E402

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP_WORDS = (
    "a an the of in on at to for by with and or is are was were be been what which who whom whose when "
    "where why how does did do has have had it its this that these those as from about into than then so "
    "such can could will would should may might there their they them he she his her we you your i me my"
)
_STOP = frozenset(_STOP_WORDS.split())


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def read_text(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".docx", ".pptx", ".epub", ".csv"):  # the real readers: no quick stand-in for these
        from qa.ingest import load_document

        return load_document(path, path.parent).text
    if suffix == ".pdf":
        from pypdf import PdfReader

        return "\n\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)
    raw = path.read_text(encoding="utf-8", errors="replace")
    if suffix in (".html", ".htm"):
        raw = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", raw)
        raw = re.sub(r"(?s)<[^>]+>", " ", raw)
        import html

        raw = html.unescape(raw)
    return raw


class FakeIndex:
    """Documents, chunks and their hashing vectors, in memory."""

    def __init__(self, embedder: HashingEmbedder) -> None:
        self.embedder = embedder
        self._docs: dict[str, Document] = {}
        self._chunks: list[Chunk] = []
        self._vectors = np.zeros((0, embedder.dim), dtype=np.float32)
        self._lock = threading.Lock()

    def add_file(self, path: Path) -> int:
        text = read_text(path).strip()
        if not text:
            raise ValueError("empty document")
        title = text.splitlines()[0].strip()[:120] or path.stem
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        doc = Document(id=path.name, title=title, text=text, source=str(path), content_hash=digest)
        chunks = chunk_document(doc, target_words=60, overlap_words=10)
        vectors = self.embedder.embed([c.text for c in chunks])
        with self._lock:
            self._remove(doc.id)
            self._docs[doc.id] = doc
            self._chunks.extend(chunks)
            self._vectors = np.vstack([self._vectors, vectors]) if len(self._vectors) else vectors
        return len(chunks)

    def _remove(self, doc_id: str) -> bool:
        if doc_id not in self._docs:
            return False
        del self._docs[doc_id]
        keep = [i for i, c in enumerate(self._chunks) if c.doc_id != doc_id]
        self._chunks = [self._chunks[i] for i in keep]
        self._vectors = self._vectors[keep] if keep else np.zeros((0, self.embedder.dim), dtype=np.float32)
        return True

    def remove(self, doc_id: str) -> bool:
        with self._lock:
            return self._remove(doc_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._chunks)

    def documents(self) -> list[DocInfo]:
        with self._lock:
            counts: dict[str, int] = {}
            for chunk in self._chunks:
                counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
            return [
                DocInfo(d.id, d.title, counts.get(d.id, 0), d.source)
                for d in sorted(self._docs.values(), key=lambda d: d.id)
            ]

    def get_document(self, doc_id: str) -> Document:
        with self._lock:
            if doc_id not in self._docs:
                raise KeyError(doc_id)
            return self._docs[doc_id]

    def search(self, query: str, k: int, doc_ids: Collection[str] | None = None) -> list[Passage]:
        """The ``k`` best chunks (of the ``doc_ids`` documents only, when given)."""
        qvec = self.embedder.embed([query])[0]
        asked = content_words(query)
        with self._lock:
            if not self._chunks:
                return []
            dense = self._vectors @ qvec
            overlap = np.array([len(asked & content_words(c.text)) for c in self._chunks], dtype=np.float32)
            score = overlap + dense
            order = [int(i) for i in np.argsort(-score) if not doc_ids or self._chunks[i].doc_id in doc_ids][:k]
            return [
                Passage(
                    chunk=self._chunks[i],
                    score=float(score[i]),
                    dense_rank=r + 1,
                    dense_score=float(dense[i]),
                )
                for r, i in enumerate(order)
            ]


class FakeAssistant:
    """Streams canned, question-specific answers with real-looking citations."""

    def __init__(self, seeds: Path | None = None, *, delay: float = 0.03, add_delay: float = 0.0) -> None:
        self.embedder = HashingEmbedder(64)
        self._index = FakeIndex(self.embedder)
        self.delay = delay
        self.add_delay = add_delay  # seconds each added document takes to index (a large upload)
        self._busy = threading.Lock()
        self.calls = 0
        if seeds is not None and seeds.is_dir():
            for path in sorted(seeds.iterdir()):
                if path.suffix.lower() in (".txt", ".md", ".html", ".pdf"):
                    self._index.add_file(path)

    @property
    def index(self) -> FakeIndex:
        return self._index

    def warm_up(self) -> None:
        return None

    def add_documents(self, paths: Sequence[Path]) -> BuildReport:
        started = time.perf_counter()
        time.sleep(self.add_delay * len(paths))
        report = BuildReport()
        for path in map(Path, paths):
            known = {info.doc_id for info in self._index.documents()}
            try:
                report.chunks_added += self._index.add_file(path)
            except (OSError, ValueError, IngestError) as exc:  # as the real index: a bad file is skipped
                report.skipped.append((str(path), str(exc)))
                continue
            (report.changed if path.name in known else report.added).append(path.name)
        report.chunks_embedded = report.chunks_added
        report.chunks_total = len(self._index)
        report.seconds = time.perf_counter() - started
        return report

    def remove_documents(self, doc_ids: Sequence[str]) -> BuildReport:
        removed = [d for d in doc_ids if self._index.remove(d)]
        return BuildReport(removed=removed, chunks_total=len(self._index))

    def ask_stream(
        self,
        question: str,
        *,
        history: Sequence[tuple[str, str]] | None = None,
        top_k: int | None = None,
        doc_ids: Collection[str] | None = None,
    ) -> Iterator[str | Answer]:
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("concurrent generation: the UI must queue requests")
        try:
            self.calls += 1
            if "explode" in question.lower():
                raise RuntimeError("the fake generator <exploded> as asked")
            yield from self._answer(question, history or [], top_k or 3, doc_ids)
        finally:
            self._busy.release()

    def _answer(
        self, question: str, history: Sequence[tuple[str, str]], k: int, doc_ids: Collection[str] | None = None
    ) -> Iterator[str | Answer]:
        """A canned answer; "in detail" in the question streams it slowly (to stop or queue behind), and
        "refuse" streams raw model text ("NOT FOUND [3]", Chinese) before the refusal, as a real model may."""
        started = time.perf_counter()
        standalone = f"{history[-1][0]} {question}" if history else question
        passages = self._index.search(standalone, k, doc_ids)
        delay = max(self.delay, 0.25) if "in detail" in question.lower() else self.delay
        asked = content_words(standalone)
        best: tuple[int, Passage, int, int] | None = None
        for passage in passages[:1]:
            text = passage.chunk.text
            for m in re.finditer(r"[^.!?\n]+[.!?]?", text):
                hits = len(asked & content_words(m.group(0)))
                if hits and (best is None or hits > best[0]):
                    start = m.start() + len(m.group(0)) - len(m.group(0).lstrip())
                    best = (hits, passage, start, m.end())
        if best is None or "refuse" in question.lower():
            time.sleep(self.delay)
            if "refuse" in question.lower():
                for token in ("NOT ", "FOUND ", "[3] ", "文档中", "没有。"):
                    time.sleep(delay)
                    yield token
            english = mostly_english(question)  # as the real gate: say when the language is the likely reason
            yield Answer(
                question=question,
                text="I can't answer that from the documents.",
                refused=True,
                confidence=0.8,
                passages=passages,
                refusal=None if english else RefusalReason.NOT_ENGLISH,
                refusal_reason="No passage mentions the question's key terms."
                if english
                else RefusalReason.NOT_ENGLISH.message(),
                standalone_question=standalone if history else None,
            )
            return
        _, passage, a, b = best
        chunk = passage.chunk
        quote = chunk.text[a:b].strip()
        text = f"{quote} [1] (You asked: {question})"
        for token in re.findall(r"\S+\s*", text):
            time.sleep(delay)
            yield token
        citation = Citation(
            n=1,
            doc_id=chunk.doc_id,
            title=chunk.title,
            chunk_id=chunk.id,
            start=chunk.start + a,
            end=chunk.start + a + len(quote),
            quote=quote,
            support=1.0,
        )
        yield Answer(
            question=question,
            text=text,
            citations=[citation],
            confidence=0.9,
            passages=passages,
            standalone_question=standalone if history else None,
            timings={"total": time.perf_counter() - started},
        )


def main(argv: Sequence[str] | None = None) -> int:
    from qa.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=7861)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--index-dir", type=Path, default=None, help="uploads go to DIR/uploads")
    parser.add_argument("--seeds", type=Path, default=ROOT / "seeds")
    parser.add_argument("--delay", type=float, default=0.03, help="seconds between streamed tokens")
    parser.add_argument("--max-upload-mb", type=float, default=1.0)
    parser.add_argument("--users", default="", help="user:pw[,user:pw]: who may log in (ui.users)")
    parser.add_argument("--no-auth", action="store_true", help="as `qa serve --no-auth`")
    parser.add_argument(
        "--exposed", action="store_true", help="the access policy of a host other machines reach, bound to --host"
    )
    parser.add_argument("--add-delay", type=float, default=0.0, help="seconds each uploaded document takes to index")
    parser.add_argument(
        "--builds-log", type=Path, default=None, help="build a new fake per preset asked for, and log each build"
    )
    args = parser.parse_args(argv)

    import tempfile

    index_dir = args.index_dir or Path(tempfile.mkdtemp(prefix="qa-ui-fake-"))
    ui = {"max_upload_mb": args.max_upload_mb, "users": args.users}
    settings = load_settings(environ={}, paths={"index": index_dir}, ui=ui)
    _serve(settings, FakeAssistant(args.seeds, delay=args.delay, add_delay=args.add_delay), args)
    return 0


def _factory(assistant: FakeAssistant, args: argparse.Namespace) -> Callable[[str], FakeAssistant]:
    """The same fake for every preset, or with ``--builds-log`` a new one per call, each call logged
    (so a test can count the assistants the server builds, as a real server would load models)."""
    if args.builds_log is None:
        return lambda _preset: assistant

    def build(preset: str) -> FakeAssistant:
        with args.builds_log.open("a", encoding="utf-8") as log:
            log.write(preset + "\n")
        return FakeAssistant(args.seeds, delay=args.delay)

    return build


def _serve(settings: Settings, assistant: FakeAssistant, args: argparse.Namespace) -> None:
    """``qa.ui.serve`` around ``assistant``; with ``--exposed``, the same app and launch under the policy
    ``qa serve --host 0.0.0.0`` would get (login required, or read-only with ``--no-auth``), on ``--host``."""
    from qa.access import AccessPolicy
    from qa.ui import build_app, launch, serve

    factory = _factory(assistant, args)
    if not args.exposed:
        serve(
            settings,
            host=args.host,
            port=args.port,
            no_auth=args.no_auth,
            assistant=assistant,
            assistant_factory=factory,
        )
        return
    policy = AccessPolicy.for_server(settings.ui, host="0.0.0.0", share=False, no_auth=args.no_auth)
    demo = build_app(assistant, settings, assistant_factory=factory, policy=policy)
    launch(demo, settings, host=args.host, port=args.port, policy=policy)


if __name__ == "__main__":
    sys.exit(main())
