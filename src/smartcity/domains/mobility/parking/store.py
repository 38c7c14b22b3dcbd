"""Reservations and gate tallies in the platform's SQL database (SQLite or PostgreSQL).

No double booking: a reservation is decided inside one write transaction that first takes the
site's lock — on PostgreSQL `SELECT ... FOR UPDATE` of the site's row in `parking_site_locks`,
on SQLite the database's single write lock (`BEGIN IMMEDIATE`) — then counts the peak of the
overlapping active reservations and inserts only below the site's capacity. Concurrent requests
for the last space queue on that lock; the first one in takes it, the others see it taken.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from smartcity.core.clock import isoformat
from smartcity.storage.sqlbase import SqlEntityStore

Status = Literal["reserved", "checkedIn", "cancelled", "released", "completed"]
ACTIVE: Final = ("reserved", "checkedIn")
_TABLES: Final = """
CREATE TABLE IF NOT EXISTS parking_site_locks (
    tenant TEXT NOT NULL,
    site_id TEXT NOT NULL,
    PRIMARY KEY (tenant, site_id)
);
CREATE TABLE IF NOT EXISTS parking_reservations (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    site_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS parking_reservations_site
    ON parking_reservations (tenant, site_id, status, starts_at);
CREATE INDEX IF NOT EXISTS parking_reservations_holder
    ON parking_reservations (tenant, holder, starts_at);
CREATE TABLE IF NOT EXISTS parking_gate_counts (
    tenant TEXT NOT NULL,
    site_id TEXT NOT NULL,
    occupied INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    exits INTEGER NOT NULL,
    observed_at TEXT NOT NULL,
    PRIMARY KEY (tenant, site_id)
)
"""
_COLUMNS: Final = "id, tenant, site_id, holder, starts_at, ends_at, status, created_at, updated_at"
_DDL_LOCK: Final = 0x706B5F726573  # "pk_res": serializes the tables' creation on PostgreSQL


@dataclass(frozen=True, slots=True)
class Reservation:
    """A space held in a shared site for a time window."""

    id: str
    tenant: str
    site_id: str
    holder: str
    """The principal who holds it (its stored id, or its subject for the platform itself)."""
    starts_at: str
    ends_at: str
    status: Status
    created_at: str
    updated_at: str

    def as_json(self) -> dict[str, Any]:
        """Return it as the API shows it."""
        return {
            "id": self.id,
            "site": self.site_id,
            "holder": self.holder,
            "start": self.starts_at,
            "end": self.ends_at,
            "status": self.status,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a reservation was not made."""

    reason: Literal["full", "holder-limit"]
    detail: str


def peak(windows: Sequence[tuple[str, str]], start: str, end: str) -> int:
    """Return the most windows in force at one moment of [start, end)."""
    moments: list[tuple[str, int]] = []
    for low, high in windows:
        low, high = max(low, start), min(high, end)
        if low < high:
            moments += [(low, 1), (high, -1)]
    current = best = 0
    for _, step in sorted(moments, key=lambda m: (m[0], m[1])):  # ends before starts
        current += step
        best = max(best, current)
    return best


class ReservationStore:
    """Reservations and gate tallies of every tenant."""

    def __init__(self, store: SqlEntityStore) -> None:
        self._store = store
        self._p = store.dialect.placeholder
        self._postgres = store.dialect.name == "postgresql"
        with store.writing() as cursor:
            if self._postgres:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
            for statement in _TABLES.split(";"):
                if statement.strip():
                    cursor.execute(statement)

    def _lock_site(self, cursor: Any, tenant: str, site_id: str) -> None:
        if not self._postgres:
            return  # BEGIN IMMEDIATE holds SQLite's one write lock already
        cursor.execute(
            "INSERT INTO parking_site_locks (tenant, site_id) VALUES (%s, %s) "
            "ON CONFLICT DO NOTHING",
            [tenant, site_id],
        )
        cursor.execute(
            "SELECT site_id FROM parking_site_locks WHERE tenant = %s AND site_id = %s FOR UPDATE",
            [tenant, site_id],
        )
        cursor.fetchall()

    def _windows(self, cursor: Any, tenant: str, site_id: str, start: str, end: str) -> list[Any]:
        p = self._p
        cursor.execute(
            f"SELECT starts_at, ends_at FROM parking_reservations WHERE tenant = {p} "
            f"AND site_id = {p} AND status IN ({p}, {p}) AND starts_at < {p} AND ends_at > {p}",
            [tenant, site_id, *ACTIVE, end, start],
        )
        return [(row[0], row[1]) for row in cursor.fetchall()]

    def reserve(
        self,
        reservation: Reservation,
        *,
        capacity: int,
        holder_limit: int,
        audit: Callable[[Any], None] | None = None,
    ) -> Reservation | Refusal:
        """Insert the reservation if a space is free all through its window (atomically)."""
        p, r = self._p, reservation
        with self._store.writing() as cursor:
            self._lock_site(cursor, r.tenant, r.site_id)
            taken = peak(
                self._windows(cursor, r.tenant, r.site_id, r.starts_at, r.ends_at),
                r.starts_at,
                r.ends_at,
            )
            if taken >= capacity:
                return Refusal("full", f"all {capacity} shareable spaces are reserved then")
            cursor.execute(
                f"SELECT COUNT(*) FROM parking_reservations WHERE tenant = {p} AND holder = {p} "
                f"AND status IN ({p}, {p}) AND ends_at > {p}",
                [r.tenant, r.holder, *ACTIVE, r.created_at],
            )
            if int(cursor.fetchone()[0]) >= holder_limit:
                return Refusal(
                    "holder-limit", f"you hold {holder_limit} upcoming reservations already"
                )
            cursor.execute(
                f"INSERT INTO parking_reservations ({_COLUMNS}) VALUES "
                f"({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})",
                [
                    r.id,
                    r.tenant,
                    r.site_id,
                    r.holder,
                    r.starts_at,
                    r.ends_at,
                    r.status,
                    r.created_at,
                    r.updated_at,
                ],
            )
            if audit is not None:
                audit(cursor)
        return reservation

    def reserved_peak(self, tenant: str, site_id: str, start: str, end: str) -> int:
        """Return the most active reservations at one moment of [start, end)."""
        with self._store.reading() as cursor:
            return peak(self._windows(cursor, tenant, site_id, start, end), start, end)

    def get(self, tenant: str, reservation_id: str) -> Reservation | None:
        """Return one reservation of a tenant."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_COLUMNS} FROM parking_reservations WHERE tenant = {p} AND id = {p}",
                [tenant, reservation_id],
            )
            row = cursor.fetchone()
        return None if row is None else Reservation(*row)

    def list_reservations(
        self, tenant: str, holder: str | None, limit: int, offset: int
    ) -> list[Reservation]:
        """Return a tenant's reservations (one holder's, or all), newest window first."""
        p = self._p
        condition, params = f"tenant = {p}", [tenant]
        if holder is not None:
            condition += f" AND holder = {p}"
            params.append(holder)
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {_COLUMNS} FROM parking_reservations WHERE {condition} "
                f"ORDER BY starts_at DESC, id LIMIT {int(limit)} OFFSET {int(offset)}",
                params,
            )
            return [Reservation(*row) for row in cursor.fetchall()]

    def transition(
        self,
        tenant: str,
        reservation_id: str,
        *,
        from_statuses: Sequence[Status],
        to: Status,
        at: datetime,
        audit: Callable[[Any], None] | None = None,
    ) -> bool:
        """Move a reservation between states if it is in one of `from_statuses`; tell if moved."""
        p = self._p
        marks = ", ".join([p] * len(from_statuses))
        with self._store.writing() as cursor:
            cursor.execute(
                f"UPDATE parking_reservations SET status = {p}, updated_at = {p} "
                f"WHERE tenant = {p} AND id = {p} AND status IN ({marks})",
                [to, isoformat(at), tenant, reservation_id, *from_statuses],
            )
            moved = int(cursor.rowcount) > 0
            if moved and audit is not None:
                audit(cursor)
        return moved

    def release_no_shows(self, before: datetime, at: datetime) -> list[tuple[str, str]]:
        """Release every reservation still unclaimed that began before `before`; return
        (tenant, id) of each."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"UPDATE parking_reservations SET status = {p}, updated_at = {p} "
                f"WHERE status = {p} AND starts_at < {p} RETURNING tenant, id",
                ["released", isoformat(at), "reserved", isoformat(before)],
            )
            released = [(row[0], row[1]) for row in cursor.fetchall()]
        return released

    def add_gate_counts(
        self, tenant: str, site_id: str, entries: int, exits: int, total: int, seed: int, at: str
    ) -> int:
        """Add a batch of entries and exits to a site's tally (kept within 0..total, starting
        at `seed` for a site never counted); return the cars inside now."""
        p = self._p
        with self._store.writing() as cursor:
            self._lock_site(cursor, tenant, site_id)
            cursor.execute(
                f"SELECT occupied FROM parking_gate_counts WHERE tenant = {p} AND site_id = {p}",
                [tenant, site_id],
            )
            row = cursor.fetchone()
            before = seed if row is None else int(row[0])
            occupied = max(0, min(total, before + entries - exits))
            if row is None:
                cursor.execute(
                    "INSERT INTO parking_gate_counts (tenant, site_id, occupied, entries, exits, "
                    f"observed_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
                    [tenant, site_id, occupied, entries, exits, at],
                )
            else:
                cursor.execute(
                    f"UPDATE parking_gate_counts SET occupied = {p}, entries = entries + {p}, "
                    f"exits = exits + {p}, observed_at = {p} WHERE tenant = {p} AND site_id = {p}",
                    [occupied, entries, exits, at, tenant, site_id],
                )
        return occupied
