"""Fixtures of the district tests: the Changdong model, read and generated once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smartcity.config import Settings
from smartcity.platform import Platform, build_platform
from smartcity.sim.district import load_district
from smartcity.sim.entities import district_entities
from smartcity.sim.generate import Asset, generate_assets
from smartcity.sim.model import District
from smartcity.sim.roads import RoadGraph


@pytest.fixture(scope="session")
def changdong() -> District:
    """Return the Changdong district shipped with the package."""
    return load_district()


@pytest.fixture(scope="session")
def changdong_roads(changdong: District) -> RoadGraph:
    """Return the road graph of Changdong."""
    return RoadGraph(changdong)


@pytest.fixture(scope="session")
def changdong_assets(changdong: District, changdong_roads: RoadGraph) -> list[Asset]:
    """Return the generated assets of Changdong."""
    return generate_assets(changdong, changdong_roads)


@pytest.fixture(scope="session")
def changdong_entities(changdong: District, changdong_assets: list[Asset]) -> list[dict[str, Any]]:
    """Return every NGSI-LD entity of Changdong."""
    return district_entities(changdong, changdong_assets)


def sim_settings(tmp_path: Path, shared_data: Path, **changes: Any) -> Settings:
    """Return settings of a platform on a fresh SQLite file, checking Smart Data Models schemas."""
    models = str(shared_data / "smart-data-models")
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'city.db'}",
        "context_offline": True,
        "context_preload_smart_data_models": models,
        "ingest_schema_dirs": [models],
        "notifications_enabled": False,
        **changes,
    }
    return Settings(**values)


@pytest.fixture
def sim_platform(tmp_path: Path, shared_data: Path) -> Iterator[Platform]:
    """Yield a platform with schema checks on (no worker running)."""
    built = build_platform(sim_settings(tmp_path, shared_data))
    yield built
    built.close()
