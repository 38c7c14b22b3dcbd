"""The parking service: guidance, live availability, gate counts, reservations and signs.

Plain Python over the platform's parts; the web layer (`api.py`) only adapts HTTP to it. Every
call is made on behalf of a `Caller` and checked here: reads within the caller's visibility,
gate counts only by whoever may write the lot (its gate device's key, an operator).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from smartcity.auth.policy import require_write
from smartcity.auth.principal import Caller
from smartcity.core.clock import isoformat
from smartcity.core.errors import BadRequestData, ResourceNotFound
from smartcity.domains.mobility.parking.availability import site_availability
from smartcity.domains.mobility.parking.directory import Directory
from smartcity.domains.mobility.parking.entities import (
    SITE_TYPES,
    WRITE_CONTEXT,
    local_type,
    value,
)
from smartcity.domains.mobility.parking.forecasting import ForecastSource
from smartcity.domains.mobility.parking.gate import GateRead, PlateDeduplicator
from smartcity.domains.mobility.parking.guidance import (
    GuidanceOptions,
    GuidanceQuery,
    active_event,
    guide,
)
from smartcity.domains.mobility.parking.reservations import ReservationService
from smartcity.domains.mobility.parking.store import ReservationStore
from smartcity.domains.mobility.parking.texts import Lang, note, site_name
from smartcity.modules import ModuleHost

MAX_LIMIT = 25
MAX_GATE_READS = 1000


@dataclass
class ParkingService:
    """The parking part of the mobility module."""

    host: ModuleHost
    directory: Directory
    store: ReservationStore
    reservations: ReservationService
    options: GuidanceOptions
    forecast: ForecastSource
    """Free spaces at arrival; replace it with a better model (docs/parking.md)."""
    plates: PlateDeduplicator

    def guidance(
        self,
        caller: Caller,
        near: tuple[float, float],
        at: datetime | None = None,
        duration: timedelta = timedelta(hours=2),
        lang: Lang = "ko",
        limit: int = 5,
    ) -> dict[str, Any]:
        """Rank the sites the caller may see for a stay near a place."""
        now = self.host.clock.now()
        at = now if at is None else at
        if at.tzinfo is None:
            raise BadRequestData("at needs a time zone, e.g. 2026-11-27T19:00+09:00")
        if at < now - timedelta(minutes=5):
            raise BadRequestData("at is in the past: guidance is for now or later")
        if not timedelta(minutes=1) <= duration <= timedelta(hours=24):
            raise BadRequestData("duration must be 1 minute to 24 hours")
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequestData(f"limit must be 1 to {MAX_LIMIT}")
        snapshot = self.directory.snapshot(caller.tenant)
        sites = snapshot.visible_sites(self.host.access.visibility(caller))
        query = GuidanceQuery(caller.tenant, near, at, duration, lang, limit)

        def reserved_peak(tenant: str, site_id: str, start: datetime, end: datetime) -> int:
            return self.store.reserved_peak(tenant, site_id, isoformat(start), isoformat(end))

        return guide(query, snapshot, sites, now, self.options, self.forecast, reserved_peak)

    def availability(self, caller: Caller, site_id: str) -> dict[str, Any]:
        """Return one site's live availability (STALE when its source went quiet)."""
        snapshot = self.directory.snapshot(caller.tenant)
        found = snapshot.site(site_id)
        if found is None or not self.host.access.visibility(caller).allows(found[1]):
            raise ResourceNotFound(f"no parking site {site_id}", instance=site_id)
        live = site_availability(
            found[1],
            snapshot.spots.get(site_id, []),
            self.host.clock.now(),
            self.options.stale_after,
        )
        return {"id": site_id, **live.as_json()}

    def record_gate_reads(
        self, caller: Caller, site_id: str, reads: Sequence[GateRead]
    ) -> dict[str, Any]:
        """Count a batch of plate reads at a lot's gates and publish the lot's new counts."""
        require_write(caller, site_id)
        if not reads or len(reads) > MAX_GATE_READS:
            raise BadRequestData(f"send 1 to {MAX_GATE_READS} gate reads at a time")
        entity = self.host.store.get(caller.tenant, site_id)
        if entity is None or local_type(entity) not in SITE_TYPES:
            raise ResourceNotFound(f"no parking site {site_id}", instance=site_id)
        total = value(entity, "totalSpotNumber")
        if not isinstance(total, int) or total <= 0:
            raise BadRequestData(f"{site_id} has no totalSpotNumber: gate counts need one")
        tally = self.plates.tally(site_id, reads)
        seed = _occupied(entity, total)
        at = tally.latest or self.host.clock.now()
        occupied = self.store.add_gate_counts(
            caller.tenant, site_id, tally.entries, tally.exits, total, seed, isoformat(at)
        )
        observed = isoformat(at)
        body = {
            "availableSpotNumber": _observed(total - occupied, observed),
            "occupiedSpotNumber": _observed(occupied, observed),
            "vehicleEntranceCount": _observed(tally.entries, observed),
            "vehicleExitCount": _observed(tally.exits, observed),
        }
        context = self.host.contexts.resolve(WRITE_CONTEXT["@context"])
        self.host.entities.append_attributes(caller, site_id, body, context)
        self.directory.forget(caller.tenant)
        return {
            "id": site_id,
            "entries": tally.entries,
            "exits": tally.exits,
            "repeatsIgnored": tally.repeats,
            "occupied": occupied,
            "free": total - occupied,
            "observedAt": observed,
        }

    def sign_advice(self, tenant: str, now: datetime) -> dict[str, Any]:
        """Return what the guidance signs should show now (event mode or normal)."""
        snapshot = self.directory.snapshot(tenant)
        for event in sorted(snapshot.events, key=lambda e: e.start):
            if active_event([event], event.position, now, self.options) is None:
                continue
            answer = self.guidance(Caller.system(tenant), event.position, now, limit=MAX_LIMIT)
            english = self.site_names(tenant, "en")
            rides = [s for s in answer["sites"] if s["group"] == "park-and-ride"][:3]
            return {
                "mode": "event",
                "event": event.id,
                "ko": note("event-mode", "ko")["text"],
                "en": note("event-mode", "en")["text"],
                "sites": [
                    {
                        "id": s["id"],
                        "ko": s["name"],
                        "en": english.get(s["id"], s["name"]),
                        "free": s["availability"]["free"],
                    }
                    for s in rides
                ],
            }
        return {"mode": "normal"}

    def site_names(self, tenant: str, lang: Lang) -> dict[str, str]:
        """Return every site's name in a language (for pages and signs)."""
        return {site.id: site_name(site, lang) for site, _ in self.directory.snapshot(tenant).sites}


def _occupied(entity: Any, total: int) -> int:
    occupied = value(entity, "occupiedSpotNumber")
    if isinstance(occupied, int):
        return occupied
    available = value(entity, "availableSpotNumber")
    return total - available if isinstance(available, int) else 0


def _observed(number: int, observed: str) -> dict[str, Any]:
    return {"type": "Property", "value": number, "observedAt": observed}
