"""The parking adapter over real HTTP: paging, mapping, error envelopes, malformed bodies."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from smartcity.ingest.adapters.base import PollResult
from smartcity.ingest.adapters.http import Fetcher
from smartcity.ingest.adapters.parking import ParkingAdapter
from tests.ingest.open_data_server import Answer, OpenDataServer, open_data_server

KEY = "SECRET-parking-key-7f3a"
RECEIVED = "2026-11-28T01:20:00.000000Z"


def make_parking(server: OpenDataServer, **options: Any) -> ParkingAdapter:
    settings: dict[str, Any] = {
        "base_url": server.base,
        "key": KEY,
        "districts": ["도봉구", "노원구"],
        "lots": {"1010001": "changdong-station-public"},
        "interval": 60,
        "page_size": 3,
    }
    return ParkingAdapter(**(settings | options))


def poll(adapter: ParkingAdapter, timeout: float = 5.0) -> PollResult:
    async def run() -> PollResult:
        async with httpx.AsyncClient() as client:
            return await adapter.poll(Fetcher(client, timeout=timeout, secrets=[KEY]), RECEIVED)

    return asyncio.run(run())


def serve_districts(server: OpenDataServer) -> None:
    for start, end, page in ((1, 3, 1), (4, 6, 2), (7, 9, 3)):
        server.serve(
            f"/{KEY}/json/GetParkingInfo/{start}/{end}/도봉구", f"parking-dobong-{page}.json"
        )
    server.serve(f"/{KEY}/json/GetParkingInfo/1/3/노원구", "parking-nowon.json")


def by_id(result: PollResult) -> dict[str, dict[str, Any]]:
    return {update.entity_id: update.attributes for update in result.updates}


def test_pages_through_each_district_and_maps_every_lot_once() -> None:
    with open_data_server() as server:
        serve_districts(server)
        result = poll(make_parking(server))
        paths = server.paths()
    assert paths == [
        f"/{KEY}/json/GetParkingInfo/1/3/도봉구",
        f"/{KEY}/json/GetParkingInfo/4/6/도봉구",
        f"/{KEY}/json/GetParkingInfo/7/9/도봉구",
        f"/{KEY}/json/GetParkingInfo/1/3/노원구",
    ]
    assert result.failures == []
    assert result.requests == 4
    assert sorted(by_id(result)) == [
        "urn:ngsi-ld:OffStreetParking:changdong-station-public",
        "urn:ngsi-ld:OffStreetParking:seoul-1010002",
        "urn:ngsi-ld:OffStreetParking:seoul-1010003",
        "urn:ngsi-ld:OffStreetParking:seoul-1010004",
        "urn:ngsi-ld:OffStreetParking:seoul-1120001",
        "urn:ngsi-ld:OnStreetParking:seoul-1010005",
    ]


def test_a_linked_lot_carries_counts_tariff_and_the_time_of_its_count() -> None:
    with open_data_server() as server:
        serve_districts(server)
        lot = by_id(poll(make_parking(server)))[
            "urn:ngsi-ld:OffStreetParking:changdong-station-public"
        ]
    counted = "2026-11-28T01:15:00.000000Z"  # 10:15 KST; the duplicate row of 10:05 lost
    assert lot["occupiedSpotNumber"] == {"type": "Property", "value": 87, "observedAt": counted}
    assert lot["availableSpotNumber"] == {"type": "Property", "value": 33, "observedAt": counted}
    assert lot["occupancy"]["value"] == 0.725
    assert lot["status"]["value"] == ["spacesAvailable"]
    assert lot["occupancyModified"]["value"] == counted
    assert lot["totalSpotNumber"]["value"] == 120
    assert lot["name"]["value"] == "창동역 공영주차장(구)"
    assert lot["address"]["value"]["streetAddress"] == "도봉구 창동 1-7"
    assert lot["location"] == {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [127.0466, 37.6541]},
    }
    assert lot["priceRatePerMinute"]["value"] == 60.0
    assert lot["priceCurrency"]["value"] == "KRW"
    assert lot["chargeType"]["value"] == [
        "firstIntervalPrice",
        "additionalIntervalPrice",
        "maximum",
    ]
    assert lot["tariff"]["value"]["dailyMaximum"] == 18000
    assert lot["openingHours"]["value"] == "Mo-Fr 00:00-24:00,Sa-Su 00:00-24:00,PH 00:00-24:00"
    assert lot["category"]["value"] == ["public", "feeCharged", "shortTerm"]
    assert lot["contactPoint"]["value"] == {"telephone": "02-2091-2971"}
    assert lot["parkingSiteId"]["value"] == "1010001"
    assert lot["source"]["value"] == "https://data.seoul.go.kr"


def test_over_full_unlinked_stale_on_street_and_free_lots() -> None:
    with open_data_server() as server:
        serve_districts(server)
        lots = by_id(poll(make_parking(server)))
    over_full = lots["urn:ngsi-ld:OffStreetParking:seoul-1010002"]
    assert over_full["availableSpotNumber"]["value"] == 0  # 215 parked in 210 spots
    assert over_full["occupancy"]["value"] == 1.0
    assert over_full["status"]["value"] == ["full"]
    assert over_full["openingHours"]["value"].startswith("Mo-Fr 06:00-23:00")
    # Not linked: its 0 parked is no observation, so it must not look free.
    unlinked = lots["urn:ngsi-ld:OffStreetParking:seoul-1010003"]
    assert unlinked["totalSpotNumber"]["value"] == 40
    for name in ("availableSpotNumber", "occupiedSpotNumber", "occupancy", "status"):
        assert name not in unlinked
    # Counted eight days ago: the values keep that time, never the time of the poll.
    stale = lots["urn:ngsi-ld:OffStreetParking:seoul-1010004"]
    assert stale["availableSpotNumber"]["observedAt"] == "2026-11-19T18:10:05.000000Z"
    assert stale["occupancyModified"]["value"] == "2026-11-19T18:10:05.000000Z"
    on_street = lots["urn:ngsi-ld:OnStreetParking:seoul-1010005"]
    assert on_street["availableSpotNumber"]["value"] == 1
    assert "status" not in on_street
    assert "occupancy" not in on_street
    free = lots["urn:ngsi-ld:OffStreetParking:seoul-1120001"]
    assert free["chargeType"]["value"] == ["free"]
    assert "free" in free["category"]["value"]
    assert "priceRatePerMinute" not in free


def test_records_that_cannot_be_mapped_are_dead_letters_with_the_record_and_reason() -> None:
    with open_data_server() as server:
        serve_districts(server)
        result = poll(make_parking(server))
    reasons = {rejected.path: rejected for _, rejected in result.rejected}
    assert set(reasons) == {"TPKCT", "PKLT_CD"}
    assert reasons["TPKCT"].reason == "unparsable"
    assert "약 40" in reasons["TPKCT"].message
    assert reasons["PKLT_CD"].reason == "unmapped"
    for raw, rejected in result.rejected:
        assert rejected.stage == "map"
        assert raw.source == "adapter:parking"
        assert raw.received_at == RECEIVED
        assert KEY not in (raw.topic or "")
        assert "***" in (raw.topic or "")
        record = orjson.loads(raw.payload)
        assert record["PKLT_NM"] in ("쌍문근린공원 공영주차장(구)", "상계중앙시장 공영주차장(구)")


@pytest.mark.parametrize(
    ("fixture", "code"),
    [("parking-error-336.json", "ERROR-336"), ("parking-bad-key.json", "INFO-100")],
)
def test_error_envelopes_fail_the_poll_without_dead_letters(fixture: str, code: str) -> None:
    with open_data_server() as server:
        server.serve(f"/{KEY}/json/GetParkingInfo/1/3/도봉구", fixture)
        result = poll(make_parking(server, districts=["도봉구"]))
    assert result.updates == []
    assert result.rejected == []
    (failure,) = result.failures
    assert failure.kind == "api"
    assert code in failure.message


def test_no_data_is_an_empty_success() -> None:
    with open_data_server() as server:
        server.serve(f"/{KEY}/json/GetParkingInfo/1/3/도봉구", "parking-no-data.json")
        result = poll(make_parking(server, districts=["도봉구"]))
    assert (result.updates, result.rejected, result.failures) == ([], [], [])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"GetParkingInfo": {"list_total_count": 7, "RESULT": {"CODE": "INF', "not JSON"),
        (b"<html><body>Service Unavailable</body></html>", "not JSON"),
        (b'{"GetParkingInfo": {"RESULT": {"CODE": "INFO-000"}, "row": "none"}}', "row"),
        (b"[1, 2, 3]", "JSON list"),
        (b'{"GetParkingInfo": {"row": []}}', "no RESULT"),
    ],
)
def test_malformed_bodies_are_dead_letters_with_the_raw_body(body: bytes, expected: str) -> None:
    with open_data_server() as server:
        server.route(f"/{KEY}/json/GetParkingInfo/1/3/도봉구", Answer(body))
        result = poll(make_parking(server, districts=["도봉구"]))
    (failure,) = result.failures
    assert failure.kind == "malformed"
    assert expected in failure.message
    ((raw, rejected),) = result.rejected
    assert raw.payload == body
    assert (rejected.reason, rejected.stage) == ("unparsable", "decode")
    assert expected in rejected.message
    assert raw.topic == f"{server.base}/***/json/GetParkingInfo/1/3/%EB%8F%84%EB%B4%89%EA%B5%AC"
    assert raw.meta["adapter"] == "parking"


def test_a_failed_page_keeps_the_pages_before_it() -> None:
    with open_data_server() as server:
        server.serve(f"/{KEY}/json/GetParkingInfo/1/3/도봉구", "parking-dobong-1.json")
        server.route(f"/{KEY}/json/GetParkingInfo/4/6/도봉구", Answer(b"oops", status=500))
        result = poll(make_parking(server, districts=["도봉구"]))
    (failure,) = result.failures
    assert failure.kind == "http"
    assert "HTTP 500" in failure.message
    assert KEY not in failure.message
    assert "***" in failure.message
    assert len(result.updates) == 3
    assert result.rejected == []  # an error page is no input: nothing to replay


def test_a_server_that_does_not_answer_in_time_is_a_timeout() -> None:
    with open_data_server() as server:
        server.serve(f"/{KEY}/json/GetParkingInfo/1/3/도봉구", "parking-dobong-1.json", delay=3)
        result = poll(make_parking(server, districts=["도봉구"]), timeout=0.2)
    (failure,) = result.failures
    assert failure.kind == "timeout"
    assert "0.2 s" in failure.message
    assert KEY not in failure.message


def test_an_unreachable_server_is_a_transport_failure() -> None:
    with open_data_server() as server:
        base = server.base
    result = poll(ParkingAdapter(base_url=base, key=KEY, districts=["도봉구"], lots={}, interval=1))
    (failure,) = result.failures
    assert failure.kind == "transport"
    assert KEY not in failure.message


def test_page_size_is_capped_at_the_services_limit() -> None:
    adapter = ParkingAdapter(
        base_url="http://x", key=KEY, districts=[], lots={}, interval=1, page_size=5000
    )
    assert adapter.page_size == 1000
    assert "all of Seoul" in adapter.describe()
    assert KEY not in adapter.describe()
