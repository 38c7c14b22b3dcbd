"""Background workers: long-running loops the platform starts with the server and stops with it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


class Worker(Protocol):
    """A loop that runs until `stop` is set (notification delivery, history writing, ...)."""

    name: str

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; return promptly after it is."""
        ...


class Periodic:
    """A worker running a blocking job (in a thread) every `interval` seconds, first at start."""

    def __init__(self, name: str, job: Callable[[], int], interval: float) -> None:
        self.name = name
        self.job = job
        self.interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        """Run the job until stopped; log how much it did when it did something."""
        while not stop.is_set():
            done = await asyncio.to_thread(self.job)
            if done:
                log.info("periodic job done", worker=self.name, count=done)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                continue
