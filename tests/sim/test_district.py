"""The district files read into a checked model, and bad files say what to fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from smartcity.sim.district import builtin_district_path, load_district
from smartcity.sim.generate import Asset
from smartcity.sim.model import District, DistrictError


def test_changdong_has_the_places_the_issue_names(changdong: District) -> None:
    english = {place.name_en for place in changdong.places}
    for name in (
        "Changdong Station",
        "Nowon Station",
        "Seoul Arena (site)",
        "Platform Changdong 61",
        "Changdong rail depot site (future new economic center)",
        "Dobong-gu Office",
        "Jungnangcheon stream",
    ):
        assert name in english
    roads = {link.name_en for link in changdong.links}
    for road in ("Dobong-ro", "Nohae-ro", "Madeul-ro", "Dongil-ro", "Dongbu Expressway"):
        assert road in roads
    kinds = {place.kind for place in changdong.places}
    assert {"apartment", "school", "market", "park", "stream"} <= kinds
    assert len(changdong.parking) == 25
    zones = {zone.name_ko for zone in changdong.zones}
    assert {"창1동", "창2동", "창3동", "창4동", "창5동"} <= zones
    assert any(name.startswith("상계") for name in zones)


def test_stations_sit_in_their_dongs(changdong: District) -> None:
    by_id = {place.id: place for place in changdong.places}
    changdong_zone = changdong.zone_at(by_id["changdong"].anchor)
    nowon_zone = changdong.zone_at(by_id["nowon"].anchor)
    assert changdong_zone is not None
    assert changdong_zone.parent.startswith("도봉구")
    assert nowon_zone is not None
    assert nowon_zone.parent.startswith("노원구")
    assert changdong.zone_at((127.2, 37.7)) is None


def test_every_asset_place_and_lot_is_in_a_zone(
    changdong: District, changdong_assets: list[Asset]
) -> None:
    assert [a.id for a in changdong_assets if changdong.zone_at(a.position) is None] == []
    assert all(changdong.zone_at(a.position).id == a.zone for a in changdong_assets)  # type: ignore[union-attr]
    assert [p.id for p in changdong.places if changdong.zone_at(p.anchor) is None] == []
    assert [p.id for p in changdong.parking if changdong.zone_at(p.position) is None] == []


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "district"
    shutil.copytree(builtin_district_path(), folder)
    return folder


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("road_links.csv", "nohae-1,db3,nh1", "nohae-1,db3,nowhere", "unknown node 'nowhere'"),
        ("road_links.csv", "Nohae-ro,primary,3,50", "Nohae-ro,primary,three,50", "lanes must"),
        ("road_nodes.csv", "db1,127.0340", "db1,east", "longitude must be a number"),
        ("parking.csv", ",120,true,", ",120,maybe,", "spot_sensors must be true or false"),
        ("district.yaml", "streetlights: 800", "streetlamps: 800", "unknown generate keys"),
        ("district.yaml", "zones: zones.geojson", "zones: dongs.geojson", "does not exist"),
        ("places.geojson", '"kind": "school"', '"kind": "castle"', "kind must be one of"),
        ("zones.geojson", '"id": "chang-2-dong"', '"id": "chang-1-dong"', "appears twice"),
    ],
)
def test_a_bad_file_is_refused_with_what_to_fix(
    tmp_path: Path, file: str, old: str, new: str, message: str
) -> None:
    folder = _copy(tmp_path)
    target = folder / file
    text = target.read_text(encoding="utf-8")
    assert old in text
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(DistrictError, match=message) as raised:
        load_district(folder)
    assert file.split(".")[0] in raised.value.detail


def test_missing_folder_is_explained(tmp_path: Path) -> None:
    with pytest.raises(DistrictError, match=r"needs a district\.yaml"):
        load_district(tmp_path)
