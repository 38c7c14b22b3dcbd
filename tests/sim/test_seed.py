"""The Changdong seed places load cleanly and answer the queries a newcomer would try."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shapely.geometry import shape

from smartcity.auth.principal import Caller
from smartcity.broker.params import entity_query
from smartcity.config import Settings
from smartcity.platform import build_platform
from smartcity.sim.geodesy import distance
from smartcity.sim.seed import CHANGDONG_CONTEXT_URL, load_seed, seed_entities


def test_seed_loads_and_is_idempotent(tmp_path: Path) -> None:
    platform = build_platform(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'seed.db'}",
            context_offline=True,
            auth_secret_file=str(tmp_path / "auth-secret"),
        )
    )
    try:
        assert load_seed(platform) == len(seed_entities())
        assert load_seed(platform) == len(seed_entities())
        ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
        near_station = entity_query(
            "",
            {
                "type": "OffStreetParking",
                "georel": "near;maxDistance==300",
                "geometry": "Point",
                "coordinates": "[127.0477,37.6531]",
            },
            ctx,
            default_limit=20,
        )
        found = platform.entities.query(Caller.system(), near_station).entities
        assert [entity.id for entity in found] == [
            "urn:ngsi-ld:OffStreetParking:changdong-station-public"
        ]
        stations = entity_query("", {"type": "TransportStation"}, ctx, default_limit=20)
        assert len(platform.entities.query(Caller.system(), stations).entities) == 2
    finally:
        platform.close()


def test_seed_places_are_the_district_places(changdong_entities: list[dict[str, Any]]) -> None:
    """The small seed set is a sample of the district: same ids, types and places."""
    district = {entity["id"]: entity for entity in changdong_entities}
    for seed in seed_entities():
        twin = district[seed["id"]]
        assert twin["type"] == seed["type"]
        here = shape(seed["location"]["value"]).representative_point()
        there = shape(twin["location"]["value"]).representative_point()
        assert distance((here.x, here.y), (there.x, there.y)) < 50, seed["id"]
