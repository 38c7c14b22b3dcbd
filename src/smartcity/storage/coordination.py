"""Coordination of processes on one database: leases with an epoch, named positions, an identity.

A lease gives one holder a named piece of work (publishing the change log, one partition of the
rules) until it expires; the holder renews it well before. Each time the lease changes hands its
`epoch` grows, so a write fenced by the epoch (`save_position(..., epoch=)`) from a holder that
lost its lease without noticing is refused. Time is the wall clock of the processes (seconds
since the epoch): the platform's `Clock` may be a simulator's and must not decide who holds what.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from smartcity.storage.sqlbase import Cursor, SqlEntityStore

_DDL: Final = """
CREATE TABLE IF NOT EXISTS coordination_leases (
    name {text} PRIMARY KEY,
    holder TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS coordination_positions (
    name {text} PRIMARY KEY,
    seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS coordination_identity (
    name {text} PRIMARY KEY,
    value TEXT NOT NULL
)
"""
_TEXT: Final = {"sqlite": "TEXT", "postgresql": 'TEXT COLLATE "C"'}
_DDL_LOCK: Final = 0x736D636F6F72  # "smcoor"
Now = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease as stored."""

    name: str
    holder: str
    epoch: int
    expires_at: float


class SqlCoordination:
    """Leases, positions and the database's identity, on the platform's SQL database."""

    def __init__(self, store: SqlEntityStore, now: Now = time.time) -> None:
        self._store = store
        self._p = store.dialect.placeholder
        self.now = now
        self._lock = " FOR UPDATE" if store.dialect.name == "postgresql" else ""
        """Hold the lease row until commit, so it cannot change hands under a fenced write."""
        with store.writing() as cursor:
            if store.dialect.name == "postgresql":
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
            for statement in _DDL.format(text=_TEXT[store.dialect.name]).split(";"):
                cursor.execute(statement)

    # -- leases ---------------------------------------------------------------------------------

    def acquire(self, name: str, holder: str, ttl: float) -> int | None:
        """Take or renew the lease `name` for `ttl` seconds; return its epoch, None if held.

        One statement, so two processes asking at once cannot both get it.
        """
        p = self._p
        now = self.now()
        with self._store.writing() as cursor:
            cursor.execute(
                "INSERT INTO coordination_leases (name, holder, epoch, expires_at) "
                f"VALUES ({p}, {p}, 1, {p}) ON CONFLICT (name) DO UPDATE SET "
                "epoch = CASE WHEN coordination_leases.holder = excluded.holder "
                "AND coordination_leases.expires_at >= "
                f"{p} THEN coordination_leases.epoch ELSE coordination_leases.epoch + 1 END, "
                "holder = excluded.holder, expires_at = excluded.expires_at "
                "WHERE coordination_leases.holder = excluded.holder "
                f"OR coordination_leases.expires_at < {p}",
                [name, holder, now + ttl, now, now],
            )
            cursor.execute(
                f"SELECT holder, epoch FROM coordination_leases WHERE name = {p}", [name]
            )
            row = cursor.fetchone()
        return int(row[1]) if row is not None and row[0] == holder else None

    def holds(self, name: str, holder: str, epoch: int) -> bool:
        """Tell whether `holder` still holds lease `name` in `epoch`, unexpired."""
        lease = self.lease(name)
        return (
            lease is not None
            and lease.holder == holder
            and lease.epoch == epoch
            and lease.expires_at >= self.now()
        )

    def release(self, name: str, holder: str) -> None:
        """Give the lease back at once (others may take it), if `holder` holds it."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"UPDATE coordination_leases SET expires_at = 0 WHERE name = {p} AND holder = {p}",
                [name, holder],
            )

    def lease(self, name: str) -> Lease | None:
        """Return the lease `name` as stored (maybe expired), or None."""
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT name, holder, epoch, expires_at FROM coordination_leases "
                f"WHERE name = {self._p}",
                [name],
            )
            row = cursor.fetchone()
        return None if row is None else Lease(row[0], row[1], int(row[2]), float(row[3]))

    def live(self, prefix: str) -> list[Lease]:
        """Return the unexpired leases whose names start with `prefix`."""
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT name, holder, epoch, expires_at FROM coordination_leases "
                f"WHERE name LIKE {self._p} AND expires_at >= {self._p} ORDER BY name",
                [prefix.replace("%", "") + "%", self.now()],
            )
            rows = cursor.fetchall()
        return [Lease(row[0], row[1], int(row[2]), float(row[3])) for row in rows]

    # -- positions ------------------------------------------------------------------------------

    def position(self, name: str) -> int | None:
        """Return the stored position `name`, or None if none was saved."""
        with self._store.reading() as cursor:
            cursor.execute(f"SELECT seq FROM coordination_positions WHERE name = {self._p}", [name])
            row = cursor.fetchone()
        return None if row is None else int(row[0])

    def save_position(
        self, name: str, seq: int, *, lease: str | None = None, holder: str = "", epoch: int = 0
    ) -> bool:
        """Store position `name`; with `lease`, only while `holder` holds it in `epoch`."""
        with self._store.writing() as cursor:
            if lease is not None and not self.fenced(cursor, lease, holder, epoch):
                return False
            self._upsert_position(cursor, name, seq)
        return True

    def fenced(self, cursor: Cursor, lease: str, holder: str, epoch: int) -> bool:
        """Tell, inside a write transaction, whether `holder` holds `lease` in `epoch`."""
        p = self._p
        cursor.execute(
            "SELECT 1 FROM coordination_leases WHERE name = "
            f"{p} AND holder = {p} AND epoch = {p} AND expires_at >= {p}{self._lock}",
            [lease, holder, epoch, self.now()],
        )
        return cursor.fetchone() is not None

    def _upsert_position(self, cursor: Cursor, name: str, seq: int) -> None:
        p = self._p
        cursor.execute(
            f"INSERT INTO coordination_positions (name, seq) VALUES ({p}, {p}) "
            "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
            [name, seq],
        )

    # -- identity -------------------------------------------------------------------------------

    def identity(self) -> str:
        """Return this database's id (made once, kept): message ids built on it never collide."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"INSERT INTO coordination_identity (name, value) VALUES ({p}, {p}) "
                "ON CONFLICT (name) DO NOTHING",
                ["store", uuid.uuid4().hex[:16]],
            )
            cursor.execute(f"SELECT value FROM coordination_identity WHERE name = {p}", ["store"])
            return str(cursor.fetchone()[0])
