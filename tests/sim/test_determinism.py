"""The simulator is deterministic: the same seed and scenario send the same bytes, always."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from smartcity.sim.emission import Emission, digest
from smartcity.sim.engine import Simulation
from smartcity.sim.model import District
from smartcity.sim.scenario import load_scenario

SEOUL = ZoneInfo("Asia/Seoul")
FROM = datetime(2026, 11, 27, 18, 50, tzinfo=SEOUL)
UNTIL = datetime(2026, 11, 27, 19, 20, tzinfo=SEOUL)


def run(district: District, seed: int, skip: datetime | None = None) -> list[Emission]:
    simulation = Simulation(district, load_scenario("concert-night", district), seed)
    simulation.skip_to(skip or FROM)
    return [e for _, batch in simulation.run(UNTIL) for e in batch]


@pytest.fixture(scope="module")
def seven(changdong: District) -> list[Emission]:
    """Return half an hour of a concert evening with seed 7."""
    return run(changdong, 7)


def test_the_same_seed_sends_the_same_bytes(changdong: District, seven: list[Emission]) -> None:
    first, second = seven, run(changdong, 7)
    assert len(first) == len(second) > 10_000
    assert digest(first) == digest(second)
    assert [e.record() for e in first[:50]] == [e.record() for e in second[:50]]


def test_another_seed_sends_other_values_on_the_same_schedule_shape(
    changdong: District, seven: list[Emission]
) -> None:
    first, other = seven, run(changdong, 8)
    assert digest(first) != digest(other)
    periodic = ("traffic-detector", "noise", "parking-lot")
    count = sum(1 for e in first if e.kind.name in periodic)
    assert count == sum(1 for e in other if e.kind.name in periodic)


def test_emissions_come_in_time_order(seven: list[Emission]) -> None:
    times = [e.at for e in seven]
    assert times == sorted(times)
    assert times[0] >= FROM
    assert times[-1] < UNTIL


def test_skipping_ahead_sends_what_a_full_run_sends_from_there(
    changdong: District, seven: list[Emission]
) -> None:
    full = run(changdong, 7, skip=FROM - timedelta(minutes=20))
    later = [e for e in full if e.at >= FROM]
    assert digest(later) == digest(seven)


def test_another_process_sends_the_same_bytes(seven: list[Emission]) -> None:
    """Nothing depends on the hash seed or on what the process did before."""
    code = (
        "from datetime import datetime; from zoneinfo import ZoneInfo\n"
        "from smartcity.sim.district import load_district\n"
        "from smartcity.sim.engine import Simulation\n"
        "from smartcity.sim.emission import digest\n"
        "from smartcity.sim.scenario import load_scenario\n"
        "d = load_district(); z = ZoneInfo('Asia/Seoul')\n"
        "s = Simulation(d, load_scenario('concert-night', d), 7)\n"
        "s.skip_to(datetime(2026, 11, 27, 18, 50, tzinfo=z))\n"
        "print(digest(e for _, b in s.run(datetime(2026, 11, 27, 19, 20, tzinfo=z)) for e in b))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert result.stdout.strip() == digest(seven)
