"""Scenarios for the built-in rules: realistic changes in, the expected firings and actions out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from smartcity.rules.engine import Engine
from smartcity.rules.firing import Firing
from smartcity.rules.loader import builtin_rule_set
from smartcity.storage.base import ChangeRecord
from tests.rules.engine_support import T0, Feed, Rel, entity, iso, point, run

MINUTE = timedelta(minutes=1)
ARENA_EVENT = "urn:ngsi-ld:Event:arena-concert-1127"
KST_DAY = datetime.fromisoformat("2026-11-27T05:00:00+00:00")  # 14:00 in Seoul


@pytest.fixture
def engine() -> Engine:
    return Engine(builtin_rule_set(), lateness=0)


def of(firings: list[Firing], rule_id: str) -> list[Firing]:
    return [f for f in firings if f.rule_id == rule_id]


def action(firing: Firing, kind: str, number: int = 0) -> dict[str, object]:
    return dict([a for a in firing.actions if a.kind == kind][number].params)


def concert_state(engine: Engine, *, with_event: bool = True) -> None:
    entities = [
        entity(
            "OffStreetParking",
            "urn:ngsi-ld:OffStreetParking:seoul-arena",
            availableSpotNumber=4,
            location=point(127.0515, 37.6512),
        ),
        entity(
            "OffStreetParking",
            "urn:ngsi-ld:OffStreetParking:emart-changdong",
            availableSpotNumber=210,
            location=point(127.0484, 37.6508),
        ),
    ]
    if with_event:
        entities.append(
            entity(
                "Event",
                ARENA_EVENT,
                startDate="2026-11-27T10:30:00Z",
                endDate="2026-11-27T13:00:00Z",
                category="concert",
                location=point(127.0515, 37.6529),
            )
        )
    engine.prime("changdong", entities)


def egress_traffic(feed: Feed, start: datetime, speeds: Sequence[float]) -> list[ChangeRecord]:
    changes = []
    for minute, speed in enumerate(speeds):
        for number, where in enumerate([(127.0500, 37.6525), (127.0535, 37.6500)]):
            changes.append(
                feed.change(
                    "TrafficFlowObserved",
                    f"urn:ngsi-ld:TrafficFlowObserved:det-{number}",
                    start + minute * MINUTE,
                    averageVehicleSpeed=speed + number,
                    intensity=20,
                    location=point(*where),
                )
            )
    return changes


def test_concert_egress_raises_alert_signal_plan_and_parking_guidance(engine: Engine) -> None:
    concert_state(engine)
    feed = Feed()
    end_of_show = datetime.fromisoformat("2026-11-27T13:00:00+00:00")
    speeds = [40, 38, 35, 30, 25, 18, 14, 10, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]
    fired = of(run(engine, egress_traffic(feed, end_of_show, speeds)), "concert-egress-congestion")
    assert [(f.kind, f.key) for f in fired] == [("raise", "arena-egress")]
    raised = fired[0]
    assert raised.values["avg_speed"] < 15
    assert raised.values["detectors"] == 2
    assert raised.location is not None
    assert raised.location["type"] == "Polygon"
    alert = action(raised, "alert")
    assert (alert["category"], alert["subCategory"], alert["severity"]) == (
        "traffic",
        "trafficJam",
        "high",
    )
    signal, guidance = action(raised, "command", 0), action(raised, "command", 1)
    assert signal["command"] == "signalPlan"
    assert signal["targets"] == ["urn:ngsi-ld:TrafficSignalController:changdong-arena"]
    assert guidance["targets"] == ["urn:ngsi-ld:OffStreetParking:emart-changdong"]


def test_concert_egress_clears_when_traffic_flows_again(engine: Engine) -> None:
    concert_state(engine)
    speeds = [10] * 12 + [45] * 12
    fired = of(
        run(
            engine,
            egress_traffic(Feed(), datetime.fromisoformat("2026-11-27T13:00:00+00:00"), speeds),
        ),
        "concert-egress-congestion",
    )
    assert [f.kind for f in fired] == ["raise", "clear"]


def test_slow_traffic_without_an_event_at_the_arena_is_not_concert_egress(engine: Engine) -> None:
    concert_state(engine, with_event=False)
    speeds = [10] * 15
    fired = run(
        engine, egress_traffic(Feed(), datetime.fromisoformat("2026-11-27T13:00:00+00:00"), speeds)
    )
    assert of(fired, "concert-egress-congestion") == []


def test_slow_traffic_the_next_morning_is_not_concert_egress(engine: Engine) -> None:
    concert_state(engine)
    next_morning = datetime.fromisoformat("2026-11-28T00:00:00+00:00")
    fired = run(engine, egress_traffic(Feed(), next_morning, [10] * 15))
    assert of(fired, "concert-egress-congestion") == []


def streetlights(engine: Engine, camera: tuple[float, float]) -> None:
    lon, lat = camera
    metre = 1 / 88_000  # degrees of longitude per metre at 37.65°N (about)
    engine.prime(
        "changdong",
        [
            entity(
                "Streetlight",
                "urn:ngsi-ld:Streetlight:lamp-a",
                powerState="on",
                location=point(lon + 10 * metre, lat),
            ),
            entity(
                "Streetlight",
                "urn:ngsi-ld:Streetlight:lamp-b",
                powerState="on",
                location=point(lon - 30 * metre, lat),
            ),
            entity(
                "Streetlight",
                "urn:ngsi-ld:Streetlight:lamp-c",
                powerState="off",
                location=point(lon + 45 * metre, lat),
            ),
            entity(
                "Streetlight",
                "urn:ngsi-ld:Streetlight:lamp-far",
                powerState="on",
                location=point(lon + 80 * metre, lat),
            ),
        ],
    )


CAMERA = (127.0448, 37.6521)
NIGHT = datetime.fromisoformat("2026-11-27T13:30:00+00:00")  # 22:30 in Seoul


def test_assault_at_night_brightens_lamps_within_50_m_and_opens_a_112_incident(
    engine: Engine,
) -> None:
    streetlights(engine, CAMERA)
    feed = Feed()
    camera = "urn:ngsi-ld:CrowdFlowObserved:cctv-0012"
    changes = [
        feed.change("CrowdFlowObserved", camera, NIGHT, peopleCount=3, location=point(*CAMERA)),
        feed.change(
            "CrowdFlowObserved",
            camera,
            NIGHT + MINUTE,
            detectedEvent="violence",
            eventConfidence=0.82,
        ),
        feed.change(
            "CrowdFlowObserved",
            camera,
            NIGHT + 2 * MINUTE,
            detectedEvent="running",
            eventConfidence=0.7,
        ),
        feed.change(
            "CrowdFlowObserved",
            camera,
            NIGHT + 3 * MINUTE,
            detectedEvent="violence",
            eventConfidence=0.9,
        ),
    ]
    fired = of(run(engine, changes), "assault-at-night")
    assert [(f.kind, f.at) for f in fired] == [("fire", iso(NIGHT + MINUTE))]  # once per 10 min
    brighten = action(fired[0], "command")
    assert brighten["command"] == "brighten"
    assert brighten["targets"] == [
        "urn:ngsi-ld:Streetlight:lamp-a",
        "urn:ngsi-ld:Streetlight:lamp-b",
        "urn:ngsi-ld:Streetlight:lamp-c",
    ]
    incident = action(fired[0], "incident")
    assert (incident["agency"], incident["camera"]) == ("112", camera)
    assert (incident["incidentType"], incident["incidentSubtype"]) == ("crime", "assault")
    assert incident["streetlights"] == brighten["targets"]
    assert action(fired[0], "alert")["description"] == "폭행 의심 (신뢰도 82%) · Possible assault"


def test_assault_by_day_is_not_the_night_rule(engine: Engine) -> None:
    streetlights(engine, CAMERA)
    feed = Feed()
    camera = "urn:ngsi-ld:CrowdFlowObserved:cctv-0012"
    changes = [
        feed.change(
            "CrowdFlowObserved",
            camera,
            KST_DAY,
            detectedEvent="violence",
            eventConfidence=0.9,
            location=point(*CAMERA),
        )
    ]
    assert of(run(engine, changes), "assault-at-night") == []


def test_fall_at_night(engine: Engine) -> None:
    streetlights(engine, CAMERA)
    feed = Feed()
    changes = [
        feed.change(
            "CrowdFlowObserved",
            "urn:ngsi-ld:CrowdFlowObserved:c1",
            NIGHT,
            detectedEvent="fall",
            eventConfidence=0.75,
            location=point(*CAMERA),
        )
    ]
    fired = of(run(engine, changes), "fall-at-night")
    assert len(fired) == 1
    assert action(fired[0], "alert")["subCategory"] == "fallenPatient"


def test_fire_alarm_in_a_high_risk_building_opens_a_119_incident(engine: Engine) -> None:
    engine.prime(
        "changdong",
        [
            entity(
                "Building",
                "urn:ngsi-ld:Building:goshiwon-1",
                fireRiskGrade=5,
                location=point(127.0450, 37.6520),
            ),
            entity(
                "Building",
                "urn:ngsi-ld:Building:library",
                fireRiskGrade=2,
                location=point(127.0460, 37.6530),
            ),
        ],
    )
    feed = Feed()
    risky = "urn:ngsi-ld:Device:smoke-goshiwon-1-3f"
    safe = "urn:ngsi-ld:Device:smoke-library-1f"
    changes = [
        feed.change(
            "Device",
            risky,
            T0,
            controlledProperty=["smoke"],
            controlledAsset=["urn:ngsi-ld:Building:goshiwon-1"],
            deviceState="ok",
        ),
        feed.change(
            "Device",
            safe,
            T0,
            controlledProperty=["smoke"],
            controlledAsset=Rel("urn:ngsi-ld:Building:library"),
            deviceState="ok",
        ),
        feed.change("Device", safe, T0 + MINUTE, deviceState="alarm"),
        feed.change("Device", risky, T0 + 2 * MINUTE, deviceState="alarm"),
    ]
    fired = of(run(engine, changes), "fire-alarm-high-risk-building")
    assert [(f.key, f.at) for f in fired] == [(risky, iso(T0 + 2 * MINUTE))]
    incident = action(fired[0], "incident")
    assert (incident["agency"], incident["incidentType"]) == ("119", "fire")
    assert incident["building"] == ["urn:ngsi-ld:Building:goshiwon-1"]


def test_illegal_parking_on_a_fire_access_road_needs_a_second_sighting(engine: Engine) -> None:
    feed = Feed()
    inside = "urn:ngsi-ld:CrowdFlowObserved:cctv-alley"
    outside = "urn:ngsi-ld:CrowdFlowObserved:cctv-main-road"
    changes = [
        feed.change(
            "CrowdFlowObserved",
            inside,
            T0,
            detectedEvent="illegalParking",
            location=point(127.0448, 37.6522),
        ),
        feed.change(
            "CrowdFlowObserved",
            outside,
            T0,
            detectedEvent="illegalParking",
            location=point(127.0500, 37.6560),
        ),
        feed.change("CrowdFlowObserved", outside, T0 + 5 * MINUTE, detectedEvent="illegalParking"),
        feed.change("CrowdFlowObserved", inside, T0 + 6 * MINUTE, detectedEvent="illegalParking"),
    ]
    fired = of(run(engine, changes), "illegal-parking-fire-access-road")
    assert [(f.kind, f.key, f.values["sightings"]) for f in fired] == [("raise", inside, 2)]
    assert action(fired[0], "incident")["camera"] == inside


def test_waste_bin_over_ninety_percent(engine: Engine) -> None:
    feed = Feed()
    bin_id = "urn:ngsi-ld:WasteContainer:bin-0042"
    levels = [0.6, 0.88, 0.93, 0.97, 0.85, 0.91, 0.1]
    changes = [
        feed.change(
            "WasteContainer",
            bin_id,
            T0 + i * 30 * MINUTE,
            fillingLevel=level,
            name="창동주공 17단지 음식물 종량기 3호",
        )
        for i, level in enumerate(levels)
    ]
    fired = of(run(engine, changes), "waste-bin-full")
    assert [f.kind for f in fired] == ["raise", "clear"]
    assert (
        action(fired[0], "alert")["description"]
        == "창동주공 17단지 음식물 종량기 3호 93% · bin nearly full"
    )


def air(feed: Feed, start: datetime, hours: float, pm10: float, pm25: float) -> list[ChangeRecord]:
    sensor = "urn:ngsi-ld:AirQualityObserved:env-007"
    return [
        feed.change(
            "AirQualityObserved",
            sensor,
            start + i * 5 * MINUTE,
            pm10=pm10,
            pm25=pm25,
            location=point(127.047, 37.653),
        )
        for i in range(int(hours * 12))
    ]


def test_pm10_watch_after_two_hours_at_150_and_clear_under_100(engine: Engine) -> None:
    feed = Feed()
    changes = air(feed, T0, 2, 162.0, 60.0) + air(feed, T0 + timedelta(hours=2), 1, 95.0, 30.0)
    fired = run(engine, changes, until=T0 + timedelta(hours=3, minutes=1))
    watch = of(fired, "pm10-watch")
    assert [(f.kind, f.at) for f in watch] == [
        ("raise", "2026-11-27T12:00:00Z"),
        ("clear", "2026-11-27T13:00:00Z"),
    ]
    assert watch[0].values["value"] == pytest.approx(162.0)
    assert of(fired, "pm10-warning") == []
    assert of(fired, "pm25-watch") == []


def test_one_hour_of_pm25_at_80_is_not_yet_a_watch(engine: Engine) -> None:
    feed = Feed()
    changes = air(feed, T0, 1, 60.0, 80.0) + air(feed, T0 + timedelta(hours=1), 1, 60.0, 20.0)
    assert of(run(engine, changes, until=T0 + timedelta(hours=2, minutes=1)), "pm25-watch") == []


def test_pm25_warning_after_two_hours_at_150(engine: Engine) -> None:
    feed = Feed()
    changes = air(feed, T0, 2, 200.0, 155.0)
    fired = run(engine, changes, until=T0 + timedelta(hours=2, minutes=1))
    raised = [f.rule_id for f in fired if f.kind == "raise"]
    assert raised == ["pm10-watch", "pm25-warning", "pm25-watch"]


def test_a_traffic_detector_silent_past_its_interval(engine: Engine) -> None:
    feed = Feed()
    detector = "urn:ngsi-ld:TrafficFlowObserved:det-0003"
    changes = [
        feed.change("TrafficFlowObserved", detector, T0 + i * MINUTE, averageVehicleSpeed=42.0)
        for i in range(10)
    ]
    fired = run(engine, changes, until=T0 + timedelta(minutes=20))
    back = run(
        engine,
        [
            feed.change(
                "TrafficFlowObserved",
                detector,
                T0 + timedelta(minutes=21),
                averageVehicleSpeed=40.0,
            )
        ],
    )
    silent = of(fired + back, "silent-traffic-detector")
    assert [(f.kind, f.at) for f in silent] == [
        ("raise", "2026-11-27T10:12:00Z"),
        ("clear", "2026-11-27T10:21:00Z"),
    ]
    assert silent[0].values["lastSeen"] == "2026-11-27T10:09:00Z"


def test_a_primed_bin_that_never_reports_is_silent_too(engine: Engine) -> None:
    engine.prime(
        "changdong",
        [
            entity(
                "WasteContainer",
                "urn:ngsi-ld:WasteContainer:b9",
                observed=iso(T0),
                fillingLevel=0.2,
            )
        ],
    )
    fired = engine.advance(T0 + timedelta(hours=2))
    assert [(f.rule_id, f.at) for f in fired] == [("silent-waste-bin", "2026-11-27T11:30:00Z")]


SAFE_ZONE = {
    "type": "Polygon",
    "coordinates": [
        [
            [127.040, 37.650],
            [127.046, 37.650],
            [127.046, 37.655],
            [127.040, 37.655],
            [127.040, 37.650],
        ]
    ],
}


def test_vulnerable_person_sos(engine: Engine) -> None:
    feed = Feed()
    wearable = "urn:ngsi-ld:Device:wearable-0007"
    changes = [
        feed.change(
            "Device",
            wearable,
            T0,
            deviceCategory=["wearable"],
            sos=False,
            location=point(127.043, 37.652),
        ),
        feed.change("Device", wearable, T0 + MINUTE, sos=True),
    ]
    fired = of(run(engine, changes), "vulnerable-person-sos")
    assert [(f.kind, f.key) for f in fired] == [("fire", wearable)]
    assert action(fired[0], "incident")["agency"] == "112"


def test_vulnerable_person_outside_the_safe_zone_for_two_minutes(engine: Engine) -> None:
    feed = Feed()
    wearable = "urn:ngsi-ld:Device:wearable-0007"
    path = [
        (127.043, 37.652),
        (127.047, 37.652),
        (127.048, 37.652),
        (127.049, 37.652),
        (127.044, 37.652),
    ]
    changes = [
        feed.change(
            "Device",
            wearable,
            T0,
            deviceCategory=["wearable"],
            safeZone=SAFE_ZONE,
            location=point(*path[0]),
        )
    ] + [
        feed.change("Device", wearable, T0 + i * MINUTE, location=point(*where))
        for i, where in enumerate(path[1:], 1)
    ]
    fired = of(run(engine, changes), "vulnerable-person-left-safe-zone")
    assert [(f.kind, f.at) for f in fired] == [
        ("raise", iso(T0 + 3 * MINUTE)),
        ("clear", iso(T0 + 4 * MINUTE)),
    ]


def rain(engine: Engine, mm: float) -> None:
    engine.prime(
        "changdong",
        [
            entity(
                "WeatherObserved",
                "urn:ngsi-ld:WeatherObserved:dobong",
                precipitation=mm,
                location=point(127.047, 37.665),
            )
        ],
    )
    engine.prime(
        "changdong",
        [
            entity(
                "OffStreetParking",
                "urn:ngsi-ld:OffStreetParking:changdong-bridge-riverside",
                name="창동교 둔치주차장",
                location=point(127.0542, 37.6535),
            ),
            entity(
                "OffStreetParking",
                "urn:ngsi-ld:OffStreetParking:emart-changdong",
                name="이마트 창동점 주차장",
                location=point(127.0484, 37.6508),
            ),
        ],
    )


def gauge(feed: Feed, levels: list[float]) -> list[ChangeRecord]:
    station = "urn:ngsi-ld:FloodMonitoring:jungnangcheon-changdong-bridge"
    return [
        feed.change(
            "FloodMonitoring",
            station,
            T0 + i * 5 * MINUTE,
            currentLevel=level,
            location=point(127.054, 37.650),
        )
        for i, level in enumerate(levels)
    ]


def test_heavy_rain_and_rising_jungnangcheon_raise_a_flood_alert(engine: Engine) -> None:
    rain(engine, 42.0)
    changes = gauge(Feed(), [1.8, 1.9, 2.1, 2.3, 2.5, 2.7, 2.9])
    fired = of(run(engine, changes), "jungnangcheon-flood")
    assert [f.kind for f in fired] == ["raise"]
    assert fired[0].values["level"] == 2.5
    assert fired[0].values["rise"] == pytest.approx(2.1, abs=0.01)
    assert action(fired[0], "command")["targets"] == [
        "urn:ngsi-ld:OffStreetParking:changdong-bridge-riverside"
    ]


def test_rising_water_without_heavy_rain_is_not_the_flood_rule(engine: Engine) -> None:
    rain(engine, 3.0)
    fired = of(
        run(engine, gauge(Feed(), [1.8, 1.9, 2.1, 2.3, 2.5, 2.7, 2.9])), "jungnangcheon-flood"
    )
    assert fired == []
