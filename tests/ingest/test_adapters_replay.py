"""Replaying the adapters' dead letters through the dead-letter service, onto the bus."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smartcity.auth.principal import Caller
from smartcity.bus.memory import InProcessBus
from smartcity.config import Settings
from smartcity.ingest.adapters import build_replayer
from smartcity.ingest.adapters.runner import AdapterWorker
from smartcity.ingest.ports import RawInput, Rejected
from smartcity.ingest.readings import Reading
from smartcity.ingest.writer import IngestWriter
from smartcity.platform import Platform, build_platform
from smartcity.storage.deadletters import DeadLetterFilter
from tests.bus.conftest import run
from tests.ingest.open_data_server import OpenDataServer, fixture, open_data_server

KEY = "SECRET-replay-key-62b4"
TERMS = "https://smart-data-models.github.io/data-models/terms.jsonld#/definitions/"
ADMIN = Caller.system("")


@pytest.fixture
def server() -> Iterator[OpenDataServer]:
    with open_data_server() as running:
        running.serve(f"/{KEY}/json/realtimeStationArrival/0/20/창동", "subway-changdong.json")
        yield running


def settings_for(tmp_path: Path, models: Path, server: OpenDataServer, **extra: Any) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'replay.db'}",
        context_offline=True,
        context_preload_smart_data_models=str(models),
        notifications_enabled=False,
        ingest_schema_dirs=[str(models)],
        seoul_subway_api_key=KEY,
        seoul_subway_api_url=server.base,
        adapter_subway_stations={"창동": "changdong"},
        **extra,
    )


async def poll_once(platform: Platform) -> None:
    (worker,) = [w for w in platform.workers if isinstance(w, AdapterWorker)]
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in itertools.count():
        if worker.status["subway"].next_delay > 0:  # set once the first poll is done
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task


def test_fix_the_schemas_then_replay_stores_what_was_refused(
    tmp_path: Path, shared_data: Path, server: OpenDataServer
) -> None:
    models = shared_data / "smart-data-models"
    # A city that requires a schema for every type refuses ArrivalEstimation, which the
    # shared folders do not describe: four dead letters, nothing stored.
    strict = build_platform(
        settings_for(
            tmp_path, models, server, adapters_enabled=["subway"], ingest_require_schema=True
        )
    )
    try:
        run(poll_once(strict))
        letters = strict.deadletters.page(ADMIN, DeadLetterFilter()).letters
        assert {(letter.reason, letter.meta["kind"]) for letter in letters} == {
            ("schema", "update")
        }
        assert len(letters) == 4
    finally:
        strict.close()
    # The operator relaxes the rule (or adds the UrbanMobility schemas), then replays.
    fixed = build_platform(settings_for(tmp_path, models, server))
    (writer,) = [w for w in fixed.workers if isinstance(w, IngestWriter)]

    async def replay_and_store() -> list[str]:
        await fixed.start()
        stop = asyncio.Event()
        writing = asyncio.create_task(writer.run(stop))
        report = await fixed.deadletters.replay(
            ADMIN, where=DeadLetterFilter(source="adapter:subway")
        )
        for _ in itertools.count():
            if writer.counts.stored >= 4:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await writing
        await fixed.stop()
        return [outcome.outcome for outcome in report.outcomes]

    try:
        assert run(replay_and_store()) == ["replayed"] * 4
        entity = fixed.store.get("", "urn:ngsi-ld:ArrivalEstimation:subway-changdong-1004-up")
        assert entity is not None
        assert entity.attrs[TERMS + "remainingTime"][0]["value"] == "PT2M"
        left = fixed.deadletters.page(ADMIN, DeadLetterFilter(status="new")).letters
        assert left == []
    finally:
        fixed.close()


def raw_letter(kind: str, payload: bytes, **meta: Any) -> RawInput:
    return RawInput(
        tenant="",
        source=f"adapter:{meta.get('adapter', 'parking')}",
        payload=payload,
        received_at="2026-11-28T01:20:00.000000Z",
        topic="http://openapi.seoul.go.kr:8088/***/json/GetParkingInfo/1/1000/%EB%85%B8%EC%9B%90%EA%B5%AC",
        content_type="application/json",
        meta={"adapter": "parking", "kind": kind, "target": "노원구", **meta},
    )


def kept(platform: Platform) -> list[tuple[str, str]]:
    """Return the reason and kind of every dead letter the platform keeps."""
    letters = platform.deadletters.page(ADMIN, DeadLetterFilter()).letters
    return [(letter.reason, letter.meta["kind"]) for letter in letters]


@pytest.fixture
def platform(tmp_path: Path, shared_data: Path) -> Iterator[Platform]:
    models = shared_data / "smart-data-models"
    built = build_platform(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'replayer.db'}",
            context_offline=True,
            ingest_schema_dirs=[str(models)],
            notifications_enabled=False,
        )
    )
    yield built
    built.close()


async def published(bus: InProcessBus) -> list[Reading]:
    consumer = await bus.consumer("ingest.readings.>", "check")
    readings = [Reading.from_bytes(m.data) for m in await consumer.fetch(100, 0.2)]
    await consumer.close()
    return readings


def test_a_body_is_read_again_and_its_bad_records_kept_apart(platform: Platform) -> None:
    bus = InProcessBus()
    replayer = build_replayer(platform.settings, platform.standardizer, bus, platform.deadletters)

    async def scenario() -> tuple[str | None, list[Reading]]:
        await bus.start()
        note = await replayer(raw_letter("body", fixture("parking-nowon.json")))
        return note, await published(bus)

    note, readings = run(scenario())
    assert note == "1 readings published, 1 records kept as new dead letters"
    assert [r.entity_id for r in readings] == ["urn:ngsi-ld:OffStreetParking:seoul-1120001"]
    assert readings[0].source == "adapter:parking"
    assert kept(platform) == [("unmapped", "record")]


@pytest.mark.parametrize(
    ("kind", "payload", "meta", "reason"),
    [
        ("body", b'{"GetParkingInfo": {"row": [', {}, "unparsable"),
        ("record", b'{"PKLT_CD": "1", "TPKCT": "many"}', {}, "unparsable"),
        ("record", b"[1]", {}, "unparsable"),
        ("update", b"{}", {"entityType": "OffStreetParking"}, "unmapped"),
        ("poll", b"{}", {}, "unmapped"),
        ("record", b"{}", {"adapter": "ferry"}, "unmapped"),
    ],
)
def test_what_still_fails_is_refused_again(
    platform: Platform, kind: str, payload: bytes, meta: dict[str, Any], reason: str
) -> None:
    bus = InProcessBus()
    replayer = build_replayer(platform.settings, platform.standardizer, bus, platform.deadletters)

    async def scenario() -> None:
        await bus.start()
        await replayer(raw_letter(kind, payload, **meta))

    with pytest.raises(Rejected) as refused:
        run(scenario())
    assert refused.value.reason == reason
