"""SQLite backend: the embedded default (WAL, one writer, readers per thread, R*Tree geo index)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from smartcity.core.errors import BadRequestData
from smartcity.core.patterns import PatternTooSlow, compile_pattern, search
from smartcity.storage.base import EntityQuery, QueryPage
from smartcity.storage.sqlbase import BBox, Cursor, SqlEntityStore, chunks
from smartcity.storage.sqlfilter import SQLITE

SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    pk INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (tenant, id)
);
CREATE TABLE IF NOT EXISTS entity_index (
    pk INTEGER NOT NULL,
    name TEXT NOT NULL,
    num REAL,
    txt TEXT
);
-- (pk, name): one entity's rows of one attribute, for checks and for re-indexing updates.
CREATE INDEX IF NOT EXISTS entity_index_pk_name ON entity_index (pk, name);
DROP INDEX IF EXISTS entity_index_pk;
CREATE INDEX IF NOT EXISTS entity_index_num ON entity_index (name, num);
CREATE INDEX IF NOT EXISTS entity_index_txt ON entity_index (name, txt);
CREATE TABLE IF NOT EXISTS entity_geo (
    gid INTEGER PRIMARY KEY,
    pk INTEGER NOT NULL,
    name TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entity_geo_pk ON entity_geo (pk);
CREATE VIRTUAL TABLE IF NOT EXISTS entity_geo_rtree USING rtree (gid, minx, maxx, miny, maxy);
CREATE TABLE IF NOT EXISTS entity_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    doc TEXT NOT NULL,
    changed TEXT NOT NULL,
    previous TEXT NOT NULL,
    types_changed INTEGER NOT NULL
);
"""


# A pattern that ran too long, per thread: later rows of the same query skip the search, and
# the query raises it when SQLite hands control back (a SQL function cannot raise through SQLite).
_too_slow = threading.local()


def _regexp(pattern: str, text: str | None) -> bool:
    if text is None or getattr(_too_slow, "error", None) is not None:
        return False
    try:
        return search(compile_pattern(pattern), text)
    except PatternTooSlow as error:
        _too_slow.error = error
        return False
    except BadRequestData:
        return False


def sqlite_path(url: str) -> Path:
    """Return the file path of a sqlite:///path URL."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a SQLite URL: {url!r} (expected sqlite:///path/to/file.db)")
    return Path(url.removeprefix("sqlite:///"))


class SqliteEntityStore(SqlEntityStore):
    """EntityStore on one SQLite file."""

    dialect = SQLITE
    # Without statistics the planner may walk a (name, ...) index to find one entity's rows.
    _by_pk = " INDEXED BY entity_index_pk_name"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._commit_listeners = []
        self._change_hooks = {}
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._writer = self._connect()
        self._writer.executescript(SCHEMA)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, timeout=30
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=OFF")
        connection.execute("PRAGMA cache_size=-65536")
        connection.create_function("regexp", 2, _regexp, deterministic=True)
        with self._connections_lock:
            self._connections.append(connection)
        return connection

    @contextmanager
    def reading(self) -> Iterator[Cursor]:
        connection: sqlite3.Connection | None = getattr(self._local, "reader", None)
        if connection is None:
            connection = self._connect()
            self._local.reader = connection
        cursor = connection.cursor()
        try:
            cursor.execute("BEGIN")
            yield cursor
        finally:
            cursor.execute("COMMIT")
            cursor.close()

    @contextmanager
    def writing(self) -> Iterator[Cursor]:
        with self._write_lock:
            cursor = self._writer.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            else:
                cursor.execute("COMMIT")
            finally:
                cursor.close()

    def _lock_rows_sql(self) -> str:
        return ""  # BEGIN IMMEDIATE already holds the database's one write lock.

    def _lock_change_log(self, cursor: Cursor) -> None:
        """Nothing to do: there is one writer at a time, so commits are in seq order."""

    def _insert_geo(self, cursor: Cursor, rows: list[tuple[int, str, BBox]]) -> None:
        for pk, name, (minx, miny, maxx, maxy) in rows:
            cursor.execute("INSERT INTO entity_geo (pk, name) VALUES (?, ?)", (pk, name))
            cursor.execute(
                "INSERT INTO entity_geo_rtree (gid, minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?)",
                (cursor.lastrowid, minx, maxx, miny, maxy),
            )

    def _delete_geo(self, cursor: Cursor, pks: Sequence[int]) -> None:
        for chunk in chunks(pks):
            marks = ", ".join("?" * len(chunk))
            cursor.execute(
                f"DELETE FROM entity_geo_rtree WHERE gid IN "
                f"(SELECT gid FROM entity_geo WHERE pk IN ({marks}))",
                list(chunk),
            )
            cursor.execute(f"DELETE FROM entity_geo WHERE pk IN ({marks})", list(chunk))

    def _geo_candidates(self, geoproperty: str, bbox: BBox) -> tuple[str, list[object]]:
        minx, miny, maxx, maxy = bbox
        return (
            "SELECT g.pk FROM entity_geo_rtree r JOIN entity_geo g ON g.gid = r.gid "
            "WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ? AND g.name = ?",
            [maxx, minx, maxy, miny, geoproperty],
        )

    def query(self, query: EntityQuery) -> QueryPage:
        """Run the query; a user pattern that ran too long fails it with a 400."""
        _too_slow.error = None
        page = super().query(query)
        error: PatternTooSlow | None = _too_slow.error
        _too_slow.error = None
        if error is not None:
            raise error
        return page

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
