"""Prune the change log once every reader has passed a change and it is old enough."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import structlog

from smartcity.core.clock import Clock, isoformat
from smartcity.storage.sqlbase import SqlEntityStore

log = structlog.get_logger(__name__)

Position = Callable[[], int]
"""Return the sequence number up to which one reader of the log has consumed it."""


class ChangeLogPruner:
    """A worker deleting changes that every registered reader consumed and `keep` has passed.

    The log is kept for `keep` even when consumed, so that a reader added later (or a
    bus that replays) can start from recent history.
    """

    name = "change-log-pruner"

    def __init__(
        self, store: SqlEntityStore, clock: Clock, *, keep: timedelta, interval: float = 60.0
    ) -> None:
        self.store = store
        self.clock = clock
        self.keep = keep
        self.interval = interval
        self._readers: dict[str, Position] = {}

    def register(self, reader: str, position: Position) -> None:
        """Keep every change `reader` has not consumed yet."""
        self._readers[reader] = position

    def positions(self) -> dict[str, int]:
        """Return how far each registered reader has consumed the log (for metrics)."""
        return {reader: position() for reader, position in sorted(self._readers.items())}

    def prune_once(self) -> int:
        """Delete what may go now; return how many changes were deleted."""
        consumed = min(
            (position() for position in self._readers.values()),
            default=self.store.last_change_seq(),
        )
        cutoff = isoformat(self.clock.now() - self.keep)
        return self.store.prune_changes(consumed, older_than=cutoff)

    async def run(self, stop: asyncio.Event) -> None:
        """Prune every `interval` seconds until stopped."""
        while not stop.is_set():
            deleted = await asyncio.to_thread(self.prune_once)
            if deleted:
                log.info("change log pruned", deleted=deleted)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                continue
