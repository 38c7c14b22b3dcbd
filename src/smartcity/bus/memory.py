"""The in-process bus: the EventBus contract inside one Python process, the default backend.

Everything lives in this process's memory: messages, consumer groups and their positions are
lost when the process stops, so a reading published but not yet stored by the ingest writer is
lost with it. Deployments that must lose nothing across a restart (or run several processes)
use the NATS JetStream backend (`bus_url = "nats://..."`), which keeps the same contract durably.

Messages are kept until every consumer group has acknowledged them (or up to `max_messages`,
the oldest dropped first); a group that joins later starts at the oldest message still kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import count
from types import MappingProxyType

import structlog

from smartcity.bus.base import Outgoing, Received
from smartcity.bus.subjects import check_filter, check_subject, matches_any, subject_matches

log = structlog.get_logger(__name__)

_PRUNE_EVERY = 1024
"""Settlements between two passes that drop the messages every group is done with."""


@dataclass(frozen=True, slots=True)
class _Stored:
    seq: int
    subject: str
    data: bytes
    msg_id: str | None
    headers: Mapping[str, str]


@dataclass(slots=True)
class _Delivery:
    """A message delivered and not settled: who holds it, and when it is due again."""

    count: int
    due: float
    member: int | None


@dataclass(eq=False)
class _Group:
    """One consumer group: its filter, position and deliveries waiting for a settlement."""

    name: str
    subjects: str
    ack_wait: float
    max_deliver: int
    cursor: int
    pending: dict[int, _Delivery] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def floor(self) -> int:
        """The lowest sequence this group may still need."""
        return min(self.pending, default=self.cursor)

    def next_due(self) -> float | None:
        """When the next unsettled delivery may be delivered again."""
        return min((delivery.due for delivery in self.pending.values()), default=None)


class _MemoryReceived:
    """One delivery of a message to one member of a group."""

    __slots__ = ("_bus", "_count", "_group", "_message", "_settled")

    def __init__(self, bus: InProcessBus, group: _Group, message: _Stored, delivery: int) -> None:
        self._bus = bus
        self._group = group
        self._message = message
        self._count = delivery
        self._settled = False

    @property
    def subject(self) -> str:
        return self._message.subject

    @property
    def data(self) -> bytes:
        return self._message.data

    @property
    def headers(self) -> Mapping[str, str]:
        return self._message.headers

    @property
    def msg_id(self) -> str | None:
        return self._message.msg_id

    @property
    def delivery_count(self) -> int:
        return self._count

    def _current(self) -> _Delivery | None:
        """The group's record of this delivery, unless it was settled or delivered again."""
        delivery = self._group.pending.get(self._message.seq)
        if self._settled or delivery is None or delivery.count != self._count:
            return None
        return delivery

    async def ack(self) -> None:
        """Done with it: never deliver it again."""
        if not self._settled:
            # Even a late acknowledgement (after a redelivery) means the work was done.
            self._group.pending.pop(self._message.seq, None)
            self._settled = True
            self._bus._settled()

    async def nak(self, delay: float | None = None) -> None:
        """Deliver it again, to any member, after `delay` seconds (at once without one)."""
        delivery = self._current()
        if delivery is None:
            return
        self._settled = True
        if delivery.count >= self._group.max_deliver:
            del self._group.pending[self._message.seq]
            log.warning(
                "bus message dropped after its last delivery",
                group=self._group.name,
                subject=self.subject,
                deliveries=delivery.count,
            )
            return
        delivery.due = time.monotonic() + max(delay or 0.0, 0.0)
        delivery.member = None
        self._group.wake.set()

    async def term(self) -> None:
        """Give up on it: never deliver it again."""
        if self._current() is not None:
            del self._group.pending[self._message.seq]
            self._settled = True
            self._bus._settled()


class _MemoryConsumer:
    """One member of a consumer group of an InProcessBus."""

    def __init__(self, bus: InProcessBus, group: _Group, member: int) -> None:
        self._bus = bus
        self._group = group
        self._member = member
        self._closed = False

    async def fetch(self, max_messages: int, wait: float) -> list[Received]:
        """Wait up to `wait` seconds for messages; return what arrived (maybe nothing)."""
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            if self._closed or self._bus._closed:
                raise RuntimeError("fetch from a closed consumer or bus")
            self._group.wake.clear()
            taken = self._bus._take(self._group, self._member, max_messages)
            now = time.monotonic()
            if taken or now >= deadline:
                return taken
            timeout = deadline - now
            due = self._group.next_due()
            if due is not None:
                timeout = min(timeout, max(due - now, 0.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._group.wake.wait(), timeout=timeout)

    async def close(self) -> None:
        """Leave the group; what this member held unsettled goes to the others at once."""
        if self._closed:
            return
        self._closed = True
        now = time.monotonic()
        for delivery in self._group.pending.values():
            if delivery.member == self._member:
                delivery.member = None
                delivery.due = now
        self._group.wake.set()


class InProcessBus:
    """The EventBus in this process's memory (not durable across a restart; see the module)."""

    name = "memory"

    def __init__(
        self,
        subjects: Sequence[str] = ("ingest.>", "events.>", "operations.>"),
        *,
        duplicate_window: float = 120.0,
        max_messages: int = 1_000_000,
    ) -> None:
        for pattern in subjects:
            check_filter(pattern)
        self.subjects = list(subjects)
        self.duplicate_window = duplicate_window
        self.max_messages = max_messages
        self._messages: dict[int, _Stored] = {}
        self._first = 1
        self._next = 1
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._groups: dict[str, _Group] = {}
        self._members = count(1)
        self._closed = False
        self._settlements = 0

    async def start(self) -> None:
        """Nothing to connect to; (re)opens the bus for publishing."""
        self._closed = False

    async def close(self) -> None:
        """Refuse further publishing and fetching (a waiting fetch raises RuntimeError)."""
        self._closed = True
        for group in self._groups.values():
            group.wake.set()

    async def publish(
        self,
        subject: str,
        data: bytes,
        *,
        msg_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Keep one message (dropped if its msg_id was seen within the duplicate window)."""
        self._append(Outgoing(subject, data, msg_id, headers or {}))
        self._wake_all()

    async def publish_many(self, messages: Sequence[Outgoing]) -> None:
        """Keep many messages, in order."""
        for message in messages:
            self._append(message)
        self._wake_all()

    async def consumer(
        self,
        subjects: str,
        group: str,
        *,
        ack_wait: float = 30.0,
        max_deliver: int = 5,
    ) -> _MemoryConsumer:
        """Join consumer group `group` (created at the oldest kept message if it is new)."""
        check_filter(subjects)
        if ack_wait <= 0 or max_deliver < 1:
            raise ValueError("ack_wait must be positive and max_deliver at least 1")
        existing = self._groups.get(group)
        if existing is None:
            existing = _Group(group, subjects, ack_wait, max_deliver, cursor=self._first)
            self._groups[group] = existing
        elif existing.subjects != subjects:
            raise ValueError(
                f"consumer group {group!r} consumes {existing.subjects!r}, not {subjects!r}"
            )
        else:
            existing.ack_wait, existing.max_deliver = ack_wait, max_deliver
        return _MemoryConsumer(self, existing, next(self._members))

    # -- inside the bus ---------------------------------------------------------------------

    def _append(self, message: Outgoing) -> None:
        if self._closed:
            raise RuntimeError("the bus is closed")
        check_subject(message.subject)
        if not matches_any(self.subjects, message.subject):
            raise ValueError(
                f"no stream holds subject {message.subject!r} (the bus holds {self.subjects})"
            )
        now = time.monotonic()
        while self._seen and next(iter(self._seen.values())) <= now:
            self._seen.popitem(last=False)
        if message.msg_id is not None:
            if message.msg_id in self._seen:
                return
            self._seen[message.msg_id] = now + self.duplicate_window
        seq = self._next
        self._next += 1
        headers = MappingProxyType(dict(message.headers))
        self._messages[seq] = _Stored(seq, message.subject, message.data, message.msg_id, headers)
        if len(self._messages) > self.max_messages:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        while len(self._messages) > self.max_messages:
            self._messages.pop(self._first, None)
            self._first += 1
        log.warning("in-process bus full: oldest messages dropped", max_messages=self.max_messages)

    def _wake_all(self) -> None:
        for group in self._groups.values():
            group.wake.set()

    def _take(self, group: _Group, member: int, limit: int) -> list[Received]:
        """Deliver up to `limit` messages: those due again first, then new ones."""
        now = time.monotonic()
        taken: list[Received] = []
        for seq in sorted(seq for seq, d in group.pending.items() if d.due <= now):
            if len(taken) >= limit:
                break
            delivery = group.pending[seq]
            message = self._messages.get(seq)
            if message is None or delivery.count >= group.max_deliver:
                del group.pending[seq]  # dropped as too old, or delivered max_deliver times
                log.warning(
                    "bus message dropped after its last delivery",
                    group=group.name,
                    deliveries=delivery.count,
                )
                continue
            delivery.count += 1
            delivery.due = now + group.ack_wait
            delivery.member = member
            taken.append(_MemoryReceived(self, group, message, delivery.count))
        while len(taken) < limit and group.cursor < self._next:
            seq = max(group.cursor, self._first)
            group.cursor = seq + 1
            message = self._messages.get(seq)
            if message is None or not subject_matches(group.subjects, message.subject):
                continue
            group.pending[seq] = _Delivery(1, now + group.ack_wait, member)
            taken.append(_MemoryReceived(self, group, message, 1))
        return taken

    def _settled(self) -> None:
        """Count a settlement; now and then drop the messages every group is done with."""
        self._settlements += 1
        if self._settlements % _PRUNE_EVERY == 0:
            self._prune()

    def _prune(self) -> None:
        if not self._groups:
            return
        floor = min(group.floor() for group in self._groups.values())
        while self._first < floor:
            self._messages.pop(self._first, None)
            self._first += 1
