"""Parking guidance signs: display devices that show event-mode advice, set by device commands.

Every device of a tenant whose registration accepts the `command` (default
"parkingGuidance") is a sign. When an event turns event mode on (or off) the signs get one
command each with what to show, in Korean and English: the park-and-ride sites with space. A
sign is sent a command only when what it should show changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from smartcity.auth.principal import Caller
from smartcity.core.clock import Clock
from smartcity.core.errors import SmartCityError
from smartcity.ingest.devices import DeviceService

log = structlog.get_logger(__name__)
PAGE = 500

Advice = Callable[[str, datetime], dict[str, Any]]
"""(tenant, now) -> what the signs should show."""


class GuidanceSigns:
    """Send each sign its advice when the advice changes."""

    def __init__(self, devices: DeviceService, advice: Advice, command: str) -> None:
        self.devices = devices
        self.advice = advice
        self.command = command
        self._shown: dict[str, dict[str, Any]] = {}

    def signs(self, tenant: str) -> list[str]:
        """Return the ids of the tenant's devices that accept the guidance command."""
        caller = Caller.system(tenant)
        found: list[str] = []
        offset = 0
        while True:
            devices, total = self.devices.page(caller, PAGE, offset)
            found += [d.id for d in devices if self.command in d.spec.commands]
            offset += len(devices)
            if not devices or offset >= total:
                return found

    def update(self, tenant: str, now: datetime) -> int:
        """Command every sign whose advice changed; return how many commands were queued."""
        advice = self.advice(tenant, now)
        if self._shown.get(tenant) == advice:
            return 0
        sent = 0
        for device_id in self.signs(tenant):
            try:
                self.devices.send_command(Caller.system(tenant), device_id, self.command, advice)
                sent += 1
            except SmartCityError as error:  # one broken sign must not stop the others
                log.warning("guidance sign refused", device=device_id, problem=error.detail)
        self._shown[tenant] = advice
        if sent:
            log.info("guidance signs updated", tenant=tenant, mode=advice.get("mode"), signs=sent)
        return sent


class SignUpdater:
    """Worker: bring the signs of some tenants up to date every `interval` seconds."""

    name = "parking-signs"

    def __init__(
        self, signs: GuidanceSigns, clock: Clock, tenants: list[str], interval: float
    ) -> None:
        self.signs = signs
        self.clock = clock
        self.tenants = tenants
        self.interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        """Update, then wait, until stopped."""
        while not stop.is_set():
            for tenant in self.tenants:
                await asyncio.to_thread(self.signs.update, tenant, self.clock.now())
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                continue
