"""A small chat-completions server on a real 127.0.0.1 socket, for the openai captioner's tests.

It records every request (path, headers, JSON body, arrival time) and answers from a per-test script:
`server.script(Reply(...), Reply(...), ...)` queues answers in order; `server.default` answers once the
queue is empty (a callable `request -> Reply` may stand in for a Reply, e.g. to echo the request).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list → JSON; str/bytes → sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (to provoke client timeouts)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic() on arrival

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body["messages"]

    def texts(self) -> list[str]:
        """Every text in the conversation, system prompt first."""
        out = []
        for message in self.messages:
            content = message["content"]
            if isinstance(content, str):
                out.append(content)
            else:
                out += [part["text"] for part in content if part.get("type") == "text"]
        return out

    def image_urls(self) -> list[str]:
        return [
            part["image_url"]["url"]
            for message in self.messages
            if isinstance(message["content"], list)
            for part in message["content"]
            if part.get("type") == "image_url"
        ]


def completion(content: str, finish_reason: str = "stop", model: str = "test-vlm") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def answer(content: str, **kw: Any) -> Reply:
    return Reply(body=completion(content), **kw)


Responder = Reply | Callable[[Request], Reply]


class ChatServer:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.default: Responder = Reply(500, {"error": {"message": "no scripted reply left"}})
        self._script: deque[Responder] = deque()
        self._lock = threading.Lock()
        self.in_flight = 0
        self.peak_in_flight = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> ChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, *replies: Responder) -> None:
        with self._lock:
            self._script.extend(replies)

    def _next(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            responder = self._script.popleft() if self._script else self.default
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return responder(request) if callable(responder) else responder

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                reply = server._next(request)
                try:
                    time.sleep(reply.delay)
                    payload = reply.body
                    if isinstance(payload, str):
                        data, kind = payload.encode(), "text/plain"
                    elif isinstance(payload, bytes):
                        data, kind = payload, "application/octet-stream"
                    else:
                        data, kind = json.dumps(payload).encode(), "application/json"
                    self.send_response(reply.status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)
                finally:
                    server._done()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler
