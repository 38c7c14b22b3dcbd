"""The temporal service: who may read and write histories, limits, and the history writer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from smartcity.auth.policy import AccessControl
from smartcity.auth.principal import Caller, PrincipalKind, Role
from smartcity.broker.contexts import ActiveContext, ContextResolver
from smartcity.broker.service import EntityService
from smartcity.broker.temporal import TemporalService
from smartcity.broker.temporal_params import temporal_options
from smartcity.broker.temporal_workers import HistoryRetention, HistoryWriter
from smartcity.core.clock import ManualClock
from smartcity.core.durations import parse_duration, parse_retention
from smartcity.core.errors import BadRequestData, Forbidden, ResourceNotFound
from smartcity.storage.accounts import ShareRecord
from smartcity.storage.history import SqlHistoryStore
from smartcity.storage.sqlaccounts import SqlAccountStore
from smartcity.storage.sqlite import SqliteEntityStore

SENSOR = "urn:ngsi-ld:Sensor:s1"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteEntityStore]:
    opened = SqliteEntityStore(tmp_path / "temporal.db")
    yield opened
    opened.close()


@pytest.fixture
def ctx() -> ActiveContext:
    return ContextResolver(allowed_hosts=[]).resolve(None)


def caller(*roles: Role, entity_ids: frozenset[str] = frozenset()) -> Caller:
    kind = PrincipalKind.DEVICE if Role.DEVICE in roles else PrincipalKind.USER
    return Caller("someone", "", frozenset(roles), kind, entity_ids)


def readings(count: int) -> dict[str, Any]:
    return {
        "id": SENSOR,
        "type": "Sensor",
        "temperature": [
            {"value": n, "observedAt": f"2026-01-01T00:{n:02d}:00Z"} for n in range(count)
        ],
    }


def service(store: SqliteEntityStore, **limits: Any) -> TemporalService:
    clock = ManualClock(datetime(2026, 1, 2, tzinfo=UTC))
    return TemporalService(
        SqlHistoryStore(store), store, clock, AccessControl(SqlAccountStore(store), clock), **limits
    )


def test_writes_need_a_writer_role_and_a_device_its_own_entity(
    store: SqliteEntityStore, ctx: ActiveContext
) -> None:
    temporal = service(store)
    for reader in (Role.ANALYST, Role.AGENCY, Role.PUBLIC):
        with pytest.raises(Forbidden):
            temporal.upsert(caller(reader), readings(1), ctx)
    with pytest.raises(Forbidden, match="may not write"):
        temporal.upsert(caller(Role.DEVICE), readings(1), ctx)
    device = caller(Role.DEVICE, entity_ids=frozenset({SENSOR}))
    assert temporal.upsert(device, readings(1), ctx) == (SENSOR, True)
    assert temporal.upsert(caller(Role.OPERATOR), readings(2), ctx) == (SENSOR, False)


def test_reads_need_a_reader_role(store: SqliteEntityStore, ctx: ActiveContext) -> None:
    temporal = service(store)
    temporal.upsert(caller(Role.ADMIN), readings(2), ctx)
    options = temporal_options({}, ctx)
    for role in (Role.DEVICE, Role.PUBLIC):
        with pytest.raises(Forbidden):
            temporal.retrieve(caller(role), SENSOR, options, ctx)
    for role in (Role.ADMIN, Role.OPERATOR, Role.ANALYST):
        page = temporal.retrieve(caller(role), SENSOR, options, ctx)
        assert len(page.bodies[0]["temperature"]) == 2
    # An agency reads only what is shared with it: otherwise it is told what a missing entity is.
    police = Caller("police-1", "", frozenset({Role.AGENCY}), principal_id="p-police")
    with pytest.raises(ResourceNotFound, match="no temporal representation"):
        temporal.retrieve(police, SENSOR, options, ctx)
    temporal.access.accounts.add_share(
        ShareRecord("s-1", "", "p-police", SENSOR, None, "2027-01-01T00:00:00Z", "2026", "admin")
    )
    page = temporal.retrieve(police, SENSOR, options, ctx)
    assert len(page.bodies[0]["temperature"]) == 2


def test_a_cut_is_reported_when_an_attribute_holds_more_than_the_limit(
    store: SqliteEntityStore, ctx: ActiveContext
) -> None:
    temporal = service(store, instance_limit=3)
    temporal.upsert(caller(Role.ADMIN), readings(5), ctx)
    page = temporal.retrieve(caller(Role.ADMIN), SENSOR, temporal_options({}, ctx), ctx)
    assert [i["value"] for i in page.bodies[0]["temperature"]] == [0, 1, 2]
    assert page.cut is not None
    assert (page.cut.first, page.cut.last) == (
        "2026-01-01T00:00:00.000000Z",
        "2026-01-01T00:02:00.000000Z",
    )
    newest = temporal.retrieve(
        caller(Role.ADMIN), SENSOR, temporal_options({"lastN": "10"}, ctx), ctx
    )
    assert [i["value"] for i in newest.bodies[0]["temperature"]] == [2, 3, 4]
    exact = temporal.retrieve(
        caller(Role.ADMIN), SENSOR, temporal_options({"lastN": "2"}, ctx), ctx
    )
    assert exact.cut is None


def test_durations() -> None:
    assert parse_duration("PT1H") == timedelta(hours=1)
    assert parse_duration("P1DT12H30M") == timedelta(days=1, hours=12, minutes=30)
    assert parse_duration("PT0.5S") == timedelta(milliseconds=500)
    assert parse_retention("30") == timedelta(days=30)
    assert parse_retention("0") is None
    assert parse_retention(None) is None
    for bad in ("P1M", "P1Y", "1H", "PT", "P"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_options_refuse_what_does_not_fit(ctx: ActiveContext) -> None:
    with pytest.raises(BadRequestData, match="not both"):
        temporal_options({"options": "temporalValues,aggregatedValues"}, ctx)
    chosen = temporal_options({"options": "temporalValues", "format": "normalized"}, ctx)
    assert chosen.form == "normalized"  # format wins over options
    with pytest.raises(BadRequestData, match="only goes with timerel=between"):
        temporal_options(
            {"timerel": "after", "timeAt": "2026-01-01T00:00:00Z", "endTimeAt": "2026-01-02"}, ctx
        )


def test_history_is_written_with_the_change(store: SqliteEntityStore, ctx: ActiveContext) -> None:
    history = SqlHistoryStore(store)
    clock = ManualClock(datetime(2026, 1, 2, tzinfo=UTC))
    entities = EntityService(store, clock, AccessControl(SqlAccountStore(store), clock))
    body = {"id": SENSOR, "type": "Sensor", "temperature": {"value": 1}}
    entities.create(Caller.system(), body, ctx)
    assert history.position() == store.last_change_seq() > 0
    assert history.entity("", SENSOR) is not None


def test_the_writer_catches_up_changes_logged_without_the_history(
    store: SqliteEntityStore, ctx: ActiveContext
) -> None:
    history = SqlHistoryStore(store)
    writer = HistoryWriter(history, poll_seconds=0.05)
    bare = SqliteEntityStore(store.path)  # another process's store, without the history
    clock = ManualClock(datetime(2026, 1, 2, tzinfo=UTC))
    entities = EntityService(bare, clock, AccessControl(SqlAccountStore(bare), clock))

    async def scenario() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(writer.run(stop))
        body = {"id": SENSOR, "type": "Sensor", "temperature": {"value": 1}}
        await asyncio.to_thread(entities.create, Caller.system(), body, ctx)
        for _ in range(200):
            if history.position() == store.last_change_seq():
                break
            await asyncio.sleep(0.02)
        position = history.position()
        stop.set()
        await task
        return position

    try:
        assert asyncio.run(scenario()) == store.last_change_seq() > 0
    finally:
        bare.close()


def test_retention_prunes_by_the_clock(store: SqliteEntityStore, ctx: ActiveContext) -> None:
    temporal = service(store)
    temporal.upsert(caller(Role.ADMIN), readings(5), ctx)
    clock = ManualClock(datetime(2026, 1, 1, 0, 3, tzinfo=UTC) + timedelta(days=1))
    retention = HistoryRetention(temporal.history, clock, timedelta(days=1), 3600)
    assert retention.prune_once() == 3
    page = temporal.retrieve(caller(Role.ADMIN), SENSOR, temporal_options({}, ctx), ctx)
    assert [i["value"] for i in page.bodies[0]["temperature"]] == [3, 4]
