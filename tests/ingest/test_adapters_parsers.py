"""Property tests of the adapters' readers: any body or record is read, refused or failed, never
a crash; KST times and durations convert exactly."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.ingest.adapters import seoul
from smartcity.ingest.adapters.base import EntityUpdate, PollFailure
from smartcity.ingest.adapters.bus import BusAdapter
from smartcity.ingest.adapters.parking import ParkingAdapter
from smartcity.ingest.adapters.subway import SubwayAdapter
from smartcity.ingest.adapters.traffic import TrafficAdapter
from smartcity.ingest.ports import Rejected

RECEIVED = "2026-11-28T01:20:00.000000Z"
ADAPTERS = [
    ParkingAdapter(base_url="http://x", key="k", districts=["도봉구"], lots={}, interval=1),
    SubwayAdapter(base_url="http://x", key="k", stations={"창동": "changdong"}, interval=1),
    BusAdapter(base_url="http://x", key="k", stops={"10933": ""}, interval=1),
    TrafficAdapter(base_url="http://x", key="k", links={"1": ""}, interval=1),
]
TARGETS = {"parking": "도봉구", "subway": "창동", "bus": "10933", "traffic": "1"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "PKLT_CD",
    "TPKCT",
    "NOW_PRK_VHCL_CNT",
    "NOW_PRK_VHCL_UPDT_TM",
    "PRK_STTS_YN",
    "LAT",
    "LOT",
    "BSC_PRK_CRG",
    "BSC_PRK_HR",
    "subwayId",
    "btrainNo",
    "barvlDt",
    "arvlCd",
    "recptnDt",
    "trains",
    "arsId",
    "busRouteId",
    "traTime1",
    "exps1",
    "mkTm",
    "gpsX",
    "gpsY",
    "link_id",
    "prcs_spd",
    "prcs_trv_time",
]
fields = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=10)
records = fields | st.builds(
    lambda trains: {"trains": trains}, st.lists(fields | json_values, min_size=1, max_size=3)
)


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda adapter: adapter.name)
@given(body=st.binary(max_size=300) | json_values.map(lambda value: json.dumps(value).encode()))
def test_any_body_is_read_or_failed_never_a_crash(adapter: Any, body: bytes) -> None:
    with contextlib.suppress(PollFailure):
        adapter.records(TARGETS[adapter.name], body)


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda adapter: adapter.name)
@given(record=records)
def test_any_record_is_mapped_or_refused_never_a_crash(
    adapter: Any, record: dict[str, Any]
) -> None:
    outcome = mapped_or_refused(adapter, record)
    if isinstance(outcome, Rejected):
        assert outcome.stage == "map"
        assert outcome.message
        return
    for update in outcome:
        assert update.entity_id.startswith("urn:ngsi-ld:")
        orjson.dumps(update.attributes)  # what is published is JSON


def mapped_or_refused(adapter: Any, record: dict[str, Any]) -> list[EntityUpdate] | Rejected:
    try:
        updates: list[EntityUpdate] = adapter.map_record(TARGETS[adapter.name], record, RECEIVED)
    except Rejected as refused:
        return refused
    return updates


@given(moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_kst_times_become_utc_nine_hours_earlier(moment: datetime) -> None:
    local = moment.replace(microsecond=0)
    record = {"t": local.strftime("%Y-%m-%d %H:%M:%S"), "f": local.strftime("%Y%m%d%H%M%S") + ".0"}
    expected = (local - timedelta(hours=9)).replace(tzinfo=UTC)
    assert seoul.kst_time(record, "t") == expected
    assert seoul.kst_time(record, "f") == expected


@given(seconds=st.integers(min_value=0, max_value=10**6))
def test_durations_read_back_to_their_seconds(seconds: int) -> None:
    duration = seoul.iso_duration(seconds)
    assert duration.startswith("PT")
    hours = minutes = rest = 0
    number = ""
    for char in duration[2:]:
        if char.isdigit():
            number += char
            continue
        value, number = int(number), ""
        if char == "H":
            hours = value
        elif char == "M":
            minutes = value
        else:
            rest = value
    assert hours * 3600 + minutes * 60 + rest == seconds
