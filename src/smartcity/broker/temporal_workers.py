"""Background workers of the temporal history: the change-log safety net, and retention."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from smartcity.core.clock import Clock
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
    """Write the history of changes that were logged without it, at every poll interval.

    The history is written in each change's own transaction; this loop only finds changes that
    a store without the history logged (a tool, a process of an older version), so it polls.
    """

    name = "temporal-history"

    def __init__(self, history: HistoryStore, poll_seconds: float) -> None:
        self.history = history
        self.poll_seconds = poll_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """Catch the history up every poll interval, until `stop`."""
        while not stop.is_set():
            written = await asyncio.to_thread(self.history.catch_up)
            if written:
                log.info("history caught up with changes logged without it", changes=written)
            await _pause(stop, None, self.poll_seconds)


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
