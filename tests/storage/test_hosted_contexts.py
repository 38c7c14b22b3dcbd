"""The hosted @context store: one contract, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from smartcity.storage.hosted_contexts import HostedContext, SqlHostedContextStore
from smartcity.storage.postgres import PostgresEntityStore
from smartcity.storage.sqlbase import SqlEntityStore
from smartcity.storage.sqlite import SqliteEntityStore
from tests.conftest import postgres_url

OpenStore = Callable[[], SqlHostedContextStore]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Yield a function opening the hosted-context store of one database (each call a new
    connection to it, as another process would open)."""
    schema: str | None = None
    if request.param == "postgres":
        schema = request.getfixturevalue("postgres_schema")
    opened: list[SqlEntityStore] = []

    def open_() -> SqlHostedContextStore:
        database: SqlEntityStore
        if schema is None:
            database = SqliteEntityStore(tmp_path / "entities.db")
        else:
            database = PostgresEntityStore(postgres_url(), schema=schema, max_size=4)
        opened.append(database)
        return SqlHostedContextStore(database)

    yield open_
    for database in opened:
        database.close()


def make_context(
    number: int, tenant: str = "", context: object = None, created_at: str = ""
) -> HostedContext:
    return HostedContext(
        id=f"{number:032x}",
        tenant=tenant,
        context=context if context is not None else {"term": f"https://example.org/{number}"},
        created_at=created_at or f"2026-01-01T00:00:{number:02d}.000000Z",
        created_by="operator-kim",
    )


def test_a_context_is_kept_as_given(open_store: OpenStore) -> None:
    store = open_store()
    context = make_context(1, context=["https://example.org/a.jsonld", {"한글": "urn:x:한글"}])
    assert store.add(context, max_per_tenant=10)
    assert store.get(context.id) == context
    assert store.get(f"{2:032x}") is None


def test_ids_are_unique_across_tenants(open_store: OpenStore) -> None:
    store = open_store()
    assert store.add(make_context(1, "north"), max_per_tenant=10)
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        store.add(make_context(1, "south"), max_per_tenant=10)


def test_tenants_are_listed_and_deleted_apart(open_store: OpenStore) -> None:
    store = open_store()
    for number, tenant in [(3, "north"), (1, "north"), (2, "south"), (4, "")]:
        assert store.add(make_context(number, tenant), max_per_tenant=10)
    assert [c.id for c in store.tenant_contexts("north")] == [f"{1:032x}", f"{3:032x}"]
    assert [c.id for c in store.tenant_contexts("")] == [f"{4:032x}"]
    assert store.tenant_contexts("west") == []
    assert not store.delete("south", f"{1:032x}")
    assert store.get(f"{1:032x}") is not None
    assert store.delete("north", f"{1:032x}")
    assert not store.delete("north", f"{1:032x}")
    assert store.get(f"{1:032x}") is None
    assert [c.id for c in store.tenant_contexts("north")] == [f"{3:032x}"]


def test_a_tenant_holds_at_most_the_limit(open_store: OpenStore) -> None:
    store = open_store()
    assert store.add(make_context(1, "north"), max_per_tenant=2)
    assert store.add(make_context(2, "north"), max_per_tenant=2)
    assert not store.add(make_context(3, "north"), max_per_tenant=2)
    assert store.get(f"{3:032x}") is None
    assert store.add(make_context(4, "south"), max_per_tenant=2)


def test_concurrent_adds_respect_the_limit(open_store: OpenStore) -> None:
    stores = [open_store(), open_store()]
    kept: list[bool] = []
    lock = threading.Lock()

    def add(number: int) -> None:
        result = stores[number % 2].add(make_context(number, "north"), max_per_tenant=5)
        with lock:
            kept.append(result)

    threads = [threading.Thread(target=add, args=(number,)) for number in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert kept.count(True) == 5
    assert len(stores[0].tenant_contexts("north")) == 5


def test_every_connection_sees_the_same_contexts_and_they_outlive_it(
    open_store: OpenStore,
) -> None:
    first, second = open_store(), open_store()
    assert first.add(make_context(1, "north"), max_per_tenant=10)
    assert second.get(f"{1:032x}") == make_context(1, "north")
    assert second.delete("north", f"{1:032x}")
    assert first.get(f"{1:032x}") is None
    assert first.add(make_context(2, "north"), max_per_tenant=10)
    assert open_store().tenant_contexts("north") == [make_context(2, "north")]
