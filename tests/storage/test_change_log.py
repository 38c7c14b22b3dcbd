"""The change log contract: every committed change is logged once, in commit order."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from smartcity.core.clock import ManualClock
from smartcity.core.entity import StoredEntity
from smartcity.core.errors import AlreadyExists
from smartcity.storage.base import ChangeKind, Changes, EntityStore
from smartcity.storage.changelog import ChangeLogPruner
from smartcity.storage.sqlbase import SqlEntityStore
from tests.storage.entity_factories import iri, make_entity, prop
from tests.storage.test_store_contract import delete, put

SPOT = "urn:ngsi-ld:ParkingSpot:log-"


def test_create_update_delete_are_logged_with_what_changed(store: EntityStore) -> None:
    start = store.last_change_seq()
    put(store, make_entity(SPOT + "1", "ParkingSpot", status=prop("free"), name=prop("A-1")))
    put(store, make_entity(SPOT + "1", "ParkingSpot", status=prop("occupied"), name=prop("A-1")))
    delete(store, SPOT + "1")
    created, updated, deleted = store.changes_since(start)
    assert [c.kind for c in (created, updated, deleted)] == [
        ChangeKind.CREATE,
        ChangeKind.UPDATE,
        ChangeKind.DELETE,
    ]
    assert created.seq < updated.seq < deleted.seq == store.last_change_seq()
    assert sorted(created.changed) == sorted([iri("status"), iri("name")])
    assert updated.changed == [iri("status")]
    assert updated.previous == {iri("status"): [prop("free")]}
    assert updated.entity.attrs[iri("status")] == [prop("occupied")]
    assert not updated.types_changed
    assert deleted.entity.attrs[iri("status")] == [prop("occupied")]
    assert store.changes_since(deleted.seq) == []


def test_heads_name_the_changes_and_whole_changes_come_by_seq(store: EntityStore) -> None:
    start = store.last_change_seq()
    put(store, make_entity(SPOT + "4", "ParkingSpot", status=prop("free")))
    put(store, make_entity(SPOT + "5", "ParkingSpot", status=prop("free")), tenant="police")
    put(store, make_entity(SPOT + "4", "ParkingSpot", status=prop("occupied")))
    heads = store.change_heads_since(start)
    assert [(h.tenant, h.entity_id, h.types) for h in heads] == [
        ("", SPOT + "4", [iri("ParkingSpot")]),
        ("police", SPOT + "5", [iri("ParkingSpot")]),
        ("", SPOT + "4", [iri("ParkingSpot")]),
    ]
    assert store.change_heads_since(start, limit=1) == heads[:1]
    whole = store.changes_at([heads[2].seq, heads[0].seq])
    assert [c.seq for c in whole] == [heads[0].seq, heads[2].seq]
    assert whole[1].entity.attrs[iri("status")] == [prop("occupied")]
    assert whole == [c for c in store.changes_since(start) if c.tenant == ""]


def test_a_number_that_becomes_a_boolean_is_a_change(store: EntityStore) -> None:
    put(store, make_entity(SPOT + "6", "ParkingSpot", occupied=prop(0)))
    start = store.last_change_seq()
    put(store, make_entity(SPOT + "6", "ParkingSpot", occupied=prop(False)))
    (change,) = store.changes_since(start)
    assert change.changed == [iri("occupied")]


def test_a_write_that_changes_nothing_is_not_logged(store: EntityStore) -> None:
    put(store, make_entity(SPOT + "7", "ParkingSpot", status=prop("free")))
    start = store.last_change_seq()

    def plan(current: dict[str, StoredEntity]) -> Changes:
        entity = current[SPOT + "7"]
        entity.modified_at = "2026-11-28T02:00:00Z"  # touched, but no attribute differs
        return Changes(upserts=[entity])

    store.apply("", [SPOT + "7"], plan)
    assert store.changes_since(start) == []


def test_tenants_are_logged_apart(store: EntityStore) -> None:
    start = store.last_change_seq()
    put(store, make_entity(SPOT + "2", "ParkingSpot"), tenant="police")
    (change,) = store.changes_since(start)
    assert change.tenant == "police"


def test_a_plan_that_fails_logs_nothing(store: EntityStore) -> None:
    start = store.last_change_seq()

    def plan(_: object) -> Changes:
        raise AlreadyExists("no")

    with pytest.raises(AlreadyExists):
        store.apply("", [SPOT + "3"], plan)
    assert store.changes_since(start) == []


def test_commit_listeners_hear_every_commit_and_sequences_follow_commit_order(
    store: EntityStore,
) -> None:
    heard: list[int] = []
    store.add_commit_listener(lambda: heard.append(1))
    start = store.last_change_seq()

    def writer(n: int) -> None:
        for round_ in range(10):
            put(store, make_entity(f"{SPOT}t{n}", "ParkingSpot", count=prop(round_)))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    changes = store.changes_since(start, limit=1000)
    assert len(changes) == len(heard) == 40
    seqs = [c.seq for c in changes]
    assert seqs == sorted(seqs)
    # Per entity, the log replays the updates in the order they were made.
    for n in range(4):
        counts = [
            c.entity.attrs[iri("count")][0]["value"]
            for c in changes
            if c.entity.id.endswith(f"t{n}")
        ]
        assert counts == list(range(10))


def test_pruning_keeps_what_a_reader_still_needs_and_what_is_recent(store: EntityStore) -> None:
    assert isinstance(store, SqlEntityStore)
    clock = ManualClock(datetime(2026, 11, 27, 12, 30, tzinfo=UTC))
    pruner = ChangeLogPruner(store, clock, keep=timedelta(hours=1))
    start = store.last_change_seq()
    for n in range(3):
        put(
            store,
            make_entity(f"{SPOT}p{n}", "ParkingSpot", modified_at=f"2026-11-27T1{n}:00:00.000000Z"),
        )
    first, second, third = (c.seq for c in store.changes_since(start))
    position = first
    pruner.register("history", lambda: position)
    # 10:00 and 11:00 are more than an hour old, but the reader has consumed only the first.
    assert pruner.prune_once() == 1
    position = third
    # Everything is consumed now; 12:00 is younger than an hour and stays.
    assert pruner.prune_once() == 1
    assert [c.seq for c in store.changes_since(start)] == [third]
    assert second < third
