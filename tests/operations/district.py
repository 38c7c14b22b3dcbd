"""The simulated Changdong district's roads, cameras, places and safety assets, loaded into a
tenant for the linked-service tests (as the demo loads them, less the thousands of others)."""

from __future__ import annotations

from functools import cache
from typing import Any

from smartcity.auth.principal import Caller
from smartcity.platform import Platform
from smartcity.sim.district import load_district
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL, district_entities
from smartcity.sim.generate import generate_assets
from smartcity.sim.roads import RoadGraph
from smartcity.sim.safety import safety_entities
from smartcity.sim.seed import data_path
from tests.operations.conftest import TENANT

TYPES = frozenset(
    {"RoadSegment", "Camera", "PointOfInterest", "TransportStation", "OffStreetParking"}
)
ARENA = (127.0515, 37.6529)
"""The Seoul Arena site, by Jungnangcheon."""
ALLEY_MARKET = (127.0448, 37.6521)
"""Changdong Alley Market (창동골목시장), a class-2 building in the safety data."""


@cache
def district_raw() -> tuple[dict[str, Any], ...]:
    """Return the entities the linked services read, generated once per test session."""
    district = load_district()
    generated = district_entities(district, generate_assets(district, RoadGraph(district)))
    chosen = [e for e in generated if e["type"] in TYPES]
    return tuple([*chosen, *safety_entities(district)])


def load(platform: Platform, tenant: str = TENANT, *, without: frozenset[str] = frozenset()) -> int:
    """Upsert the district's entities into a tenant; return how many."""
    platform.contexts.preload_file(CHANGDONG_CONTEXT_URL, data_path("changdong-context.jsonld"))
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    wanted = [e for e in district_raw() if e["type"] not in without]
    for start in range(0, len(wanted), 500):
        result, _ = platform.entities.batch_upsert(
            Caller.system(tenant), wanted[start : start + 500], lambda _: ctx
        )
        assert not result.errors, result.errors[:3]
    return len(wanted)


def point(position: tuple[float, float]) -> dict[str, Any]:
    return {"type": "Point", "coordinates": list(position)}
