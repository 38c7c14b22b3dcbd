"""Serve an app over a test platform with uvicorn in a thread, and read server-sent events.

The test client buffers a whole response, which never ends for an event stream: streams are
tested against a real server on a port.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import uvicorn

from smartcity.platform import Platform
from smartcity.web.app import create_app
from tests.serving import free_port


@contextmanager
def serving(platform: Platform, timeout: float = 20.0) -> Iterator[str]:
    """Serve the platform's app on a free port until the block ends; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(platform), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)


@dataclass(slots=True)
class Event:
    """One server-sent event."""

    name: str
    data: Any
    id: str | None = None


class EventReader:
    """Parse the events of a streaming response as they come."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.events: list[Event] = []
        self.retry: int | None = None
        self._lines = response.iter_lines()

    def next_event(self) -> Event:
        """Return the next event (the read timeout of the client bounds the wait)."""
        name, event_id = "message", None
        data: list[str] = []
        for line in self._lines:
            if line == "":
                if data or event_id is not None:
                    event = Event(name, orjson.loads("\n".join(data)) if data else None, event_id)
                    self.events.append(event)
                    return event
                continue
            field_name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field_name == "event":
                name = value
            elif field_name == "data":
                data.append(value)
            elif field_name == "id":
                event_id = value
            elif field_name == "retry":
                self.retry = int(value)
        raise EOFError("the stream ended")

    def until(self, done: Callable[[list[Event]], bool], timeout: float = 10.0) -> list[Event]:
        """Read events until `done(events read so far)` holds; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not done(self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no such events within {timeout} s: {self.events}")
            self.next_event()
        return self.events


def changed_ids(events: list[Event]) -> list[str]:
    """Return the ids of the entities the `changes` events carry, in order."""
    found = []
    for event in events:
        if event.name != "changes":
            continue
        for change in event.data["changes"]:
            found.append(change["id"] if change["kind"] == "delete" else change["entity"]["id"])
    return found
