"""The change feed: the change log read for one caller (tenant, visibility, types), coalesced."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smartcity.auth.policy import PUBLIC_MARK
from smartcity.auth.principal import Caller, PrincipalKind, Role
from smartcity.broker.changefeed import ChangeFeed, FeedBatch, local_name
from smartcity.config import Settings
from smartcity.core.errors import Forbidden
from smartcity.platform import Platform, build_platform
from smartcity.storage.base import ChangeKind
from tests.conftest import postgres_url

TEST_SECRET = "test-secret-for-signing-bearer-tokens-0123456789"
SDM = "https://smartdatamodels.org/dataModel.Parking/"
LOT = "urn:ngsi-ld:OffStreetParking:lot-1"
CAMERA = "urn:ngsi-ld:Camera:cam-1"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'feed.db'}",
        context_offline=True,
        auth_secret=TEST_SECRET,
        stream_min_interval=0.01,
        stream_poll_interval=30.0,
    )
    if request.param == "postgres":
        schema: str = request.getfixturevalue("postgres_schema")
        settings = settings.model_copy(
            update={"database_url": postgres_url(), "database_schema": schema}
        )
    built = build_platform(settings)
    yield built
    built.close()


def put(platform: Platform, tenant: str, *entities: dict[str, Any]) -> None:
    """Upsert entities (core @context) into a tenant as the platform."""
    ctx = platform.contexts.resolve(None)
    result, _ = platform.entities.batch_upsert(Caller.system(tenant), list(entities), lambda _: ctx)
    assert not result.errors


def lot(free: int, entity_id: str = LOT) -> dict[str, Any]:
    return {
        "id": entity_id,
        "type": SDM + "OffStreetParking",
        SDM + "availableSpotNumber": {"type": "Property", "value": free},
    }


def camera(entity_id: str = CAMERA, on: bool = True) -> dict[str, Any]:
    return {"id": entity_id, "type": "Camera", "on": {"type": "Property", "value": on}}


def ids(batch: FeedBatch) -> list[str]:
    return [change.entity.id for change in batch.changes]


def make_public(platform: Platform, tenant: str, type_iri: str) -> None:
    platform.accounts.mark_type(Caller.system(tenant), type_iri, PUBLIC_MARK)
    platform.access.forget_marks(tenant)


def test_local_names_of_types_from_any_context() -> None:
    assert local_name("https://smartdatamodels.org/dataModel.Device/Camera") == "Camera"
    assert local_name("https://uri.fiware.org/ns/data-models#Device") == "Device"
    assert local_name("urn:smartcity:vocab:Thing") == "Thing"
    assert local_name("Plain") == "Plain"


def test_a_caller_reads_only_its_tenant_and_what_it_may_see(platform: Platform) -> None:
    put(platform, "", lot(10), camera())
    put(platform, "other", camera("urn:ngsi-ld:Camera:elsewhere"))
    make_public(platform, "", SDM + "OffStreetParking")
    feed = platform.changes

    assert ids(feed.read(Caller.anonymous(), 0)) == [LOT]
    assert sorted(ids(feed.read(Caller.system(), 0))) == [CAMERA, LOT]
    assert ids(feed.read(Caller.system("other"), 0)) == ["urn:ngsi-ld:Camera:elsewhere"]
    assert ids(feed.read(Caller.anonymous("other"), 0)) == []
    device = Caller("cam", "", frozenset({Role.DEVICE}), PrincipalKind.DEVICE, frozenset({CAMERA}))
    assert sorted(ids(feed.read(device, 0))) == [CAMERA, LOT]
    # Every reader moves past every change, seen or not.
    last = platform.store.last_change_seq()
    assert {feed.read(c, 0).position for c in (Caller.anonymous(), Caller.system("other"))} == {
        last
    }


def test_a_caller_without_read_permission_is_refused(platform: Platform) -> None:
    nobody = Caller("nobody", "", frozenset(), PrincipalKind.USER)
    with pytest.raises(Forbidden):
        platform.changes.read(nobody, 0)
    with pytest.raises(Forbidden):
        platform.changes.position(nobody)


def test_types_are_matched_by_local_name_whatever_the_context(platform: Platform) -> None:
    sdm_camera = {
        "id": "urn:ngsi-ld:Camera:sdm",
        "type": "https://smartdatamodels.org/dataModel.Device/Camera",
    }
    put(platform, "", lot(3), camera(), sdm_camera)
    batch = platform.changes.read(Caller.system(), 0, frozenset({"Camera"}))
    assert sorted(ids(batch)) == [CAMERA, "urn:ngsi-ld:Camera:sdm"]
    assert ids(platform.changes.read(Caller.system(), 0, frozenset({"Streetlight"}))) == []


def test_each_entity_comes_once_with_its_newest_state(platform: Platform) -> None:
    put(platform, "", lot(10), camera())
    start = platform.store.last_change_seq()
    for free in (9, 8, 7):
        put(platform, "", lot(free))
    put(platform, "", camera(on=False))
    put(platform, "", lot(6))
    batch = platform.changes.read(Caller.system(), start)
    assert ids(batch) == [CAMERA, LOT]  # in the order of their newest change
    newest = batch.changes[-1].entity.attrs[SDM + "availableSpotNumber"][0]["value"]
    assert newest == 6
    assert batch.position == platform.store.last_change_seq()
    assert not batch.full


def test_deletes_come_as_deletes(platform: Platform) -> None:
    put(platform, "", camera())
    start = platform.store.last_change_seq()
    platform.entities.delete(Caller.system(), CAMERA)
    batch = platform.changes.read(Caller.system(), start)
    assert [(c.entity.id, c.kind) for c in batch.changes] == [(CAMERA, ChangeKind.DELETE)]


def test_a_full_batch_says_more_is_waiting(platform: Platform) -> None:
    feed = ChangeFeed(platform.store, platform.access, batch=3)
    put(platform, "", *(camera(f"urn:ngsi-ld:Camera:{n}") for n in range(7)))
    first = feed.read(Caller.system(), 0)
    second = feed.read(Caller.system(), first.position)
    third = feed.read(Caller.system(), second.position)
    assert (first.full, second.full, third.full) == (True, True, False)
    assert len(ids(first) + ids(second) + ids(third)) == 7


def test_a_position_is_resumable_until_the_log_lets_it_go(platform: Platform) -> None:
    feed = platform.changes
    assert feed.resumable(0)
    put(platform, "", camera("urn:ngsi-ld:Camera:a"))
    first = platform.store.last_change_seq()
    put(platform, "", camera("urn:ngsi-ld:Camera:b"))
    put(platform, "", camera("urn:ngsi-ld:Camera:c"))
    assert feed.resumable(first)
    platform.store.prune_changes(first)
    assert not feed.resumable(first)
    assert feed.resumable(first + 1)
    assert not feed.resumable(platform.store.last_change_seq() + 5)


def test_follow_wakes_on_a_commit_and_beats_when_idle(platform: Platform) -> None:
    async def scenario() -> tuple[float, FeedBatch, FeedBatch]:
        start = await asyncio.to_thread(platform.store.last_change_seq)
        batches = platform.changes.follow(Caller.system(), start, heartbeat=0.5)
        beat = await asyncio.wait_for(anext(batches), timeout=5)
        began = time.monotonic()
        await asyncio.to_thread(put, platform, "", camera())
        change = await asyncio.wait_for(anext(batches), timeout=5)
        await batches.aclose()
        return time.monotonic() - began, beat, change

    waited, beat, change = asyncio.run(scenario())
    assert beat.changes == []
    assert not beat.lost
    assert ids(change) == [CAMERA]
    # The poll interval is 30 s: only the commit signal can have woken the reader this soon.
    assert waited < 5
    assert platform.changes.signal.watching == 0


def test_follow_says_when_the_position_was_let_go(platform: Platform) -> None:
    put(platform, "", camera("urn:ngsi-ld:Camera:a"), camera("urn:ngsi-ld:Camera:b"))
    position = platform.store.last_change_seq() - 1
    platform.store.prune_changes(position)

    async def first() -> FeedBatch:
        return await anext(platform.changes.follow(Caller.system(), position))

    batch = asyncio.run(first())
    assert batch.lost
    assert batch.position == position


def test_closing_the_feed_ends_every_follow(platform: Platform) -> None:
    async def scenario() -> FeedBatch | None:
        start = await asyncio.to_thread(platform.store.last_change_seq)
        batches = platform.changes.follow(Caller.system(), start, heartbeat=60)
        waiting = asyncio.ensure_future(anext(batches, None))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        platform.changes.close()  # the poll interval is 30 s: only closing can end it now
        return await asyncio.wait_for(waiting, timeout=5)

    assert asyncio.run(scenario()) is None
