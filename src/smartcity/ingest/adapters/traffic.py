"""TOPIS road speed (TrafficInfo) -> TrafficFlowObserved.

`GET {base}/{KEY}/xml/TrafficInfo/1/5/{LINK_ID}` answers the speed on one standard road link:
`<TrafficInfo><list_total_count>1</list_total_count><RESULT><CODE>INFO-000</CODE>...</RESULT>
<row><link_id>...</link_id><prcs_spd>km/h</prcs_spd><prcs_trv_time>seconds</prcs_trv_time></row>
</TrafficInfo>`. The answer carries no time: TOPIS refreshes it every few minutes, so the
observation is dated when it was fetched.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import partial
from typing import Any, Final

from smartcity.core.clock import isoformat
from smartcity.ingest.adapters import seoul
from smartcity.ingest.adapters.base import EntityUpdate, PollContext, PollResult, refuse
from smartcity.ingest.adapters.http import Fetcher

SERVICE: Final = "TrafficInfo"
CONTEXT: Final = [
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Transportation/master/context.jsonld"
]
MAX_SPEED_KMH: Final = 250.0
"""Above this a processed link speed is an error, not traffic."""


class TrafficAdapter:
    """Poll TrafficInfo for the configured TOPIS links."""

    name = "traffic"

    def __init__(
        self,
        *,
        base_url: str,
        key: str,
        links: dict[str, str],
        interval: float,
        tenant: str = "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.links = links
        """TOPIS link id -> the RoadSegment it measures (local id or URN; '' for none)."""
        self.interval = interval
        self.tenant = tenant

    def describe(self) -> str:
        links = f"links {', '.join(self.links)}" if self.links else "no link configured"
        return f"{SERVICE} for {links}, every {self.interval:g} s"

    def secrets(self) -> list[str]:
        return [self.key]

    async def poll(self, fetcher: Fetcher, received_at: str) -> PollResult:
        """Fetch each link's speed; one TrafficFlowObserved per link."""
        poll = PollContext(self.name, self.tenant, received_at, fetcher)
        observed = datetime.fromisoformat(received_at)
        for link_id, segment in self.links.items():
            url = f"{self.base_url}/{self.key}/xml/{SERVICE}/1/5/{link_id}"
            page = await poll.fetch(url, _page, entity_type="TrafficFlowObserved", target=link_id)
            if page is None:
                continue
            mapper = partial(_flow, link_id=link_id, segment=segment, observed=observed)
            poll.map_records(
                page.rows,
                mapper,
                url=fetcher.redact(url),
                entity_type="TrafficFlowObserved",
                target=link_id,
            )
        return poll.result

    def records(self, target: str, body: bytes) -> list[dict[str, Any]]:
        return _page(body).rows

    def map_record(
        self, target: str, record: dict[str, Any], received_at: str
    ) -> list[EntityUpdate]:
        segment = self.links.get(target, "")
        observed = datetime.fromisoformat(received_at)
        return list(_flow(record, link_id=target, segment=segment, observed=observed))


def _page(body: bytes) -> seoul.Page:
    return seoul.xml_page(SERVICE, body)


def _flow(
    row: dict[str, Any], *, link_id: str, segment: str, observed: datetime
) -> Iterable[EntityUpdate]:
    answered = seoul.text(row, "link_id")
    if answered and answered != link_id:
        raise refuse(
            "unmapped", f"asked for link {link_id}, the row is of link {answered}", "link_id"
        )
    speed = seoul.number(row, "prcs_spd", required=True)
    assert speed is not None
    if not 0 <= speed <= MAX_SPEED_KMH:
        raise refuse("out-of-range", f"prcs_spd {speed:g} km/h is not a road speed", "prcs_spd")
    attributes: dict[str, Any] = {
        "averageVehicleSpeed": seoul.prop(speed, observed, unit="KMH"),
        "dateObserved": seoul.prop(isoformat(observed)),
        "name": seoul.prop(f"TOPIS link {link_id}"),
        **seoul.provenance(),
    }
    travel_time = seoul.count(row, "prcs_trv_time")
    if travel_time is not None:
        attributes["travelTime"] = seoul.prop(travel_time, observed, unit="SEC")
    if segment:
        attributes["refRoadSegment"] = seoul.rel(seoul.entity_id("RoadSegment", segment))
    yield EntityUpdate(
        f"urn:ngsi-ld:TrafficFlowObserved:topis-{link_id}",
        "TrafficFlowObserved",
        attributes,
        CONTEXT,
        row,
    )
