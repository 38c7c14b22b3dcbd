"""The device registry's store: one contract, run on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from smartcity.storage.devices import (
    HEALTH_OK,
    HEALTH_SILENT,
    HEALTH_UNKNOWN,
    CommandRecord,
    DeviceRecord,
    Sighting,
    SqlDeviceStore,
)
from smartcity.storage.postgres import PostgresEntityStore
from smartcity.storage.sqlbase import SqlEntityStore
from smartcity.storage.sqlite import SqliteEntityStore
from tests.conftest import postgres_url

OpenStore = Callable[[], SqlDeviceStore]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Yield a function opening the device store of one database (each call a new connection)."""
    schema: str | None = None
    if request.param == "postgres":
        schema = request.getfixturevalue("postgres_schema")
    opened: list[SqlEntityStore] = []

    def open_() -> SqlDeviceStore:
        database: SqlEntityStore
        if schema is None:
            database = SqliteEntityStore(tmp_path / "entities.db")
        else:
            database = PostgresEntityStore(postgres_url(), schema=schema, max_size=4)
        opened.append(database)
        return SqlDeviceStore(database)

    yield open_
    for database in opened:
        database.close()


def make_device(
    device_id: str = "lamp-1",
    tenant: str = "",
    key_hash: str = "k1",
    interval: float | None = 60.0,
    silent_after: str | None = "2026-01-01T00:01:00.000000Z",
) -> DeviceRecord:
    return DeviceRecord(
        tenant=tenant,
        id=device_id,
        key_hash=key_hash,
        doc={"entity": {"id": f"urn:ngsi-ld:Streetlight:{device_id}"}, "한글": "창동"},
        entity_id=f"urn:ngsi-ld:Streetlight:{device_id}",
        transport="mqtt",
        reporting_interval=interval,
        created_at="2026-01-01T00:00:00.000000Z",
        modified_at="2026-01-01T00:00:00.000000Z",
        silent_after=silent_after,
    )


def make_command(
    number: int, device_id: str = "lamp-1", created: str = "", expires: str = ""
) -> CommandRecord:
    return CommandRecord(
        tenant="",
        id=f"cmd-{number}",
        device_id=device_id,
        name="dim",
        params={"level": number},
        status="pending",
        created_at=created or f"2026-01-01T00:00:{number:02d}.000000Z",
        updated_at=created or f"2026-01-01T00:00:{number:02d}.000000Z",
        expires_at=expires or "2026-01-01T01:00:00.000000Z",
        created_by="operator-kim",
    )


def test_a_device_is_kept_as_given(open_store: OpenStore) -> None:
    store = open_store()
    device = make_device()
    assert store.add(device) is None
    assert store.get("", "lamp-1") == device
    assert store.get("other", "lamp-1") is None
    assert open_store().get("", "lamp-1") == device


def test_ids_are_unique_per_tenant_and_a_key_with_an_id_across_tenants(
    open_store: OpenStore,
) -> None:
    store = open_store()
    assert store.add(make_device()) is None
    assert store.add(make_device(key_hash="k2")) == "exists"
    assert store.add(make_device(tenant="nowon")) == "key"
    assert store.add(make_device(tenant="nowon", key_hash="k2")) is None
    assert [d.tenant for d in store.with_id("lamp-1")] == ["", "nowon"]
    assert store.tenant_of_key("k2") == "nowon"
    assert store.tenant_of_key("k3") is None


def test_replace_keeps_health_and_delete_removes_commands(open_store: OpenStore) -> None:
    store = open_store()
    store.add(make_device())
    store.record_sightings([Sighting("", "lamp-1", "2026-01-01T00:00:30.000000Z", None)])
    changed = make_device(key_hash="k9", interval=None, silent_after=None)
    changed.doc = {"entity": {"id": "urn:ngsi-ld:Streetlight:other"}}
    changed.modified_at = "2026-01-02T00:00:00.000000Z"
    assert store.replace(changed)
    got = store.get("", "lamp-1")
    assert got is not None
    assert (got.key_hash, got.doc, got.reporting_interval) == ("k9", changed.doc, None)
    assert (got.last_seen, got.health) == ("2026-01-01T00:00:30.000000Z", HEALTH_OK)
    assert not store.replace(make_device("lamp-2"))
    store.add_command(make_command(1))
    assert store.delete("", "lamp-1")
    assert not store.delete("", "lamp-1")
    assert store.command("", "cmd-1") is None


def test_pages_are_in_id_order_with_the_total(open_store: OpenStore) -> None:
    store = open_store()
    for number in (3, 1, 2):
        store.add(make_device(f"lamp-{number}", key_hash=f"k{number}"))
    store.add(make_device("lamp-9", tenant="nowon"))
    page, total = store.page("", limit=2, offset=1)
    assert ([d.id for d in page], total) == (["lamp-2", "lamp-3"], 3)


def test_sightings_keep_the_latest_and_recover_a_silent_device_once(
    open_store: OpenStore,
) -> None:
    store, other_process = open_store(), open_store()
    store.add(make_device())
    assert store.get("", "lamp-1").health == HEALTH_UNKNOWN  # type: ignore[union-attr]
    assert store.overdue("2026-01-01T00:00:59.000000Z") == []
    overdue = store.overdue("2026-01-01T00:02:00.000000Z")
    assert [d.id for d in overdue] == ["lamp-1"]
    assert store.mark_silent("", "lamp-1", "2026-01-01T00:02:00.000000Z")
    assert not other_process.mark_silent("", "lamp-1", "2026-01-01T00:02:00.000000Z")
    assert store.overdue("2026-01-01T00:03:00.000000Z") == []
    late = Sighting("", "lamp-1", "2026-01-01T00:05:00.000000Z", "2026-01-01T00:06:00.000000Z")
    recovered = store.record_sightings([late])
    assert [(d.id, d.health) for d in recovered] == [("lamp-1", HEALTH_OK)]
    assert other_process.record_sightings([late]) == []
    older = Sighting("", "lamp-1", "2026-01-01T00:04:00.000000Z", "2026-01-01T00:05:00.000000Z")
    store.record_sightings([older])
    got = store.get("", "lamp-1")
    assert got is not None
    assert (got.last_seen, got.silent_after) == (late.last_seen, late.silent_after)


def test_a_device_never_heard_from_turns_ok_on_its_first_sighting(
    open_store: OpenStore,
) -> None:
    store = open_store()
    store.add(make_device())
    assert store.record_sightings([Sighting("", "lamp-1", "2026-01-01T00:00:10Z", None)]) == []
    got = store.get("", "lamp-1")
    assert got is not None
    assert (got.health, got.health_since) == (HEALTH_OK, "2026-01-01T00:00:10Z")
    assert got.health != HEALTH_SILENT


def test_commands_move_from_pending_to_an_outcome(open_store: OpenStore) -> None:
    store = open_store()
    store.add(make_device())
    for number in (1, 2):
        store.add_command(make_command(number))
    assert [c.id for c in store.commands("", "lamp-1", 10)] == ["cmd-2", "cmd-1"]
    now, lease = "2026-01-01T00:10:00.000000Z", "2026-01-01T00:10:30.000000Z"
    claimed = store.claim_pending(now, lease, 10)
    assert [c.id for c in claimed] == ["cmd-1", "cmd-2"]
    assert open_store().claim_pending(now, lease, 10) == []
    assert store.set_status("", "cmd-1", "delivered", None, now, only_from=("pending",))
    assert not store.set_status("", "cmd-1", "delivered", None, now, only_from=("pending",))
    opened = store.open_command("", "lamp-1", "dim")
    assert opened is not None
    assert opened.id == "cmd-2"
    assert store.set_status("", "cmd-2", "ok", {"level": "30%"}, now)
    assert store.set_status("", "cmd-1", "error", "burnt out", now)
    assert store.open_command("", "lamp-1", "dim") is None
    got = store.command("", "cmd-2")
    assert got is not None
    assert (got.status, got.info, got.params) == ("ok", {"level": "30%"}, {"level": 2})


def test_open_commands_expire_once(open_store: OpenStore) -> None:
    store = open_store()
    store.add_command(make_command(1, expires="2026-01-01T00:01:00.000000Z"))
    store.add_command(make_command(2, expires="2026-01-01T00:09:00.000000Z"))
    assert store.claim_pending("2026-01-01T00:02:00.000000Z", "2026-01-01T00:03:00Z", 10) == [
        store.command("", "cmd-2")
    ]
    expired = store.expire("2026-01-01T00:05:00.000000Z")
    assert [(c.id, c.status) for c in expired] == [("cmd-1", "expired")]
    assert open_store().expire("2026-01-01T00:05:00.000000Z") == []
    assert not store.set_status("", "cmd-1", "ok", None, "2026-01-01T00:06:00.000000Z")
