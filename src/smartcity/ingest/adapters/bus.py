"""Seoul bus arrivals at a stop (getStationByUid) -> ArrivalEstimation (and the stop itself).

`GET {base}/stationinfo/getStationByUid?serviceKey=...&arsId=...` answers in XML:
`<ServiceResult><msgHeader><headerCd>0</headerCd><headerMsg>...</headerMsg>...</msgHeader>
<msgBody><itemList>...</itemList>...</msgBody></ServiceResult>`, one itemList per route serving
the stop: arsId, stNm, rtNm, busRouteId, adirection (towards), arrmsg1/arrmsg2 ('3분12초후[2번째
전]', '곧 도착', '출발대기', '운행종료'), traTime1/2 and exps1/2 (seconds), vehId1/2, isLast1/2,
gpsX/gpsY (WGS84) and mkTm (when the estimate was made, KST). headerCd 4 is "no result"; other
codes are errors (7: key not registered, 8: request quota exceeded). The data.go.kr gateway in
front answers a refused key with `<OpenAPI_ServiceResponse><cmmMsgHeader>...`.

One `ArrivalEstimation` per stop and route, as for the subway (see subway.py for the choice of
type). A stop not mapped to an entity of the district gets a `TransportStation` of its own,
named and placed from the answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import partial
from typing import Any, Final
from urllib.parse import unquote
from xml.etree.ElementTree import Element

from smartcity.ingest.adapters import seoul
from smartcity.ingest.adapters.base import (
    ApiError,
    EntityUpdate,
    Malformed,
    PollContext,
    PollResult,
    refuse,
)
from smartcity.ingest.adapters.http import Fetcher
from smartcity.ingest.adapters.subway import CONTEXT as ARRIVAL_CONTEXT

SERVICE: Final = "stationinfo/getStationByUid"
STATION_CONTEXT: Final = [
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Transportation/master/context.jsonld"
]
OK: Final = "0"
NO_RESULT: Final = "4"
NO_ESTIMATE: Final = ("출발대기", "운행종료", "회차대기")
"""Messages of a bus that is not on its way: waiting to leave the depot, service ended."""


class BusAdapter:
    """Poll getStationByUid for the configured stops."""

    name = "bus"

    def __init__(
        self,
        *,
        base_url: str,
        key: str,
        stops: dict[str, str],
        interval: float,
        tenant: str = "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # data.go.kr hands out the key URL-encoded and decoded; httpx encodes it once.
        self.key = unquote(key) if "%" in key else key
        self.stops = stops
        """ARS stop number -> the stop's entity (local id or URN); '' for one of its own."""
        self.interval = interval
        self.tenant = tenant

    def describe(self) -> str:
        stops = f"stops {', '.join(self.stops)}" if self.stops else "no stop configured"
        return f"getStationByUid for {stops}, every {self.interval:g} s"

    def secrets(self) -> list[str]:
        return [self.key]

    async def poll(self, fetcher: Fetcher, received_at: str) -> PollResult:
        """Fetch each stop's arrivals; one update per route, and the stop when it is ours."""
        poll = PollContext(self.name, self.tenant, received_at, fetcher)
        url = f"{self.base_url}/{SERVICE}"
        for ars_id, configured in self.stops.items():
            params = {"serviceKey": self.key, "arsId": ars_id}
            routes = await poll.fetch(
                url, _routes, params=params, entity_type="ArrivalEstimation", target=ars_id
            )
            if not routes:
                continue
            shown = fetcher.shown(url, params)
            stop = seoul.entity_id("TransportStation", configured or f"seoul-bus-{ars_id}")
            if not configured:
                poll.map_records(
                    routes[:1], _stop, url=shown, entity_type="TransportStation", target=ars_id
                )
            mapper = partial(_route, stop=stop, received_at=received_at)
            poll.map_records(
                routes, mapper, url=shown, entity_type="ArrivalEstimation", target=ars_id
            )
        return poll.result

    def records(self, target: str, body: bytes) -> list[dict[str, Any]]:
        return _routes(body)

    def map_record(
        self, target: str, record: dict[str, Any], received_at: str
    ) -> list[EntityUpdate]:
        configured = self.stops.get(target, "")
        stop = seoul.entity_id("TransportStation", configured or f"seoul-bus-{target}")
        own_stop = [] if configured else list(_stop(record))
        return [*own_stop, *_route(record, stop=stop, received_at=received_at)]


def _routes(body: bytes) -> list[dict[str, Any]]:
    root = seoul.load_xml(body)
    if root.tag == "OpenAPI_ServiceResponse":
        header = root.find("cmmMsgHeader")
        found = _fields(header) if header is not None else {}
        raise ApiError(
            found.get("returnReasonCode", "gateway"),
            found.get("returnAuthMsg") or found.get("errMsg") or "refused by the gateway",
        )
    if root.tag != "ServiceResult":
        raise Malformed(f"the answer is <{root.tag}>, not <ServiceResult>", path=root.tag)
    header = root.find("msgHeader")
    if header is None:
        raise Malformed("the answer has no msgHeader", path="msgHeader")
    code = (header.findtext("headerCd") or "").strip()
    if code == NO_RESULT:
        return []
    if code != OK:
        if not code:
            raise Malformed("msgHeader has no headerCd", path="msgHeader.headerCd")
        raise ApiError(f"headerCd {code}", (header.findtext("headerMsg") or "").strip())
    items = root.find("msgBody")
    return [] if items is None else [_fields(item) for item in items.findall("itemList")]


def _fields(element: Element) -> dict[str, Any]:
    return {child.tag: (child.text or "").strip() for child in element}


def _stop(item: dict[str, Any]) -> Iterable[EntityUpdate]:
    ars_id = _required(item, "arsId")
    attributes: dict[str, Any] = {
        "stationType": seoul.prop(["bus"]),
        **seoul.provenance(),
    }
    name = seoul.text(item, "stNm")
    if name:
        attributes["name"] = seoul.prop(name)
    longitude, latitude = seoul.number(item, "gpsX"), seoul.number(item, "gpsY")
    if longitude and latitude:
        if not (-180 <= longitude <= 180 and -90 <= latitude <= 90):
            raise refuse("out-of-range", f"gpsX/gpsY {longitude}, {latitude} is not WGS84", "gpsX")
        attributes["location"] = seoul.point(longitude, latitude)
    yield EntityUpdate(
        f"urn:ngsi-ld:TransportStation:seoul-bus-{ars_id}",
        "TransportStation",
        attributes,
        STATION_CONTEXT,
        item,
    )


def _route(item: dict[str, Any], *, stop: str, received_at: str) -> Iterable[EntityUpdate]:
    ars_id = _required(item, "arsId")
    route = _required(item, "busRouteId")
    observed = seoul.kst_time(item, "mkTm") or datetime.fromisoformat(received_at)
    buses = [_bus(item, route, rank) for rank in (1, 2)]
    coming = [bus for bus in buses if bus["message"] or bus["seconds"] is not None]
    attributes: dict[str, Any] = {
        "name": seoul.prop(f"{seoul.text(item, 'stNm')} {seoul.text(item, 'rtNm')}".strip()),
        "hasStop": seoul.rel(stop),
        "nextArrivals": seoul.prop([_public(bus) for bus in coming], observed),
        **seoul.provenance(),
    }
    towards = seoul.text(item, "adirection")
    if towards:
        attributes["headSign"] = seoul.prop(towards, observed)
    nearest = buses[0]
    if nearest["seconds"] is not None:
        attributes["remainingTime"] = seoul.prop(seoul.iso_duration(nearest["seconds"]), observed)
    if nearest["trip"]:
        attributes["hasTrip"] = seoul.rel(nearest["trip"], observed)
    yield EntityUpdate(
        f"urn:ngsi-ld:ArrivalEstimation:bus-{ars_id}-{route}",
        "ArrivalEstimation",
        attributes,
        ARRIVAL_CONTEXT,
        item,
    )


def _bus(item: dict[str, Any], route: str, rank: int) -> dict[str, Any]:
    message = seoul.text(item, f"arrmsg{rank}")
    vehicle = seoul.text(item, f"vehId{rank}")
    seconds: int | None = None
    if not any(word in message for word in NO_ESTIMATE):
        seconds = seoul.count(item, f"exps{rank}") or seoul.count(item, f"traTime{rank}")
        if not seconds:
            seconds = 0 if "곧 도착" in message else None
    return {
        "rank": rank,
        "seconds": seconds,
        "message": message,
        "vehicle": vehicle if vehicle not in ("", "0") else "",
        "trip": f"urn:ngsi-ld:GtfsTrip:seoul-bus-{route}-{vehicle}"
        if vehicle not in ("", "0")
        else "",
        "lastBus": seoul.text(item, f"isLast{rank}") == "1",
    }


def _public(bus: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {"message": bus["message"], "lastBus": bus["lastBus"]}
    if bus["seconds"] is not None:
        shown["remainingTime"] = seoul.iso_duration(bus["seconds"])
    if bus["vehicle"]:
        shown["vehicle"] = bus["vehicle"]
    return shown


def _required(item: dict[str, Any], name: str) -> str:
    value = seoul.text(item, name)
    if not value:
        raise refuse("unmapped", f"an arrival has no {name}", name)
    return value
