"""One partition of the rules, run by the worker that holds its lease.

The rules are split into partitions by a stable hash of tenant and rule id, so every rule sees
every change it needs (whatever entities, zones or relations it joins) and the state of one rule
lives in one place. A partition's owner:

1. builds the engine for its rules and restores its checkpoint (snapshot + the change-log
   sequence number it covers), or, the first time, primes the engine with the current entities
   and starts at the head of the log;
2. catches up from the change log (kept for it: the pruner knows the oldest checkpoint), so the
   changes a dead owner had handled but not checkpointed are handled again — and their firings,
   recorded under their ids, are not acted upon twice;
3. consumes `entity.changed.>` in its own consumer group (`rules-p<n>`), skipping what its
   position covers, acknowledging each change once its firings' actions ended;
4. moves the engine's time on a timer, checkpoints every N changes or T seconds, renews its
   lease, and rebuilds the engine (keeping its state) when the stored rules change.

A checkpoint is written only while the lease holds (fenced by its epoch); a worker that finds
its lease gone stops the partition at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass

import structlog

from smartcity.broker.change_events import (
    RELAY_POSITION,
    SEQ_HEADER,
    SUBJECT_FILTER,
    TENANT_HEADER,
    change_context,
    decode_change,
)
from smartcity.bus.base import Consumer, EventBus, Received
from smartcity.core.causality import Context
from smartcity.core.clock import Clock, isoformat
from smartcity.core.entity import StoredEntity
from smartcity.rules.actions import ActionRunner
from smartcity.rules.checkpoints import Checkpoint, SqlRuleState
from smartcity.rules.firing import Firing, RuleEngine
from smartcity.rules.plug import EnginePlug
from smartcity.rules.store import RuleRecord, SqlRuleStore
from smartcity.storage.base import ChangeRecord, EntityQuery, EntityStore
from smartcity.storage.coordination import SqlCoordination

log = structlog.get_logger(__name__)
EMPTY_POLL = 0.5
"""Seconds between two looks at the relay's position by a partition without rules."""


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """How the engine workers run (from the `rules_*` settings)."""

    partitions: int = 4
    lease_seconds: float = 15.0
    checkpoint_events: int = 1000
    checkpoint_seconds: float = 10.0
    advance_interval: float = 1.0
    fetch_batch: int = 500
    fetch_wait: float = 0.05
    """NATS waits this long for a batch to fill once a first change arrived: it bounds latency."""
    ack_wait: float = 60.0
    max_deliver: int = 100
    reload_interval: float = 2.0
    catch_up_batch: int = 500
    group_prefix: str = "rules"
    changes_filter: str = SUBJECT_FILTER
    """The subjects the relay publishes changes on."""


def partition_of(tenant: str, rule_id: str, partitions: int) -> int:
    """Return the partition of a rule (stable across processes and restarts)."""
    digest = hashlib.sha256(f"{tenant}\n{rule_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % partitions


def lease_name(partition: int) -> str:
    """Return the name of a partition's lease."""
    return f"rules.partition.{partition}"


@dataclass(slots=True)
class Services:
    """What a partition's owner works with."""

    store: EntityStore
    rules: SqlRuleStore
    state: SqlRuleState
    coordination: SqlCoordination
    bus: EventBus
    plug: EnginePlug
    actions: ActionRunner
    clock: Clock
    database: str
    """The database's id (the relay's message ids and the changes' contexts use it)."""


class PartitionRunner:
    """Own one partition while its lease holds (see the module)."""

    def __init__(
        self, partition: int, epoch: int, holder: str, services: Services, options: RuntimeOptions
    ) -> None:
        self.partition = partition
        self.epoch = epoch
        self.holder = holder
        self.services = services
        self.options = options
        self.position = 0
        self.lost = False
        self.handled = 0
        self.fired = 0
        self._engine: RuleEngine | None = None
        self._metrics_before: dict[tuple[str, str], dict[str, float]] = {}
        """Rule counters of the engines before this one (saved, or folded in at a rebuild)."""
        self._tenants: frozenset[str] = frozenset()
        self._revision = -1
        self._unsaved = 0
        self._saved_at = time.monotonic()
        self._renewed_at = time.monotonic()
        self._advanced_at = time.monotonic()
        self._reloaded_at = time.monotonic()

    @property
    def engine(self) -> RuleEngine:
        """Return the partition's engine (after `start`)."""
        if self._engine is None:
            raise RuntimeError("the partition has not started")
        return self._engine

    # -- starting -------------------------------------------------------------------------------

    def _my_rules(self) -> list[RuleRecord]:
        count = self.options.partitions
        return [
            rule
            for rule in self.services.rules.enabled()
            if partition_of(rule.tenant, rule.id, count) == self.partition
        ]

    def _entities(self, tenant: str) -> Iterator[StoredEntity]:
        offset, page = 0, 1000
        while True:
            found = self.services.store.query(EntityQuery(tenant=tenant, limit=page, offset=offset))
            yield from found.entities
            if len(found.entities) < page:
                return
            offset += page

    def _build(self) -> None:
        """Build the engine for the current rules; restore or prime its state."""
        services = self.services
        self._revision = services.rules.revision()
        rules = self._my_rules()
        self._tenants = frozenset(rule.tenant for rule in rules)
        self._engine = services.plug.build(rules)
        checkpoint = services.state.checkpoint(self.partition)
        self._metrics_before = services.state.partition_metrics(self.partition)
        if checkpoint is not None:
            self._engine.restore(checkpoint.state)
            self.position = checkpoint.seq
            return
        self.position = services.store.last_change_seq()
        for tenant in sorted(self._tenants):
            self._engine.prime(tenant, self._entities(tenant))

    def _rebuild(self) -> None:
        """Rules changed: a new engine for them, with the old one's state (and new tenants')."""
        old_state, old_tenants = self.engine.snapshot(), self._tenants
        self._metrics_before = self.rule_metrics()
        self._revision = self.services.rules.revision()
        rules = self._my_rules()
        self._tenants = frozenset(rule.tenant for rule in rules)
        engine = self.services.plug.build(rules)
        engine.restore(old_state)
        for tenant in sorted(self._tenants - old_tenants):
            engine.prime(tenant, self._entities(tenant))
        self._engine = engine
        log.info("rules reloaded", partition=self.partition, rules=len(rules))

    async def start(self) -> None:
        """Build the engine, restore its checkpoint and catch up from the change log."""
        await asyncio.to_thread(self._build)
        caught_up = await self.catch_up()
        # From here the engine hears the bus: the time since the last change it handled was
        # the partition's (or the platform's) downtime, not each device's silence.
        self.engine.resume(self.services.clock.now())
        log.info(
            "rule partition taken",
            partition=self.partition,
            epoch=self.epoch,
            position=self.position,
            caught_up=caught_up,
        )
        await self.checkpoint()

    async def catch_up(self) -> int:
        """Handle what the change log holds after the position; return how many changes.

        Only the changes of tenants with rules here are read whole.
        """
        store, count = self.services.store, 0
        while not self.lost:
            heads = await asyncio.to_thread(
                store.change_heads_since, self.position, self.options.catch_up_batch
            )
            wanted = [head.seq for head in heads if head.tenant in self._tenants]
            changes = await asyncio.to_thread(store.changes_at, wanted) if wanted else []
            for change in changes:
                await self.handle(change, change_context(self.services.database, change.seq))
            if heads and not self.lost:
                self.position = max(self.position, heads[-1].seq)
            count += len(heads)
            if len(heads) < self.options.catch_up_batch:
                return count
        return count

    # -- handling -------------------------------------------------------------------------------

    async def handle(self, change: ChangeRecord, parent: Context | None) -> None:
        """Feed one change to the engine and act on what fired (skip what the position covers)."""
        if change.seq <= self.position or self.lost:
            return
        if change.tenant in self._tenants:
            try:
                firings = self.engine.process(change)
            except Exception:  # one odd change must not stop the partition
                log.exception("rule engine failed on a change", seq=change.seq)
                firings = []
            await self._act(firings, parent)
        self.position = change.seq
        self.handled += 1
        self._unsaved += 1

    async def _act(self, firings: list[Firing], parent: Context | None) -> None:
        for firing in firings:
            await self.services.actions.execute(firing, parent)
            self.fired += 1

    async def message(self, received: Received) -> None:
        """Handle one bus message; acknowledge it once its firings' actions ended."""
        if time.monotonic() - self._renewed_at > self.options.lease_seconds * 2 / 3:
            await self.renew(force=True)  # this process stalled: is the partition still ours?
        if self.lost:
            await received.nak()
            return
        headers = received.headers
        seq, tenant = headers.get(SEQ_HEADER, ""), headers.get(TENANT_HEADER)
        if tenant is not None and tenant not in self._tenants and seq.isdigit():
            # No rule of this partition reads the tenant: skip it without decoding it.
            self.position = max(self.position, int(seq))
            await received.ack()
            return
        try:
            change = decode_change(received.data)
        except ValueError as error:
            log.error("not an entity-change message: dropped", error=str(error))
            await received.term()
            return
        await self.handle(change, Context.from_headers(headers))
        await received.ack()

    async def advance(self) -> None:
        """Move the engine's time to now and act on what fired."""
        self._advanced_at = time.monotonic()
        try:
            firings = self.engine.advance(self.services.clock.now())
        except Exception:
            log.exception("rule engine failed to advance", partition=self.partition)
            return
        if firings:
            self._unsaved += 1
        await self._act(firings, None)

    # -- upkeep ---------------------------------------------------------------------------------

    def rule_metrics(self) -> dict[tuple[str, str], dict[str, float]]:
        """Return each rule's counters since it first ran, across restarts and reloads."""
        totals = {key: dict(counters) for key, counters in self._metrics_before.items()}
        for key, counters in self.engine.rule_metrics().items():
            total = totals.setdefault(key, {})
            for name, value in counters.items():
                total[name] = total.get(name, 0) + value
        return totals

    async def checkpoint(self) -> bool:
        """Save the engine's state and position (if the lease still holds); return whether."""
        checkpoint = Checkpoint(
            self.partition,
            self.position,
            self.epoch,
            self.engine.snapshot(),
            isoformat(self.services.clock.now()),
        )
        saved = await asyncio.to_thread(
            self.services.state.save_checkpoint,
            checkpoint,
            lease=lease_name(self.partition),
            holder=self.holder,
            metrics=self.rule_metrics(),
        )
        if not saved:
            self._lose("the lease was gone when checkpointing")
            return False
        self._unsaved = 0
        self._saved_at = time.monotonic()
        return True

    def _lose(self, why: str) -> None:
        if not self.lost:
            log.warning("rule partition lost", partition=self.partition, reason=why)
        self.lost = True

    async def renew(self, *, force: bool = False) -> None:
        """Renew the lease if a third of its time has passed (or `force`); note its loss."""
        now = time.monotonic()
        if self.lost or (not force and now - self._renewed_at < self.options.lease_seconds / 3):
            return
        epoch = await asyncio.to_thread(
            self.services.coordination.acquire,
            lease_name(self.partition),
            self.holder,
            self.options.lease_seconds,
        )
        self._renewed_at = now
        if epoch != self.epoch:
            self._lose("the lease expired before it was renewed")

    async def keep_lease(self, stop: asyncio.Event) -> None:
        """Renew the lease every third of its time, whatever the partition is busy with."""
        while not stop.is_set() and not self.lost:
            await self.renew()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.options.lease_seconds / 6)

    async def upkeep(self) -> None:
        """Advance, reload the rules and checkpoint, each when due."""
        if self.lost:
            return
        options, now = self.options, time.monotonic()
        if now - self._advanced_at >= options.advance_interval:
            await self.advance()
        if now - self._reloaded_at >= options.reload_interval:
            self._reloaded_at = now
            if await asyncio.to_thread(self.services.rules.revision) != self._revision:
                await asyncio.to_thread(self._rebuild)
                self._unsaved += 1
        due = now - self._saved_at >= options.checkpoint_seconds
        if self._unsaved and (self._unsaved >= options.checkpoint_events or due):
            await self.checkpoint()

    async def _follow_relay(self) -> None:
        """Move the position to what the relay published (every change up to it was read)."""
        published = await asyncio.to_thread(self.services.coordination.position, RELAY_POSITION)
        if published is not None and published > self.position:
            self.position = published
            self._unsaved += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Own the partition until `stop` is set or the lease is lost.

        A partition without rules reads nothing from the bus: its position follows the relay.
        """
        options = self.options
        done = asyncio.Event()
        keeper = asyncio.create_task(self.keep_lease(done))
        consumer: Consumer | None = None
        idle = True
        try:
            await self.start()
            while not stop.is_set() and not self.lost:
                if not self._tenants:
                    await self._follow_relay()
                    with suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=EMPTY_POLL)
                    await self.upkeep()
                    continue
                if consumer is None:
                    consumer = await self.services.bus.consumer(
                        options.changes_filter,
                        f"{options.group_prefix}-p{self.partition}",
                        ack_wait=options.ack_wait,
                        max_deliver=options.max_deliver,
                    )
                published = None
                if idle:  # read first: all the relay had published then is read if none comes
                    published = await asyncio.to_thread(
                        self.services.coordination.position, RELAY_POSITION
                    )
                messages = await consumer.fetch(options.fetch_batch, options.fetch_wait)
                for received in messages:
                    if self.lost:
                        break  # another worker owns the partition now; it reads these again
                    await self.message(received)
                idle = not messages
                if idle and published is not None and published > self.position:
                    self.position = published
                    self._unsaved += 1
                await self.upkeep()
            if not self.lost:
                await self.checkpoint()
        finally:
            done.set()
            await keeper
            if consumer is not None:
                await consumer.close()
