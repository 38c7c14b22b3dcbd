"""The adapter worker: schedules, readings on the real in-process bus, dead letters, back-off."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.auth.principal import Caller
from smartcity.bus.memory import InProcessBus
from smartcity.core.clock import ManualClock
from smartcity.ingest.adapters.base import Adapter, EntityUpdate, PollResult
from smartcity.ingest.adapters.http import Fetcher
from smartcity.ingest.adapters.parking import ParkingAdapter
from smartcity.ingest.adapters.runner import AdapterWorker, backoff_delay
from smartcity.ingest.adapters.subway import SubwayAdapter
from smartcity.ingest.adapters.traffic import TrafficAdapter
from smartcity.ingest.deadletters import DeadLetterService
from smartcity.ingest.readings import Reading
from smartcity.ingest.schemas import SchemaCatalog
from smartcity.ingest.standardize import SmartDataStandardizer
from smartcity.storage.deadletters import DeadLetterFilter, SqlDeadLetterStore
from smartcity.storage.sqlite import SqliteEntityStore
from tests.ingest.open_data_server import Answer, OpenDataServer, open_data_server

KEY = "SECRET-worker-key-3b8e"
NOW = datetime(2026, 11, 28, 1, 20, tzinfo=UTC)
T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    return asyncio.run(asyncio.wait_for(scenario, timeout))


@pytest.fixture
def deadletters(tmp_path: Path) -> Iterator[DeadLetterService]:
    store = SqliteEntityStore(tmp_path / "entities.db")
    yield DeadLetterService(SqlDeadLetterStore(store), ManualClock(NOW))
    store.close()


def make_worker(
    adapters: list[Adapter],
    bus: InProcessBus,
    standardizer: SmartDataStandardizer,
    deadletters: DeadLetterService,
    **options: Any,
) -> AdapterWorker:
    return AdapterWorker(
        adapters,
        bus,
        standardizer,
        deadletters,
        ManualClock(NOW),
        rng=random.Random(7),
        **options,
    )


async def until(condition: Callable[[], bool]) -> None:
    """Wait until `condition()` is true, checking often (the scenario's timeout bounds it)."""
    for _ in itertools.count():
        if condition():
            return
        await asyncio.sleep(0.01)


async def readings_on(bus: InProcessBus, group: str, wait: float = 0.3) -> list[Reading]:
    consumer = await bus.consumer("ingest.readings.>", group)
    got: list[Reading] = []
    while batch := await consumer.fetch(100, wait):
        for message in batch:
            reading = Reading.from_bytes(message.data)
            assert message.msg_id == reading.id
            assert message.subject == "ingest.readings._"
            got.append(reading)
            await message.ack()
    await consumer.close()
    return got


def parking(server: OpenDataServer, interval: float = 30.0) -> ParkingAdapter:
    for start, end, page in ((1, 3, 1), (4, 6, 2), (7, 9, 3)):
        server.serve(
            f"/{KEY}/json/GetParkingInfo/{start}/{end}/도봉구", f"parking-dobong-{page}.json"
        )
    return ParkingAdapter(
        base_url=server.base, key=KEY, districts=["도봉구"], lots={}, interval=interval, page_size=3
    )


def test_a_poll_publishes_standardized_readings_and_keeps_dead_letters(
    standardizer: SmartDataStandardizer, deadletters: DeadLetterService
) -> None:
    async def scenario() -> tuple[list[Reading], AdapterWorker]:
        bus = InProcessBus()
        await bus.start()
        stop = asyncio.Event()
        with open_data_server() as server:
            worker = make_worker([parking(server)], bus, standardizer, deadletters)
            running = asyncio.create_task(worker.run(stop))
            await until(lambda: worker.status["parking"].polls == 1 and not running.done())
            await until(lambda: worker.status["parking"].published > 0)
            stop.set()
            await running
        return await readings_on(bus, "check"), worker

    readings, worker = run(scenario())
    assert sorted(reading.entity_id for reading in readings) == [
        "urn:ngsi-ld:OffStreetParking:seoul-1010001",
        "urn:ngsi-ld:OffStreetParking:seoul-1010002",
        "urn:ngsi-ld:OffStreetParking:seoul-1010003",
        "urn:ngsi-ld:OffStreetParking:seoul-1010004",
        "urn:ngsi-ld:OnStreetParking:seoul-1010005",
    ]
    for reading in readings:
        assert reading.source == "adapter:parking"
        assert reading.tenant == ""
        assert reading.received_at == "2026-11-28T01:20:00.000000Z"
        assert reading.context[0].endswith("dataModel.Parking/master/context.jsonld")
    status = worker.status["parking"]
    assert (status.published, status.dead_letters, status.consecutive_failures) == (5, 1, 0)
    assert status.last_success is not None
    (letter,) = deadletters.page(Caller.system(""), DeadLetterFilter()).letters
    assert (letter.source, letter.reason, letter.path) == ("adapter:parking", "unparsable", "TPKCT")
    assert "약 40" in letter.payload.decode()
    assert KEY not in (letter.topic or "")


def test_an_update_the_standardizer_refuses_is_a_dead_letter_with_what_it_was(
    catalog: SchemaCatalog, deadletters: DeadLetterService
) -> None:
    # The shared schemas have no UrbanMobility model: a standardizer that requires a schema
    # refuses every ArrivalEstimation, and each refusal keeps the record and the update.
    strict = SmartDataStandardizer(catalog, require_schema=True)

    async def scenario() -> AdapterWorker:
        bus = InProcessBus()
        await bus.start()
        stop = asyncio.Event()
        with open_data_server() as server:
            server.serve(f"/{KEY}/json/realtimeStationArrival/0/20/창동", "subway-changdong.json")
            subway = SubwayAdapter(
                base_url=server.base, key=KEY, stations={"창동": "changdong"}, interval=30
            )
            worker = make_worker([subway], bus, strict, deadletters)
            running = asyncio.create_task(worker.run(stop))
            await until(lambda: worker.status["subway"].dead_letters == 4)
            stop.set()
            await running
        return worker

    status = run(scenario()).status["subway"]
    assert (status.published, status.consecutive_failures) == (0, 0)
    letters = deadletters.page(Caller.system(""), DeadLetterFilter()).letters
    assert {(letter.reason, letter.stage) for letter in letters} == {("schema", "validate")}
    assert {letter.meta["entityId"] for letter in letters} == {
        "urn:ngsi-ld:ArrivalEstimation:subway-changdong-1001-down",
        "urn:ngsi-ld:ArrivalEstimation:subway-changdong-1001-up",
        "urn:ngsi-ld:ArrivalEstimation:subway-changdong-1004-down",
        "urn:ngsi-ld:ArrivalEstimation:subway-changdong-1004-up",
    }
    for letter in letters:
        assert letter.meta["attributes"]["hasStop"]["object"].endswith(":changdong")
        assert b"trains" in letter.payload  # the API's records the update came from


def test_a_failing_adapter_backs_off_while_the_others_go_on(
    standardizer: SmartDataStandardizer, deadletters: DeadLetterService
) -> None:
    link = f"/{KEY}/xml/TrafficInfo/1/5/1080012300"
    station = f"/{KEY}/json/realtimeStationArrival/0/20/창동"

    async def scenario() -> tuple[AdapterWorker, OpenDataServer]:
        bus = InProcessBus()
        await bus.start()
        stop = asyncio.Event()
        with open_data_server() as server:
            server.route(link, Answer(b"<html>Internal Server Error</html>", status=500))
            server.serve(station, "subway-changdong.json")
            traffic = TrafficAdapter(
                base_url=server.base, key=KEY, links={"1080012300": ""}, interval=0.05
            )
            subway = SubwayAdapter(
                base_url=server.base, key=KEY, stations={"창동": "changdong"}, interval=0.05
            )
            worker = make_worker([traffic, subway], bus, standardizer, deadletters, backoff_cap=0.8)
            running = asyncio.create_task(worker.run(stop))
            await until(lambda: worker.status["traffic"].consecutive_failures >= 4)
            failing_requests = len(await asyncio.to_thread(server.wait_for_requests, link, 4))
            healthy_requests = len(await asyncio.to_thread(server.wait_for_requests, station, 1))
            assert healthy_requests > failing_requests  # the other adapter kept its pace
            # The API recovers: the next poll succeeds and the normal interval is back.
            server.serve(link, "traffic-link.xml")
            await until(lambda: worker.status["traffic"].consecutive_failures == 0)
            await until(lambda: worker.status["traffic"].next_delay == 0.05)
            stop.set()
            await running
        return worker, server

    worker, _ = run(scenario())
    traffic = worker.status["traffic"]
    failed = [delay for delay in traffic.delays if delay != 0.05]
    assert len(failed) >= 4
    for attempt, delay in enumerate(failed[:4], start=1):
        ceiling = min(0.8, 0.05 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert traffic.published >= 1
    assert traffic.last_error is None
    subway = worker.status["subway"]
    assert subway.consecutive_failures == 0
    assert subway.polls > traffic.polls


def test_timeouts_back_off_and_report_the_redacted_url(
    standardizer: SmartDataStandardizer, deadletters: DeadLetterService
) -> None:
    async def scenario() -> AdapterWorker:
        bus = InProcessBus()
        await bus.start()
        stop = asyncio.Event()
        with open_data_server() as server:
            server.serve(f"/{KEY}/xml/TrafficInfo/1/5/1080012300", "traffic-link.xml", delay=5)
            traffic = TrafficAdapter(
                base_url=server.base, key=KEY, links={"1080012300": ""}, interval=0.05
            )
            worker = make_worker([traffic], bus, standardizer, deadletters, timeout=0.1)
            running = asyncio.create_task(worker.run(stop))
            await until(lambda: worker.status["traffic"].consecutive_failures >= 2)
            stop.set()
            await running
        return worker

    status = run(scenario()).status["traffic"]
    assert status.last_error is not None
    assert "no answer within 0.1 s" in status.last_error
    assert "/***/xml/TrafficInfo" in status.last_error
    assert KEY not in status.last_error
    assert status.published == 0


class BrokenAdapter:
    """An adapter with a bug: its poll raises (the worker must contain it)."""

    name = "broken"
    interval = 0.05

    def describe(self) -> str:
        return "raises on every poll"

    def secrets(self) -> list[str]:
        return [KEY]

    async def poll(self, fetcher: Fetcher, received_at: str) -> PollResult:
        raise RuntimeError(f"a bug that quotes the key {KEY}")

    def records(self, target: str, body: bytes) -> list[dict[str, Any]]:
        raise NotImplementedError

    def map_record(
        self, target: str, record: dict[str, Any], received_at: str
    ) -> list[EntityUpdate]:
        raise NotImplementedError


def test_an_adapter_that_raises_never_stops_the_others(
    standardizer: SmartDataStandardizer, deadletters: DeadLetterService
) -> None:
    async def scenario() -> AdapterWorker:
        bus = InProcessBus()
        await bus.start()
        stop = asyncio.Event()
        with open_data_server() as server:
            server.serve(f"/{KEY}/json/realtimeStationArrival/0/20/창동", "subway-changdong.json")
            subway = SubwayAdapter(
                base_url=server.base, key=KEY, stations={"창동": "changdong"}, interval=0.05
            )
            worker = make_worker([BrokenAdapter(), subway], bus, standardizer, deadletters)
            running = asyncio.create_task(worker.run(stop))
            await until(lambda: worker.status["subway"].polls >= 3)
            await until(lambda: worker.status["broken"].consecutive_failures >= 2)
            stop.set()
            await running
        return worker

    worker = run(scenario())
    broken = worker.status["broken"]
    assert broken.last_error == "RuntimeError: a bug that quotes the key ***"
    assert worker.status["subway"].published >= 3


def test_unchanged_data_polled_twice_is_published_once(
    standardizer: SmartDataStandardizer, deadletters: DeadLetterService
) -> None:
    async def scenario() -> list[Reading]:
        bus = InProcessBus(duplicate_window=60)
        await bus.start()
        stop = asyncio.Event()
        with open_data_server() as server:
            worker = make_worker([parking(server, interval=0.05)], bus, standardizer, deadletters)
            running = asyncio.create_task(worker.run(stop))
            await until(lambda: worker.status["parking"].polls >= 3)
            stop.set()
            await running
        return await readings_on(bus, "check")

    readings = run(scenario())
    assert len(readings) == 5  # three polls of the same answer, one reading per lot


def test_stop_ends_a_poll_in_flight_at_once(
    standardizer: SmartDataStandardizer, deadletters: DeadLetterService
) -> None:
    async def scenario() -> float:
        bus = InProcessBus()
        await bus.start()
        stop = asyncio.Event()
        with open_data_server() as server:
            server.serve(f"/{KEY}/xml/TrafficInfo/1/5/1", "traffic-link.xml", delay=30)
            traffic = TrafficAdapter(base_url=server.base, key=KEY, links={"1": ""}, interval=60)
            worker = make_worker([traffic], bus, standardizer, deadletters, timeout=60)
            running = asyncio.create_task(worker.run(stop))
            await asyncio.to_thread(server.wait_for_requests, f"/{KEY}/xml/TrafficInfo/1/5/1", 1)
            loop = asyncio.get_running_loop()
            started = loop.time()
            stop.set()
            await running
            return loop.time() - started

    assert run(scenario()) < 2.0


def test_no_adapter_means_the_worker_returns(
    standardizer: SmartDataStandardizer, deadletters: DeadLetterService
) -> None:
    worker = make_worker([], InProcessBus(), standardizer, deadletters)
    run(worker.run(asyncio.Event()), timeout=5)


@given(
    failures=st.integers(min_value=1, max_value=60),
    base=st.floats(min_value=0.01, max_value=3600),
    cap=st.floats(min_value=0.01, max_value=86400),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_is_exponential_jittered_capped_and_never_faster_than_the_schedule(
    failures: int, base: float, cap: float, seed: int
) -> None:
    draw = random.Random(seed).uniform
    delay = backoff_delay(failures, base, cap, draw)
    ceiling = min(cap, base * 2.0**failures)
    assert delay <= max(ceiling, min(base, cap)) + 1e-9
    assert delay >= min(base, cap) - 1e-9
    assert delay >= ceiling / 2 - 1e-9
    assert delay <= cap + 1e-9
