"""What the models do: BPR speeds, parking spill-over, lamps, rain, bins, incidents."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from smartcity.sim import lights
from smartcity.sim.codec_reading import fields_of
from smartcity.sim.emission import Emission
from smartcity.sim.engine import Simulation
from smartcity.sim.model import District
from smartcity.sim.patterns import sun_times
from smartcity.sim.scenario import load_scenario, parse_scenario, scenario_path
from smartcity.sim.traffic import BPR_ALPHA, LANE_CAPACITY, TrafficModel

SEOUL = ZoneInfo("Asia/Seoul")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SEOUL)


def window(simulation: Simulation, start: datetime, end: datetime) -> list[Emission]:
    simulation.skip_to(start)
    return [e for _, batch in simulation.run(end) for e in batch]


def test_speeds_follow_the_bpr_curve_and_capacity_comes_from_lanes(changdong: District) -> None:
    model = TrafficModel(changdong)
    for number, link in enumerate(model.links):
        assert model.capacity[number] == link.link.lanes * LANE_CAPACITY[link.link.road_class]
    quiet = model.step(0.3)
    busy = model.step(1.6)
    for number, link in enumerate(model.links):
        free = link.travel_time
        expected = free * (1 + BPR_ALPHA * busy[number].ratio ** 4)
        speed = min(link.link.speed_limit, link.length / expected * 3.6)
        assert busy[number].speed == pytest.approx(speed)
        assert busy[number].speed <= quiet[number].speed + 1e-9
    nohae = model.index["nohae-5-forward"]
    assert busy[nohae].ratio > 1 > quiet[nohae].ratio
    closed = model.step(1.0, closures={nohae: 0.25})
    assert closed[nohae].speed < model.step(1.0)[nohae].speed


def test_concert_cars_fill_the_lots_near_the_arena_then_spill_over(changdong: District) -> None:
    simulation = Simulation(changdong, load_scenario("concert-night", changdong), 5)
    simulation.skip_to(at(27, 16, 30))
    arena = simulation.parking.by_id["seoul-arena"]
    far = simulation.parking.by_id["sanggye-1-dong-public"]
    before_arena, before_far = arena.occupied, far.event_cars
    simulation.skip_to(at(27, 19, 15))
    assert arena.occupied >= arena.lot.total_spots * 0.95 > before_arena
    assert far.event_cars == before_far == 0  # 2 km away: nobody parks there for the show
    near = simulation.parking.venue_order
    assert near[0].lot.id == "seoul-arena"
    assert all(state.event_cars > 0 for state in near[:4])
    assert simulation.parking.unparked > 0  # the lots within reach are full
    simulation.skip_to(at(27, 22, 40))
    assert sum(state.event_cars for state in near) < 5


def test_spot_sensors_agree_with_their_lot(changdong: District) -> None:
    simulation = Simulation(changdong, load_scenario("concert-night", changdong), 5)
    simulation.skip_to(at(27, 19, 0))
    for state in simulation.parking.states:
        if state.lot.spot_sensors:
            assert sum(state.spots) == state.occupied


def test_lamps_switch_on_at_dusk_dim_at_night_and_broken_ones_stay_dark() -> None:
    sun = sun_times(at(27, 0).date(), 127.05, 37.655, "Asia/Seoul")
    lamp = lights.Lamp("l1", 150.0, timedelta(0))
    assert lights.lamp_state(lamp, at(27, 12), 12, sun, 0, False).power == "off"
    evening = lights.lamp_state(lamp, at(27, 20), 20, sun, 0, False)
    assert (evening.power, evening.dim) == ("on", 100)
    assert lights.lamp_state(lamp, at(27, 23, 30), 23.5, sun, 0, False).dim == lights.DIM_LEVEL
    broken = lights.lamp_state(lamp, at(27, 20), 20, sun, 0, True)
    assert (broken.power, broken.fault) == ("off", 1)
    assert lights.lamp_state(lamp, at(27, 14), 14, sun, 30.0, False).power == "on"  # dark sky


def test_a_brightened_lamp_burns_full_for_its_time_then_goes_back_to_its_schedule(
    changdong: District,
) -> None:
    simulation = Simulation(changdong, load_scenario("night-assault", changdong), 1)
    lamp = next(d for d in simulation.devices if d.kind.name == "streetlight")
    assert lamp.subject not in simulation.broken
    simulation.skip_to(at(28, 23, 50))
    half = timedelta(seconds=30)
    answer = simulation.command(lamp.id, "brighten", {"duration": "PT20M"}, at(28, 23, 55) + half)
    assert answer.ok, answer.info
    assert answer.report is not None
    assert fields_of(answer.report)["dim"] == 100  # at once, though lamps dim after 23:00
    dims = {
        e.at: fields_of(e)["dim"]
        for e in window(simulation, at(28, 23, 51), at(29, 0, 30))
        if e.device.id == lamp.id
    }
    assert all(level == 100 for moment, level in dims.items() if moment < at(29, 0, 15) + half)
    assert dims[at(29, 0, 15) + half] == lights.DIM_LEVEL  # the boost ends: a report of it
    for refused in (
        simulation.command(lamp.id, "explode", {}, at(29, 0, 40)),
        simulation.command(lamp.id, "brighten", {"illuminanceLevel": 2}, at(29, 0, 40)),
        simulation.command(lamp.id, "brighten", {"duration": "soon"}, at(29, 0, 40)),
    ):
        assert not refused.ok
        assert refused.report is None


def test_rain_slows_traffic_and_washes_particles_out(changdong: District) -> None:
    text = scenario_path("heavy-rain").read_text()
    dry = parse_scenario(text.split("events:")[0], changdong)
    wet = load_scenario("heavy-rain", changdong)
    figures = []
    for scenario in (dry, wet):
        emissions = window(Simulation(changdong, scenario, 2), at(24, 16, 30), at(24, 16, 40))
        speeds = [
            fields_of(e)["spd"]
            for e in emissions
            if e.kind.name == "traffic-detector" and "spd" in fields_of(e)
        ]
        particles = [fields_of(e)["pm10"] for e in emissions if e.kind.name == "air-quality"]
        figures.append((statistics.mean(speeds), statistics.mean(particles)))
    (dry_speed, dry_pm), (wet_speed, wet_pm) = figures
    assert wet_speed < dry_speed * 0.95
    assert wet_pm < dry_pm * 0.6


def test_food_waste_is_weighed_after_dinner_and_bins_are_emptied_at_dawn(
    changdong: District,
) -> None:
    simulation = Simulation(changdong, load_scenario("normal-weekday", changdong), 4)
    hours: Counter[int] = Counter()
    emptied: set[str] = set()
    totals: dict[str, float] = {}
    while not simulation.finished:
        minute = simulation.advance()
        for bin_id, _ in minute.emptied:
            assert 5 <= minute.local.hour < 7
            emptied.add(bin_id)
            totals[bin_id] = 0.0
        for weighing in minute.weighings:
            hours[minute.local.hour] += 1
            assert 0.1 <= weighing.kilograms <= 4.0
            assert weighing.total >= totals.get(weighing.bin_id, 0.0)  # only emptying lowers it
            totals[weighing.bin_id] = weighing.total
    assert len(emptied) == 200
    assert hours[20] > 3 * hours[10]
    assert sum(hours.values()) > 8000  # about every other household, every day


def test_a_fire_shows_smoke_on_cameras_and_particles_nearby(changdong: District) -> None:
    simulation = Simulation(changdong, load_scenario("residential-fire", changdong), 1)
    emissions = window(simulation, at(26, 14, 0), at(26, 14, 40))
    smoke = [e for e in emissions if e.kind.name == "cctv-analytics" and b'"smoke"' in e.payload]
    assert len({e.device.id for e in smoke}) >= 3
    assert min(e.at for e in smoke) >= at(26, 14, 12)
    fire = simulation.incidents.fires[0]
    assert fire.closed
    air = {
        e.device.subject: fields_of(e)["pm25"]
        for e in emissions
        if e.kind.name == "air-quality" and e.at > at(26, 14, 30)
    }
    nearest = min(air, key=lambda s: _metres(simulation, s, fire.xy))
    farthest = max(air, key=lambda s: _metres(simulation, s, fire.xy))
    assert air[nearest] > 2 * air[farthest]
    assert air[nearest] > 40


def _metres(simulation: Simulation, subject: str, xy: tuple[float, float]) -> float:
    station = simulation.environment.stations[subject]
    return float(((station.xy[0] - xy[0]) ** 2 + (station.xy[1] - xy[1]) ** 2) ** 0.5)


def test_an_assault_is_seen_by_the_nearest_cameras_on_a_dark_street(changdong: District) -> None:
    simulation = Simulation(changdong, load_scenario("night-assault", changdong), 1)
    emissions = window(simulation, at(29, 1, 35), at(29, 1, 50))
    events = [
        orjson.loads(e.payload)["event"] for e in emissions if e.kind.name == "cctv-analytics"
    ]
    assert 1 <= events.count("violence") <= 3
    assert events.count("running") == events.count("violence")
    assert len(simulation.incidents.dark_lamps) == 2
    assert simulation.incidents.dark_lamps <= simulation.broken


def test_a_missing_person_is_matched_along_the_walk_until_found(changdong: District) -> None:
    simulation = Simulation(changdong, load_scenario("missing-person", changdong), 1)
    matches = [e for e in simulation.incidents.events if e.event == "person-match"]
    assert len(matches) >= 3
    assert all(at(26, 16, 30) <= e.at < at(26, 19, 11) for e in matches)
    walk = simulation.incidents.walks[0]
    assert len(walk) == 160  # one position a minute from 16:30 to 19:10
