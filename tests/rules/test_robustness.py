"""Whatever the data looks like, the engine takes it without raising (a worker must not crash)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.core.entity import StoredEntity
from smartcity.rules.engine import Engine
from smartcity.rules.loader import builtin_rule_set
from smartcity.storage.base import ChangeKind, ChangeRecord
from tests.rules.engine_support import T0, expand, iso

TYPES = [
    "CrowdFlowObserved",
    "TrafficFlowObserved",
    "WasteContainer",
    "AirQualityObserved",
    "Device",
    "FloodMonitoring",
    "Streetlight",
    "OffStreetParking",
    "Event",
]
NAMES = [
    "detectedEvent",
    "eventConfidence",
    "averageVehicleSpeed",
    "fillingLevel",
    "pm10",
    "pm25",
    "deviceState",
    "controlledProperty",
    "controlledAsset",
    "sos",
    "deviceCategory",
    "currentLevel",
    "location",
    "safeZone",
    "startDate",
    "endDate",
    "availableSpotNumber",
]
junk: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(["violence", "fall", "alarm", "wearable", "smoke", "2026-11-27T10:00:00Z"]),
        st.text(max_size=5),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
geometry = st.one_of(
    st.builds(
        lambda x, y: {"type": "Point", "coordinates": [x, y]},
        st.floats(126.9, 127.2),
        st.floats(37.5, 37.8),
    ),
    st.builds(lambda c: {"type": "Polygon", "coordinates": c}, junk),
    junk,
)
instance = st.one_of(
    st.builds(lambda v: {"type": "Property", "value": v}, junk),
    st.builds(lambda v: {"type": "GeoProperty", "value": v}, geometry),
    st.builds(lambda v: {"type": "Relationship", "object": v}, junk),
    st.builds(lambda v, o: {"type": "Property", "value": v, "observedAt": o}, junk, junk),
    junk.map(lambda v: {"weird": v}),
)


@st.composite
def changes(draw: st.DrawFn) -> list[ChangeRecord]:
    out = []
    for seq in range(draw(st.integers(1, 12))):
        attrs = {
            expand(name): draw(st.lists(instance, min_size=1, max_size=2))
            for name in draw(st.lists(st.sampled_from(NAMES), max_size=5, unique=True))
        }
        entity = StoredEntity(
            f"urn:x:{draw(st.integers(0, 3))}", [expand(draw(st.sampled_from(TYPES)))], attrs
        )
        at = iso(T0 + timedelta(minutes=draw(st.integers(0, 600))))
        kind = draw(st.sampled_from(list(ChangeKind)))
        out.append(
            ChangeRecord(
                seq + 1,
                "changdong",
                kind,
                draw(st.sampled_from([at, "garbage"])),
                entity,
                list(attrs),
                {},
            )
        )
    return out


RULES = builtin_rule_set()


@settings(max_examples=150)
@given(changes())
def test_the_built_in_rules_take_any_changes(batch: list[ChangeRecord]) -> None:
    engine = Engine(RULES, lateness=30)
    engine.prime("changdong", [change.entity for change in batch[:3]])
    for change in batch:
        engine.process(change)
    engine.advance(T0 + timedelta(days=1))
    saved = engine.snapshot()
    again = Engine(RULES, lateness=30)
    again.restore(saved)
