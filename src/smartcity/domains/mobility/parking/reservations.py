"""Reservations of shared-parking spaces: reserve, list, cancel, check in, release no-shows.

A resident or visitor reserves with their own credential (the `reserve-parking` permission;
an anonymous caller is refused) and sees and cancels only their own reservations; operators
and admins (`manage-reservations`) see and cancel all of their tenant's. A reservation must lie
inside one of the site's shared windows; a reservation nobody checks in within the grace time
after its start is released by `NoShowReleaser`, so the space goes back to the public.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from smartcity.auth.policy import AccessControl, Permission, allowed, denied
from smartcity.auth.principal import Caller
from smartcity.core.clock import Clock, isoformat
from smartcity.core.errors import BadRequestData, Conflict, ResourceNotFound
from smartcity.domains.mobility.parking.directory import Directory
from smartcity.domains.mobility.parking.store import Refusal, Reservation, ReservationStore

log = structlog.get_logger(__name__)
EARLY_CHECK_IN = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class ReservationOptions:
    """Limits of reservations (from the module's settings)."""

    grace: timedelta
    max_length: timedelta
    horizon: timedelta
    holder_limit: int
    holidays: Collection[date]
    zone: ZoneInfo


def holder_of(caller: Caller) -> str:
    """Return who holds what a caller reserves: its stored principal, or its subject."""
    return caller.principal_id or f"{caller.kind.value}:{caller.subject}"


class ReservationService:
    """Reservations of a platform's shared sites, checked for every caller."""

    def __init__(
        self,
        store: ReservationStore,
        directory: Directory,
        access: AccessControl,
        clock: Clock,
        options: ReservationOptions,
    ) -> None:
        self.store = store
        self.directory = directory
        self.access = access
        self.clock = clock
        self.options = options

    def _require_reserver(self, caller: Caller) -> None:
        if not caller.authenticated or not allowed(caller, Permission.RESERVE_PARKING):
            raise denied(caller, "reserve parking")

    def _manager(self, caller: Caller) -> bool:
        return allowed(caller, Permission.MANAGE_RESERVATIONS)

    def reserve(self, caller: Caller, site_id: str, start: datetime, end: datetime) -> Reservation:
        """Reserve a space of a shared site for [start, end); 409 when none is left."""
        self._require_reserver(caller)
        now = self.clock.now()
        self._check_window(start, end, now)
        found = self.directory.snapshot(caller.tenant).site(site_id)
        if found is None or not self.access.visibility(caller).allows(found[1]):
            raise ResourceNotFound(f"no parking site {site_id}", instance=site_id)
        site = found[0]
        if site.shared is None or site.shared.spaces == 0:
            raise BadRequestData(f"{site_id} is not a shared-parking site: no reservations")
        if not site.shared.windows.covers(start, end, self.options.holidays, self.options.zone):
            raise BadRequestData(
                f"{start.isoformat()} to {end.isoformat()} is not inside the site's shared "
                f"windows ({site.shared.windows.text}); reserve within one of them"
            )
        stamp = isoformat(now)
        reservation = Reservation(
            uuid.uuid4().hex,
            caller.tenant,
            site_id,
            holder_of(caller),
            isoformat(start),
            isoformat(end),
            "reserved",
            stamp,
            stamp,
        )
        result = self.store.reserve(
            reservation,
            capacity=site.shared.spaces,
            holder_limit=self.options.holder_limit,
            audit=lambda cursor: self.access.record_in(
                cursor, caller, "parking.reserve", [(site_id, "ok")]
            ),
        )
        if isinstance(result, Refusal):
            raise Conflict(result.detail, instance=site_id)
        return result

    def _check_window(self, start: datetime, end: datetime, now: datetime) -> None:
        if start.tzinfo is None or end.tzinfo is None:
            raise BadRequestData("start and end need a time zone (e.g. 2026-11-27T19:00+09:00)")
        if end <= start:
            raise BadRequestData("end must be after start")
        if end - start > self.options.max_length:
            hours = self.options.max_length.total_seconds() / 3600
            raise BadRequestData(f"a reservation lasts at most {hours:g} hours")
        if start < now - timedelta(minutes=1):
            raise BadRequestData("start is in the past")
        if start > now + self.options.horizon:
            days = self.options.horizon.days
            raise BadRequestData(f"reservations open at most {days} days ahead")

    def get(self, caller: Caller, reservation_id: str) -> Reservation:
        """Return one reservation the caller holds (or any, for a manager)."""
        self._require_reserver(caller)
        reservation = self.store.get(caller.tenant, reservation_id)
        if reservation is None or (
            not self._manager(caller) and reservation.holder != holder_of(caller)
        ):
            raise ResourceNotFound(f"no reservation {reservation_id}", instance=reservation_id)
        return reservation

    def list_for(self, caller: Caller, limit: int = 50, offset: int = 0) -> list[Reservation]:
        """Return the caller's reservations (a manager's: the whole tenant's)."""
        self._require_reserver(caller)
        if not 1 <= limit <= 500 or offset < 0:
            raise BadRequestData("limit must be 1 to 500 and offset 0 or more")
        holder = None if self._manager(caller) else holder_of(caller)
        return self.store.list_reservations(caller.tenant, holder, limit, offset)

    def cancel(self, caller: Caller, reservation_id: str) -> Reservation:
        """Cancel a reservation that is still waiting for its car."""
        return self._move(caller, reservation_id, "cancelled", "parking.cancel")

    def check_in(self, caller: Caller, reservation_id: str) -> Reservation:
        """Mark the car arrived (from 30 minutes before the start to the end)."""
        reservation = self.get(caller, reservation_id)
        now = self.clock.now()
        start = datetime.fromisoformat(reservation.starts_at.replace("Z", "+00:00"))
        end = datetime.fromisoformat(reservation.ends_at.replace("Z", "+00:00"))
        if not start - EARLY_CHECK_IN <= now < end:
            raise Conflict(
                f"check-in opens 30 minutes before {reservation.starts_at} and closes at its end",
                instance=reservation_id,
            )
        return self._move(caller, reservation_id, "checkedIn", "parking.check-in")

    def _move(self, caller: Caller, reservation_id: str, to: Any, action: str) -> Reservation:
        reservation = self.get(caller, reservation_id)
        moved = self.store.transition(
            caller.tenant,
            reservation_id,
            from_statuses=("reserved",),
            to=to,
            at=self.clock.now(),
            audit=lambda cursor: self.access.record_in(
                cursor, caller, action, [(reservation.site_id, "ok")]
            ),
        )
        if not moved:
            current = self.store.get(caller.tenant, reservation_id)
            status = current.status if current else "gone"
            raise Conflict(
                f"reservation {reservation_id} is {status}; only a reserved one can change",
                instance=reservation_id,
            )
        self.directory.forget(caller.tenant)
        return self.get(caller, reservation_id)

    def release_no_shows(self) -> int:
        """Release the reservations whose car did not come within the grace time."""
        now = self.clock.now()
        released = self.store.release_no_shows(now - self.options.grace, now)
        for tenant, reservation_id in released:
            log.info("reservation released: no show", tenant=tenant, reservation=reservation_id)
        return len(released)


class NoShowReleaser:
    """Worker: release no-show reservations every `interval` seconds."""

    name = "parking-no-shows"

    def __init__(self, service: ReservationService, interval: float) -> None:
        self.service = service
        self.interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        """Release, then wait, until stopped."""
        while not stop.is_set():
            await asyncio.to_thread(self.service.release_no_shows)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                continue
