"""The device registry and device commands, in their own tables on the platform's database.

A device row keeps what the IoT agent needs on every message (the key's hash, the entity it
feeds, the mapping as a JSON document) and its health: when it was last seen, and from when it
counts as silent. A command row follows one command from pending to its outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from smartcity.storage.sqlbase import Cursor, SqlEntityStore

_DDL: Final = """
CREATE TABLE IF NOT EXISTS iot_devices (
    tenant {text} NOT NULL,
    id {text} NOT NULL,
    key_hash {text} NOT NULL,
    command_key TEXT,
    doc TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    transport TEXT NOT NULL,
    reporting_interval {float},
    last_seen TEXT,
    health TEXT NOT NULL,
    health_since TEXT,
    silent_after {text},
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (key_hash, id)
);
CREATE INDEX IF NOT EXISTS iot_devices_id ON iot_devices (id);
CREATE INDEX IF NOT EXISTS iot_devices_silent_after ON iot_devices (silent_after);
CREATE INDEX IF NOT EXISTS iot_devices_health ON iot_devices (tenant, health);
CREATE INDEX IF NOT EXISTS iot_devices_entity ON iot_devices (tenant, entity_id);
CREATE TABLE IF NOT EXISTS iot_commands (
    tenant {text} NOT NULL,
    id {text} NOT NULL,
    device_id {text} NOT NULL,
    name TEXT NOT NULL,
    params TEXT NOT NULL,
    status {text} NOT NULL,
    info TEXT,
    created_at {text} NOT NULL,
    updated_at TEXT NOT NULL,
    expires_at {text} NOT NULL,
    created_by TEXT NOT NULL,
    claimed_until {text} NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS iot_commands_device ON iot_commands (tenant, device_id, created_at);
CREATE INDEX IF NOT EXISTS iot_commands_open ON iot_commands (status, expires_at)
"""
_TYPES: Final = {
    "sqlite": {"text": "TEXT", "float": "REAL"},
    "postgresql": {"text": 'TEXT COLLATE "C"', "float": "DOUBLE PRECISION"},
}
_DDL_LOCK: Final = 0x696F74646576  # "iotdev"
_DEVICE_COLUMNS: Final = (
    "tenant, id, key_hash, command_key, doc, entity_id, transport, reporting_interval, "
    "last_seen, health, health_since, silent_after, created_at, modified_at"
)
_COMMAND_COLUMNS: Final = (
    "tenant, id, device_id, name, params, status, info, created_at, updated_at, expires_at, "
    "created_by"
)

HEALTH_UNKNOWN: Final = "unknown"
HEALTH_OK: Final = "ok"
HEALTH_SILENT: Final = "silent"

OPEN_STATUSES: Final = ("pending", "delivered")
"""Command statuses that still wait for something (publishing, or the device's answer)."""


@dataclass(slots=True)
class DeviceRecord:
    """One registered device as stored."""

    tenant: str
    id: str
    key_hash: str
    doc: dict[str, Any]
    """The device's configuration (entity, mapping, protocol, ...) as the ingest layer writes it."""
    entity_id: str
    transport: str
    reporting_interval: float | None
    created_at: str
    modified_at: str
    last_seen: str | None = None
    health: str = HEALTH_UNKNOWN
    health_since: str | None = None
    silent_after: str | None = None
    """When the device counts as silent unless it reports before (None: not watched)."""
    command_key: str | None = None
    """The key itself, kept only for a device that takes commands over MQTT: the FIWARE
    convention puts it in the topic the device listens on (/<key>/<id>/cmd)."""


@dataclass(frozen=True, slots=True)
class Sighting:
    """A device was heard from: when, and from when it is silent if it says nothing more."""

    tenant: str
    device_id: str
    last_seen: str
    silent_after: str | None


@dataclass(slots=True)
class CommandRecord:
    """One command sent to a device, and how far it got."""

    tenant: str
    id: str
    device_id: str
    name: str
    params: Any
    status: str
    """pending, delivered, ok, error or expired."""
    created_at: str
    updated_at: str
    expires_at: str
    created_by: str
    info: Any = None


class SqlDeviceStore:
    """Devices and their commands in the entity store's database (SQLite or PostgreSQL)."""

    def __init__(self, store: SqlEntityStore) -> None:
        self._store = store
        self._p = store.dialect.placeholder
        self._postgres = store.dialect.name == "postgresql"
        ddl = _DDL.format(**_TYPES[store.dialect.name])
        with store.writing() as cursor:
            if self._postgres:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
            for statement in ddl.split(";"):
                if statement.strip():
                    cursor.execute(statement)

    def _marks(self, count: int) -> str:
        return ", ".join([self._p] * count)

    # -- devices --------------------------------------------------------------------------

    def conflict(self, tenant: str, device_id: str, key_hash: str) -> str | None:
        """Tell why a device cannot be added: 'exists' (its id in the tenant), 'key' (the same
        id with the same key in another tenant, which would make the key ambiguous), or None."""
        with self._store.reading() as cursor:
            return self._conflict(cursor, tenant, device_id, key_hash)

    def _conflict(self, cursor: Cursor, tenant: str, device_id: str, key_hash: str) -> str | None:
        p = self._p
        cursor.execute(
            f"SELECT tenant, key_hash FROM iot_devices WHERE id = {p} AND (tenant = {p} "
            f"OR key_hash = {p})",
            [device_id, tenant, key_hash],
        )
        rows = cursor.fetchall()
        if any(row[0] == tenant for row in rows):
            return "exists"
        return "key" if rows else None

    def add(self, record: DeviceRecord) -> str | None:
        """Add a device; return None, or why it was not added (see `conflict`)."""
        with self._store.writing() as cursor:
            problem = self._conflict(cursor, record.tenant, record.id, record.key_hash)
            if problem is None:
                self._insert(cursor, record)
        return problem

    def _insert(self, cursor: Cursor, record: DeviceRecord) -> None:
        cursor.execute(
            f"INSERT INTO iot_devices ({_DEVICE_COLUMNS}) VALUES ({self._marks(14)})",
            _device_row(record),
        )

    def replace(self, record: DeviceRecord) -> bool:
        """Replace a device's configuration and key (its health stays); tell if it existed."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"UPDATE iot_devices SET key_hash = {p}, command_key = {p}, doc = {p}, "
                f"entity_id = {p}, "
                f"transport = {p}, reporting_interval = {p}, silent_after = {p}, "
                f"modified_at = {p} WHERE tenant = {p} AND id = {p}",
                [
                    record.key_hash,
                    record.command_key,
                    _dumps(record.doc),
                    record.entity_id,
                    record.transport,
                    record.reporting_interval,
                    record.silent_after,
                    record.modified_at,
                    record.tenant,
                    record.id,
                ],
            )
            changed: int = cursor.rowcount
        return changed > 0

    def get(self, tenant: str, device_id: str) -> DeviceRecord | None:
        """Return one device of a tenant."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM iot_devices WHERE tenant = {p} AND id = {p}",
                [tenant, device_id],
            )
            row = cursor.fetchone()
        return None if row is None else _device_from_row(row)

    def page(self, tenant: str, limit: int, offset: int) -> tuple[list[DeviceRecord], int]:
        """Return a page of a tenant's devices in id order, and how many it has."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM iot_devices WHERE tenant = {p}", [tenant])
            total = int(cursor.fetchone()[0])
            cursor.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM iot_devices WHERE tenant = {p} "
                f"ORDER BY id LIMIT {p} OFFSET {p}",
                [tenant, limit, offset],
            )
            rows = cursor.fetchall()
        return [_device_from_row(row) for row in rows], total

    def delete(self, tenant: str, device_id: str) -> bool:
        """Remove a device and its commands; tell if it existed."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"DELETE FROM iot_devices WHERE tenant = {p} AND id = {p}", [tenant, device_id]
            )
            deleted: int = cursor.rowcount
            cursor.execute(
                f"DELETE FROM iot_commands WHERE tenant = {p} AND device_id = {p}",
                [tenant, device_id],
            )
        return deleted > 0

    def feeding(self, tenant: str, entity_id: str) -> list[DeviceRecord]:
        """Return the devices of a tenant that feed an entity, in id order."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM iot_devices WHERE tenant = {p} AND entity_id = {p} "
                "ORDER BY id",
                [tenant, entity_id],
            )
            rows = cursor.fetchall()
        return [_device_from_row(row) for row in rows]

    def health_counts(self) -> list[tuple[str, str, int]]:
        """Return how many devices each tenant has in each health state (for metrics)."""
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT tenant, health, COUNT(*) FROM iot_devices GROUP BY tenant, health "
                "ORDER BY tenant, health"
            )
            return [(str(t), str(h), int(n)) for t, h, n in cursor.fetchall()]

    def with_id(self, device_id: str) -> list[DeviceRecord]:
        """Return the devices of every tenant with this id (authentication starts here)."""
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM iot_devices WHERE id = {self._p} ORDER BY tenant",
                [device_id],
            )
            rows = cursor.fetchall()
        return [_device_from_row(row) for row in rows]

    def tenant_of_key(self, key_hash: str) -> str | None:
        """Return the tenant of some device holding this key, if any does."""
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT tenant FROM iot_devices WHERE key_hash = {self._p} ORDER BY tenant "
                "LIMIT 1",
                [key_hash],
            )
            row = cursor.fetchone()
        return None if row is None else str(row[0])

    # -- health ---------------------------------------------------------------------------

    def record_sightings(self, sightings: Sequence[Sighting]) -> list[DeviceRecord]:
        """Keep when devices were last heard from; return those that were silent until now.

        A device moves from silent to ok once, whichever process records it first.
        """
        if not sightings:
            return []
        p = self._p
        recovered: list[DeviceRecord] = []
        with self._store.writing() as cursor:
            for sighting in self._silent_among(cursor, sightings):
                cursor.execute(
                    f"UPDATE iot_devices SET health = {p}, health_since = {p} "
                    f"WHERE tenant = {p} AND id = {p} AND health = {p}",
                    [
                        HEALTH_OK,
                        sighting.last_seen,
                        sighting.tenant,
                        sighting.device_id,
                        HEALTH_SILENT,
                    ],
                )
                if cursor.rowcount > 0:
                    cursor.execute(
                        f"SELECT {_DEVICE_COLUMNS} FROM iot_devices WHERE tenant = {p} "
                        f"AND id = {p}",
                        [sighting.tenant, sighting.device_id],
                    )
                    recovered.append(_device_from_row(cursor.fetchone()))
            cursor.executemany(
                f"UPDATE iot_devices SET last_seen = {p}, silent_after = {p}, "
                f"health = CASE WHEN health = {p} THEN {p} ELSE health END, "
                f"health_since = COALESCE(health_since, {p}) "
                f"WHERE tenant = {p} AND id = {p} AND (last_seen IS NULL OR last_seen < {p})",
                [
                    (
                        s.last_seen,
                        s.silent_after,
                        HEALTH_UNKNOWN,
                        HEALTH_OK,
                        s.last_seen,
                        s.tenant,
                        s.device_id,
                        s.last_seen,
                    )
                    for s in sightings
                ],
            )
        return recovered

    def _silent_among(self, cursor: Cursor, sightings: Sequence[Sighting]) -> list[Sighting]:
        """Return the sightings of devices marked silent (few: one query per tenant)."""
        found: list[Sighting] = []
        for tenant in sorted({s.tenant for s in sightings}):
            cursor.execute(
                f"SELECT id FROM iot_devices WHERE tenant = {self._p} AND health = {self._p}",
                [tenant, HEALTH_SILENT],
            )
            silent = {str(row[0]) for row in cursor.fetchall()}
            if silent:
                found.extend(s for s in sightings if s.tenant == tenant and s.device_id in silent)
        return found

    def overdue(self, now: str, limit: int = 1000) -> list[DeviceRecord]:
        """Return devices, not yet marked silent, whose `silent_after` has passed."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM iot_devices WHERE silent_after < {p} "
                f"AND health <> {p} ORDER BY silent_after LIMIT {p}",
                [now, HEALTH_SILENT, limit],
            )
            rows = cursor.fetchall()
        return [_device_from_row(row) for row in rows]

    def mark_silent(self, tenant: str, device_id: str, now: str) -> bool:
        """Mark a device silent if it still is overdue; tell if this call marked it."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"UPDATE iot_devices SET health = {p}, health_since = {p} WHERE tenant = {p} "
                f"AND id = {p} AND health <> {p} AND silent_after < {p}",
                [HEALTH_SILENT, now, tenant, device_id, HEALTH_SILENT, now],
            )
            marked: int = cursor.rowcount
        return marked > 0

    # -- commands -------------------------------------------------------------------------

    def add_command(self, command: CommandRecord) -> None:
        """Keep a new command."""
        with self._store.writing() as cursor:
            cursor.execute(
                f"INSERT INTO iot_commands ({_COMMAND_COLUMNS}) VALUES ({self._marks(11)})",
                _command_row(command),
            )

    def command(self, tenant: str, command_id: str) -> CommandRecord | None:
        """Return one command."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_COMMAND_COLUMNS} FROM iot_commands WHERE tenant = {p} AND id = {p}",
                [tenant, command_id],
            )
            row = cursor.fetchone()
        return None if row is None else _command_from_row(row)

    def commands(self, tenant: str, device_id: str, limit: int) -> list[CommandRecord]:
        """Return a device's commands, newest first."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_COMMAND_COLUMNS} FROM iot_commands WHERE tenant = {p} "
                f"AND device_id = {p} ORDER BY created_at DESC, id DESC LIMIT {p}",
                [tenant, device_id, limit],
            )
            rows = cursor.fetchall()
        return [_command_from_row(row) for row in rows]

    def claim_pending(self, now: str, lease_until: str, limit: int) -> list[CommandRecord]:
        """Claim pending commands to publish (no other process takes them until the lease
        ends); expired ones are left for `expire`."""
        p = self._p
        claimed: list[CommandRecord] = []
        with self._store.writing() as cursor:
            cursor.execute(
                f"SELECT {_COMMAND_COLUMNS} FROM iot_commands WHERE status = 'pending' "
                f"AND expires_at > {p} AND claimed_until < {p} ORDER BY created_at LIMIT {p}"
                f"{' FOR UPDATE SKIP LOCKED' if self._postgres else ''}",
                [now, now, limit],
            )
            for row in cursor.fetchall():
                command = _command_from_row(row)
                cursor.execute(
                    f"UPDATE iot_commands SET claimed_until = {p} WHERE tenant = {p} AND id = {p}",
                    [lease_until, command.tenant, command.id],
                )
                claimed.append(command)
        return claimed

    def set_status(
        self,
        tenant: str,
        command_id: str,
        status: str,
        info: Any,
        at: str,
        *,
        only_from: Sequence[str] = OPEN_STATUSES,
    ) -> bool:
        """Move a command to a status if it is in one of `only_from`; tell if it moved."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"UPDATE iot_commands SET status = {p}, info = {p}, updated_at = {p} "
                f"WHERE tenant = {p} AND id = {p} AND status IN ({self._marks(len(only_from))})",
                [status, _dumps(info), at, tenant, command_id, *only_from],
            )
            moved: int = cursor.rowcount
        return moved > 0

    def open_command(self, tenant: str, device_id: str, name: str) -> CommandRecord | None:
        """Return the newest command of that name still waiting for the device's answer."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_COMMAND_COLUMNS} FROM iot_commands WHERE tenant = {p} "
                f"AND device_id = {p} AND name = {p} AND status IN ({self._marks(2)}) "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                [tenant, device_id, name, *OPEN_STATUSES],
            )
            row = cursor.fetchone()
        return None if row is None else _command_from_row(row)

    def expire(self, now: str, limit: int = 1000) -> list[CommandRecord]:
        """Mark open commands whose time ran out as expired; return them."""
        p = self._p
        expired: list[CommandRecord] = []
        with self._store.writing() as cursor:
            cursor.execute(
                f"SELECT {_COMMAND_COLUMNS} FROM iot_commands WHERE status IN ({self._marks(2)}) "
                f"AND expires_at <= {p} ORDER BY expires_at LIMIT {p}",
                [*OPEN_STATUSES, now, limit],
            )
            for row in cursor.fetchall():
                command = _command_from_row(row)
                cursor.execute(
                    f"UPDATE iot_commands SET status = 'expired', updated_at = {p} "
                    f"WHERE tenant = {p} AND id = {p} AND status IN ({self._marks(2)})",
                    [now, command.tenant, command.id, *OPEN_STATUSES],
                )
                if cursor.rowcount > 0:
                    command.status = "expired"
                    command.updated_at = now
                    expired.append(command)
        return expired


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _device_row(record: DeviceRecord) -> list[Any]:
    return [
        record.tenant,
        record.id,
        record.key_hash,
        record.command_key,
        _dumps(record.doc),
        record.entity_id,
        record.transport,
        record.reporting_interval,
        record.last_seen,
        record.health,
        record.health_since,
        record.silent_after,
        record.created_at,
        record.modified_at,
    ]


def _device_from_row(row: Sequence[Any]) -> DeviceRecord:
    (
        tenant,
        device_id,
        key_hash,
        command_key,
        doc,
        entity_id,
        transport,
        interval,
        last_seen,
        health,
        health_since,
        silent_after,
        created_at,
        modified_at,
    ) = row
    return DeviceRecord(
        tenant=tenant,
        id=device_id,
        key_hash=key_hash,
        doc=orjson.loads(doc),
        entity_id=entity_id,
        transport=transport,
        reporting_interval=None if interval is None else float(interval),
        created_at=created_at,
        modified_at=modified_at,
        last_seen=last_seen,
        health=health,
        health_since=health_since,
        silent_after=silent_after,
        command_key=command_key,
    )


def _command_row(command: CommandRecord) -> list[Any]:
    return [
        command.tenant,
        command.id,
        command.device_id,
        command.name,
        _dumps(command.params),
        command.status,
        _dumps(command.info),
        command.created_at,
        command.updated_at,
        command.expires_at,
        command.created_by,
    ]


def _command_from_row(row: Sequence[Any]) -> CommandRecord:
    tenant, command_id, device_id, name, params, status, info, created, updated, expires, by = row
    return CommandRecord(
        tenant=tenant,
        id=command_id,
        device_id=device_id,
        name=name,
        params=orjson.loads(params),
        status=status,
        created_at=created,
        updated_at=updated,
        expires_at=expires,
        created_by=by,
        info=None if info is None else orjson.loads(info),
    )
