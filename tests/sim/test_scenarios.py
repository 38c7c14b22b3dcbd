"""Scenario files: the shipped ones load; a mistake is reported with its line and the fix."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from smartcity.core.errors import ResourceNotFound
from smartcity.sim.engine import Simulation
from smartcity.sim.model import District
from smartcity.sim.scenario import (
    ScenarioError,
    load_scenario,
    parse_length,
    parse_scenario,
    scenario_names,
)

SEOUL = ZoneInfo("Asia/Seoul")
SHIPPED = [
    "concert-night",
    "device-faults",
    "heavy-rain",
    "missing-person",
    "night-assault",
    "normal-weekday",
    "residential-fire",
]
CONCERT = """\
name: test-concert
title: A test concert
date: 2026-11-27
start: "16:00"
duration: 8h
events:
  - type: concert
    place: seoul-arena
    visitors: 18000
    arrive_from: "17:30"
    show_start: "19:30"
    show_end: "22:00"
"""


def problem(text: str, district: District) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, district, source="test.yaml")
    return caught.value.detail


def test_every_shipped_scenario_loads_and_builds(changdong: District) -> None:
    assert scenario_names() == SHIPPED
    for name in SHIPPED:
        scenario = load_scenario(name, changdong)
        assert scenario.name == name
        assert scenario.end > scenario.start
        Simulation(changdong, scenario, 1)  # device faults are resolved here


def test_times_of_day_are_local_and_follow_the_start(changdong: District) -> None:
    scenario = parse_scenario(CONCERT, changdong)
    (concert,) = scenario.concerts
    assert scenario.start == datetime(2026, 11, 27, 16, 0, tzinfo=SEOUL)
    assert concert.show_start == datetime(2026, 11, 27, 19, 30, tzinfo=SEOUL)
    assert concert.leave_until == concert.show_end + timedelta(minutes=30)
    moved = parse_scenario(CONCERT, changdong, start=datetime(2027, 3, 1, 16, 0, tzinfo=SEOUL))
    assert moved.concerts[0].show_start == datetime(2027, 3, 1, 19, 30, tzinfo=SEOUL)
    assault = load_scenario("night-assault", changdong)
    assert assault.assaults[0].at == datetime(2026, 11, 29, 1, 40, tzinfo=SEOUL)  # after midnight


def test_the_day_type_comes_from_the_file_or_the_calendar(changdong: District) -> None:
    scenario = parse_scenario(CONCERT, changdong)
    assert scenario.day_type_on(scenario.start.date()) == "weekday"  # a Friday
    assert scenario.day_type_on(scenario.start.date() + timedelta(days=1)) == "saturday"
    assert scenario.day_type_on(scenario.start.date() + timedelta(days=2)) == "sunday"
    assert load_scenario("night-assault", changdong).day_type == "saturday"


def test_an_unknown_place_names_the_line_and_the_places_to_choose(changdong: District) -> None:
    detail = problem(CONCERT.replace("seoul-arena", "seoul-arina"), changdong)
    assert detail.startswith("test.yaml line 8: events[0].place: 'seoul-arina' is not a place")
    assert "seoul-arena" in detail


def test_a_wrong_type_names_the_line_and_what_to_write(changdong: District) -> None:
    detail = problem(CONCERT.replace("18000", "lots"), changdong)
    assert detail.startswith("test.yaml line 9: events[0].visitors:")
    assert "write how many people come (a whole number, e.g. 18000)" in detail


def test_a_missing_member_points_at_its_event(changdong: District) -> None:
    detail = problem(CONCERT.replace('    show_end: "22:00"\n', ""), changdong)
    assert detail.startswith("test.yaml line 7: events[0].show_end: Field required")


def test_an_unknown_member_or_event_type_is_named(changdong: District) -> None:
    detail = problem(CONCERT + "    colour: red\n", changdong)
    assert detail.startswith("test.yaml line 13: events[0].colour: unknown member")
    detail = problem(CONCERT.replace("type: concert", "type: parade"), changdong)
    assert "line 7" in detail
    assert "unknown event type; write one of: concert, rain, fire" in detail


def test_times_out_of_order_and_bad_times_are_refused(changdong: District) -> None:
    detail = problem(CONCERT.replace('show_end: "22:00"', 'show_end: "18:00"'), changdong)
    # 18:00 falls after the start, before the show: refused, with its line.
    assert detail.startswith("test.yaml line 12: events[0].show_end: show_end must come after")
    detail = problem(CONCERT.replace('"19:30"', '"half past seven"'), changdong)
    assert detail.startswith("test.yaml line 11: events[0].show_start: 'half past seven'")
    assert 'write "HH:MM"' in detail


def test_device_faults_name_devices_kinds_and_counts_that_exist(changdong: District) -> None:
    base = CONCERT.split("events:")[0] + "events:\n  - type: device_fault\n    fault: stuck\n"
    scenario = parse_scenario(
        base + '    devices: [nope-1]\n    from: "17:00"\n', changdong, source="test.yaml"
    )
    with pytest.raises(
        ScenarioError, match=r"test.yaml line 7: devices: no simulated device 'nope-1'"
    ):
        Simulation(changdong, scenario, 1)
    scenario = parse_scenario(
        base + '    kind: toaster\n    count: 1\n    from: "17:00"\n', changdong
    )
    with pytest.raises(
        ScenarioError, match="kind: no device kind 'toaster'; write one of: traffic"
    ):
        Simulation(changdong, scenario, 1)
    scenario = parse_scenario(
        base + '    kind: noise\n    count: 99\n    from: "17:00"\n', changdong
    )
    with pytest.raises(ScenarioError, match="count: only 30 devices of kind noise"):
        Simulation(changdong, scenario, 1)
    detail = problem(base + '    from: "17:00"\n', changdong)
    assert (
        detail
        == "test.yaml line 7: events[0]: name the devices, or a kind and a count (e.g. count: 3)"
    )


def test_yaml_that_does_not_parse_says_where(changdong: District) -> None:
    detail = problem(CONCERT.replace("visitors: 18000", "visitors: [18000"), changdong)
    assert detail.startswith("test.yaml line ")
    assert "not valid YAML" in detail
    assert problem("- a list\n", changdong).startswith("test.yaml line 1: a scenario is a YAML")


def test_unknown_scenario_names_list_the_known_ones(changdong: District) -> None:
    with pytest.raises(ResourceNotFound, match="known scenarios: concert-night, device-faults"):
        load_scenario("picnic", changdong)


def test_durations_read_both_spellings() -> None:
    assert parse_length("1h30m") == timedelta(minutes=90)
    assert parse_length("PT45M") == timedelta(minutes=45)
    assert parse_length(20) == timedelta(minutes=20)
    with pytest.raises(ValueError, match="not a duration"):
        parse_length("soon")
