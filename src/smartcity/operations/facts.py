"""Incident facts on the bus: every timeline event, published as
`operations.incident.<event>.<tenant>` (the default tenant is `_`), for live dashboards and
other services (the linked 112/119/disaster services react to them).

The timeline is the outbox: the publisher follows it from a saved position, so a fact is
published once the change that made it has committed, and none is lost across a restart. The
bus message id is the event's number, so a fact published twice is kept once.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import orjson
import structlog

from smartcity.bus.base import EventBus, Outgoing
from smartcity.storage.incidents import Incident, TimelineEvent
from smartcity.storage.sqlincidents import SqlIncidentStore

log = structlog.get_logger(__name__)
PREFIX: Final = "operations.incident"
POSITION: Final = "bus-publisher"
BATCH: Final = 200


def subject_for(kind: str, tenant: str) -> str:
    """Return the bus subject of a timeline event of a tenant."""
    return f"{PREFIX}.{kind}.{tenant or '_'}"


def summary(incident: Incident | None) -> dict[str, Any] | None:
    """Return what a fact says of the incident it is about (as it is now)."""
    if incident is None:
        return None
    return {
        "id": incident.id,
        "type": incident.type,
        "subtype": incident.subtype,
        "severity": incident.severity,
        "status": incident.status,
        "title": incident.title,
        "location": incident.location,
        "zone": incident.zone,
        "assignee": incident.assignee,
        "escalationLevel": incident.escalation_level,
        "version": incident.version,
    }


def fact(event: TimelineEvent, incident: Incident | None) -> dict[str, Any]:
    """Return the JSON body of one incident fact."""
    return {
        "seq": event.seq,
        "event": event.kind,
        "tenant": event.tenant,
        "incidentId": event.incident_id,
        "at": event.at,
        "actor": event.actor,
        "details": event.details,
        "incident": summary(incident),
    }


class FactPublisher:
    """Follow the timeline and publish each event on the bus."""

    name = "incident-facts"

    def __init__(self, store: SqlIncidentStore, bus: EventBus, poll_interval: float) -> None:
        self.store = store
        self.bus = bus
        self.poll_interval = poll_interval

    def _batch(self) -> tuple[list[Outgoing], int]:
        position = self.store.position(POSITION)
        events = self.store.events_after(position, BATCH)
        messages = [
            Outgoing(
                subject_for(e.kind, e.tenant),
                orjson.dumps(fact(e, self.store.get(e.tenant, e.incident_id))),
                msg_id=f"incident-event-{e.seq}",
            )
            for e in events
        ]
        return messages, events[-1].seq if events else position

    async def publish_pending(self) -> int:
        """Publish what the timeline holds past the saved position; return how many."""
        messages, last = await asyncio.to_thread(self._batch)
        if messages:
            await self.bus.publish_many(messages)
            await asyncio.to_thread(self.store.save_position, POSITION, last)
        return len(messages)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until stopped."""
        while not stop.is_set():
            published = await self.publish_pending()
            if published >= BATCH:
                continue
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.poll_interval)
            except TimeoutError:
                continue
