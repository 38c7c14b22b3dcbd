"""Fixtures: Changdong's parking on a platform with a manual clock (Fri 27 Nov 2026, 18:00 KST)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smartcity.core.clock import ManualClock
from smartcity.platform import Platform
from tests.domains.mobility.parking.city import FRIDAY_EVENING, city_platform, city_settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Return the database URL kind under test; PostgreSQL gets a fresh schema."""
    return str(request.param)


@pytest.fixture
def clock() -> ManualClock:
    """Return the clock the city runs on."""
    return ManualClock(FRIDAY_EVENING)


@pytest.fixture
def city(
    request: pytest.FixtureRequest,
    backend: str,
    tmp_path: Path,
    shared_data: Path,
    clock: ManualClock,
) -> Iterator[Platform]:
    """Yield a platform with the Changdong district loaded (SQLite or PostgreSQL)."""
    schema = request.getfixturevalue("postgres_schema") if backend == "postgres" else None
    platform = city_platform(city_settings(tmp_path, shared_data, schema), clock)
    try:
        yield platform
    finally:
        platform.close()
