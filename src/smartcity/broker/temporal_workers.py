"""Background workers of the temporal history: the writer that follows the change log, retention."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from smartcity.core.clock import Clock
from smartcity.storage.base import EntityStore
from smartcity.storage.history import HistoryStore
from smartcity.storage.history_rows import EPOCH

log = structlog.get_logger(__name__)


async def _pause(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    """Wait until `stop` or `wake` is set, or `seconds` have passed."""
    waits = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waits.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class HistoryWriter:
    """Write the history of every committed change: woken by each commit, and polling.

    The poll finds changes committed by other processes on the same database, whose commits this
    process does not hear.
    """

    name = "temporal-history"

    def __init__(self, history: HistoryStore, store: EntityStore, poll_seconds: float) -> None:
        self.history = history
        self.poll_seconds = poll_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        store.add_commit_listener(self._committed)

    def _committed(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: the server is stopping
            loop.call_soon_threadsafe(wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Catch the history up after every commit, and every poll interval."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            while not stop.is_set():
                self._wake.clear()
                written = await asyncio.to_thread(self.history.catch_up)
                if written:
                    log.debug("history written", changes=written)
                await _pause(stop, self._wake, self.poll_seconds)
        finally:
            self._loop = self._wake = None


class HistoryRetention:
    """Delete the history older than the retention period, at every interval."""

    name = "temporal-retention"

    def __init__(
        self, history: HistoryStore, clock: Clock, retention: timedelta, interval_seconds: float
    ) -> None:
        self.history = history
        self.clock = clock
        self.retention = retention
        self.interval_seconds = interval_seconds

    def prune_once(self) -> int:
        """Delete what is older than the retention period now; return how many instances."""
        limit = (self.clock.now() - self.retention - EPOCH) // timedelta(microseconds=1)
        return self.history.prune(limit)

    async def run(self, stop: asyncio.Event) -> None:
        """Prune, then wait for the next interval, until `stop`."""
        while not stop.is_set():
            removed = await asyncio.to_thread(self.prune_once)
            if removed:
                log.info("history pruned", instances=removed, retention=str(self.retention))
            await _pause(stop, None, self.interval_seconds)
