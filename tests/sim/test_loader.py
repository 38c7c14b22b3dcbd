"""The district loads into the platform through the entity service, once, on both backends."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartcity.auth.principal import Caller
from smartcity.broker.params import entity_query
from smartcity.config import Settings
from smartcity.platform import Platform, build_platform
from smartcity.sim.district import builtin_district_path, load_district
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from smartcity.sim.generate import assets_geojson, generate_assets
from smartcity.sim.loader import load_district_into
from tests.conftest import postgres_url

EXPECTED = {
    "Camera": 300,
    "Streetlight": 844,  # 800 street lamps and 44 security lights by cameras in places
    "WasteContainer": 200,
    "OffStreetParking": 29,  # 25 lots and 4 shared-parking sites (parking_details.yaml)
    "OnStreetParking": 2,  # resident-priority zones
    "ParkingSpot": 285,
    "TransportStation": 3,
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'district.db'}", context_offline=True)
    if request.param == "postgresql":
        schema: str = request.getfixturevalue("postgres_schema")
        settings = settings.model_copy(
            update={"database_url": postgres_url(), "database_schema": schema}
        )
    built = build_platform(settings)
    yield built
    built.close()


def _counts(platform: Platform) -> dict[str, int]:
    return {
        summary.type.rsplit("/", 1)[-1]: summary.count
        for summary in platform.entities.type_summaries(Caller.system())
    }


def _ids(platform: Platform, **parameters: str) -> list[str]:
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    query = entity_query("", {"limit": "1000", **parameters}, ctx, default_limit=20)
    return [entity.id for entity in platform.entities.query(Caller.system(), query).entities]


def test_load_gives_the_issue_counts_once(platform: Platform) -> None:
    steps: list[tuple[int, int]] = []
    first = load_district_into(platform, progress=lambda done, total: steps.append((done, total)))
    assert first.created == first.total
    assert first.updated == 0
    assert steps[-1] == (first.total, first.total)
    counts = _counts(platform)
    assert {name: counts[name] for name in EXPECTED} == EXPECTED
    # Devices: 150 traffic detectors, 30 air-quality/noise sensors, 50 beacons.
    assert counts["Device"] == 230
    assert len(_ids(platform, type="Device", q='controlledProperty=="trafficFlow"')) == 150
    assert len(_ids(platform, type="Device", q='controlledProperty=="noiseLevel"')) == 30
    assert len(_ids(platform, type="Device", q='controlledProperty=="location"')) == 50
    generated = 'source=="district:changdong:generated"'
    assert len(_ids(platform, type="PointOfInterest", q=generated)) == 200
    assert sum(counts.values()) == first.total

    near = _ids(
        platform,
        type="OffStreetParking",
        georel="near;maxDistance==150",
        geometry="Point",
        coordinates="[127.0477,37.6531]",
    )
    assert "urn:ngsi-ld:OffStreetParking:changdong-station-public" in near
    assert "urn:ngsi-ld:OffStreetParking:nowon-station-public" not in near

    seq = platform.store.last_change_seq()
    second = load_district_into(platform)
    assert (second.created, second.updated, second.unchanged) == (0, 0, first.total)
    assert platform.store.last_change_seq() == seq


def test_a_changed_file_updates_only_what_changed(tmp_path: Path, platform: Platform) -> None:
    folder = tmp_path / "district"
    shutil.copytree(builtin_district_path(), folder)
    manifest = folder / "district.yaml"
    # Only the curated places, roads and lots: no generated assets, so the test stays quick.
    manifest.write_text(manifest.read_text(encoding="utf-8").split("generate:")[0])
    first = load_district_into(platform, load_district(folder))
    assert first.created == first.total > 100
    parking = folder / "parking.csv"
    parking.write_text(
        parking.read_text(encoding="utf-8").replace(",Nowon-gu Office Parking,", ",Nowon-gu Hall,"),
        encoding="utf-8",
    )
    report = load_district_into(platform, load_district(folder))
    assert (report.created, report.updated) == (0, 1)
    lot = platform.entities.retrieve(
        Caller.system(), "urn:ngsi-ld:OffStreetParking:nowon-gu-office"
    )
    assert [i["value"] for i in lot.attrs["https://smartdatamodels.org/alternateName"]] == [
        "Nowon-gu Hall"
    ]


def test_a_frozen_asset_file_replaces_the_generator(tmp_path: Path) -> None:
    folder = tmp_path / "district"
    shutil.copytree(builtin_district_path(), folder)
    district = load_district(folder)
    kept = [a for a in generate_assets(district) if a.kind == "cctv_cameras"][:7]
    (folder / "assets.geojson").write_bytes(assets_geojson(kept))
    platform = build_platform(
        Settings(database_url=f"sqlite:///{tmp_path / 'frozen.db'}", context_offline=True)
    )
    try:
        load_district_into(platform, load_district(folder))
        assert _counts(platform)["Camera"] == 7
        assert "Streetlight" not in _counts(platform)
    finally:
        platform.close()


def test_a_platform_with_a_small_query_limit_loads_in_smaller_batches(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'small.db'}", context_offline=True, max_limit=100
    )
    platform = build_platform(settings)
    try:
        report = load_district_into(platform)
        assert report.created > 2000
        assert report.created + report.updated + report.unchanged == report.created
    finally:
        platform.close()
