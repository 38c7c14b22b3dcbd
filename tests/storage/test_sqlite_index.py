"""SQLite writes only the index rows an update changes: the stored index stays exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smartcity.core.entity import StoredEntity
from smartcity.storage.base import Changes
from smartcity.storage.indexing import index_rows
from smartcity.storage.sqlite import SqliteEntityStore
from tests.storage.entity_factories import geo, make_entity, point, prop

ENTITY = "urn:ngsi-ld:ParkingSpot:one"
values = st.one_of(
    st.integers(-5, 5),
    st.sampled_from(["free", "occupied", "closed"]),
    st.booleans(),
    st.lists(st.integers(0, 3), max_size=3),
)
attributes = st.dictionaries(st.sampled_from(["a", "b", "c", "status"]), values, max_size=4)
places = st.sampled_from([None, (127.04, 37.65), (127.06, 37.66)])


def stored_rows(store: SqliteEntityStore) -> set[tuple[str, float | None, str | None]]:
    with store.reading() as cursor:
        cursor.execute(
            "SELECT i.name, i.num, i.txt FROM entity_index i JOIN entities e ON e.pk = i.pk "
            "WHERE e.id = ?",
            [ENTITY],
        )
        return set(cursor.fetchall())


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(versions=st.lists(st.tuples(attributes, places), min_size=1, max_size=5))
@example(versions=[({"a": 0}, None), ({"a": False}, None)])  # 0 == False in Python
@example(versions=[({"a": 1.0}, None), ({"a": True}, None)])
def test_index_matches_the_entity_after_every_update(
    tmp_path: Path, versions: list[tuple[dict[str, Any], tuple[float, float] | None]]
) -> None:
    store = SqliteEntityStore(tmp_path / f"index-{abs(hash(str(versions)))}.db")
    try:
        for attrs, place in versions:
            members: dict[str, Any] = {k: prop(v) for k, v in attrs.items()}
            if place:
                members["location"] = geo(point(*place))
            entity = make_entity(ENTITY, "ParkingSpot", **members)

            def plan(current: dict[str, StoredEntity], new: StoredEntity = entity) -> Changes:
                return Changes(upserts=[new])

            store.apply("", [ENTITY], plan)
            assert stored_rows(store) == set(index_rows(entity))
            with store.reading() as cursor:
                cursor.execute("SELECT COUNT(*) FROM entity_geo")
                assert cursor.fetchone()[0] == (1 if place else 0)
    finally:
        store.close()
