"""The generator places believable assets, in the issue's numbers, byte for byte from a seed."""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from shapely.geometry import Point, shape

from smartcity.sim.generate import (
    MAIN_ROAD_CLASSES,
    Asset,
    assets_geojson,
    generate_assets,
    read_assets,
    shares,
)
from smartcity.sim.geodesy import distance
from smartcity.sim.model import District, DistrictError

DIGEST_SCRIPT = (
    "import hashlib, sys\n"
    "from smartcity.sim.district import load_district\n"
    "from smartcity.sim.generate import assets_geojson, generate_assets\n"
    "sys.stdout.write(hashlib.sha256(assets_geojson(generate_assets(load_district()))).hexdigest())"
)


def test_counts_are_those_of_the_issue(changdong_assets: list[Asset]) -> None:
    counts = Counter(asset.kind for asset in changdong_assets)
    assert counts == {
        "cctv_cameras": 300,
        "traffic_detectors": 150,
        "streetlights": 800,
        "waste_bins": 200,
        "environment_sensors": 30,
        "beacons": 50,
        "points_of_interest": 200,
        "parking_spots": 285,
        "security_lights": 44,
    }
    assert len({asset.id for asset in changdong_assets}) == len(changdong_assets)


def test_same_seed_same_bytes_in_another_process(changdong_assets: list[Asset]) -> None:
    here = hashlib.sha256(assets_geojson(changdong_assets)).hexdigest()
    for hash_seed in ("1", "2"):
        environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
        there = subprocess.run(
            [sys.executable, "-c", DIGEST_SCRIPT],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert there == here


def test_another_seed_moves_the_assets_but_keeps_the_counts(
    changdong: District, changdong_assets: list[Asset]
) -> None:
    other = generate_assets(replace(changdong, seed=changdong.seed + 1))
    assert Counter(a.kind for a in other) == Counter(a.kind for a in changdong_assets)
    assert assets_geojson(other) != assets_geojson(changdong_assets)
    # Streetlights follow the roads at a fixed spacing whatever the seed.
    lights = [a.position for a in changdong_assets if a.kind == "streetlights"]
    assert [a.position for a in other if a.kind == "streetlights"] == lights


def test_streetlights_every_thirty_to_forty_metres(changdong_assets: list[Asset]) -> None:
    lights = [a for a in changdong_assets if a.kind == "streetlights"]
    assert {30.0 <= a.properties["spacing"] <= 40.0 for a in lights} == {True}
    by_link: dict[str, list[Asset]] = {}
    for light in lights:
        by_link.setdefault(str(light.properties["link"]), []).append(light)
    gaps = [
        distance(a.position, b.position)
        for row in by_link.values()
        for a, b in itertools.pairwise(row)
    ]
    assert 25 < sorted(gaps)[len(gaps) // 2] < 50


def test_cameras_watch_junctions_schools_and_streets(
    changdong: District, changdong_assets: list[Asset]
) -> None:
    cameras = [a for a in changdong_assets if a.kind == "cctv_cameras"]
    usages = Counter(str(c.properties["usage"]) for c in cameras)
    assert usages["TRAFFIC"] >= 60
    assert usages["SURVEILLANCE"] >= 100
    assert usages["ANPR/LPR"] >= 1
    assert {0 <= float(c.properties["view"]) < 360 for c in cameras} == {True}
    schools = {place.id for place in changdong.places_of("school")}
    assert schools <= {str(c.properties["at"]) for c in cameras}


def test_bins_in_complexes_detectors_on_main_roads_beacons_by_the_arena(
    changdong: District, changdong_assets: list[Asset]
) -> None:
    complexes = {p.id: shape(p.geometry) for p in changdong.places_of("apartment")}
    bins = [a for a in changdong_assets if a.kind == "waste_bins"]
    assert {complexes[str(b.properties["complex"])].covers(Point(b.position)) for b in bins} == {
        True
    }
    per_complex = Counter(str(b.properties["complex"]) for b in bins)
    biggest = max(changdong.places_of("apartment"), key=lambda p: p.extra["households"])
    assert per_complex[biggest.id] == max(per_complex.values())

    classes = {link.id: link.road_class for link in changdong.links}
    detectors = [a for a in changdong_assets if a.kind == "traffic_detectors"]
    assert {classes[str(d.properties["segment"]).rsplit("-", 1)[0]] for d in detectors} <= set(
        MAIN_ROAD_CLASSES
    )

    arena = next(p for p in changdong.places if p.id == "seoul-arena")
    beacons = [a for a in changdong_assets if a.kind == "beacons"]
    near_arena = [b for b in beacons if distance(b.position, arena.anchor) < 250]
    assert len(near_arena) >= len(beacons) // 3


def test_points_of_interest_have_unique_bilingual_names_near_their_anchor(
    changdong: District, changdong_assets: list[Asset]
) -> None:
    anchors = {place.id: place.anchor for place in changdong.places}
    pois = [a for a in changdong_assets if a.kind == "points_of_interest"]
    assert len({p.properties["name_ko"] for p in pois}) == len(pois)
    assert {str(p.properties["category"][0]) for p in pois} == {"food", "shopping", "culture"}
    for poi in pois:
        assert str(poi.properties["name_en"]).isascii()
        assert distance(poi.position, anchors[str(poi.properties["near"])]) <= 251


def test_frozen_assets_read_back_identical(tmp_path: Path, changdong_assets: list[Asset]) -> None:
    path = tmp_path / "assets.geojson"
    path.write_bytes(assets_geojson(changdong_assets))
    assert read_assets(path) == changdong_assets


def test_shares_split_whole_numbers_in_proportion() -> None:
    assert shares(10, [1, 1, 1]) == [4, 3, 3]
    assert shares(200, [2000, 1000, 1000]) == [100, 50, 50]
    assert shares(5, [0, 0]) == [0, 0]
    assert sum(shares(7, [0.3, 0.3, 0.4])) == 7


def test_a_count_that_cannot_be_met_is_explained(changdong: District) -> None:
    no_homes = replace(
        changdong,
        places=[p for p in changdong.places if p.kind != "apartment"],
        _zone_shapes=[],
    )
    with pytest.raises(DistrictError, match="need apartment places"):
        generate_assets(no_homes)
    fewer = replace(no_homes, targets={**changdong.targets, "waste_bins": 0})
    assert not [a for a in generate_assets(fewer) if a.kind == "waste_bins"]
