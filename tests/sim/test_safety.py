"""The district's fire and disaster assets, enforcement cameras and signal controllers."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from smartcity.config import Settings
from smartcity.platform import build_platform
from smartcity.sim.catalog import PARKING_ENFORCEMENT, SIGNAL_CONTROLLER, SOS_WEARABLE
from smartcity.sim.devices import build_devices
from smartcity.sim.enforcement import illegally_parked, signal_plan
from smartcity.sim.engine import Simulation
from smartcity.sim.generate import Asset
from smartcity.sim.geodesy import Planar, distance
from smartcity.sim.model import District
from smartcity.sim.patterns import weather_at
from smartcity.sim.provision import register_wearers
from smartcity.sim.safety import enforcement_points, flood_gauges, safety_entities
from smartcity.sim.scenario import load_scenario
from smartcity.sim.seed import data_path
from smartcity.sim.stream import level_status, water_level
from smartcity.sim.wearables import rounded_text, wearer_report

SEOUL = ZoneInfo("Asia/Seoul")


def test_safety_entities_of_the_district(changdong: District) -> None:
    entities = safety_entities(changdong)
    counts = Counter(e["type"] for e in entities)
    signalised = sum(node.signalised for node in changdong.nodes.values())
    assert counts["TrafficSignal"] == signalised
    assert counts["FireStation"] == 2
    assert counts["FloodMonitoring"] == 1
    assert counts["FireHydrant"] > 100
    kinds = {"apartment", "school", "market", "shopping", "office", "culture", "station"}
    assert counts["Building"] >= sum(p.kind in kinds for p in changdong.places)
    grades = {e["fireRiskGrade"]["value"] for e in entities if e["type"] == "Building"}
    assert grades <= {"special", "1", "2", "3"}
    arena = next(e for e in entities if e["id"] == "urn:ngsi-ld:Building:changdong-seoul-arena")
    assert arena["fireRiskGrade"]["value"] == "special"
    ours = json.loads(data_path("changdong-context.jsonld").read_text())["@context"]
    used = {name for entity in entities for name in entity} | {e["type"] for e in entities}
    assert used - set(ours) - {"@context", "id", "type", "location"} == set()
    assert len({e["id"] for e in entities}) == len(entities)
    assert entities == safety_entities(changdong), "the same file gives the same entities"


def test_every_signal_names_a_controller_that_takes_priority_commands(
    changdong: District, changdong_assets: list[Asset]
) -> None:
    devices = build_devices(changdong, changdong_assets, 1)
    controllers = {d.id: d for d in devices if d.kind is SIGNAL_CONTROLLER}
    signals = [e for e in safety_entities(changdong) if e["type"] == "TrafficSignal"]
    for signal in signals:
        device = signal["refDevice"]["object"].removeprefix("urn:ngsi-ld:Device:")
        assert controllers[device].entity_id == signal["id"]
    body = next(iter(controllers.values())).registration("key")
    assert body["commands"] == ["priority"]
    cameras = [d for d in devices if d.kind is PARKING_ENFORCEMENT]
    assert len(cameras) == len(enforcement_points(changdong)) > 10
    assert {d.extra["road_class"] for d in cameras} == {"residential", "tertiary"}


def test_illegal_parking_fills_residential_streets_at_night() -> None:
    night = datetime(2026, 11, 26, 22, 0, tzinfo=SEOUL)
    noon = datetime(2026, 11, 26, 10, 0, tzinfo=SEOUL)

    def share(start: datetime, road: str) -> float:
        moments = [start + timedelta(minutes=20 * k) for k in range(6)]
        seen = [
            illegally_parked(7, f"cam-{n}", road, m, "weekday") for n in range(200) for m in moments
        ]
        return sum(seen) / len(seen)

    assert share(night, "residential") > 2 * share(noon, "residential")
    # A car stays for its block: the same camera and moment give the same answer.
    moment = night + timedelta(minutes=3)
    assert illegally_parked(7, "cam-1", "residential", moment, "weekday") == illegally_parked(
        7, "cam-1", "residential", moment + timedelta(minutes=10), "weekday"
    )
    assert signal_plan(datetime(2026, 11, 26, 8, 0, tzinfo=SEOUL), "weekday") == 2
    assert signal_plan(datetime(2026, 11, 26, 8, 0, tzinfo=SEOUL), "holiday") == 4
    assert signal_plan(datetime(2026, 11, 26, 2, 0, tzinfo=SEOUL), "weekday") == 1


def test_the_stream_rises_with_the_heavy_rain_and_falls_after(changdong: District) -> None:
    scenario = load_scenario("heavy-rain", changdong)
    levels = {
        hour: water_level(scenario, datetime(2026, 11, 24, hour, 0, tzinfo=SEOUL), 0.9)
        for hour in range(12, 24)
    }
    assert levels[12] == levels[14] == 0.9  # the rain starts at 14:00 and takes time to arrive
    peak = max(levels, key=lambda hour: levels[hour])
    assert 17 <= peak <= 19
    assert level_status(levels[peak], 3.5, 4.6) == "alert"
    assert levels[23] < levels[peak]
    dry = load_scenario("normal-weekday", changdong)
    assert water_level(dry, datetime(2026, 11, 24, 18, 0, tzinfo=SEOUL), 0.9) == 0.9
    (gauge,) = flood_gauges(changdong)
    assert gauge[0] == "changdong-jungnangcheon-changdong-bridge"


def test_heavy_rain_meets_the_builtin_flood_rule(changdong: District) -> None:
    """In the heavy-rain scenario the gauge rises 0.5 m an hour at 2.5 m or more while the
    weather station reads 20 mm an hour: what `jungnangcheon-flood` waits for."""
    scenario = load_scenario("heavy-rain", changdong)
    met = []
    for minutes in range(0, 8 * 60, 10):
        at = datetime(2026, 11, 24, 12, 0, tzinfo=SEOUL) + timedelta(minutes=minutes)
        level = water_level(scenario, at, 0.9)
        rise = (level - water_level(scenario, at - timedelta(minutes=30), 0.9)) * 2
        rain = weather_at(scenario, at, SEOUL).rain
        if rise >= 0.5 and level >= 2.5 and rain >= 20:
            met.append(at.astimezone(SEOUL).hour)
    assert met
    assert min(met) in (15, 16)
    devices = build_devices(changdong, [], 1)
    (station,) = [d for d in devices if d.kind.name == "weather-station"]
    (gauge,) = [d for d in devices if d.kind.name == "water-level"]
    assert distance(station.position, gauge.position) < 5000  # the rule's `near: 5000`


def test_a_band_follows_its_wearer_and_calls_after_half_an_hour_out(
    changdong: District, changdong_assets: list[Asset]
) -> None:
    (band, _) = [d for d in build_devices(changdong, changdong_assets, 1) if d.kind is SOS_WEARABLE]
    assert band.id == "changdong-wearable-1-band"
    assert band.entity_id == "urn:ngsi-ld:Device:changdong-wearable-1"
    assert band.static["deviceCategory"]["value"] == "wearable"
    assert band.static["safeZone"]["value"]["type"] == "Polygon"
    planar = Planar(band.position)
    start = datetime(2026, 11, 26, 16, 30, tzinfo=SEOUL)
    walk = [(0.0, 10.0 * minute) for minute in range(120)]  # north, 10 m a minute
    outing = [(start, start + timedelta(hours=2), walk)]
    home = band.position
    assert wearer_report(outing, start - timedelta(minutes=5), home, 255, planar) == (home, False)
    where, sos = wearer_report(outing, start + timedelta(minutes=20), home, 255, planar)
    assert distance(home, where) == pytest.approx(200, abs=1)
    assert sos is False
    # Last inside the 255 m zone at minute 25 (250 m): the band calls 30 minutes later.
    assert wearer_report(outing, start + timedelta(minutes=54), home, 255, planar)[1] is False
    assert wearer_report(outing, start + timedelta(minutes=55), home, 255, planar)[1] is True
    assert rounded_text((127.0, 37.5)) == "127.000000,37.500000"


def test_the_fictional_wearers_are_registered_once(changdong: District, tmp_path: Path) -> None:
    platform = build_platform(
        Settings(database_url=f"sqlite:///{tmp_path / 'w.db'}", context_offline=True)
    )
    try:
        assert register_wearers(platform, changdong) == 2
        assert register_wearers(platform, changdong) == 0
        persons = platform.operations.vulnerable.persons.all("")
        assert {p.kind for p in persons} == {"child", "dementia"}
        assert all("가상" in p.alias for p in persons)
    finally:
        platform.close()


def test_a_signal_controller_takes_a_priority_request(changdong: District) -> None:
    simulation = Simulation(changdong, load_scenario("normal-weekday", changdong), 1)
    controller = next(d for d in simulation.devices if d.kind is SIGNAL_CONTROLLER)
    moment = datetime(2026, 11, 24, 10, 0, tzinfo=SEOUL)
    request = {"incident": "INC-1", "eta": "2026-11-24T01:01:30+00:00", "hold": 90}
    granted = simulation.command(controller.id, "priority", request, moment)
    assert granted.ok
    assert granted.info == "green from 2026-11-24T01:01:30+00:00 for 90 s"
    for bad in ({"hold": 90}, {"eta": "soon", "hold": 90}, {"eta": request["eta"], "hold": 0}):
        assert not simulation.command(controller.id, "priority", bad, moment).ok
    assert not simulation.command(controller.id, "brighten", {}, moment).ok
