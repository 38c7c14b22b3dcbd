"""Seoul real-time public parking (GetParkingInfo) -> OffStreetParking / OnStreetParking.

`GET {base}/{KEY}/json/GetParkingInfo/{START}/{END}/{district}` pages through the lots of one
district (at most 1,000 rows a request, ERROR-336 above). Each row carries the lot (PKLT_CD,
PKLT_NM, ADDR, PKLT_TYPE 'NW' off-street or 'NS' on-street, OPER_SE_NM, TELNO), its capacity
(TPKCT), its tariff (PAY_YN, BSC_PRK_CRG per BSC_PRK_HR minutes, ADD_PRK_CRG per ADD_PRK_HR,
DAY_MAX_CRG), opening hours (WD_/WE_/LHLDY_OPER_BGNG_TM and _END_TM as HHMM) and, when the lot's
counter is linked (PRK_STTS_YN '1'), the vehicles parked now (NOW_PRK_VHCL_CNT) and when that count
was taken (NOW_PRK_VHCL_UPDT_TM, KST).

Occupancy is published only for linked lots, each value with the count's own time as
`observedAt` (and `occupancyModified`): an unlinked lot reports 0 parked, which is no observation,
and a lot whose counter stopped updating keeps its old time, so it never looks free now.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

from smartcity.core.clock import isoformat
from smartcity.ingest.adapters import seoul
from smartcity.ingest.adapters.base import EntityUpdate, PollContext, PollResult, refuse
from smartcity.ingest.adapters.http import Fetcher

SERVICE: Final = "GetParkingInfo"
CONTEXT: Final = [
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld"
]
MAX_PAGE: Final = 1000
MAX_PAGES: Final = 100
"""A guard against an envelope whose list_total_count never ends."""
LINKED: Final = frozenset({"1", "2"})
"""PRK_STTS_YN of lots whose live count is linked to the city's system ('0': not linked)."""
ALMOST_FULL: Final = 0.1
"""Free share under which a lot is 'almostFull'."""


class ParkingAdapter:
    """Poll GetParkingInfo for the configured districts; one update per lot."""

    name = "parking"

    def __init__(
        self,
        *,
        base_url: str,
        key: str,
        districts: list[str],
        lots: dict[str, str],
        interval: float,
        page_size: int = MAX_PAGE,
        tenant: str = "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.districts = districts
        self.lots = lots
        """PKLT_CD -> the lot's entity (local id or URN), to update a lot the district knows."""
        self.interval = interval
        self.page_size = max(1, min(page_size, MAX_PAGE))
        self.tenant = tenant

    def describe(self) -> str:
        where = ", ".join(self.districts) if self.districts else "all of Seoul"
        return f"{SERVICE} for {where} (pages of {self.page_size}), every {self.interval:g} s"

    def secrets(self) -> list[str]:
        return [self.key]

    async def poll(self, fetcher: Fetcher, received_at: str) -> PollResult:
        """Page through every district; map each lot once (the most recent row of a lot)."""
        poll = PollContext(self.name, self.tenant, received_at, fetcher)
        for district in self.districts or [""]:
            rows, url = await self._district_rows(poll, district)
            await asyncio.to_thread(  # a district has up to thousands of lots
                poll.map_records,
                _latest_per_lot(rows),
                self._map,
                url=url,
                entity_type="OffStreetParking",
                target=district,
            )
        return poll.result

    def records(self, target: str, body: bytes) -> list[dict[str, Any]]:
        return _page(body).rows

    def map_record(
        self, target: str, record: dict[str, Any], received_at: str
    ) -> list[EntityUpdate]:
        return list(self._map(record))

    async def _district_rows(
        self, poll: PollContext, district: str
    ) -> tuple[list[dict[str, Any]], str]:
        rows: list[dict[str, Any]] = []
        start, url = 1, ""
        for _ in range(MAX_PAGES):
            end = start + self.page_size - 1
            url = f"{self.base_url}/{self.key}/json/{SERVICE}/{start}/{end}/{quote(district)}"
            page = await poll.fetch(url, _page, entity_type="OffStreetParking", target=district)
            if page is None:
                break
            rows.extend(page.rows)
            if end >= page.total or not page.rows:
                break
            start = end + 1
        return rows, poll.fetcher.redact(url)

    def _map(self, row: dict[str, Any]) -> Iterable[EntityUpdate]:
        code = seoul.text(row, "PKLT_CD")
        if not code:
            raise refuse("unmapped", "the lot has no PKLT_CD (lot code)", "PKLT_CD")
        on_street = seoul.text(row, "PKLT_TYPE") == "NS" or "노상" in seoul.text(row, "PRK_TYPE_NM")
        entity_type = "OnStreetParking" if on_street else "OffStreetParking"
        attributes = {
            **_description(row, code),
            **_tariff(row),
            **_occupancy(row, entity_type),
            **seoul.provenance(),
        }
        configured = self.lots.get(code, f"seoul-{code}")
        yield EntityUpdate(
            seoul.entity_id(entity_type, configured), entity_type, attributes, CONTEXT, row
        )


def _page(body: bytes) -> seoul.Page:
    return seoul.json_page(SERVICE, body)


def _latest_per_lot(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep one row per lot: the service repeats some lots; the latest count wins."""
    latest: dict[str, dict[str, Any]] = {}
    unnamed: list[dict[str, Any]] = []
    for row in rows:
        code = seoul.text(row, "PKLT_CD")
        if not code:
            unnamed.append(row)  # refused by the mapper, with the reason
            continue
        kept = latest.get(code)
        if kept is None or seoul.text(row, "NOW_PRK_VHCL_UPDT_TM") > seoul.text(
            kept, "NOW_PRK_VHCL_UPDT_TM"
        ):
            latest[code] = row
    return [*latest.values(), *unnamed]


def _description(row: dict[str, Any], code: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {"parkingSiteId": seoul.prop(code)}
    name = seoul.text(row, "PKLT_NM")
    if name:
        attributes["name"] = seoul.prop(name)
    address = seoul.text(row, "ADDR")
    if address:
        attributes["address"] = seoul.prop(
            {"streetAddress": address, "addressRegion": "서울특별시", "addressCountry": "KR"}
        )
    telephone = seoul.text(row, "TELNO")
    if telephone:
        attributes["contactPoint"] = seoul.prop({"telephone": telephone})
    hours = _opening_hours(row)
    if hours:
        attributes["openingHours"] = seoul.prop(hours)
    attributes["category"] = seoul.prop(_category(row))
    attributes["allowedVehicleType"] = seoul.prop(["car"])
    location = _location(row)
    if location is not None:
        attributes["location"] = location
    return attributes


def _category(row: dict[str, Any]) -> list[str]:
    categories = ["public"]
    paid = seoul.text(row, "PAY_YN")
    if paid in ("Y", "N"):
        categories.append("feeCharged" if paid == "Y" else "free")
    operation = seoul.text(row, "OPER_SE_NM")
    if "시간제" in operation:
        categories.append("shortTerm")
    if "거주자" in operation:
        categories.append("forResidents")
    return categories


def _opening_hours(row: dict[str, Any]) -> str:
    """Return schema.org opening hours: 'Mo-Fr 09:00-18:00,Sa-Su 00:00-24:00,PH 00:00-24:00'."""
    spans = []
    for days, prefix in (("Mo-Fr", "WD"), ("Sa-Su", "WE"), ("PH", "LHLDY")):
        begin = seoul.text(row, f"{prefix}_OPER_BGNG_TM")
        end = seoul.text(row, f"{prefix}_OPER_END_TM")
        if _hhmm(begin) and _hhmm(end):
            spans.append(f"{days} {begin[:2]}:{begin[2:]}-{end[:2]}:{end[2:]}")
    return ",".join(spans)


def _hhmm(value: str) -> bool:
    return len(value) == 4 and value.isdigit() and int(value[:2]) <= 24 and int(value[2:]) < 60


def _location(row: dict[str, Any]) -> dict[str, Any] | None:
    latitude = seoul.number(row, "LAT")
    longitude = seoul.number(row, "LOT")
    if latitude is None or longitude is None or (latitude == 0 and longitude == 0):
        return None  # the current service leaves them out; the lot entity may have its own
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise refuse(
            "out-of-range", f"LAT/LOT {latitude}, {longitude} is not a WGS84 position", "LAT"
        )
    return seoul.point(longitude, latitude)


def _tariff(row: dict[str, Any]) -> dict[str, Any]:
    if seoul.text(row, "PAY_YN") == "N":
        return {"chargeType": seoul.prop(["free"])}
    base_charge = seoul.number(row, "BSC_PRK_CRG")
    base_minutes = seoul.number(row, "BSC_PRK_HR")
    extra_charge = seoul.number(row, "ADD_PRK_CRG")
    extra_minutes = seoul.number(row, "ADD_PRK_HR")
    day_maximum = seoul.number(row, "DAY_MAX_CRG")
    attributes: dict[str, Any] = {}
    charge_types = []
    tariff: dict[str, Any] = {"currency": "KRW"}
    if base_charge is not None and base_minutes:
        charge_types.append("firstIntervalPrice")
        tariff |= {"firstIntervalPrice": base_charge, "firstIntervalMinutes": base_minutes}
        attributes["priceRatePerMinute"] = seoul.prop(round(base_charge / base_minutes, 2))
        attributes["priceCurrency"] = seoul.prop("KRW")
    if extra_charge is not None and extra_minutes:
        charge_types.append("additionalIntervalPrice")
        tariff |= {
            "additionalIntervalPrice": extra_charge,
            "additionalIntervalMinutes": extra_minutes,
        }
    if day_maximum:
        charge_types.append("maximum")
        tariff["dailyMaximum"] = day_maximum
    if charge_types:
        attributes["chargeType"] = seoul.prop(charge_types)
        attributes["tariff"] = seoul.prop(tariff)
    return attributes


def _occupancy(row: dict[str, Any], entity_type: str) -> dict[str, Any]:
    total = seoul.count(row, "TPKCT", required=True)
    assert total is not None
    attributes: dict[str, Any] = {"totalSpotNumber": seoul.prop(total)}
    if seoul.text(row, "PRK_STTS_YN") not in LINKED:
        return attributes
    parked = seoul.count(row, "NOW_PRK_VHCL_CNT", required=True)
    observed = seoul.kst_time(row, "NOW_PRK_VHCL_UPDT_TM")
    if observed is None:
        raise refuse(
            "unmapped",
            "a linked lot (PRK_STTS_YN 1) has no NOW_PRK_VHCL_UPDT_TM: its count has no time",
            "NOW_PRK_VHCL_UPDT_TM",
        )
    assert parked is not None
    return attributes | _counts(total, parked, observed, entity_type)


def _counts(total: int, parked: int, observed: datetime, entity_type: str) -> dict[str, Any]:
    # More vehicles than spots happens (counters drift, cars queue inside): never negative.
    available = max(0, total - parked)
    counts = {
        "occupiedSpotNumber": seoul.prop(parked, observed),
        "availableSpotNumber": seoul.prop(available, observed),
        "occupancyModified": seoul.prop(isoformat(observed)),
    }
    if entity_type == "OffStreetParking" and total > 0:
        counts["occupancy"] = seoul.prop(round(min(1.0, parked / total), 4), observed)
        counts["status"] = seoul.prop([_status(available, total)], observed)
    return counts


def _status(available: int, total: int) -> str:
    if available == 0:
        return "full"
    if available / total < ALMOST_FULL:
        return "almostFull"
    return "spacesAvailable"
