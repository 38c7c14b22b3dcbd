"""Fixtures of the district tests: the Changdong model, read and generated once per session."""

from __future__ import annotations

from typing import Any

import pytest

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
