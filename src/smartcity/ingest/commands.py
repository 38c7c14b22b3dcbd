"""Commands to devices: pending → delivered → ok, error or expired, kept and shown on the entity.

A command is stored as pending; the MQTT southbound claims it, publishes it on the device's
`/<apikey>/<deviceId>/cmd` topic with QoS 1 and marks it delivered once the broker has it; the
device's answer on `/cmdexe` makes it ok or error. A command nobody answers in time is marked
expired by `CommandExpiry`. Every step is written on the device's `Device` entity as
`<command>_status` and `<command>_info`, as the FIWARE IoT Agents do.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

import structlog

from smartcity.core.clock import Clock, isoformat
from smartcity.ingest import device_entities
from smartcity.ingest.codecs import CommandResult, encode_json_command, encode_ul_command
from smartcity.ingest.device_entities import DeviceEntities
from smartcity.ingest.device_model import Device, PayloadFormat
from smartcity.storage.devices import CommandRecord, SqlDeviceStore

PENDING: Final = "pending"
DELIVERED: Final = "delivered"
OK: Final = "ok"
ERROR: Final = "error"
EXPIRED: Final = "expired"
CLAIM_SECONDS: Final = 30.0
"""How long a process holds a claimed command before another may publish it."""

log = structlog.get_logger(__name__)


def present(command: CommandRecord) -> dict[str, Any]:
    """A command as the API shows it."""
    return {
        "id": command.id,
        "deviceId": command.device_id,
        "name": command.name,
        "params": command.params,
        "status": command.status,
        "info": command.info,
        "createdAt": command.created_at,
        "updatedAt": command.updated_at,
        "expiresAt": command.expires_at,
        "createdBy": command.created_by,
    }


def command_payload(device: Device, command: CommandRecord) -> bytes:
    """Encode a command as the device speaks (JSON or UltraLight)."""
    if device.spec.protocol == PayloadFormat.ULTRALIGHT:
        return encode_ul_command(device.id, command.name, command.params)
    return encode_json_command(command.name, command.params)


class CommandBook:
    """Keeps commands and their statuses, in the store and on the Device entities."""

    def __init__(
        self,
        store: SqlDeviceStore,
        entities: DeviceEntities,
        clock: Clock,
        *,
        timeout: float = 60.0,
    ) -> None:
        self.store = store
        self.entities = entities
        self.clock = clock
        self.timeout = timeout
        self._listeners: list[Callable[[], None]] = []

    def on_new(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever a command is added (the publisher wakes up)."""
        self._listeners.append(listener)

    def add(self, device: Device, name: str, params: Any, created_by: str) -> CommandRecord:
        """Keep a new pending command for a device."""
        now = self.clock.now()
        command = CommandRecord(
            tenant=device.tenant,
            id=uuid.uuid4().hex,
            device_id=device.id,
            name=name,
            params=params,
            status=PENDING,
            created_at=isoformat(now),
            updated_at=isoformat(now),
            expires_at=isoformat(now + timedelta(seconds=self.timeout)),
            created_by=created_by,
        )
        self.store.add_command(command)
        self._show(device, command)
        for listener in self._listeners:
            try:
                listener()
            except RuntimeError:  # its event loop has ended; the poll finds the command
                log.debug("command listener gone")
        return command

    def claim(self, limit: int = 100) -> list[CommandRecord]:
        """Claim pending commands to publish."""
        now = self.clock.now()
        lease = now + timedelta(seconds=CLAIM_SECONDS)
        return self.store.claim_pending(isoformat(now), isoformat(lease), limit)

    def delivered(self, device: Device, command: CommandRecord) -> None:
        """The broker has the command (QoS 1 acknowledged)."""
        at = isoformat(self.clock.now())
        if self.store.set_status(
            command.tenant, command.id, DELIVERED, None, at, only_from=(PENDING,)
        ):
            command.status, command.updated_at = DELIVERED, at
            self._show(device, command)

    def failed(self, device: Device, command: CommandRecord, why: str) -> None:
        """The command cannot be sent at all (no key to address the device)."""
        at = isoformat(self.clock.now())
        if self.store.set_status(command.tenant, command.id, ERROR, why, at):
            command.status, command.info, command.updated_at = ERROR, why, at
            self._show(device, command)

    def answered(self, device: Device, results: list[CommandResult]) -> list[CommandRecord]:
        """The device answered on /cmdexe: settle its newest open command of each name."""
        settled = []
        at = isoformat(self.clock.now())
        for result in results:
            command = self.store.open_command(device.tenant, device.id, result.name)
            if command is None:
                log.info("answer to no open command", device=device.id, command=result.name)
                continue
            status = OK if result.ok else ERROR
            if self.store.set_status(command.tenant, command.id, status, result.info, at):
                command.status, command.info, command.updated_at = status, result.info, at
                self._show(device, command)
                settled.append(command)
        return settled

    def expire(self) -> list[CommandRecord]:
        """Mark commands nobody answered in time as expired (shown on their entities)."""
        expired = self.store.expire(isoformat(self.clock.now()))
        fragments = []
        for command in expired:
            record = self.store.get(command.tenant, command.device_id)
            if record is not None:
                entity_id = Device(record).device_entity_id
                status = device_entities.command_status(entity_id, command.name, EXPIRED, None)
                fragments.append((command.tenant, status))
        self.entities.write_many(fragments)
        return expired

    def _show(self, device: Device, command: CommandRecord) -> None:
        fragment = device_entities.command_status(
            device.device_entity_id, command.name, command.status, command.info
        )
        self.entities.write(device.tenant, [fragment])


class CommandExpiry:
    """Worker: marks commands that got no answer in time as expired."""

    name = "device-command-expiry"

    def __init__(self, book: CommandBook, interval: float = 5.0) -> None:
        self.book = book
        self.interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        """Look for expired commands every `interval` seconds until `stop`."""
        while not stop.is_set():
            expired = await asyncio.to_thread(self.book.expire)
            if expired:
                log.info("commands expired", count=len(expired))
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                continue
