"""A tiny OpenAI-compatible chat server for the tests: stdlib ``http.server`` in a thread on 127.0.0.1.

``GET /v1/models`` lists one model; ``POST /v1/chat/completions`` streams ``reply`` word by word as
server-sent events, each token with a log-probability and alternatives (the first token's are
``first_top``), then a ``usage`` chunk when asked for one and ``data: [DONE]``. ``mode`` makes it
misbehave: ``stall`` (never answers), ``keepalive`` (sends only ``: ping`` comments), ``stall_mid``
(stops after the first token), ``status`` (HTTP
``status`` with ``{"error": {"message": message}}``), ``no_logprobs``, ``reject_extras`` (HTTP 400
while the request asks for log-probabilities), ``garbage`` (a line that is not JSON) and
``truncated`` (the connection closes mid-reply). Every request is kept in ``requests``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "fake-model"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeOpenAIServer:
    reply: str = "The CDE granted it [1]."
    first_top: tuple[tuple[str, float], ...] = (("The", -0.05), ("NOT", -3.2), ("Yes", -4.0))
    mode: str = "ok"
    status: int = 500
    message: str = "the model crashed"
    api_key: str | None = None
    usage: dict[str, Any] = field(
        default_factory=lambda: {
            "prompt_tokens": 42,
            "completion_tokens": 6,
            "prompt_tokens_details": {"cached_tokens": 30},
        }
    )
    requests: list[Request] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeOpenAIServer:
        fake = self

        class Handler(_Handler):
            server_state = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-openai", daemon=True).start()
        return self

    def stop(self) -> None:
        self.released.set()  # let stalled handlers finish
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def chunks(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The stream's chunks for one request (before ``[DONE]``)."""
        words = self.reply.split(" ")[: int(body.get("max_tokens", 1000))]
        chunks: list[dict[str, Any]] = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            choice: dict[str, Any] = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
            if body.get("logprobs") and self.mode != "no_logprobs":
                top = self.first_top if i == 0 else ((piece, -0.1 * i), ("else", -2.5 - i))
                entry = {"token": piece, "logprob": top[0][1] if i == 0 else -0.1 * i}
                entry["top_logprobs"] = [{"token": t, "logprob": lp, "bytes": None} for t, lp in top]
                choice["logprobs"] = {"content": [entry]}
            chunks.append({"choices": [choice]})
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({"choices": [], "usage": self.usage})
        return chunks


class _Handler(BaseHTTPRequestHandler):
    server_state: FakeOpenAIServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _record(self) -> Request:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path, dict(self.headers.items()), json.loads(raw) if raw else {})
        self.server_state.requests.append(request)
        return request

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refused(self, request: Request) -> bool:
        fake = self.server_state
        if fake.api_key is not None and request.headers.get("Authorization") != f"Bearer {fake.api_key}":
            self._json(401, {"error": {"message": "Invalid API key", "type": "invalid_request_error"}})
            return True
        if fake.mode == "status":
            self._json(fake.status, {"error": {"message": fake.message}})
            return True
        return False

    def do_GET(self) -> None:
        request = self._record()
        if self._refused(request):
            return
        if self.path != "/v1/models":
            self._json(404, {"detail": "Not Found"})
            return
        self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    def do_POST(self) -> None:
        request = self._record()
        fake = self.server_state
        if self._refused(request):
            return
        if self.path != "/v1/chat/completions":
            self._json(404, {"detail": "Not Found"})
            return
        if fake.mode == "reject_extras" and "logprobs" in request.body:
            self._json(400, {"error": {"message": "Unrecognized request argument: logprobs"}})
            return
        if fake.mode == "stall":
            fake.released.wait(30)
            return
        if fake.mode == "keepalive":
            self._keep_alive()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self._events(fake.chunks(request.body))

    def _keep_alive(self) -> None:
        """Headers, then only ``: ping`` comments until released: data never comes."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        while not self.server_state.released.wait(0.05):
            try:
                self.wfile.write(b": ping\n\n")
                self.wfile.flush()
            except OSError:  # the client gave up
                return

    def _events(self, chunks: list[dict[str, Any]]) -> None:
        fake = self.server_state
        for i, chunk in enumerate(chunks):
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            if i == 1 and fake.mode == "stall_mid":
                fake.released.wait(30)
                return
            if i == 1 and fake.mode == "garbage":
                self.wfile.write(b"data: {not json\n\n")
                return
            if i == 2 and fake.mode == "truncated":
                return
        self.wfile.write(b": keep-alive\n\ndata: [DONE]\n\n")
        self.wfile.flush()
