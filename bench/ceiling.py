"""The storage ceiling: the rows a batch upsert writes, written with plain executemany.

The rows are built with the store's own functions (`codec.parse_entity`, `indexing.index_rows`,
`sqlbase.geo_rows`), timed stage by stage but apart from the ceiling; then each batch of 100
entities is written in one transaction into a fresh database of the same kind, as the store
does: upsert the entity rows, delete the entities' old index and geo rows, insert the new ones.
No HTTP, no JSON parsing, no read of the current state, one connection: what the database
itself costs for the same work.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg

from smartcity.broker.codec import parse_entity
from smartcity.broker.contexts import ContextResolver
from smartcity.core.clock import SystemClock, isoformat
from smartcity.storage import postgres, sqlite
from smartcity.storage.indexing import index_rows
from smartcity.storage.sqlbase import geo_rows

EntityRow = tuple[int, str, str, str, str, str, str, str]
IndexRow = tuple[int, str, float | None, str | None]
GeoRow = tuple[int, int, str, float, float, float, float]  # gid, pk, name, minx, miny, maxx, maxy


@dataclass
class RowBatch:
    """The rows of one batch of entities."""

    pks: list[tuple[int]]
    entities: list[EntityRow]
    index: list[IndexRow]
    geo: list[GeoRow]


@dataclass
class CeilingRun:
    """How long building and writing the rows took."""

    entities: int
    index_rows: int
    geo_rows: int
    build: BuildTimes
    write_seconds: float

    @property
    def rate(self) -> float:
        """Return entities written per second (the write phase only)."""
        return self.entities / self.write_seconds


@dataclass
class BuildTimes:
    """Seconds spent building the rows, by stage (the server does the same work per entity)."""

    decode: float = 0.0  # orjson.loads of the request bodies
    parse: float = 0.0  # codec.parse_entity
    encode: float = 0.0  # orjson.dumps of types, scopes and attributes
    index: float = 0.0  # indexing.index_rows
    geo: float = 0.0  # sqlbase.geo_rows

    @property
    def total(self) -> float:
        """Return the seconds of every stage."""
        return self.decode + self.parse + self.encode + self.index + self.geo


def build_batches(
    rounds: Sequence[Sequence[bytes]], ids: Sequence[str]
) -> tuple[list[RowBatch], BuildTimes]:
    """Turn the upsert bodies of every round into rows, as the store would write them."""
    ctx = ContextResolver(allowed_hosts=[]).resolve(None)
    pk_of = {entity_id: pk for pk, entity_id in enumerate(ids, start=1)}
    times = BuildTimes()
    clock = time.perf_counter
    gid = 0
    batches = []
    for bodies in rounds:
        now = isoformat(SystemClock().now())
        for body in bodies:
            batch = RowBatch([], [], [], [])
            t0 = clock()
            raws = orjson.loads(body)
            times.decode += clock() - t0
            for raw in raws:
                t0 = clock()
                entity = parse_entity(raw, ctx, now)
                t1 = clock()
                types = orjson.dumps(entity.types).decode()
                scopes = orjson.dumps(entity.scopes).decode()
                doc = orjson.dumps(entity.attrs).decode()
                t2 = clock()
                index = index_rows(entity)
                t3 = clock()
                geo = geo_rows(entity)
                t4 = clock()
                times.parse += t1 - t0
                times.encode += t2 - t1
                times.index += t3 - t2
                times.geo += t4 - t3
                pk = pk_of[entity.id]
                batch.pks.append((pk,))
                row = (pk, "", entity.id, types, scopes, entity.created_at, entity.modified_at, doc)
                batch.entities.append(row)
                batch.index.extend((pk, name, num, txt) for name, num, txt in index)
                for name, (minx, miny, maxx, maxy) in geo:
                    gid += 1
                    batch.geo.append((gid, pk, name, minx, miny, maxx, maxy))
            batches.append(batch)
    return batches, times


UPSERT = (
    "INSERT INTO entities (pk, tenant, id, types, scopes, created_at, modified_at, doc) "
    "VALUES ({m}) ON CONFLICT (tenant, id) DO UPDATE SET "
    "types = excluded.types, scopes = excluded.scopes, created_at = excluded.created_at, "
    "modified_at = excluded.modified_at, doc = excluded.doc"
)


def write_sqlite(path: Path, batches: Sequence[RowBatch], advance: Callable[[int], None]) -> float:
    """Write the batches into a fresh SQLite file (the store's schema and pragmas)."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA cache_size=-65536")
    connection.executescript(sqlite.SCHEMA)
    upsert = UPSERT.format(m=", ".join("?" * 8))
    started = time.perf_counter()
    for batch in batches:
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(upsert, batch.entities)
        connection.executemany("DELETE FROM entity_index WHERE pk = ?", batch.pks)
        connection.executemany(
            "DELETE FROM entity_geo_rtree WHERE gid IN (SELECT gid FROM entity_geo WHERE pk = ?)",
            batch.pks,
        )
        connection.executemany("DELETE FROM entity_geo WHERE pk = ?", batch.pks)
        connection.executemany(
            "INSERT INTO entity_index (pk, name, num, txt) VALUES (?, ?, ?, ?)", batch.index
        )
        connection.executemany(
            "INSERT INTO entity_geo (gid, pk, name) VALUES (?, ?, ?)",
            [(gid, pk, name) for gid, pk, name, *_ in batch.geo],
        )
        connection.executemany(
            "INSERT INTO entity_geo_rtree (gid, minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?)",
            [(gid, minx, maxx, miny, maxy) for gid, _, _, minx, miny, maxx, maxy in batch.geo],
        )
        connection.execute("COMMIT")
        advance(len(batch.entities))
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def write_postgres(url: str, batches: Sequence[RowBatch], advance: Callable[[int], None]) -> float:
    """Write the batches into a fresh PostgreSQL database (the store's schema)."""
    upsert = UPSERT.format(m=", ".join(["%s"] * 8))
    with psycopg.connect(url) as connection:
        connection.execute(postgres.SCHEMA)
        connection.commit()
        started = time.perf_counter()
        for batch in batches:
            with connection.transaction(), connection.cursor() as cursor:
                cursor.executemany(upsert, batch.entities)
                cursor.executemany("DELETE FROM entity_index WHERE pk = %s", batch.pks)
                cursor.executemany("DELETE FROM entity_geo WHERE pk = %s", batch.pks)
                cursor.executemany(
                    "INSERT INTO entity_index (pk, name, num, txt) VALUES (%s, %s, %s, %s)",
                    batch.index,
                )
                cursor.executemany(
                    "INSERT INTO entity_geo (pk, name, bbox) VALUES (%s, %s, %s::box)",
                    [_pg_geo(row) for row in batch.geo],
                )
            advance(len(batch.entities))
        return time.perf_counter() - started


def _pg_geo(row: GeoRow) -> tuple[Any, ...]:
    _, pk, name, minx, miny, maxx, maxy = row
    return (pk, name, f"({minx!r},{miny!r}),({maxx!r},{maxy!r})")


def summarize(batches: Sequence[RowBatch], build: BuildTimes, write_seconds: float) -> CeilingRun:
    """Count what the batches hold."""
    return CeilingRun(
        entities=sum(len(b.entities) for b in batches),
        index_rows=sum(len(b.index) for b in batches),
        geo_rows=sum(len(b.geo) for b in batches),
        build=build,
        write_seconds=write_seconds,
    )
