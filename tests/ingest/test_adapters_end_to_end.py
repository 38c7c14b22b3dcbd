"""End to end: Seoul APIs (local server) -> adapters -> bus -> ingest writer -> the broker."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.ingest.adapters.runner import AdapterWorker
from smartcity.ingest.writer import IngestWriter
from smartcity.platform import Platform, build_platform
from smartcity.storage.deadletters import DeadLetterFilter
from tests.bus.conftest import run
from tests.ingest.open_data_server import OpenDataServer, open_data_server

KEY = "SECRET-e2e-open-key-19aa"
SUBWAY_KEY = "SECRET-e2e-subway-key-77f0"
BUS_KEY = "SECRET-e2e-bus-key-4c1d"
PARKING = "https://smartdatamodels.org/dataModel.Parking/"
TRANSPORTATION = "https://smartdatamodels.org/dataModel.Transportation/"
TERMS = "https://smart-data-models.github.io/data-models/terms.jsonld#/definitions/"


@pytest.fixture
def server() -> Iterator[OpenDataServer]:
    with open_data_server() as running:
        for start, end, page in ((1, 3, 1), (4, 6, 2), (7, 9, 3)):
            running.serve(
                f"/{KEY}/json/GetParkingInfo/{start}/{end}/도봉구", f"parking-dobong-{page}.json"
            )
        running.serve(
            f"/{SUBWAY_KEY}/json/realtimeStationArrival/0/20/창동", "subway-changdong.json"
        )
        running.serve(
            "/api/rest/stationinfo/getStationByUid?arsId=10933", "bus-changdong-station.xml"
        )
        running.serve(f"/{KEY}/xml/TrafficInfo/1/5/1080012300", "traffic-link.xml")
        yield running


@pytest.fixture
def platform(tmp_path: Path, shared_data: Path, server: OpenDataServer) -> Iterator[Platform]:
    """A platform whose settings enable every adapter against the local server."""
    models = shared_data / "smart-data-models"
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'adapters.db'}",
        context_offline=True,
        context_preload_smart_data_models=str(models),
        notifications_enabled=False,
        ingest_schema_dirs=[str(models)],
        adapters_enabled=["parking", "subway", "bus", "traffic"],
        seoul_open_api_key=KEY,
        seoul_open_api_url=server.base,
        seoul_subway_api_key=SUBWAY_KEY,
        seoul_subway_api_url=server.base,
        seoul_bus_api_key=BUS_KEY,
        seoul_bus_api_url=f"{server.base}/api/rest",
        adapter_parking_districts=["도봉구"],
        adapter_parking_page_size=3,
        adapter_parking_lots={"1010001": "changdong-station-public"},
        adapter_subway_stations={"창동": "changdong"},
        adapter_bus_stops={"10933": ""},
        adapter_traffic_links={"1080012300": "changdong-dobong-1"},
    )
    built = build_platform(settings)
    yield built
    built.close()


def adapter_worker(platform: Platform) -> AdapterWorker:
    (worker,) = [w for w in platform.workers if isinstance(w, AdapterWorker)]
    return worker


def stored(platform: Platform, entity_id: str) -> dict[str, Any]:
    entity = platform.store.get("", entity_id)
    assert entity is not None, entity_id
    return {"type": entity.types, **{name: values[0] for name, values in entity.attrs.items()}}


def test_adapters_readings_reach_the_broker_through_the_bus_and_the_writer(
    platform: Platform,
) -> None:
    worker = adapter_worker(platform)
    assert sorted(worker.status) == ["bus", "parking", "subway", "traffic"]
    (writer,) = [w for w in platform.workers if isinstance(w, IngestWriter)]

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(platform.run_workers(stop))  # every worker, as serve does
        published = 5 + 4 + 4 + 1  # lots, subway groups, bus stop and routes, one link
        for _ in itertools.count():
            if writer.counts.stored >= published:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await running
        await platform.stop()

    run(scenario(), timeout=60)
    assert {status.consecutive_failures for status in worker.status.values()} == {0}

    lot = stored(platform, "urn:ngsi-ld:OffStreetParking:changdong-station-public")
    assert lot["type"] == [PARKING + "OffStreetParking"]
    available = lot[PARKING + "availableSpotNumber"]
    assert (available["value"], available["observedAt"]) == (33, "2026-11-28T01:15:00.000000Z")
    assert lot["https://uri.etsi.org/ngsi-ld/location"]["value"]["coordinates"] == [
        127.0466,
        37.6541,
    ]
    unlinked = stored(platform, "urn:ngsi-ld:OffStreetParking:seoul-1010003")
    assert PARKING + "totalSpotNumber" in unlinked
    assert PARKING + "availableSpotNumber" not in unlinked

    arrival = stored(platform, "urn:ngsi-ld:ArrivalEstimation:subway-changdong-1004-up")
    assert arrival[TERMS + "remainingTime"]["value"] == "PT2M"
    assert arrival[TERMS + "hasStop"]["object"] == "urn:ngsi-ld:TransportStation:changdong"
    bus = stored(platform, "urn:ngsi-ld:ArrivalEstimation:bus-10933-110900006")
    assert bus[TERMS + "remainingTime"]["value"] == "PT3M8S"
    stop = stored(platform, "urn:ngsi-ld:TransportStation:seoul-bus-10933")
    assert stop[TRANSPORTATION + "stationType"]["value"] == ["bus"]

    flow = stored(platform, "urn:ngsi-ld:TrafficFlowObserved:topis-1080012300")
    speed = flow[TRANSPORTATION + "averageVehicleSpeed"]
    assert (speed["value"], speed["unitCode"]) == (23.5, "KMH")
    segment = flow[TRANSPORTATION + "refRoadSegment"]
    assert segment["object"] == "urn:ngsi-ld:RoadSegment:changdong-dobong-1"

    (letter,) = platform.deadletters.page(Caller.system(""), DeadLetterFilter()).letters
    assert (letter.source, letter.reason) == ("adapter:parking", "unparsable")
    assert json.loads(letter.payload)["TPKCT"] == "약 40"
    for text in (letter.topic or "", letter.message, json.dumps(letter.meta)):
        assert KEY not in text


def test_no_adapter_runs_by_default(tmp_path: Path) -> None:
    built = build_platform(Settings(database_url=f"sqlite:///{tmp_path / 'quiet.db'}"))
    try:
        assert not [w for w in built.workers if isinstance(w, AdapterWorker)]
    finally:
        built.close()
