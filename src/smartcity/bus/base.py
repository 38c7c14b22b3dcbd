"""The EventBus Protocol: every backend (in-process, NATS JetStream) keeps this contract.

Subjects are dot-separated tokens (`ingest.readings.<tenant>`); a consumer names a filter where
`*` matches one token and `>` the rest. Consumers with the same `group` share one stream of
messages (each message goes to one of them); different groups each get every message.

Delivery is at least once: a message is delivered again until it is acknowledged, after
`ack_wait` seconds or when `nak` asks for it, up to `max_deliver` deliveries; `term` gives up on
one at once. `publish` returns only when the bus holds the message (for NATS: the JetStream
acknowledgement), and a `msg_id` seen before within the bus's duplicate window is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish."""

    subject: str
    data: bytes
    msg_id: str | None = None
    """Deduplication id: a second message with the same id is dropped by the bus."""
    headers: Mapping[str, str] = field(default_factory=dict)


class Received(Protocol):
    """One delivered message; it must be acknowledged, refused (nak) or terminated."""

    @property
    def subject(self) -> str: ...

    @property
    def data(self) -> bytes: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def msg_id(self) -> str | None: ...

    @property
    def delivery_count(self) -> int:
        """1 on the first delivery, 2 on the first redelivery, ..."""
        ...

    async def ack(self) -> None:
        """Done with it: never deliver it again."""
        ...

    async def nak(self, delay: float | None = None) -> None:
        """Not done: deliver it again (after `delay` seconds if given)."""
        ...

    async def term(self) -> None:
        """Give up on it: never deliver it again (the consumer keeps a dead letter itself)."""
        ...


class Consumer(Protocol):
    """A durable member of one consumer group on one subject filter."""

    async def fetch(self, max_messages: int, wait: float) -> list[Received]:
        """Wait up to `wait` seconds for messages; return what arrived (maybe nothing)."""
        ...

    async def close(self) -> None:
        """Leave the group; unacknowledged messages go to the other members."""
        ...


class EventBus(Protocol):
    """Publish facts; consume them in groups, durably where the backend is durable."""

    name: str
    """Which backend: 'memory' or 'nats'."""

    async def start(self) -> None:
        """Connect and create what the backend needs (streams); safe to call twice."""
        ...

    async def close(self) -> None:
        """Disconnect; publishing after this is an error."""
        ...

    async def publish(
        self,
        subject: str,
        data: bytes,
        *,
        msg_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Publish one message; return once the bus holds it."""
        ...

    async def publish_many(self, messages: Sequence[Outgoing]) -> None:
        """Publish many messages (pipelined where the backend can); return once it holds all."""
        ...

    async def consumer(
        self,
        subjects: str,
        group: str,
        *,
        ack_wait: float = 30.0,
        max_deliver: int = 5,
    ) -> Consumer:
        """Join consumer group `group` on the subject filter `subjects`."""
        ...
