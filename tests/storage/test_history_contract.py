"""The history store contract, on both backends: written with each change, read in SQL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from smartcity.core.qlang import parse_types
from smartcity.storage.base import EntityStore
from smartcity.storage.history import (
    EntitySelection,
    HistoryStore,
    InstanceWindow,
    SqlHistoryStore,
)
from smartcity.storage.history_rows import EntityHeader, instance_row, micros
from smartcity.storage.postgres import PostgresEntityStore
from smartcity.storage.sqlbase import SqlEntityStore
from smartcity.storage.sqlite import SqliteEntityStore
from tests.conftest import postgres_url
from tests.storage.entity_factories import iri, make_entity, prop, rel
from tests.storage.test_store_contract import delete, put

SENSOR = "urn:ngsi-ld:Sensor:h-"
T0 = "2026-01-01T00:00:00Z"


def at(minute: int) -> str:
    """Return the time `minute` minutes after T0."""
    return f"2026-01-01T{minute // 60:02d}:{minute % 60:02d}:00Z"


def sql(store: EntityStore) -> SqlEntityStore:
    assert isinstance(store, SqlEntityStore)
    return store


@pytest.fixture
def history(store: EntityStore) -> HistoryStore:
    return SqlHistoryStore(sql(store))


def reading(store: EntityStore, number: int, value: float, minute: int, **extra: Any) -> None:
    """Write a Sensor's temperature observed at `minute` (the entity is replaced whole)."""
    entity = make_entity(
        f"{SENSOR}{number}",
        "Sensor",
        modified_at=at(minute),
        temperature=prop(value, observedAt=at(minute), modifiedAt=at(minute)),
        **extra,
    )
    put(store, entity)


def values(history: HistoryStore, number: int, window: InstanceWindow) -> list[object]:
    entity = history.entity("", f"{SENSOR}{number}")
    assert entity is not None
    found = history.instances([entity.key], window)
    return [record.instance.get("value") for record in found.get(entity.key, [])]


def test_every_change_is_kept_with_its_observed_time(
    store: EntityStore, history: HistoryStore
) -> None:
    for minute, value in enumerate([20.0, 21.0, 22.5, 19.0]):
        reading(store, 1, value, minute)
    assert history.catch_up() == 0  # written in each change's own transaction
    assert history.position() == store.last_change_seq()
    everything = InstanceWindow()
    assert values(history, 1, everything) == [20.0, 21.0, 22.5, 19.0]
    between = InstanceWindow(lower=micros(at(1)), upper=micros(at(3)))
    assert values(history, 1, between) == [21.0, 22.5]
    assert values(history, 1, InstanceWindow(last_n=2)) == [22.5, 19.0]
    entity = history.entity("", f"{SENSOR}1")
    assert entity is not None
    records = history.instances([entity.key], everything)[entity.key]
    assert len({r.instance_id for r in records}) == 4
    assert all(r.instance_id.startswith("urn:") for r in records)
    assert [r.at for r in records] == [micros(at(m)) for m in range(4)]


def test_unchanged_attributes_leave_no_rows(store: EntityStore, history: HistoryStore) -> None:
    reading(store, 2, 1.0, 0, name=prop("north gate"))
    reading(store, 2, 2.0, 1, name=prop("north gate"))
    history.catch_up()
    entity = history.entity("", f"{SENSOR}2")
    assert entity is not None
    names = history.instances([entity.key], InstanceWindow(attrs=[iri("name")]))[entity.key]
    assert [r.instance["value"] for r in names] == ["north gate"]


def test_aggregates_per_period_match_hand_computed_values(
    store: EntityStore, history: HistoryStore
) -> None:
    readings = [10.0, 20.0, 30.0, 5.0, 5.0, 8.0]  # minutes 0..5, periods of 3 minutes
    for minute, value in enumerate(readings):
        reading(store, 3, value, minute)
    history.catch_up()
    entity = history.entity("", f"{SENSOR}3")
    assert entity is not None
    window = InstanceWindow(attrs=[iri("temperature")])
    first, second = history.aggregate([entity.key], window, micros(T0), 3 * 60_000_000)
    assert (first.bucket, first.total, first.distinct) == (0, 3, 3)
    assert (first.sum, first.avg, first.min, first.max) == (60.0, 20.0, 10.0, 30.0)
    assert first.sumsq == 100.0 + 400.0 + 900.0
    assert (second.bucket, second.total, second.distinct) == (1, 3, 2)
    assert second.avg == pytest.approx(6.0)
    whole = history.aggregate([entity.key], window, micros(T0), 0)
    assert [(a.total, a.sum, a.first, a.last) for a in whole] == [
        (6, 78.0, micros(at(0)), micros(at(5)))
    ]


def test_deleting_an_attribute_records_a_deletion(
    store: EntityStore, history: HistoryStore
) -> None:
    reading(store, 4, 1.0, 0, parent=rel("urn:ngsi-ld:Building:1"))
    reading(store, 4, 2.0, 1)  # the relationship is gone in this version
    history.catch_up()
    entity = history.entity("", f"{SENSOR}4")
    assert entity is not None
    records = history.instances([entity.key], InstanceWindow(attrs=[iri("parent")]))[entity.key]
    assert [r.deleted_at is not None for r in records] == [False, True]
    # Deletions are not values: aggregates leave them out.
    (aggregate,) = history.aggregate([entity.key], InstanceWindow(attrs=[iri("parent")]), 0, 0)
    assert aggregate.total == 1


@pytest.mark.parametrize("keep", [True, False])
def test_deleting_an_entity_keeps_or_drops_its_history(store: EntityStore, keep: bool) -> None:
    history = SqlHistoryStore(sql(store), keep_on_delete=keep)
    reading(store, 5, 1.0, 0)
    delete(store, f"{SENSOR}5")
    history.catch_up()
    entity = history.entity("", f"{SENSOR}5")
    if not keep:
        assert entity is None
        return
    assert entity is not None
    assert entity.deleted_at is not None
    assert values(history, 5, InstanceWindow()) == [1.0, None]


def test_tenants_are_kept_apart(store: EntityStore, history: HistoryStore) -> None:
    entity = make_entity(f"{SENSOR}6", "Sensor", temperature=prop(1))
    put(store, entity, tenant="police")
    history.catch_up()
    assert history.entity("", f"{SENSOR}6") is None
    assert history.entity("police", f"{SENSOR}6") is not None
    page, _ = history.entities(EntitySelection("", types=parse_types(iri("Sensor"))))
    assert page == []


def test_entity_selection_by_type_attrs_and_paging(
    store: EntityStore, history: HistoryStore
) -> None:
    for number in range(3):
        reading(store, 10 + number, 1.0, 0)
    put(store, make_entity(f"{SENSOR}99", "Building", height=prop(3)))
    history.catch_up()
    sensors = parse_types(iri("Sensor"))
    page, total = history.entities(EntitySelection("", types=sensors, limit=2, count=True))
    assert [e.id for e in page] == [f"{SENSOR}10", f"{SENSOR}11"]
    assert total == 3
    either = parse_types(f"{iri('Sensor')}|{iri('Building')}")
    page, _ = history.entities(EntitySelection("", types=either, attrs=[iri("height")]))
    assert [e.id for e in page] == [f"{SENSOR}99"]


def test_direct_writes_corrections_and_deletions(history: HistoryStore) -> None:
    header = EntityHeader(f"{SENSOR}20", [iri("Sensor")], [])
    rows = [
        instance_row(iri("temperature"), prop(v, observedAt=at(m)), micros(at(m)))
        for m, v in enumerate([1, 2, 3])
    ]
    assert history.add("", header, rows) is True
    assert history.add("", header, []) is False
    fixed = instance_row(iri("temperature"), prop(20, observedAt=at(1)), micros(at(9)))
    assert history.replace_instance("", header.id, iri("temperature"), rows[1].instance_id, fixed)
    assert not history.replace_instance("", header.id, iri("temperature"), "urn:x:none", fixed)
    assert history.delete_instance("", header.id, iri("temperature"), rows[0].instance_id)
    assert values(history, 20, InstanceWindow()) == [20, 3]
    assert history.delete_attribute("", header.id, iri("temperature"), None, every=False) == 2
    assert history.delete_entity("", header.id)
    assert not history.delete_entity("", header.id)


def test_prune_removes_what_is_older_than_the_limit(
    store: EntityStore, history: HistoryStore
) -> None:
    for minute in range(5):
        reading(store, 30, float(minute), minute)
    delete(store, f"{SENSOR}30")
    history.catch_up()
    assert history.prune(micros(at(3)), batch=2) == 3
    assert values(history, 30, InstanceWindow()) == [3.0, 4.0, None]
    history.prune(micros("2100-01-01T00:00:00Z"))
    assert history.entity("", f"{SENSOR}30") is None  # deleted and empty: gone


def another_store(store: EntityStore) -> SqlEntityStore:
    """Open a second store on the same database, without a history attached to it."""
    if isinstance(store, SqliteEntityStore):
        return SqliteEntityStore(store.path)
    assert isinstance(store, PostgresEntityStore)
    return PostgresEntityStore(postgres_url(), schema=store.schema)


def test_changes_logged_without_a_history_are_caught_up_in_order(
    store: EntityStore, history: HistoryStore
) -> None:
    reading(store, 41, 1.0, 0)  # written inline
    bare = another_store(store)
    try:
        reading(bare, 41, 2.0, 1)  # logged only: this store has no history attached
        reading(store, 41, 3.0, 2)  # must wait behind the change before it
        assert values(history, 41, InstanceWindow()) == [1.0]
        assert history.catch_up() == 2
        assert values(history, 41, InstanceWindow()) == [1.0, 2.0, 3.0]
        reading(store, 41, 4.0, 3)  # up to date again: inline
        assert history.catch_up() == 0
        assert values(history, 41, InstanceWindow()) == [1.0, 2.0, 3.0, 4.0]
    finally:
        bare.close()


def test_two_writers_on_one_database_write_each_change_once(
    store: EntityStore, history: HistoryStore
) -> None:
    second = SqlHistoryStore(sql(store))
    bare = another_store(store)
    try:
        for minute in range(40):
            reading(bare, 40, float(minute), minute)
    finally:
        bare.close()
    threads = [threading.Thread(target=h.catch_up, kwargs={"batch": 3}) for h in (history, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert values(history, 40, InstanceWindow()) == [float(m) for m in range(40)]


@pytest.mark.postgres
def test_two_processes_share_the_position_on_postgres(postgres_schema: str) -> None:
    first = PostgresEntityStore(postgres_url(), schema=postgres_schema)
    other = PostgresEntityStore(postgres_url(), schema=postgres_schema)
    bare = PostgresEntityStore(postgres_url(), schema=postgres_schema)
    try:
        histories = [SqlHistoryStore(first), SqlHistoryStore(other)]
        for minute in range(30):
            reading(bare, 50, float(minute), minute)
        threads = [threading.Thread(target=h.catch_up, kwargs={"batch": 2}) for h in histories]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert values(histories[1], 50, InstanceWindow()) == [float(m) for m in range(30)]
    finally:
        first.close()
        other.close()
        bare.close()


@pytest.mark.postgres
def test_inline_writes_from_two_processes_keep_every_change(postgres_schema: str) -> None:
    stores = [PostgresEntityStore(postgres_url(), schema=postgres_schema) for _ in range(2)]
    try:
        histories = [SqlHistoryStore(s) for s in stores]

        def feed(which: int) -> None:
            for minute in range(20):
                reading(stores[which], 70 + which, float(minute), minute)

        threads = [threading.Thread(target=feed, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert histories[0].catch_up() == 0
        for which in range(2):
            expected = [float(m) for m in range(20)]
            assert values(histories[which], 70 + which, InstanceWindow()) == expected
    finally:
        for store in stores:
            store.close()


def test_a_restart_continues_where_the_history_stopped(tmp_path: Path) -> None:
    path = tmp_path / "restart.db"
    store = SqliteEntityStore(path)
    SqlHistoryStore(store)
    reading(store, 60, 1.0, 0)
    store.close()
    bare = SqliteEntityStore(path)  # e.g. a tool that opened the database without the history
    reading(bare, 60, 2.0, 1)
    bare.close()
    reopened = SqliteEntityStore(path)
    try:
        history = SqlHistoryStore(reopened)  # catches up as it opens
        assert history.catch_up() == 0
        assert values(history, 60, InstanceWindow()) == [1.0, 2.0]
    finally:
        reopened.close()
