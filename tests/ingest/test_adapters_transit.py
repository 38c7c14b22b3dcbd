"""The subway, bus and traffic adapters over real HTTP, from fixtures in the APIs' shapes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from smartcity.ingest.adapters.base import Adapter, PollResult
from smartcity.ingest.adapters.bus import BusAdapter
from smartcity.ingest.adapters.http import Fetcher
from smartcity.ingest.adapters.subway import SubwayAdapter
from smartcity.ingest.adapters.traffic import TrafficAdapter
from tests.ingest.open_data_server import Answer, OpenDataServer, open_data_server

KEY = "SECRET-transit-key-91c2"
BUS_KEY_ENCODED = "bus%2Bkey%2Fsecret%3D%3D"
BUS_KEY = "bus+key/secret=="
RECEIVED = "2026-11-28T01:20:00.000000Z"
BUS_PATH = "/api/rest/stationinfo/getStationByUid"


def poll(adapter: Adapter, timeout: float = 5.0) -> PollResult:
    async def run() -> PollResult:
        async with httpx.AsyncClient() as client:
            fetcher = Fetcher(client, timeout=timeout, secrets=adapter.secrets())
            return await adapter.poll(fetcher, RECEIVED)

    return asyncio.run(run())


def by_id(result: PollResult) -> dict[str, dict[str, Any]]:
    return {update.entity_id: update.attributes for update in result.updates}


def make_subway(server: OpenDataServer) -> SubwayAdapter:
    return SubwayAdapter(
        base_url=server.base,
        key=KEY,
        stations={"창동": "changdong", "노원": "urn:ngsi-ld:TransportStation:nowon"},
        interval=30,
    )


def test_subway_arrivals_per_station_line_and_direction() -> None:
    with open_data_server() as server:
        server.serve(f"/{KEY}/json/realtimeStationArrival/0/20/창동", "subway-changdong.json")
        server.serve(f"/{KEY}/json/realtimeStationArrival/0/20/노원", "subway-nowon.json")
        result = poll(make_subway(server))
    assert result.failures == []
    assert result.rejected == []
    arrivals = by_id(result)
    prefix = "urn:ngsi-ld:ArrivalEstimation:subway-"
    assert sorted(arrivals) == [
        f"{prefix}changdong-1001-down",
        f"{prefix}changdong-1001-up",
        f"{prefix}changdong-1004-down",
        f"{prefix}changdong-1004-up",
        f"{prefix}nowon-1004-up",
        f"{prefix}nowon-1007-down",
        f"{prefix}nowon-1007-up",
    ]
    estimated = "2026-11-28T01:19:40.000000Z"  # recptnDt 10:19:40 KST
    up = arrivals[f"{prefix}changdong-1004-up"]
    assert up["remainingTime"] == {"type": "Property", "value": "PT2M", "observedAt": estimated}
    assert up["headSign"]["value"] == "당고개행"
    assert up["hasTrip"]["object"] == "urn:ngsi-ld:GtfsTrip:seoul-subway-1004-4123"
    assert up["hasStop"] == {
        "type": "Relationship",
        "object": "urn:ngsi-ld:TransportStation:changdong",
    }
    assert up["name"]["value"] == "창동 4호선 상행"
    assert [train["train"] for train in up["nextArrivals"]["value"]] == ["4123", "4125"]
    assert up["nextArrivals"]["value"][1]["remainingTime"] == "PT8M"
    # The train that already left (arvlCd 2) is gone; the one at the platform is next.
    down = arrivals[f"{prefix}changdong-1004-down"]
    assert [train["train"] for train in down["nextArrivals"]["value"]] == ["4130", "4134"]
    assert down["remainingTime"]["value"] == "PT0S"
    assert down["nextArrivals"]["value"][0]["status"] == "arrived"
    # Line 1 gives no seconds: a time read from the message, or none claimed at all.
    line1_down = arrivals[f"{prefix}changdong-1001-down"]
    assert line1_down["remainingTime"]["value"] == "PT4M30S"
    assert line1_down["nextArrivals"]["value"][0]["lastTrain"] is True
    line1_up = arrivals[f"{prefix}changdong-1001-up"]
    assert "remainingTime" not in line1_up
    assert "remainingTime" not in line1_up["nextArrivals"]["value"][0]
    assert line1_up["hasTrip"]["object"].endswith("-1001-K1203")
    nowon = arrivals[f"{prefix}nowon-1007-up"]
    assert nowon["remainingTime"]["value"] == "PT1M15S"
    assert nowon["hasStop"]["object"] == "urn:ngsi-ld:TransportStation:nowon"


def test_subway_without_trains_is_empty_and_a_bad_key_fails() -> None:
    with open_data_server() as server:
        server.serve(f"/{KEY}/json/realtimeStationArrival/0/20/창동", "subway-no-data.json")
        server.serve(f"/{KEY}/json/realtimeStationArrival/0/20/노원", "subway-bad-key.json")
        result = poll(make_subway(server))
    assert result.updates == []
    assert result.rejected == []
    (failure,) = result.failures
    assert failure.kind == "api"
    assert failure.message.startswith("INFO-100")


def test_a_train_without_its_time_is_a_dead_letter_of_its_group() -> None:
    body = (
        b'{"errorMessage": {"status": 200, "code": "INFO-000", "total": 1}, "realtimeArrivalList":'
        b' [{"subwayId": "1004", "updnLine": "\xec\x83\x81\xed\x96\x89", "btrainNo": "4101",'
        b' "barvlDt": "60", "arvlCd": "99", "recptnDt": "yesterday"}]}'
    )
    with open_data_server() as server:
        server.route(f"/{KEY}/json/realtimeStationArrival/0/20/창동", Answer(body))
        server.serve(f"/{KEY}/json/realtimeStationArrival/0/20/노원", "subway-no-data.json")
        result = poll(make_subway(server))
    ((raw, rejected),) = result.rejected
    assert (rejected.reason, rejected.path) == ("unparsable", "recptnDt")
    assert b"yesterday" in raw.payload
    assert KEY not in (raw.topic or "")


def make_bus(server: OpenDataServer, stops: dict[str, str]) -> BusAdapter:
    return BusAdapter(
        base_url=f"{server.base}/api/rest", key=BUS_KEY_ENCODED, stops=stops, interval=30
    )


def test_bus_arrivals_per_route_and_the_stop_itself() -> None:
    with open_data_server() as server:
        server.serve(f"{BUS_PATH}?arsId=10933", "bus-changdong-station.xml")
        result = poll(make_bus(server, {"10933": ""}))
        (request,) = server.requests
    # The key handed out URL-encoded is sent once-encoded, as the service expects.
    assert request.query["serviceKey"] == [BUS_KEY]
    assert result.failures == []
    assert result.rejected == []
    updates = by_id(result)
    stop = updates["urn:ngsi-ld:TransportStation:seoul-bus-10933"]
    assert stop["name"]["value"] == "창동역서측"
    assert stop["location"]["value"]["coordinates"] == [127.0469, 37.6527]
    assert stop["stationType"]["value"] == ["bus"]
    made = "2026-11-28T01:19:30.000000Z"
    running = updates["urn:ngsi-ld:ArrivalEstimation:bus-10933-110900006"]
    assert running["remainingTime"] == {"type": "Property", "value": "PT3M8S", "observedAt": made}
    assert running["hasTrip"]["object"] == "urn:ngsi-ld:GtfsTrip:seoul-bus-110900006-110012345"
    assert running["headSign"]["value"] == "상계주공7단지"
    assert running["hasStop"]["object"] == "urn:ngsi-ld:TransportStation:seoul-bus-10933"
    assert [bus["remainingTime"] for bus in running["nextArrivals"]["value"]] == ["PT3M8S", "PT11M"]
    soon = updates["urn:ngsi-ld:ArrivalEstimation:bus-10933-100100022"]
    assert soon["remainingTime"]["value"] == "PT40S"
    assert soon["nextArrivals"]["value"][1] == {"message": "출발대기", "lastBus": False}
    ended = updates["urn:ngsi-ld:ArrivalEstimation:bus-10933-110900002"]
    assert "remainingTime" not in ended
    assert "hasTrip" not in ended
    assert [bus["message"] for bus in ended["nextArrivals"]["value"]] == ["운행종료", "운행종료"]


def test_a_bus_stop_of_the_district_is_referenced_not_rewritten() -> None:
    with open_data_server() as server:
        server.serve(f"{BUS_PATH}?arsId=10933", "bus-changdong-station.xml")
        result = poll(make_bus(server, {"10933": "changdong"}))
    assert {update.entity_type for update in result.updates} == {"ArrivalEstimation"}
    assert {u.attributes["hasStop"]["object"] for u in result.updates} == {
        "urn:ngsi-ld:TransportStation:changdong"
    }


def test_bus_no_result_is_empty_and_an_unregistered_key_fails_redacted() -> None:
    with open_data_server() as server:
        server.serve(f"{BUS_PATH}?arsId=10933", "bus-no-result.xml")
        server.serve(f"{BUS_PATH}?arsId=10934", "bus-key-not-registered.xml")
        server.route(f"{BUS_PATH}?arsId=10935", Answer(b"bad gateway", status=502))
        result = poll(make_bus(server, {"10933": "", "10934": "", "10935": ""}))
    assert result.updates == []
    assert result.rejected == []
    api, http = result.failures
    assert api.kind == "api"
    assert "SERVICE_KEY_IS_NOT_REGISTERED_ERROR" in api.message
    assert http.kind == "http"
    assert "serviceKey=***" in http.message
    assert BUS_KEY not in http.message
    assert BUS_KEY_ENCODED not in http.message


def test_xml_with_a_document_type_is_refused_unread() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<ServiceResult><msgHeader><headerCd>0</headerCd></msgHeader>&lol2;</ServiceResult>"
    )
    with open_data_server() as server:
        server.route(f"{BUS_PATH}?arsId=10933", Answer(bomb, content_type="text/xml"))
        result = poll(make_bus(server, {"10933": ""}))
    (failure,) = result.failures
    assert failure.kind == "malformed"
    ((raw, rejected),) = result.rejected
    assert raw.payload == bomb
    assert rejected.stage == "decode"
    assert "serviceKey=***" in (raw.topic or "")


def make_traffic(server: OpenDataServer, links: dict[str, str]) -> TrafficAdapter:
    return TrafficAdapter(base_url=server.base, key=KEY, links=links, interval=300)


def test_road_speed_per_link() -> None:
    with open_data_server() as server:
        server.serve(f"/{KEY}/xml/TrafficInfo/1/5/1080012300", "traffic-link.xml")
        server.serve(f"/{KEY}/xml/TrafficInfo/1/5/1080012400", "traffic-no-data.xml")
        result = poll(make_traffic(server, {"1080012300": "changdong-dobong-1", "1080012400": ""}))
    assert result.failures == []
    assert result.rejected == []
    (update,) = result.updates
    assert update.entity_id == "urn:ngsi-ld:TrafficFlowObserved:topis-1080012300"
    flow = update.attributes
    assert flow["averageVehicleSpeed"] == {
        "type": "Property",
        "value": 23.5,
        "observedAt": RECEIVED,
        "unitCode": "KMH",
    }
    assert flow["dateObserved"]["value"] == RECEIVED
    assert flow["travelTime"]["value"] == 74
    assert flow["travelTime"]["unitCode"] == "SEC"
    assert flow["refRoadSegment"]["object"] == "urn:ngsi-ld:RoadSegment:changdong-dobong-1"


@pytest.mark.parametrize(
    ("row", "reason", "path"),
    [
        ("<link_id>1080012300</link_id><prcs_spd>-3</prcs_spd>", "out-of-range", "prcs_spd"),
        ("<link_id>1080012300</link_id><prcs_spd>fast</prcs_spd>", "unparsable", "prcs_spd"),
        ("<link_id>1080012300</link_id>", "unmapped", "prcs_spd"),
        ("<link_id>999</link_id><prcs_spd>30</prcs_spd>", "unmapped", "link_id"),
    ],
)
def test_a_speed_that_is_not_one_is_a_dead_letter(row: str, reason: str, path: str) -> None:
    body = (
        "<TrafficInfo><list_total_count>1</list_total_count><RESULT><CODE>INFO-000</CODE>"
        f"<MESSAGE>ok</MESSAGE></RESULT><row>{row}</row></TrafficInfo>"
    ).encode()
    with open_data_server() as server:
        server.route(
            f"/{KEY}/xml/TrafficInfo/1/5/1080012300", Answer(body, content_type="text/xml")
        )
        result = poll(make_traffic(server, {"1080012300": ""}))
    assert result.updates == []
    assert result.failures == []
    ((raw, rejected),) = result.rejected
    assert (rejected.reason, rejected.path) == (reason, path)
    assert raw.meta["entityType"] == "TrafficFlowObserved"


def test_the_key_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), open_data_server() as server:
        server.serve(f"/{KEY}/xml/TrafficInfo/1/5/1080012300", "traffic-link.xml")
        server.route(f"{BUS_PATH}?arsId=10933", Answer(b"down", status=503))
        poll(make_traffic(server, {"1080012300": ""}))
        poll(make_bus(server, {"10933": ""}))
    messages = [record.getMessage() for record in caplog.records]
    assert any("TrafficInfo" in message for message in messages)  # httpx did log the requests
    for message in messages:
        assert KEY not in message
        assert BUS_KEY not in message
        assert BUS_KEY_ENCODED not in message
