"""`smartcity import osm` turns a local OpenStreetMap file into district files that load."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from smartcity.sim.district import load_district
from smartcity.sim.generate import generate_assets
from smartcity.sim.model import DistrictError
from smartcity.sim.osm_import import import_osm
from smartcity.sim.roads import RoadGraph

pytest.importorskip("osmnx", reason="osmnx is the optional extra smartcity[osm]")

LONGITUDE, LATITUDE, STEP = 127.045, 37.650, 0.002


def _tags(tags: dict[str, str]) -> str:
    return "".join(f'<tag k="{key}" v="{value}"/>' for key, value in tags.items())


def write_osm(path: Path) -> Path:
    """Write a small OSM XML extract: a 3x3 street grid, two dongs, a station, a school..."""
    nodes: list[tuple[int, float, float, dict[str, str]]] = []
    grid: dict[tuple[int, int], int] = {}
    for row in range(3):
        for column in range(3):
            grid[row, column] = len(nodes) + 1
            signal = {"highway": "traffic_signals"} if (row, column) == (1, 1) else {}
            nodes.append((len(nodes) + 1, LONGITUDE + column * STEP, LATITUDE + row * STEP, signal))
    corners = {}
    for name, x, y in (
        ("sw", 127.044, 37.649),
        ("s", 127.047, 37.649),
        ("se", 127.050, 37.649),
        ("ne", 127.050, 37.655),
        ("n", 127.047, 37.655),
        ("nw", 127.044, 37.655),
    ):
        corners[name] = len(nodes) + 1
        nodes.append((len(nodes) + 1, x, y, {}))
    station = {"railway": "station", "name": "창동역", "name:en": "Changdong Station"}
    nodes.append((100, 127.0455, 37.6505, station))
    nodes.append((101, 127.0485, 37.6535, {"amenity": "school", "name": "창동초등학교"}))
    squares: dict[str, list[int]] = {}
    for key, (x, y) in {"parking": (127.0462, 37.6512), "homes": (127.0472, 37.6522)}.items():
        squares[key] = []
        for dx, dy in ((0, 0), (0.0006, 0), (0.0006, 0.0005), (0, 0.0005)):
            squares[key].append(200 + len(nodes))
            nodes.append((200 + len(nodes), x + dx, y + dy, {}))
    nohae = {"highway": "primary", "name": "노해로", "name:en": "Nohae-ro", "lanes": "6"}
    ways = [
        (1, [grid[0, 0], grid[0, 1], grid[0, 2]], {**nohae, "maxspeed": "50"}),
        (2, [grid[1, 0], grid[1, 1], grid[1, 2]], {"highway": "secondary", "name": "덕릉로"}),
        (3, [grid[2, 0], grid[2, 1], grid[2, 2]], {"highway": "residential", "oneway": "yes"}),
        (4, [grid[0, 1], grid[1, 1], grid[2, 1]], {"highway": "primary", "name": "마들로"}),
        (5, [grid[0, 0], grid[1, 0], grid[2, 0]], {"highway": "tertiary", "name": "서측 길"}),
        (6, [grid[0, 2], grid[1, 2], grid[2, 2]], {"highway": "tertiary", "maxspeed": "25 mph"}),
        (10, [corners[c] for c in ("sw", "s", "n", "nw", "sw")], {}),
        (11, [corners[c] for c in ("s", "se", "ne", "n", "s")], {}),
        (
            12,
            [*squares["parking"], squares["parking"][0]],
            {"amenity": "parking", "capacity": "80"},
        ),
        (13, [*squares["homes"], squares["homes"][0]], {"landuse": "residential", "name": "주공"}),
    ]
    dong = {"type": "boundary", "boundary": "administrative", "admin_level": "8"}
    relations = [
        (20, 10, {**dong, "name": "창4동", "name:en": "Chang 4-dong"}),
        (21, 11, {**dong, "name": "상계10동", "name:en": "Sanggye 10-dong"}),
        (22, 10, {**dong, "admin_level": "6", "name": "도봉구"}),
    ]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    for identifier, x, y, tags in nodes:
        lines.append(f'<node id="{identifier}" lat="{y}" lon="{x}">{_tags(tags)}</node>')
    for identifier, refs, tags in ways:
        members = "".join(f'<nd ref="{ref}"/>' for ref in refs)
        lines.append(f'<way id="{identifier}">{members}{_tags(tags)}</way>')
    for identifier, way, tags in relations:
        member = f'<member type="way" ref="{way}" role="outer"/>'
        lines.append(f'<relation id="{identifier}">{member}{_tags(tags)}</relation>')
    path.write_text("\n".join([*lines, "</osm>"]), encoding="utf-8")
    return path


def test_import_writes_a_district_that_loads_routes_and_generates(tmp_path: Path) -> None:
    report = import_osm(write_osm(tmp_path / "town.osm"), tmp_path / "town", "test-town")
    assert (report.nodes, report.links, report.zones, report.parking_lots) == (9, 12, 2, 1)
    district = load_district(tmp_path / "town")
    assert {zone.name_en for zone in district.zones} == {"Chang 4-dong", "Sanggye 10-dong"}
    assert {place.kind for place in district.places} == {"station", "school", "apartment"}
    station = next(place for place in district.places if place.kind == "station")
    assert station.name_en == "Changdong Station"
    assert station.extra["station_type"] == ["rail"]
    signalised = [node.id for node in district.nodes.values() if node.signalised]
    assert signalised == ["n5"]
    by_name = {link.name_en: link for link in district.links}
    assert by_name["Nohae-ro"].lanes == 3
    assert by_name["Nohae-ro"].speed_limit == 50
    assert by_name["마들로"].speed_limit == 50  # the default for a primary road
    unnamed = [
        link for link in district.links if link.road_class == "tertiary" and not link.name_ko
    ]
    assert {link.speed_limit for link in unnamed} == {40}  # maxspeed=25 mph
    one_way = [link for link in district.links if link.oneway]
    assert len(one_way) == 2
    assert {link.lanes for link in one_way} == {1}
    graph = RoadGraph(district)
    assert graph.is_connected()
    route = graph.route("n1", "n9")
    assert 600 < route.length < 1000
    assets = generate_assets(district, graph)
    assert Counter(a.kind for a in assets)["streetlights"] == district.targets["streetlights"] > 0
    assert all(district.zone_at(asset.position) is not None for asset in assets)
    with (tmp_path / "town" / "parking.csv").open(encoding="utf-8") as handle:
        assert [row["total_spots"] for row in csv.DictReader(handle)] == ["80"]


def test_import_without_boundaries_makes_one_zone(tmp_path: Path) -> None:
    source = write_osm(tmp_path / "town.osm")
    text = source.read_text(encoding="utf-8")
    source.write_text(text.replace('k="boundary" v="administrative"', 'k="x" v="y"'), "utf-8")
    import_osm(source, tmp_path / "town", "test-town")
    district = load_district(tmp_path / "town")
    assert [zone.id for zone in district.zones] == ["whole-district"]
    assert all(district.zone_at(node.position) for node in district.nodes.values())


def test_a_file_without_roads_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "empty.osm"
    source.write_text(
        '<?xml version="1.0"?><osm version="0.6"><node id="1" lat="37.6" lon="127"/></osm>',
        encoding="utf-8",
    )
    with pytest.raises(DistrictError, match=r"has no roads \(ways tagged highway"):
        import_osm(source, tmp_path / "out", "empty")
    with pytest.raises(DistrictError, match="use lowercase letters"):
        import_osm(source, tmp_path / "out", "My Town")
    with pytest.raises(DistrictError, match="does not exist"):
        import_osm(tmp_path / "missing.osm", tmp_path / "out", "missing")
