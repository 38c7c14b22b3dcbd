"""A local HTTP server that answers like Seoul's open-data APIs, from fixture files.

Routes are keyed by the decoded path (Korean station and district names as they are) plus, for
the bus API, `?arsId=...`. Each route answers a queue of responses (status, body, delay); the
last one repeats. A path that no route knows gets 404. Every request is recorded as it arrived
(raw path and query), so tests can check what the adapters sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> bytes:
    """Return the bytes of a fixture file."""
    return (FIXTURES / name).read_bytes()


@dataclass(frozen=True, slots=True)
class Answer:
    """One response: a status, a body, how long to wait before answering."""

    body: bytes
    status: int = 200
    content_type: str = "application/json;charset=UTF-8"
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the server received it."""

    raw_path: str
    path: str
    query: dict[str, list[str]]
    at: float


@dataclass
class OpenDataServer:
    """The routes of the server and the requests it received."""

    base: str
    routes: dict[str, list[Answer]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closing: threading.Event = field(default_factory=threading.Event)

    def route(self, path: str, *answers: Answer) -> None:
        """Answer `path` (decoded, with `?arsId=` for the bus) with these answers in turn."""
        with self.lock:
            self.routes[path] = list(answers)

    def serve(self, path: str, name: str, **options: Any) -> None:
        """Answer `path` with a fixture file (XML content type for .xml files)."""
        kind = (
            "text/xml;charset=UTF-8" if name.endswith(".xml") else "application/json;charset=UTF-8"
        )
        self.route(path, Answer(fixture(name), content_type=kind, **options))

    def answer(self, key: str) -> Answer | None:
        with self.lock:
            queue = self.routes.get(key)
            if not queue:
                return None
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def paths(self) -> list[str]:
        """Return the decoded paths requested, in order."""
        with self.lock:
            return [request.path for request in self.requests]

    def wait_for_requests(self, path: str, count: int, timeout: float = 10.0) -> list[Request]:
        """Wait until `path` was requested `count` times; return those requests."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                seen = [request for request in self.requests if request.path == path]
            if len(seen) >= count:
                return seen
            time.sleep(0.01)
        raise AssertionError(f"{path}: {len(seen)} of {count} requests came")


@contextmanager
def open_data_server() -> Iterator[OpenDataServer]:
    """Run the server on a free local port until the block ends."""
    state: list[OpenDataServer] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            server = state[0]
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            query = parse_qs(parts.query)
            with server.lock:
                server.requests.append(Request(self.path, path, query, time.monotonic()))
            key = path + (f"?arsId={query['arsId'][0]}" if "arsId" in query else "")
            answer = server.answer(key)
            if answer is None:
                answer = Answer(b"<html><body>404 Not Found</body></html>", 404, "text/html")
            if answer.delay and server.closing.wait(answer.delay):
                return
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except OSError:
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    state.append(OpenDataServer(base=f"http://127.0.0.1:{http.server_address[1]}"))
    thread = threading.Thread(target=http.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state[0]
    finally:
        state[0].closing.set()
        http.shutdown()
        http.server_close()
        thread.join(5)
