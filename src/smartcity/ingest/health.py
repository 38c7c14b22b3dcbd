"""Device health: when each device was last heard from, and which have fallen silent.

The IoT agent tells `Sightings` of every accepted message; it writes the latest time per device
in batches (never a database write per reading) and refreshes the devices' entities at most once
a minute each. `HealthWatch` marks a device silent when it has not reported for longer than its
expected interval times a tolerance, and publishes `events.device.silent.<tenant>`; its next
report publishes `events.device.recovered.<tenant>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
import structlog

from smartcity.bus.base import EventBus, Outgoing
from smartcity.core.clock import Clock, isoformat
from smartcity.ingest import device_entities
from smartcity.ingest.device_entities import DeviceEntities, Fragment
from smartcity.ingest.device_model import Device
from smartcity.storage.devices import (
    HEALTH_OK,
    HEALTH_SILENT,
    DeviceRecord,
    Sighting,
    SqlDeviceStore,
)

SILENT_SUBJECT: Final = "events.device.silent"
RECOVERED_SUBJECT: Final = "events.device.recovered"

log = structlog.get_logger(__name__)


def silent_after(interval: float | None, since: datetime, tolerance: float) -> str | None:
    """When a device that reports every `interval` seconds is silent, counting from `since`."""
    if interval is None:
        return None
    return isoformat(since + timedelta(seconds=interval * tolerance))


def event_subject(prefix: str, tenant: str) -> str:
    """The bus subject of a device health event of a tenant (the default tenant is `_`)."""
    return f"{prefix}.{tenant or '_'}"


def health_event(prefix: str, record: DeviceRecord, at: str) -> Outgoing:
    """The bus message saying a device fell silent or reports again."""
    device = Device(record)
    body: dict[str, Any] = {
        "event": "device.silent" if prefix == SILENT_SUBJECT else "device.recovered",
        "tenant": record.tenant,
        "deviceId": record.id,
        "entityId": record.entity_id,
        "deviceEntityId": device.device_entity_id,
        "lastSeen": record.last_seen,
        "reportingInterval": record.reporting_interval,
        "at": at,
    }
    return Outgoing(
        event_subject(prefix, record.tenant),
        orjson.dumps(body),
        msg_id=f"{body['event']}:{record.tenant}:{record.id}:{record.health_since or at}",
    )


class Sightings:
    """Worker: keeps the devices' last-seen times, written in batches."""

    name = "device-sightings"

    def __init__(
        self,
        store: SqlDeviceStore,
        entities: DeviceEntities,
        bus: EventBus,
        clock: Clock,
        *,
        tolerance: float = 1.5,
        interval: float = 2.0,
        entity_interval: float = 60.0,
    ) -> None:
        self.store = store
        self.entities = entities
        self.bus = bus
        self.clock = clock
        self.tolerance = tolerance
        self.interval = interval
        self.entity_interval = entity_interval
        self._pending: dict[tuple[str, str], tuple[Device, str]] = {}
        self._entity_written: dict[tuple[str, str], float] = {}

    def saw(self, device: Device, at: str) -> None:
        """Note that a device reported at `at` (UTC ISO 8601)."""
        key = (device.tenant, device.id)
        known = self._pending.get(key)
        if known is None or known[1] < at:
            self._pending[key] = (device, at)

    async def run(self, stop: asyncio.Event) -> None:
        """Write what was seen every `interval` seconds, and once more when stopped."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            await self.flush()

    async def flush(self) -> None:
        """Write the sightings noted since the last flush."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        try:
            recovered = await asyncio.to_thread(self._write, list(pending.values()))
        except Exception:
            for key, value in pending.items():  # keep them for the next flush
                self._pending.setdefault(key, value)
            raise
        if recovered:
            at = isoformat(self.clock.now())
            await self.bus.publish_many([health_event(RECOVERED_SUBJECT, r, at) for r in recovered])
            log.info("devices report again", devices=[r.id for r in recovered])

    def _write(self, seen: list[tuple[Device, str]]) -> list[DeviceRecord]:
        sightings = [
            Sighting(
                device.tenant,
                device.id,
                at,
                silent_after(
                    device.spec.reporting_interval, datetime.fromisoformat(at), self.tolerance
                ),
            )
            for device, at in seen
        ]
        recovered = self.store.record_sightings(sightings)
        again = {(r.tenant, r.id) for r in recovered}
        now = time.monotonic()
        fragments: list[tuple[str, Fragment]] = []
        for device, at in seen:
            key = (device.tenant, device.id)
            written = self._entity_written.get(key)
            if key in again or written is None or now - written >= self.entity_interval:
                self._entity_written[key] = now
                fragment = device_entities.state(device.device_entity_id, HEALTH_OK, at)
                fragments.append((device.tenant, fragment))
        self.entities.write_many(fragments)
        return recovered


class HealthWatch:
    """Worker: marks devices silent when they stop reporting, and says so on the bus."""

    name = "device-health"

    def __init__(
        self,
        store: SqlDeviceStore,
        entities: DeviceEntities,
        bus: EventBus,
        clock: Clock,
        *,
        interval: float = 10.0,
    ) -> None:
        self.store = store
        self.entities = entities
        self.bus = bus
        self.clock = clock
        self.interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        """Check every `interval` seconds until `stop`."""
        while not stop.is_set():
            await self.check()
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                continue

    async def check(self) -> list[DeviceRecord]:
        """Mark the devices overdue now as silent; return them."""
        now = isoformat(self.clock.now())
        marked = await asyncio.to_thread(self._mark, now)
        if marked:
            await self.bus.publish_many([health_event(SILENT_SUBJECT, r, now) for r in marked])
            log.warning("devices silent", devices=[r.id for r in marked])
        return marked

    def _mark(self, now: str) -> list[DeviceRecord]:
        marked = []
        for record in self.store.overdue(now):
            if self.store.mark_silent(record.tenant, record.id, now):
                record.health, record.health_since = HEALTH_SILENT, now
                marked.append(record)
        self.entities.write_many(
            (
                r.tenant,
                device_entities.state(Device(r).device_entity_id, HEALTH_SILENT, None),
            )
            for r in marked
        )
        return marked
