"""A local HTTP server of @context documents, counting the requests it answers per path."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ContextServer:
    """A local HTTP server serving @context documents, counting requests per path."""

    base: str
    routes: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    release: threading.Event = field(default_factory=threading.Event)
    delay: float = 0.0

    def serve_json(self, path: str, document: Any) -> str:
        self.routes[path] = (200, json.dumps(document).encode())
        return self.base + path


@contextmanager
def serving_contexts() -> Iterator[ContextServer]:
    """Run a context server on a free local port until the block ends."""
    state: list[ContextServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served = state[0]
            served.hits[self.path] += 1
            if self.path == "/slow":
                served.release.wait(10)
                return
            if served.delay:
                time.sleep(served.delay)
            status, body = served.routes.get(self.path, (404, b"not found"))
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/ld+json")
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.append(ContextServer(base=f"http://127.0.0.1:{http.server_address[1]}"))
    thread = threading.Thread(target=http.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state[0]
    finally:
        state[0].release.set()
        http.shutdown()
        http.server_close()
        thread.join(5)
