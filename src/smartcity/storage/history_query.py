"""Read the temporal history: instances in a time window, and aggregates per period, in SQL."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from smartcity.core.entity import Instance
from smartcity.core.qlang import And, Or, TypeExpr, TypeName
from smartcity.storage.base import EVERYTHING, Visibility
from smartcity.storage.sqlbase import SqlEntityStore, chunks

TimeColumn = Literal["observed_at", "created_at", "modified_at", "deleted_at"]
TIME_COLUMNS: dict[str, TimeColumn] = {
    "observedAt": "observed_at",
    "createdAt": "created_at",
    "modifiedAt": "modified_at",
    "deletedAt": "deleted_at",
}


_AGGREGATE_SQL: Final = {
    "distinctCount": "COUNT(DISTINCT value)",
    "sum": "SUM(num)",
    "avg": "AVG(num)",
    "min": "MIN(num)",
    "max": "MAX(num)",
    "sumsq": "SUM(num * num)",
}
AGGREGATES: Final = ("totalCount", *_AGGREGATE_SQL, "stddev")


@dataclass(frozen=True, slots=True)
class InstanceWindow:
    """Which instances of the selected entities to read: attributes, datasets, time range."""

    attrs: Sequence[str] | None = None
    dataset_ids: Sequence[str] | None = None
    """'' names the default instance."""
    column: TimeColumn = "observed_at"
    lower: int | None = None
    """Inclusive, in microseconds since the epoch."""
    upper: int | None = None
    """Exclusive."""
    last_n: int | None = None
    limit: int = 10_000
    """The most instances returned per attribute of an entity (one more tells of a cut)."""


@dataclass(slots=True)
class InstanceRecord:
    """One stored instance as a temporal read returns it."""

    key: int
    attr: str
    dataset_id: str
    instance_id: str
    at: int
    """The instance's time by the window's time property."""
    created_at: int
    modified_at: int
    deleted_at: int | None
    instance: Instance


@dataclass(slots=True)
class Aggregate:
    """The aggregates of one attribute (one dataset) of one entity over one period."""

    key: int
    attr: str
    dataset_id: str
    bucket: int
    kind: str
    total: int
    distinct: int
    sum: float | None
    avg: float | None
    min: float | None
    max: float | None
    sumsq: float | None
    numbers: int
    first: int
    last: int


@dataclass(slots=True)
class HistoryEntity:
    """An entity that has a temporal representation."""

    key: int
    id: str
    types: list[str]
    scopes: list[str]
    deleted_at: int | None = None


@dataclass(slots=True)
class EntitySelection:
    """Which entities a temporal query is about (names are expanded IRIs)."""

    tenant: str
    ids: Sequence[str] | None = None
    types: TypeExpr | None = None
    attrs: Sequence[str] | None = None
    limit: int = 20
    offset: int = 0
    count: bool = False
    visibility: Visibility = EVERYTHING


class SqlHistoryReader:
    """The read side of the SQL history."""

    def __init__(self, store: SqlEntityStore) -> None:
        self.store = store

    @property
    def _p(self) -> str:
        return self.store.dialect.placeholder

    def _marks(self, count: int) -> str:
        return ", ".join([self._p] * count)

    def _window(self, keys: Sequence[int], window: InstanceWindow) -> tuple[str, list[Any]]:
        """Return the WHERE clause (over history_instances) and parameters of a window."""
        p, column = self._p, window.column
        conditions = [f"hk IN ({self._marks(len(keys))})", f"{column} IS NOT NULL"]
        params: list[Any] = list(keys)
        if window.attrs is not None:
            attrs = list(window.attrs)
            conditions.append(f"attr IN ({self._marks(len(attrs))})" if attrs else "1 = 0")
            params.extend(attrs)
        if window.dataset_ids is not None:
            datasets = list(window.dataset_ids)
            conditions.append(f"dataset_id IN ({self._marks(len(datasets))})")
            params.extend(datasets)
        if window.lower is not None:
            conditions.append(f"{column} >= {p}")
            params.append(window.lower)
        if window.upper is not None:
            conditions.append(f"{column} < {p}")
            params.append(window.upper)
        return " AND ".join(conditions), params

    def instances(
        self, keys: Sequence[int], window: InstanceWindow
    ) -> dict[int, list[InstanceRecord]]:
        """Return the instances in the window, by entity key, oldest first.

        Per attribute at most `window.limit + 1` instances come back (the last `last_n` when it
        is set), so the caller can tell that the window held more than the limit.
        """
        if not keys:
            return {}
        where, params = self._window(keys, window)
        column, p = window.column, self._p
        direction = "DESC" if window.last_n is not None else "ASC"
        keep = window.limit + 1
        if window.last_n is not None:
            keep = min(window.last_n, keep)
        sql = (
            "SELECT hk, attr, dataset_id, instance_id, at, created_at, modified_at, deleted_at, "
            "doc FROM (SELECT hk, attr, dataset_id, instance_id, "
            f"{column} AS at, created_at, modified_at, deleted_at, doc, ROW_NUMBER() OVER "
            f"(PARTITION BY hk, attr ORDER BY {column} {direction}, instance_id {direction}) "
            f"AS rn FROM history_instances WHERE {where}) w WHERE rn <= {p} "
            "ORDER BY hk, attr, at, instance_id"
        )
        with self.store.reading() as cursor:
            cursor.execute(sql, [*params, keep])
            rows = cursor.fetchall()
        found: dict[int, list[InstanceRecord]] = {}
        loads = orjson.loads
        for key, attr, dataset, instance_id, at, created, modified, deleted, doc in rows:
            found.setdefault(key, []).append(
                InstanceRecord(
                    key, attr, dataset, instance_id, at, created, modified, deleted, loads(doc)
                )
            )
        return found

    def first_time(self, keys: Sequence[int], window: InstanceWindow) -> int | None:
        """Return the earliest time of an instance in the window (None if there is none)."""
        if not keys:
            return None
        where, params = self._window(keys, window)
        with self.store.reading() as cursor:
            sql = f"SELECT MIN({window.column}) FROM history_instances WHERE {where}"
            cursor.execute(sql, params)
            value = cursor.fetchone()[0]
        return None if value is None else int(value)

    def aggregate(
        self,
        keys: Sequence[int],
        window: InstanceWindow,
        start: int,
        period: int,
        methods: Collection[str] = AGGREGATES,
    ) -> list[Aggregate]:
        """Return the aggregates of each attribute per period, computed by the database.

        Period n covers [start + n * period, start + (n + 1) * period); a period of 0 makes the
        whole window one period. Deletion records are not values and are left out. Only the
        `methods` asked for are computed (the others read None, counts 0).
        """
        if not keys:
            return []
        where, params = self._window(keys, window)
        column, p = window.column, self._p
        if period > 0:
            bucket, bucket_params = f"({column} - {p}) / {p}", [start, period]
        else:
            bucket, bucket_params = "0", []
        wanted = set(methods)
        if "stddev" in wanted:
            wanted |= {"sum", "sumsq"}
        computed = [
            sql if name in wanted else ("0" if name == "distinctCount" else "NULL")
            for name, sql in _AGGREGATE_SQL.items()
        ]
        numbers = "COUNT(num)" if wanted & {"sum", "avg", "min", "max", "sumsq"} else "0"
        sql = (
            f"SELECT hk, attr, dataset_id, {bucket} AS bucket, MAX(kind), COUNT(*), "
            f"{', '.join(computed)}, {numbers}, MIN({column}), MAX({column}) "
            f"FROM history_instances WHERE {where} AND deleted_at IS NULL "
            "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
        )
        with self.store.reading() as cursor:
            cursor.execute(sql, [*bucket_params, *params])
            rows = cursor.fetchall()
        return [
            Aggregate(
                key=int(row[0]),
                attr=row[1],
                dataset_id=row[2],
                bucket=int(row[3]),
                kind=str(row[4]),
                total=int(row[5]),
                distinct=int(row[6]),
                sum=_float(row[7]),
                avg=_float(row[8]),
                min=_float(row[9]),
                max=_float(row[10]),
                sumsq=_float(row[11]),
                numbers=int(row[12]),
                first=int(row[13]),
                last=int(row[14]),
            )
            for row in rows
        ]

    # -- reads ----------------------------------------------------------------------------------

    def entity(self, tenant: str, entity_id: str) -> HistoryEntity | None:
        """Return the entity with this id if it has a temporal representation."""
        found = self.entities_by_id(tenant, [entity_id])
        return found[0] if found else None

    def entities_by_id(self, tenant: str, ids: Sequence[str]) -> list[HistoryEntity]:
        """Return the entities with these ids that have a temporal representation."""
        found: list[HistoryEntity] = []
        with self.store.reading() as cursor:
            for chunk in chunks(list(ids)):
                cursor.execute(
                    f"SELECT {_ENTITY_COLUMNS} FROM history_entities h WHERE h.tenant = {self._p} "
                    f"AND h.entity_id IN ({self._marks(len(chunk))})",
                    [tenant, *chunk],
                )
                found.extend(_entity(row) for row in cursor.fetchall())
        order = {entity_id: position for position, entity_id in enumerate(ids)}
        return sorted(found, key=lambda e: order[e.id])

    def entities(self, selection: EntitySelection) -> tuple[list[HistoryEntity], int | None]:
        """Return a page of the entities that match, by id, and their total if asked."""
        p = self._p
        conditions = [f"h.tenant = {p}"]
        params: list[Any] = [selection.tenant]
        if selection.ids is not None:
            ids = list(selection.ids)
            conditions.append(f"h.entity_id IN ({self._marks(len(ids))})" if ids else "1 = 0")
            params.extend(ids)
        if selection.types is not None:
            sql, type_params = _type_condition(selection.types, p)
            conditions.append(sql)
            params.extend(type_params)
        if selection.attrs:
            attrs = list(selection.attrs)
            conditions.append(
                "EXISTS (SELECT 1 FROM history_instances i WHERE i.hk = h.hk "
                f"AND i.attr IN ({self._marks(len(attrs))}))"
            )
            params.extend(attrs)
        visibility = selection.visibility
        if not visibility.everything:
            # Filtered here, not after paging: counts and pages leak nothing invisible.
            visible = ["1 = 0"]
            if visibility.ids:
                visible.append(f"h.entity_id IN ({self._marks(len(visibility.ids))})")
                params.extend(sorted(visibility.ids))
            if visibility.types:
                visible.append(
                    "EXISTS (SELECT 1 FROM history_types v WHERE v.hk = h.hk "
                    f"AND v.type IN ({self._marks(len(visibility.types))}))"
                )
                params.extend(sorted(visibility.types))
            conditions.append("(" + " OR ".join(visible) + ")")
        where = " AND ".join(conditions)
        with self.store.reading() as cursor:
            total: int | None = None
            if selection.count:
                cursor.execute(f"SELECT COUNT(*) FROM history_entities h WHERE {where}", params)
                total = int(cursor.fetchone()[0])
            if selection.limit == 0:
                return [], total
            cursor.execute(
                f"SELECT {_ENTITY_COLUMNS} FROM history_entities h WHERE {where} "
                f"ORDER BY h.entity_id LIMIT {p} OFFSET {p}",
                [*params, selection.limit, selection.offset],
            )
            return [_entity(row) for row in cursor.fetchall()], total


_ENTITY_COLUMNS = "h.hk, h.entity_id, h.types, h.scopes, h.deleted_at"


def _entity(row: Sequence[Any]) -> HistoryEntity:
    key, entity_id, types, scopes, deleted_at = row
    return HistoryEntity(int(key), entity_id, orjson.loads(types), orjson.loads(scopes), deleted_at)


def _type_condition(expr: TypeExpr, mark: str) -> tuple[str, list[Any]]:
    """Compile a type selection over `history_types` (one EXISTS per type name)."""
    if isinstance(expr, TypeName):
        sql = f"EXISTS (SELECT 1 FROM history_types t WHERE t.hk = h.hk AND t.type = {mark})"
        return sql, [expr.name]
    if isinstance(expr, And | Or):
        parts = [_type_condition(item, mark) for item in expr.items]
        joiner: Literal[" AND ", " OR "] = " AND " if isinstance(expr, And) else " OR "
        return (
            "(" + joiner.join(sql for sql, _ in parts) + ")",
            [param for _, params in parts for param in params],
        )
    raise TypeError(f"not a type selection: {expr!r}")


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
