"""Leases with epochs, fenced positions and the database's identity, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from smartcity.storage.coordination import SqlCoordination
from smartcity.storage.sqlbase import SqlEntityStore


class Clock:
    """Wall time the test moves."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def database(backend_store: SqlEntityStore) -> SqlEntityStore:
    """An empty store of each backend (the shared `backend_store`)."""
    return backend_store


def test_a_lease_is_held_by_one_until_it_expires_and_then_changes_epoch(
    database: SqlEntityStore,
) -> None:
    clock = Clock()
    leases = SqlCoordination(database, now=clock)
    assert leases.acquire("relay", "a", 10) == 1
    assert leases.acquire("relay", "b", 10) is None
    clock.now += 5
    assert leases.acquire("relay", "a", 10) == 1  # renewed: the same epoch
    clock.now += 9
    assert leases.acquire("relay", "b", 10) is None
    clock.now += 2
    assert leases.acquire("relay", "b", 10) == 2
    assert leases.holds("relay", "b", 2)
    assert not leases.holds("relay", "a", 1)
    leases.release("relay", "b")
    assert leases.acquire("relay", "a", 10) == 3


def test_a_position_fenced_by_a_lost_lease_is_refused(database: SqlEntityStore) -> None:
    clock = Clock()
    leases = SqlCoordination(database, now=clock)
    assert leases.position("p") is None
    epoch = leases.acquire("lease", "a", 10)
    assert epoch == 1
    assert leases.save_position("p", 5, lease="lease", holder="a", epoch=epoch)
    clock.now += 11
    assert leases.acquire("lease", "b", 10) == 2
    assert not leases.save_position("p", 9, lease="lease", holder="a", epoch=1)
    assert leases.position("p") == 5
    assert leases.save_position("p", 7, lease="lease", holder="b", epoch=2)
    assert leases.position("p") == 7


def test_live_leases_are_the_unexpired_ones_of_a_prefix(database: SqlEntityStore) -> None:
    clock = Clock()
    leases = SqlCoordination(database, now=clock)
    leases.acquire("rules.worker.a", "a", 10)
    leases.acquire("rules.worker.b", "b", 30)
    leases.acquire("other", "c", 30)
    clock.now += 20
    assert [lease.holder for lease in leases.live("rules.worker.")] == ["b"]


def test_the_database_keeps_one_identity(database: SqlEntityStore) -> None:
    first = SqlCoordination(database).identity()
    assert SqlCoordination(database).identity() == first
    assert len(first) == 16
