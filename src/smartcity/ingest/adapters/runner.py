"""Run the adapters: poll on schedule, standardize, publish readings, keep dead letters, back off.

Every adapter polls in its own loop: one that fails (timeouts, HTTP 500, error envelopes, bodies
it cannot read) waits longer and longer before it tries again (exponential back-off with jitter,
capped), while the others go on at their own pace. A poll's good records are published even when
another of its requests failed. Nothing here logs a URL or an error text before its secrets are
redacted, and nothing logs a traceback (a rich traceback shows local variables, keys included).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import structlog

from smartcity.bus.base import EventBus, Outgoing
from smartcity.core.clock import Clock, isoformat
from smartcity.ingest.adapters.base import Adapter, PollFailure, PollResult, record_bytes
from smartcity.ingest.adapters.http import Fetcher, redact
from smartcity.ingest.ports import DeadLetterSink, RawInput, Rejected, Standardizer
from smartcity.ingest.readings import Reading, subject_for

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What one poll gives the platform: readings to publish and dead letters to keep."""

    readings: list[Reading]
    rejected: list[tuple[RawInput, Rejected]]
    failures: list[PollFailure]
    requests: int


def reading_id(source: str, tenant: str, entity_id: str, attributes: dict[str, Any]) -> str:
    """Return a reading id that is the same for the same content.

    Polling an API whose data has not changed (a lot counted at the same time) then makes the same
    message id, which the bus drops as a duplicate instead of storing it again.
    """
    content = orjson.dumps(
        [source, tenant, entity_id, attributes], option=orjson.OPT_SORT_KEYS, default=str
    )
    return str(uuid.UUID(hex=hashlib.sha256(content).hexdigest()[:32]))


def prepare(
    adapter: str,
    tenant: str,
    result: PollResult,
    standardizer: Standardizer,
    received_at: str,
) -> Prepared:
    """Standardize each update into a Reading; what the standardizer refuses is a dead letter."""
    source = f"adapter:{adapter}"
    readings: list[Reading] = []
    rejected = list(result.rejected)
    for update in result.updates:
        try:
            attributes = standardizer.standardize(
                tenant, update.entity_type, update.attributes, update.context
            )
        except Rejected as refused:
            raw = RawInput(
                tenant=tenant,
                source=source,
                payload=record_bytes(update.record),
                received_at=received_at,
                content_type="application/json",
                meta={
                    "adapter": adapter,
                    "kind": "update",
                    "entityId": update.entity_id,
                    "entityType": update.entity_type,
                    "attributes": update.attributes,
                    "context": update.context,
                },
            )
            rejected.append((raw, refused))
            continue
        readings.append(
            Reading(
                id=reading_id(source, tenant, update.entity_id, attributes),
                tenant=tenant,
                entity_id=update.entity_id,
                entity_type=update.entity_type,
                attributes=attributes,
                received_at=received_at,
                source=source,
                context=list(update.context),
            )
        )
    return Prepared(readings, rejected, list(result.failures), result.requests)


async def poll_adapter(
    adapter: Adapter,
    client: httpx.AsyncClient,
    *,
    standardizer: Standardizer,
    tenant: str,
    request_timeout: float,
    clock: Clock,
) -> Prepared:
    """Poll one adapter once and standardize what it made (nothing is published or kept)."""
    received_at = isoformat(clock.now())
    fetcher = Fetcher(client, timeout=request_timeout, secrets=adapter.secrets())
    result = await adapter.poll(fetcher, received_at)
    # Checking a thousand lots against their schema takes a few hundred milliseconds: off the
    # event loop, which also serves the HTTP API.
    return await asyncio.to_thread(prepare, adapter.name, tenant, result, standardizer, received_at)


def backoff_delay(
    failures: int, base: float, cap: float, draw: Callable[[float, float], float]
) -> float:
    """Return the wait after `failures` failed polls in a row: exponential, jittered, capped.

    The ceiling doubles from twice the normal interval (`base`) up to `cap`; the wait is drawn
    between half the ceiling and the ceiling, so adapters that failed together spread out, and
    an adapter that fails never polls more often than when all is well.
    """
    ceiling = min(cap, base * 2.0 ** max(1, failures))
    return max(min(base, cap), draw(ceiling / 2, ceiling))


@dataclass
class AdapterStatus:
    """How one adapter is doing, for logs, the CLI and tests."""

    name: str
    polls: int = 0
    consecutive_failures: int = 0
    published: int = 0
    dead_letters: int = 0
    last_error: str | None = None
    last_success: str | None = None
    next_delay: float = 0.0
    delays: list[float] = field(default_factory=list)
    """The last waits chosen (at most 20), newest last."""


@dataclass
class AdapterWorker:
    """The Worker that runs every enabled adapter on its schedule."""

    adapters: Sequence[Adapter]
    bus: EventBus
    standardizer: Standardizer
    dead_letters: DeadLetterSink
    clock: Clock
    tenant: str = ""
    timeout: float = 10.0
    backoff_cap: float = 900.0
    rng: random.Random = field(default_factory=random.Random)
    name: str = "open-data-adapters"
    status: dict[str, AdapterStatus] = field(init=False)

    def __post_init__(self) -> None:
        self.status = {adapter.name: AdapterStatus(adapter.name) for adapter in self.adapters}

    async def run(self, stop: asyncio.Event) -> None:
        """Poll each adapter in its own loop until `stop` is set."""
        if not self.adapters:
            return
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=True) as client:
            await asyncio.gather(*(self._loop(adapter, client, stop) for adapter in self.adapters))

    async def _loop(self, adapter: Adapter, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        status = self.status[adapter.name]
        while not stop.is_set():
            succeeded = await self._poll(adapter, client, stop, status)
            if stop.is_set():
                return
            status.consecutive_failures = 0 if succeeded else status.consecutive_failures + 1
            delay = (
                adapter.interval
                if succeeded
                else backoff_delay(
                    status.consecutive_failures,
                    adapter.interval,
                    self.backoff_cap,
                    self.rng.uniform,
                )
            )
            status.next_delay = delay
            status.delays = [*status.delays[-19:], delay]
            if not succeeded:
                log.warning(
                    "adapter backing off",
                    adapter=adapter.name,
                    failures=status.consecutive_failures,
                    retry_in=round(delay, 2),
                    error=status.last_error,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _poll(
        self,
        adapter: Adapter,
        client: httpx.AsyncClient,
        stop: asyncio.Event,
        status: AdapterStatus,
    ) -> bool:
        """Poll once (cancelled when `stop` is set); return whether every request succeeded."""
        started = time.monotonic()
        status.polls += 1
        task = asyncio.ensure_future(self._poll_and_publish(adapter, client, status))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            return False
        try:
            prepared = task.result()
        except Exception as error:  # a failing adapter never stops the others
            status.last_error = redact(f"{type(error).__name__}: {error}", adapter.secrets())
            log.error("adapter poll failed", adapter=adapter.name, error=status.last_error)
            return False
        if prepared.failures:
            status.last_error = "; ".join(failure.message for failure in prepared.failures)
        else:
            status.last_error = None
            status.last_success = isoformat(self.clock.now())
        log.info(
            "adapter polled",
            adapter=adapter.name,
            requests=prepared.requests,
            readings=len(prepared.readings),
            dead_letters=len(prepared.rejected),
            failed_requests=len(prepared.failures),
            seconds=round(time.monotonic() - started, 3),
        )
        return not prepared.failures

    async def _poll_and_publish(
        self, adapter: Adapter, client: httpx.AsyncClient, status: AdapterStatus
    ) -> Prepared:
        prepared = await poll_adapter(
            adapter,
            client,
            standardizer=self.standardizer,
            tenant=self.tenant,
            request_timeout=self.timeout,
            clock=self.clock,
        )
        if prepared.rejected:
            await asyncio.to_thread(self.dead_letters.record_many, prepared.rejected)
            status.dead_letters += len(prepared.rejected)
        if prepared.readings:
            subject = subject_for(self.tenant)
            await self.bus.publish_many(
                [
                    Outgoing(subject, reading.to_bytes(), msg_id=reading.id)
                    for reading in prepared.readings
                ]
            )
            status.published += len(prepared.readings)
        return prepared
