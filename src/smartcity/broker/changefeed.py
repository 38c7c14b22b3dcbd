"""A live feed of entity changes for one caller: the change log, filtered and coalesced.

The feed reads the change log (written in the transaction of each change) from a position the
reader keeps, so a reader that comes back with the last position it saw misses nothing the log
still holds, and never sees a change that did not commit. It keeps only what the caller may
see in its tenant, and of each entity only its newest change among those read together: a map
wants the latest state, not every step of it, and a busy city must not flood a browser.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncGenerator, Callable, Collection, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Protocol

from smartcity.auth.policy import AccessControl, Permission, require
from smartcity.auth.principal import Caller
from smartcity.storage.base import ChangeHead, ChangeKind, ChangeRecord, EntityStore

_LOCAL_NAME = re.compile(r"[^/#:]*$")


def local_name(iri: str) -> str:
    """Return the last segment of an IRI ("https://.../dataModel.Device/Camera" -> "Camera").

    Types are matched by it because the same Smart Data Models type is expanded to different
    IRIs by different @contexts (the Smart Data Models one, a district's own).
    """
    match = _LOCAL_NAME.search(iri)
    return match.group(0) if match else iri


@dataclass(frozen=True, slots=True)
class FeedBatch:
    """What one read of the feed found."""

    position: int
    """Resume after this sequence number: every change up to it has been read (or skipped)."""
    changes: list[ChangeRecord] = field(default_factory=list)
    """The newest change of each entity the caller may see, in log order."""
    full: bool = False
    """The read stopped at the batch size: more changes are waiting."""
    lost: bool = False
    """The log no longer holds every change after the position asked for: start over."""


class CommitSource(Protocol):
    """A store that tells when it committed (entity changes, incident writes)."""

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each commit."""
        ...


class CommitSignal:
    """Wake async waiters, in whatever event loop, after every local commit of a store.

    Changes committed by another process are not signalled: readers also poll.
    """

    def __init__(self, store: CommitSource) -> None:
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()
        store.add_commit_listener(self._committed)

    def _committed(self) -> None:
        self.wake()

    def wake(self) -> None:
        """Wake every waiter now (thread-safe)."""
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with suppress(RuntimeError):  # that loop closed meanwhile
                loop.call_soon_threadsafe(event.set)

    @contextmanager
    def watch(self) -> Iterator[asyncio.Event]:
        """Yield an event set after each commit, for the running loop, while the block runs."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        try:
            yield waiter[1]
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    @property
    def watching(self) -> int:
        """Return how many readers are waiting for commits now."""
        with self._lock:
            return len(self._waiters)


class ChangeFeed:
    """Read the change log on behalf of callers, within their tenant and visibility."""

    def __init__(
        self,
        store: EntityStore,
        access: AccessControl,
        *,
        batch: int = 2000,
        min_interval: float = 0.25,
        poll_interval: float = 2.0,
    ) -> None:
        self.store = store
        self.access = access
        self.batch = batch
        self.min_interval = min_interval
        """The shortest time between two reads of one reader: bursts are read together."""
        self.poll_interval = poll_interval
        """The longest time between two reads (changes from other processes are not signalled)."""
        self.signal = CommitSignal(store)
        self._closed = False

    def close(self) -> None:
        """End every `follow` soon (the server is stopping: its streams must let go)."""
        self._closed = True
        self.signal.wake()

    def position(self, caller: Caller) -> int:
        """Return where a reader starting now begins: after the newest logged change."""
        require(caller, Permission.READ_ENTITIES)
        return self.store.last_change_seq()

    def resumable(self, position: int) -> bool:
        """Tell whether the log still holds every change after `position`.

        The pruner removes the oldest changes first, so the log holds every change after a
        position as long as it still holds the change at that position. 0 is the start of the
        log: a reader that began while the log was empty.
        """
        if position <= 0:
            return True
        first = self.store.change_heads_since(position - 1, 1)
        return bool(first) and first[0].seq == position

    def read(self, caller: Caller, after: int, types: Collection[str] | None = None) -> FeedBatch:
        """Return the changes after `after` the caller may see; `types` are local type names."""
        require(caller, Permission.READ_ENTITIES)
        heads = self.store.change_heads_since(after, self.batch)
        if not heads:
            return FeedBatch(after)
        visibility = self.access.visibility(caller)
        wanted = [
            head.seq
            for head in heads
            if head.tenant == caller.tenant
            and visibility.admits(head.entity_id, head.types)
            and _typed(head, types)
        ]
        latest: dict[str, ChangeRecord] = {}
        for change in self.store.changes_at(wanted) if wanted else ():
            latest.pop(change.entity.id, None)  # the newest one goes last, in log order
            latest[change.entity.id] = change
        changes = list(latest.values())
        self.access.record_reads(
            caller, "entity.stream", [c.entity for c in changes if c.kind != ChangeKind.DELETE]
        )
        return FeedBatch(heads[-1].seq, changes, full=len(heads) >= self.batch)

    async def follow(
        self,
        caller: Caller,
        after: int,
        types: Collection[str] | None = None,
        *,
        heartbeat: float = 15.0,
    ) -> AsyncGenerator[FeedBatch, None]:
        """Yield batches of changes after `after` as they commit, until the feed closes.

        A batch comes when there are changes, and at least every `heartbeat` seconds (maybe
        empty, with the position reached). If the log lost changes after `after`, the only
        batch is one marked `lost`.
        """
        if not await asyncio.to_thread(self.resumable, after):
            yield FeedBatch(after, lost=True)
            return
        loop = asyncio.get_running_loop()
        position = after
        last_yield = loop.time()
        with self.signal.watch() as committed:
            while not self._closed:
                committed.clear()
                batch = await asyncio.to_thread(self.read, caller, position, types)
                if self._closed:
                    return
                position = batch.position
                if batch.changes or loop.time() - last_yield >= heartbeat:
                    yield batch
                    last_yield = loop.time()
                if batch.full:
                    continue
                await asyncio.sleep(self.min_interval)
                wait = min(self.poll_interval, heartbeat - (loop.time() - last_yield))
                with suppress(TimeoutError):
                    await asyncio.wait_for(committed.wait(), timeout=max(wait, 0.0))


def _typed(head: ChangeHead, types: Collection[str] | None) -> bool:
    return types is None or any(local_name(t) in types for t in head.types)
