"""A real HTTP server on a free port that records what it receives (a notification sink)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(slots=True)
class Received:
    """One request the sink answered."""

    path: str
    headers: dict[str, str]
    body: Any
    at: float
    status: int


@dataclass
class Sink:
    """What the sink received, and how it answers each path (default 204 at once)."""

    url: str
    received: list[Received] = field(default_factory=list)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    """Per path: statuses for the next requests, in order (then 204)."""
    hang: set[str] = field(default_factory=set)
    """Paths that never answer."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, path: str, status: int = 204) -> list[Any]:
        """Return the bodies received on a path and answered with `status`."""
        with self.lock:
            return [r.body for r in self.received if r.path == path and r.status == status]

    def wait_for(self, path: str, count: int = 1, timeout: float = 10.0) -> list[Any]:
        """Wait until `count` notifications were accepted on a path; return their bodies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            bodies = self.bodies(path)
            if len(bodies) >= count:
                return bodies
            time.sleep(0.02)
        raise AssertionError(f"{path}: {len(self.bodies(path))} of {count} notifications came")

    def answer(self, path: str) -> int | None:
        with self.lock:
            if path in self.hang:
                return None
            queue = self.statuses.get(path)
            return queue.pop(0) if queue else 204


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sink: Sink) -> None:
    try:
        while True:
            request_line = await reader.readline()
            if not request_line:
                return
            _, path, _ = request_line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status = sink.answer(path)
            if status is None:
                await asyncio.sleep(3600)
                return
            with sink.lock:
                sink.received.append(
                    Received(
                        path, headers, orjson.loads(body) if body else None, time.time(), status
                    )
                )
            writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


@contextmanager
def running_sink() -> Iterator[Sink]:
    """Run a sink in a thread of its own; yield it with its base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def serve_forever() -> None:
        asyncio.set_event_loop(loop)

        async def start() -> None:
            sink: Sink = holder["sink"]
            server = await asyncio.start_server(lambda r, w: _serve(r, w, sink), "127.0.0.1", 0)
            holder["server"] = server
            port = server.sockets[0].getsockname()[1]
            sink.url = f"http://127.0.0.1:{port}"
            ready.set()

        loop.run_until_complete(start())
        loop.run_forever()

    holder["sink"] = Sink(url="")
    thread = threading.Thread(target=serve_forever, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield holder["sink"]
    finally:
        stop: Callable[[], None] = loop.stop
        holder["server"].close()
        loop.call_soon_threadsafe(stop)
        thread.join(5)
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()

        async def drain() -> None:
            await asyncio.gather(*tasks, return_exceptions=True)

        loop.run_until_complete(drain())
        loop.close()
