"""The ingest writer: readings from the bus stored through the broker, in batches.

It consumes `ingest.readings.>` as the consumer group `ingest-writer` (several writers, in one
process or several, share the readings), groups what arrived by tenant and stores it with
`EntityService.batch_upsert(mode="update")` as the platform itself. A message is acknowledged
only once the upsert that holds it has committed, so a writer that dies loses nothing; delivery
is at least once, so a reading whose acknowledgement was lost (the writer died just after the
commit) is stored a second time, and one delivered again after newer readings of its entity were
stored (another writer took over) overwrites them until the next reading comes.

What goes wrong, and what happens then:
- a message that is not a reading, or a reading the broker refuses (bad attribute, unknown
  @context): it is kept as a dead letter with the reason, and the bus is told to drop it;
- a database failure (not the reading's fault): the readings are delivered again after a
  back-off. A reading delivered more than `isolate_after` times is written in an upsert of its
  own, so that one reading the database keeps refusing cannot hold back the others: when the
  readings around it are stored and it still fails, it becomes a dead letter; so does a reading
  still failing at its last delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import structlog

from smartcity.auth.principal import Caller
from smartcity.broker.contexts import ActiveContext, ContextResolver
from smartcity.broker.service import BatchResult, EntityService
from smartcity.bus.base import Consumer, EventBus, Received
from smartcity.core.clock import Clock, isoformat
from smartcity.core.errors import LdContextNotAvailable, SmartCityError
from smartcity.ingest.ports import DeadLetterSink, RawInput, Rejected
from smartcity.ingest.readings import SUBJECT_PREFIX, Reading

log = structlog.get_logger(__name__)

READINGS_FILTER: Final = f"{SUBJECT_PREFIX}.>"
GROUP: Final = "ingest-writer"


@dataclass(frozen=True, slots=True)
class WriterOptions:
    """How the writer batches and retries."""

    batch_size: int = 500
    batch_wait: float = 0.05
    """Seconds to wait for a batch to fill once its first reading is there."""
    idle_wait: float = 0.5
    """Seconds one fetch waits when nothing arrives (how soon a stop is noticed)."""
    ack_wait: float = 30.0
    max_deliver: int = 1000
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    isolate_after: int = 2
    """Deliveries after which a reading is written in an upsert of its own."""


@dataclass
class WriterCounts:
    """What the writer did since it was built."""

    stored: int = 0
    dead_letters: int = 0
    retried: int = 0
    batches: int = 0


@dataclass(slots=True)
class _Item:
    message: Received
    reading: Reading
    entity: dict[str, Any]

    @property
    def key(self) -> str:
        """The entity id the broker reports this reading's outcome under."""
        return _key(self.entity)


@dataclass(slots=True)
class _Upsert:
    tenant: str
    items: list[_Item]
    isolated: bool = False


@dataclass(slots=True)
class _Failure:
    items: list[_Item]
    error: Exception


@dataclass(slots=True)
class _Pass:
    """What one pass over a batch found out."""

    stored_any: bool = False
    failed_alone: list[_Failure] = field(default_factory=list)


class IngestWriter:
    """Store the readings published on the bus (a Worker; see the module)."""

    name = "ingest-writer"

    def __init__(
        self,
        bus: EventBus,
        entities: EntityService,
        contexts: ContextResolver,
        dead_letters: DeadLetterSink,
        clock: Clock,
        options: WriterOptions | None = None,
        *,
        subjects: str = READINGS_FILTER,
        group: str = GROUP,
        on_stored: Callable[[list[Reading]], None] | None = None,
    ) -> None:
        self.bus = bus
        self.entities = entities
        self.contexts = contexts
        self.dead_letters = dead_letters
        self.clock = clock
        self.options = options or WriterOptions()
        self.subjects = subjects
        """The readings this writer consumes: all of them, or a partition (one tenant's)."""
        self.group = group
        self.on_stored = on_stored
        """Called with the readings of each committed upsert (metrics, benchmarks)."""
        self.counts = WriterCounts()

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch, store and acknowledge batches until `stop` is set."""
        options = self.options
        consumer = await self.bus.consumer(
            self.subjects, self.group, ack_wait=options.ack_wait, max_deliver=options.max_deliver
        )
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                collecting = asyncio.ensure_future(self._collect(consumer))
                await asyncio.wait({collecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not collecting.done():
                    # Stopping while waiting for readings: whatever this member holds goes
                    # back to the group when it leaves (below).
                    collecting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await collecting
                    break
                messages = collecting.result()
                if messages:
                    await self.write(messages)
        finally:
            stopping.cancel()
            await consumer.close()

    async def _collect(self, consumer: Consumer) -> list[Received]:
        """Wait for a first message, then up to `batch_wait` for the batch to fill."""
        size = self.options.batch_size
        messages = await consumer.fetch(size, self.options.idle_wait)
        if not messages:
            return messages
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.batch_wait
        while len(messages) < size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            more = await consumer.fetch(size - len(messages), remaining)
            if not more:
                break
            messages.extend(more)
        return messages

    async def write(self, messages: Sequence[Received]) -> None:
        """Store one batch; settle every message (ack, nak or term) according to its outcome."""
        self.counts.batches += 1
        items, unreadable = self._decode(messages)
        if unreadable:
            await self._reject(unreadable)
        upserts = self._plan(items)
        outcome = _Pass()
        for index, upsert in enumerate(upserts):
            try:
                result = await asyncio.to_thread(self._upsert, upsert)
            except Exception as error:  # the database (or the broker as a whole) failed
                if upsert.isolated:
                    outcome.failed_alone.append(_Failure(upsert.items, error))
                    continue
                log.warning(
                    "ingest batch not stored; retrying later",
                    error=f"{type(error).__name__}: {error}",
                    readings=sum(len(u.items) for u in upserts[index:]),
                )
                later = [item for u in upserts[index:] if not u.isolated for item in u.items]
                await self._retry_later(later, error)
                break
            outcome.stored_any = True
            await self._settle(upsert.items, result)
        for failure in outcome.failed_alone:
            await self._failed_alone(failure, outcome.stored_any)

    # -- steps ------------------------------------------------------------------------------

    def _decode(self, messages: Sequence[Received]) -> tuple[list[_Item], list[_Rejection]]:
        items: list[_Item] = []
        unreadable: list[_Rejection] = []
        for message in messages:
            try:
                reading = Reading.from_bytes(message.data)
                entity = reading.entity()
            except ValueError as error:
                rejected = Rejected("unparsable", f"not a reading: {error}", stage="store")
                unreadable.append(_Rejection(message, self._raw_message(message), rejected))
                continue
            items.append(_Item(message, reading, entity))
        return items, unreadable

    def _plan(self, items: list[_Item]) -> list[_Upsert]:
        """Order the upserts: readings delivered often alone first, then rounds per tenant.

        Round n holds the n-th reading of each entity, so that two readings of one entity both
        reach the history (one upsert records an entity once) and in the order they came.
        """
        alone = [
            _Upsert(item.reading.tenant, [item], isolated=True)
            for item in items
            if item.message.delivery_count > self.options.isolate_after
        ]
        rounds: dict[str, list[list[_Item]]] = defaultdict(list)
        seen: dict[tuple[str, str], int] = defaultdict(int)
        for item in items:
            if item.message.delivery_count > self.options.isolate_after:
                continue
            tenant = item.reading.tenant
            position = seen[tenant, item.key]
            seen[tenant, item.key] += 1
            tenant_rounds = rounds[tenant]
            if position == len(tenant_rounds):
                tenant_rounds.append([])
            tenant_rounds[position].append(item)
        together = [
            _Upsert(tenant, round_items)
            for tenant, tenant_rounds in rounds.items()
            for round_items in tenant_rounds
        ]
        return alone + together

    def _upsert(self, upsert: _Upsert) -> BatchResult:
        """Store one upsert (in a worker thread: the database and @context loading block)."""
        return self._store(upsert.tenant, [(item.reading, item.entity) for item in upsert.items])

    def _store(self, tenant: str, pairs: list[tuple[Reading, dict[str, Any]]]) -> BatchResult:
        contexts = {_key(entity): reading.context for reading, entity in pairs}

        def context_of(raw: Any) -> ActiveContext:
            urls = contexts.get(_key(raw) if isinstance(raw, dict) else "") or []
            value = urls[0] if len(urls) == 1 else (urls or None)
            # `check` refuses a @context that may never be fetched (BadRequestData: a dead
            # letter) and reports one that failed to load as unavailable (tried again later).
            return self.contexts.cached(value) or self.contexts.check(value)

        body = [entity for _, entity in pairs]
        caller = Caller.system(tenant)
        result, _created = self.entities.batch_upsert(caller, body, context_of, mode="update")
        return result

    async def replay(self, raw: RawInput) -> str:
        """Store a dead letter of this writer again (a replayer of the dead-letter service).

        Raise Rejected if it is still not a reading or the broker still refuses it.
        """
        try:
            reading = Reading.from_bytes(raw.payload)
            entity = reading.entity()
        except ValueError as error:
            raise Rejected("unparsable", f"not a reading: {error}", stage="store") from error
        result = await asyncio.to_thread(self._store, reading.tenant, [(reading, entity)])
        for failure in result.errors:
            message = f"the broker refused entity {failure.entity_id!r}: {failure.error.detail}"
            raise Rejected("broker", message, stage="store")
        return f"stored {reading.entity_id}"

    async def _settle(self, items: list[_Item], result: BatchResult) -> None:
        """Acknowledge what was stored; refused readings become dead letters."""
        errors = {error.entity_id: error.error for error in result.errors}
        succeeded = set(result.success)
        stored: list[_Item] = []
        refused: list[_Rejection] = []
        unavailable: list[_Item] = []
        for item in items:
            error = errors.get(item.key)
            if error is None and item.key in succeeded:
                stored.append(item)
            elif isinstance(error, LdContextNotAvailable):
                unavailable.append(item)  # the @context server may answer later
            else:
                detail = error.detail if error is not None else "not stored, for no reason given"
                message = f"the broker refused entity {item.key!r}: {detail}"
                rejected = Rejected("broker", message, stage="store")
                refused.append(_Rejection(item.message, self._raw_reading(item), rejected))
        for item in stored:
            await item.message.ack()
        self.counts.stored += len(stored)
        if stored and self.on_stored is not None:
            self.on_stored([item.reading for item in stored])
        if refused:
            await self._reject(refused)
        if unavailable:
            await self._retry_later(unavailable, errors[unavailable[0].key])

    async def _failed_alone(self, failure: _Failure, others_stored: bool) -> None:
        """A reading written alone failed: refused if the broker said so or others got in."""
        (item,) = failure.items
        error = failure.error
        if isinstance(error, SmartCityError) or others_stored:
            reason = error.detail if isinstance(error, SmartCityError) else str(error)
            message = f"the broker could not store entity {item.key!r}: {reason}"
            rejected = Rejected("broker", message, stage="store")
            await self._reject([_Rejection(item.message, self._raw_reading(item), rejected)])
        else:
            await self._retry_later([item], error)

    async def _retry_later(self, items: list[_Item], error: Exception) -> None:
        """Nak with a back-off; a reading at its last delivery becomes a dead letter instead."""
        last: list[_Rejection] = []
        for item in items:
            count = item.message.delivery_count
            if count >= self.options.max_deliver:
                message = f"not stored after {count} deliveries: {type(error).__name__}: {error}"
                rejected = Rejected("store-failed", message, stage="store")
                last.append(_Rejection(item.message, self._raw_reading(item), rejected))
                continue
            await item.message.nak(delay=self._backoff(count))
            self.counts.retried += 1
        if last:
            await self._reject(last)

    async def _reject(self, rejections: list[_Rejection]) -> None:
        """Record dead letters in one transaction, then drop the messages from the bus."""
        try:
            await asyncio.to_thread(
                self.dead_letters.record_many, [(r.raw, r.rejected) for r in rejections]
            )
        except Exception as error:  # the dead-letter store failed: keep them on the bus
            log.warning(
                "dead letters not recorded; delivering again later",
                error=f"{type(error).__name__}: {error}",
                messages=len(rejections),
            )
            for rejection in rejections:
                await rejection.message.nak(delay=self._backoff(rejection.message.delivery_count))
            self.counts.retried += len(rejections)
            return
        for rejection in rejections:
            await rejection.message.term()
        self.counts.dead_letters += len(rejections)
        log.info(
            "readings refused into the dead letters",
            count=len(rejections),
            reasons=sorted({r.rejected.reason for r in rejections}),
        )

    def _backoff(self, delivery_count: int) -> float:
        options = self.options
        return float(min(options.backoff_cap, options.backoff_base * 2 ** (delivery_count - 1)))

    def _raw_message(self, message: Received) -> RawInput:
        tenant = message.subject.rsplit(".", 1)[-1]  # ingest.readings.<tenant>
        return RawInput(
            tenant="" if tenant == "_" else tenant,
            source="writer",
            payload=message.data,
            received_at=isoformat(self.clock.now()),
            topic=message.subject,
            content_type="application/json",
            meta={"msgId": message.msg_id, "deliveries": message.delivery_count},
        )

    def _raw_reading(self, item: _Item) -> RawInput:
        reading = item.reading
        return RawInput(
            tenant=reading.tenant,
            source="writer",
            payload=item.message.data,
            received_at=reading.received_at,
            device_id=reading.device_id,
            topic=item.message.subject,
            content_type="application/json",
            meta={
                "readingId": reading.id,
                "readingSource": reading.source,
                "entityId": reading.entity_id,
                "entityType": reading.entity_type,
                "deliveries": item.message.delivery_count,
            },
        )


def _key(entity: dict[str, Any]) -> str:
    value = entity.get("id")
    return value if isinstance(value, str) else ""


@dataclass(slots=True)
class _Rejection:
    message: Received
    raw: RawInput
    rejected: Rejected
