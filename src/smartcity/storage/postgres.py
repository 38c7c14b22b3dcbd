"""PostgreSQL backend: a connection pool, advisory and row locks, a GiST box index for geo."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import psycopg
from psycopg import IsolationLevel, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from smartcity.core.errors import ConfigurationError
from smartcity.storage.pgnotify import COMMIT_CHANNEL, CommitNotifications, payload
from smartcity.storage.sqlbase import BBox, Cursor, IndexEntry, SqlEntityStore
from smartcity.storage.sqlfilter import POSTGRES

# "C" collation: ids sort and strings compare by code point, as in SQLite and in Python.
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS entities (
    pk BIGSERIAL PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (tenant, id)
);
CREATE TABLE IF NOT EXISTS entity_index (
    pk BIGINT NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    num DOUBLE PRECISION,
    txt TEXT COLLATE "C"
);
-- (pk, name): one entity's rows of one attribute, for checks and for re-indexing updates.
CREATE INDEX IF NOT EXISTS entity_index_pk_name ON entity_index (pk, name);
DROP INDEX IF EXISTS entity_index_pk;
CREATE INDEX IF NOT EXISTS entity_index_num ON entity_index (name, num);
CREATE INDEX IF NOT EXISTS entity_index_txt ON entity_index (name, txt);
CREATE TABLE IF NOT EXISTS entity_geo (
    pk BIGINT NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    bbox BOX NOT NULL
);
CREATE INDEX IF NOT EXISTS entity_geo_pk ON entity_geo (pk);
CREATE INDEX IF NOT EXISTS entity_geo_bbox ON entity_geo USING GIST (bbox);
CREATE TABLE IF NOT EXISTS entity_changes (
    seq BIGSERIAL PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    entity_id TEXT COLLATE "C" NOT NULL,
    types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    doc TEXT NOT NULL,
    changed TEXT NOT NULL,
    previous TEXT NOT NULL,
    types_changed BOOLEAN NOT NULL
);
"""

# Serializes schema creation when several processes start on one database at once.
_DDL_LOCK: Final = 0x736D617274636974  # "smartcit"
# Held from a change's log insert to its commit, so log sequence numbers are in commit order
# and a reader that has seen seq N never later finds a smaller one appear.
_CHANGE_LOG_LOCK: Final = 0x736D6C6F67  # "smlog"


def entity_lock_key(tenant: str, entity_id: str) -> int:
    """Return the 64-bit advisory-lock key of one entity (a collision only serializes more)."""
    digest = hashlib.blake2b(f"{tenant}\x00{entity_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def redacted(url: str) -> str:
    """Return a connection URL or conninfo string fit for messages: no password."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparsable database URL>"
    params.pop("password", None)
    return make_conninfo("", **params)


def _connect_problem(url: str, timeout: float) -> str:
    """Return why one connection attempt fails (PostgreSQL's messages carry no password)."""
    try:
        psycopg.connect(url, connect_timeout=max(1, round(timeout))).close()
    except psycopg.Error as error:
        return str(error).strip()
    return "the pool could not open its connections"


class PostgresEntityStore(SqlEntityStore):
    """EntityStore on a PostgreSQL database (optionally in one schema of it)."""

    dialect = POSTGRES

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 8,
        connect_timeout: float = 10.0,
    ) -> None:
        self._schema = schema
        self._commit_listeners = []
        self._own_backends: set[int] = set()
        self.notifications = CommitNotifications(url, self._own_backends, where=redacted(url))
        """Other processes' commits to this database and schema (`pgnotify.py`)."""
        self._change_hooks = {}
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            configure=self._configure,
            # Never prepare: a generic plan ignores the parameters, and the best plan of an
            # entity query depends on them (which test is selective).
            kwargs={"prepare_threshold": None},
            open=False,
            name="smartcity-store",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout:
            self._pool.close()
            raise ConfigurationError(
                f"cannot connect to PostgreSQL at {redacted(url)} within {connect_timeout:g} s: "
                + _connect_problem(url, connect_timeout)
            ) from None
        self._create_schema()

    @property
    def schema(self) -> str | None:
        """The PostgreSQL schema the store's tables are in (None: the search_path's first)."""
        return self._schema

    def _configure(self, connection: psycopg.Connection[Any]) -> None:
        """Set up a new pooled connection: the store's schema, and no JIT.

        JIT compilation costs tens to hundreds of milliseconds and pays off only for long
        analytical queries; a misestimated entity query (before statistics exist) would pay it.
        """
        connection.execute("SET jit = off")
        self._own_backends.add(connection.info.backend_pid)
        if self._schema is not None:
            connection.execute(
                sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema))
            )
        connection.commit()

    def _create_schema(self) -> None:
        with self._pool.connection() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
            if self._schema is not None:
                connection.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema))
                )
            connection.execute(SCHEMA)

    # -- connections ------------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[Cursor]:
        # One snapshot for every statement of a read (a count and its page agree).
        with self._pool.connection() as connection:
            connection.isolation_level = IsolationLevel.REPEATABLE_READ
            connection.read_only = True
            with connection.transaction(), connection.cursor() as cursor:
                yield cursor

    @contextmanager
    def writing(self) -> Iterator[Cursor]:
        # READ COMMITTED: each statement sees what committed before it, so the entities loaded
        # after their locks are taken are current (a snapshot from the first statement is not).
        with self._pool.connection() as connection:
            connection.isolation_level = IsolationLevel.READ_COMMITTED
            connection.read_only = False
            with connection.transaction(), connection.cursor() as cursor:
                yield cursor

    # -- locks ------------------------------------------------------------------------------

    def _lock_rows_sql(self) -> str:
        return " FOR UPDATE"

    def _load_rows(
        self, cursor: Cursor, tenant: str, ids: Sequence[str], *, lock: bool = False
    ) -> list[tuple[Any, ...]]:
        if lock and ids:
            # Row locks cover existing entities only; two transactions creating the same new id
            # would both see it absent, so each id is locked by key first, keys in one global
            # order (no deadlock between two applies).
            keys = sorted({entity_lock_key(tenant, entity_id) for entity_id in ids})
            cursor.execute(
                "SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) "
                "WITH ORDINALITY AS t(k, n) ORDER BY n",
                [keys],
            )
        return super()._load_rows(cursor, tenant, ids, lock=lock)

    # -- writes -----------------------------------------------------------------------------

    def _lock_change_log(self, cursor: Cursor) -> None:
        self.lock_and_notify(cursor, _CHANGE_LOG_LOCK, "entities")

    def lock_and_notify(self, cursor: Cursor, lock: int, topic: str) -> None:
        """Take a transaction's advisory lock and, in the same statement, the notification of a
        commit of `topic` that other processes hear (`pgnotify.py`; sent at commit only)."""
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s), pg_notify(%s, %s)",
            [lock, COMMIT_CHANNEL, payload(topic, self._schema)],
        )

    def hear_commits(self, topic: str, listener: Callable[[], None]) -> None:
        """Call `listener` when another process commits `topic` to this database and schema."""
        self.notifications.listen(payload(topic, self._schema), listener)

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every commit that logged changes, in this process (in the
        writing thread) or in another one on the same database and schema (in the thread that
        listens for their notifications)."""
        super().add_commit_listener(listener)
        self.hear_commits("entities", listener)

    def _insert_index(self, cursor: Cursor, rows: list[IndexEntry]) -> None:
        # COPY: about four times faster than pipelined INSERTs, even for a few rows.
        index_text = POSTGRES.index_text
        with cursor.copy("COPY entity_index (pk, name, num, txt) FROM STDIN") as copy:
            for pk, name, num, txt in rows:
                copy.write_row((pk, name, num, None if txt is None else index_text(txt)))

    def _insert_geo(self, cursor: Cursor, rows: list[tuple[int, str, BBox]]) -> None:
        with cursor.copy("COPY entity_geo (pk, name, bbox) FROM STDIN") as copy:
            for pk, name, (minx, miny, maxx, maxy) in rows:
                copy.write_row((pk, name, f"({minx!r},{miny!r}),({maxx!r},{maxy!r})"))

    def _delete_geo(self, cursor: Cursor, pks: Sequence[int]) -> None:
        if pks:
            cursor.execute("DELETE FROM entity_geo WHERE pk = ANY(%s::bigint[])", [list(pks)])

    def _geo_candidates(self, geoproperty: str, bbox: BBox) -> tuple[str, list[Any]]:
        minx, miny, maxx, maxy = bbox
        return (
            "SELECT pk FROM entity_geo "
            "WHERE name = %s AND bbox && box(point(%s, %s), point(%s, %s))",
            [geoproperty, float(minx), float(miny), float(maxx), float(maxy)],
        )

    def close(self) -> None:
        """Stop hearing other processes' commits; close the connection pool."""
        self.notifications.close()
        self._pool.close()
