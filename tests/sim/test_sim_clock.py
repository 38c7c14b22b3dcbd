"""The simulated clock: speed, pauses, jumps, an infinite speed; and reading speed factors."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from smartcity.sim.clock import SimClock, parse_speed

START = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


class Wall:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


def test_simulated_time_runs_speed_times_the_wall_clock() -> None:
    wall = Wall()
    clock = SimClock(START, 60, wall)
    wall.seconds += 10
    assert clock.now() == START + timedelta(minutes=10)
    assert clock.wall_seconds_until(START + timedelta(minutes=11)) == pytest.approx(1.0)
    assert clock.wall_seconds_until(START) == 0


def test_speed_changes_keep_the_time_reached() -> None:
    wall = Wall()
    clock = SimClock(START, 10, wall)
    wall.seconds += 6
    clock.set_speed(1)
    wall.seconds += 6
    assert clock.now() == START + timedelta(seconds=66)


def test_pause_stops_time_and_resume_goes_on_from_there() -> None:
    wall = Wall()
    clock = SimClock(START, 2, wall)
    wall.seconds += 5
    clock.pause()
    wall.seconds += 100
    assert clock.now() == START + timedelta(seconds=10)
    assert clock.wall_seconds_until(START + timedelta(seconds=11)) == math.inf
    clock.resume()
    wall.seconds += 1
    assert clock.now() == START + timedelta(seconds=12)


def test_jump_sets_the_time_and_keeps_the_speed() -> None:
    wall = Wall()
    clock = SimClock(START, 60, wall)
    clock.jump(START + timedelta(hours=5))
    wall.seconds += 1
    assert clock.now() == START + timedelta(hours=5, minutes=1)


def test_an_infinite_clock_stands_where_the_simulation_put_it() -> None:
    clock = SimClock(START, math.inf, Wall())
    assert clock.wall_seconds_until(START + timedelta(days=1)) == 0
    clock.advance_to(START + timedelta(minutes=3))
    clock.advance_to(START + timedelta(minutes=1))  # never back
    assert clock.now() == START + timedelta(minutes=3)


def test_speeds_are_read_from_numbers_and_words() -> None:
    assert parse_speed("60") == 60
    assert parse_speed("10x") == 10
    assert parse_speed("0.5") == 0.5
    assert parse_speed("max") == math.inf
    assert parse_speed(3) == 3
    for bad in ("fast", "0", "-2", ""):
        with pytest.raises(ValueError, match="speed"):
            parse_speed(bad)


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        SimClock(datetime(2026, 11, 27, 7, 0), 1)
