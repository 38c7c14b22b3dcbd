"""Seoul subway real-time arrivals (realtimeStationArrival) -> ArrivalEstimation.

`GET {base}/{KEY}/json/realtimeStationArrival/0/20/{station name}` lists the trains heading to a
station: `{"errorMessage": {"status": 200, "code": "INFO-000", ...}, "realtimeArrivalList":
[...]}`; no train (night) is `{"status": 500, "code": "INFO-200", ...}` at the top level. Each
train has its line (subwayId), direction (updnLine 상행/하행/내선/외선), destination (trainLineNm
'당고개행 - 노원방면', bstatnNm), train number (btrainNo), seconds to arrival (barvlDt, 0 where
the line gives none), status (arvlCd: 0 entering, 1 arrived, 2 departed, 3 departed the previous
station, 4 entering it, 5 arrived at it, 99 running) and the time of the estimate (recptnDt, KST).

Smart Data Models has no arrivals type in dataModel.Transportation; `ArrivalEstimation` of
dataModel.UrbanMobility is the model made for this (a stop, a trip, remainingTime as an ISO 8601
duration, headSign). One entity per station, line and direction holds the next train in those
attributes and the following ones in `nextArrivals`; its terms come from the Smart Data Models
merged @context, which defines them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import partial
from typing import Any, Final
from urllib.parse import quote

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

SERVICE: Final = "realtimeStationArrival"
ROWS: Final = 20
CONTEXT: Final = [
    "https://raw.githubusercontent.com/smart-data-models/data-models/master/context.jsonld"
]
DIRECTIONS: Final = {"상행": "up", "하행": "down", "내선": "inner", "외선": "outer"}
LINES: Final = {
    "1001": "1호선",
    "1002": "2호선",
    "1003": "3호선",
    "1004": "4호선",
    "1005": "5호선",
    "1006": "6호선",
    "1007": "7호선",
    "1008": "8호선",
    "1009": "9호선",
    "1032": "GTX-A",
    "1061": "중앙선",
    "1063": "경의중앙선",
    "1065": "공항철도",
    "1067": "경춘선",
    "1075": "수인분당선",
    "1077": "신분당선",
    "1081": "경강선",
    "1092": "우이신설선",
    "1093": "서해선",
    "1094": "신림선",
}
STATUS: Final = {
    "0": "entering",
    "1": "arrived",
    "2": "departed",
    "3": "departedPreviousStation",
    "4": "enteringPreviousStation",
    "5": "arrivedPreviousStation",
    "99": "running",
}
_MINUTES = re.compile(r"(\d+)\s*분\s*(?:(\d+)\s*초)?\s*후")


class SubwayAdapter:
    """Poll realtimeStationArrival for the configured stations."""

    name = "subway"

    def __init__(
        self,
        *,
        base_url: str,
        key: str,
        stations: dict[str, str],
        interval: float,
        tenant: str = "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.stations = stations
        """Station name as the API knows it (창동) -> its TransportStation (local id or URN)."""
        self.interval = interval
        self.tenant = tenant

    def describe(self) -> str:
        names = ", ".join(self.stations) or "no station configured"
        return f"{SERVICE} for {names}, every {self.interval:g} s"

    def secrets(self) -> list[str]:
        return [self.key]

    async def poll(self, fetcher: Fetcher, received_at: str) -> PollResult:
        """Fetch each station's arrivals; one update per line and direction with trains."""
        poll = PollContext(self.name, self.tenant, received_at, fetcher)
        for station, configured in self.stations.items():
            url = f"{self.base_url}/{self.key}/json/{SERVICE}/0/{ROWS}/{quote(station)}"
            trains = await poll.fetch(
                url, _arrivals, entity_type="ArrivalEstimation", target=station
            )
            if trains is None:
                continue
            stop = seoul.entity_id("TransportStation", configured)
            poll.map_records(
                _groups(trains),
                partial(self._map, stop=stop),
                url=fetcher.redact(url),
                entity_type="ArrivalEstimation",
                target=station,
            )
        return poll.result

    def records(self, target: str, body: bytes) -> list[dict[str, Any]]:
        return _groups(_arrivals(body))

    def map_record(
        self, target: str, record: dict[str, Any], received_at: str
    ) -> list[EntityUpdate]:
        if target not in self.stations:
            raise refuse(
                "unmapped",
                f"station {target!r} is not in adapter_subway_stations any more",
                "statnNm",
            )
        trains = record.get("trains")
        if (
            not isinstance(trains, list)
            or not trains
            or not all(isinstance(t, dict) for t in trains)
        ):
            raise refuse("unmapped", "the record is not a group of trains", "trains")
        return list(self._map(record, seoul.entity_id("TransportStation", self.stations[target])))

    def _map(self, group: dict[str, Any], stop: str) -> Iterable[EntityUpdate]:
        trains: list[dict[str, Any]] = group["trains"]
        first = trains[0]
        line = seoul.text(first, "subwayId")
        direction_ko = seoul.text(first, "updnLine")
        direction = DIRECTIONS.get(direction_ko, "unknown")
        estimates = [_estimate(train) for train in trains]
        observed = max(estimate["observed"] for estimate in estimates)
        ranked = sorted(estimates, key=_soonest)
        nearest = ranked[0]
        station_slug = stop.rsplit(":", 1)[-1]
        attributes: dict[str, Any] = {
            "name": seoul.prop(
                f"{seoul.text(first, 'statnNm')} {LINES.get(line, line)} {direction_ko}".strip()
            ),
            "hasStop": seoul.rel(stop),
            "hasTrip": seoul.rel(nearest["trip"], observed),
            "headSign": seoul.prop(nearest["headSign"], observed),
            "nextArrivals": seoul.prop([_public(estimate) for estimate in ranked], observed),
            **seoul.provenance(),
        }
        if nearest["seconds"] is not None:
            attributes["remainingTime"] = seoul.prop(
                seoul.iso_duration(nearest["seconds"]), observed
            )
        yield EntityUpdate(
            f"urn:ngsi-ld:ArrivalEstimation:subway-{station_slug}-{line}-{direction}",
            "ArrivalEstimation",
            attributes,
            CONTEXT,
            group,
        )


def _arrivals(body: bytes) -> list[dict[str, Any]]:
    document = seoul.load_json(body)
    header = document.get("errorMessage", document)
    if not isinstance(header, dict):
        raise Malformed("errorMessage is not an object", path="errorMessage")
    code = str(header.get("code", "")).strip()
    if code == seoul.NO_DATA:
        return []
    if code and code != seoul.OK:
        raise ApiError(code, str(header.get("message", "")).strip())
    trains = document.get("realtimeArrivalList")
    if not isinstance(trains, list) or not all(isinstance(train, dict) for train in trains):
        raise Malformed("realtimeArrivalList is not a list of trains", path="realtimeArrivalList")
    return trains


def _groups(trains: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group the trains still to arrive by line and direction (a departed train is gone)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for train in trains:
        if seoul.text(train, "arvlCd") == "2":
            continue
        key = (seoul.text(train, "subwayId"), seoul.text(train, "updnLine"))
        groups.setdefault(key, []).append(train)
    return [
        {"line": line, "updnLine": way, "trains": group} for (line, way), group in groups.items()
    ]


def _estimate(train: dict[str, Any]) -> dict[str, Any]:
    """Return what one train tells: seconds to arrival (None if unknown), trip, headsign, time."""
    for name in ("subwayId", "btrainNo"):
        if not seoul.text(train, name):
            raise refuse("unmapped", f"a train has no {name}", name)
    observed = seoul.kst_time(train, "recptnDt")
    if observed is None:
        raise refuse("unmapped", "a train has no recptnDt (time of the estimate)", "recptnDt")
    line_name = seoul.text(train, "trainLineNm")
    head_sign = line_name.split(" - ")[0].strip() or f"{seoul.text(train, 'bstatnNm')}행"
    return {
        "seconds": _seconds(train),
        "trip": f"urn:ngsi-ld:GtfsTrip:seoul-subway-{seoul.text(train, 'subwayId')}-"
        f"{seoul.text(train, 'btrainNo')}",
        "train": seoul.text(train, "btrainNo"),
        "headSign": head_sign,
        "message": seoul.text(train, "arvlMsg2"),
        "status": STATUS.get(seoul.text(train, "arvlCd"), "unknown"),
        "lastTrain": seoul.text(train, "lstcarAt") == "1",
        "observed": observed,
        "order": seoul.text(train, "ordkey"),
    }


def _seconds(train: dict[str, Any]) -> int | None:
    seconds = seoul.count(train, "barvlDt")
    if seconds:
        return seconds
    if seoul.text(train, "arvlCd") in ("0", "1"):
        return 0  # entering or at the platform
    match = _MINUTES.search(seoul.text(train, "arvlMsg2"))
    if match:
        return int(match.group(1)) * 60 + int(match.group(2) or 0)
    return None  # lines without estimates say only "[3]번째 전역": no time to claim


def _soonest(estimate: dict[str, Any]) -> tuple[bool, int, str]:
    seconds = estimate["seconds"]
    return (seconds is None, seconds or 0, estimate["order"])


def _public(estimate: dict[str, Any]) -> dict[str, Any]:
    """Return one train of `nextArrivals` (no remainingTime where the line gives none)."""
    shown = {
        "train": estimate["train"],
        "headSign": estimate["headSign"],
        "status": estimate["status"],
        "message": estimate["message"],
        "lastTrain": estimate["lastTrain"],
    }
    if estimate["seconds"] is not None:
        shown["remainingTime"] = seoul.iso_duration(estimate["seconds"])
    return shown
