"""Write a district's files (road graph, zones, places, parking) from a local OpenStreetMap file.

osmnx reads the .osm XML the user already has; nothing is downloaded. It is an optional extra
(`pip install 'smartcity[osm]'`) because it brings pandas and geopandas with it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from smartcity.sim.entities import slug
from smartcity.sim.geodesy import line_length, rounded
from smartcity.sim.model import ASSET_KINDS, DistrictError

INSTALL_HINT = "install it with: pip install 'smartcity[osm]'  (osmnx reads local .osm files)"
DEFAULT_LANES = {"motorway": 3, "trunk": 3, "primary": 3, "secondary": 2, "tertiary": 2}
DEFAULT_SPEED = {"motorway": 80, "trunk": 70, "primary": 50, "secondary": 50, "tertiary": 40}
# Generated assets per kilometre of road, as in the Changdong model (about 30 km of road).
PER_KILOMETRE = {
    "cctv_cameras": 10.0,
    "traffic_detectors": 5.0,
    "streetlights": 800 / 30,
    "waste_bins": 200 / 30,
    "environment_sensors": 1.0,
    "beacons": 50 / 30,
    "points_of_interest": 200 / 30,
}
PLACE_TAGS: dict[str, dict[str, str]] = {
    "station": {"railway": "station"},
    "school": {"amenity": "school"},
    "market": {"amenity": "marketplace"},
    "park": {"leisure": "park"},
    "office": {"amenity": "townhall"},
    "apartment": {"landuse": "residential"},
}
SQUARE_METRES_PER_HOUSEHOLD = 60.0
"""Apartment land per household, to estimate households where OSM has no count."""


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import wrote."""

    folder: Path
    nodes: int
    links: int
    zones: int
    places: int
    parking_lots: int
    kilometres: float


def _osmnx() -> Any:
    try:
        import osmnx
    except ImportError as error:
        raise DistrictError(f"importing OpenStreetMap data needs osmnx; {INSTALL_HINT}") from error
    return osmnx


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _text(value: Any) -> str:
    value = _first(value)
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def _whole(value: Any, default: int) -> int:
    match = re.match(r"\s*(\d+)", _text(value))
    return int(match.group(1)) if match and int(match.group(1)) > 0 else default


def _speed(value: Any, default: int) -> int:
    """Return a maxspeed tag in km/h ("50", "30 mph"; anything else: the default)."""
    speed = _whole(value, default)
    return round(speed * 1.609344) if "mph" in _text(value) else speed


def _road_files(graph: Any, folder: Path) -> tuple[int, int, float]:
    """Write road_nodes.csv and road_links.csv; return nodes, links and kilometres."""
    used: set[Any] = set()
    links: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for u, v, data in sorted(graph.edges(data=True), key=lambda e: (e[0], e[1], str(e[2]))):
        oneway = bool(data.get("oneway", False))
        osm_id = _text(data.get("osmid"))
        key = (min(u, v), max(u, v), osm_id, round(float(data.get("length", 0)), 1))
        if not oneway and key in seen:
            continue
        seen.add(key)
        road_class = _text(data.get("highway")) or "unclassified"
        default_lanes = DEFAULT_LANES.get(road_class, 1) * (1 if oneway else 2)
        total_lanes = _whole(data.get("lanes"), default_lanes)
        lanes = total_lanes if oneway else max(1, total_lanes // 2)
        start = rounded((graph.nodes[u]["x"], graph.nodes[u]["y"]))
        end = rounded((graph.nodes[v]["x"], graph.nodes[v]["y"]))
        bends: list[tuple[float, float]] = []
        geometry = data.get("geometry")
        if geometry is not None:
            bends = [rounded((x, y)) for x, y in list(geometry.coords)[1:-1]]
        if line_length([start, *bends, end]) < 1.0:
            continue
        name = _text(data.get("name"))
        used.update((u, v))
        links.append(
            {
                "id": f"w{osm_id}-{len(links) + 1}",
                "from": f"n{u}",
                "to": f"n{v}",
                "name_ko": name,
                "name_en": _text(data.get("name:en")) or name,
                "road_class": road_class,
                "lanes": lanes,
                "speed_limit": _speed(data.get("maxspeed"), DEFAULT_SPEED.get(road_class, 30)),
                "oneway": str(oneway).lower(),
                "via": "; ".join(f"{x} {y}" for x, y in bends),
                "length": line_length([start, *bends, end]),
            }
        )
    nodes = [
        {
            "id": f"n{node}",
            "longitude": rounded((data["x"], data["y"]))[0],
            "latitude": rounded((data["x"], data["y"]))[1],
            "signalised": str(_text(data.get("highway")) == "traffic_signals").lower(),
            "name_ko": "",
            "name_en": "",
        }
        for node, data in sorted(graph.nodes(data=True))
        if node in used
    ]
    _write_csv(folder / "road_nodes.csv", nodes)
    kilometres = sum(float(str(link.pop("length"))) for link in links) / 1000
    _write_csv(folder / "road_links.csv", links)
    return len(nodes), len(links), kilometres


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        raise DistrictError(f"nothing to write to {path.name}: the extract has no such data")
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _features(osmnx: Any, source: Path, tags: dict[str, Any]) -> Any:
    """Return the OSM features with these tags as a GeoDataFrame (None if there are none)."""
    try:
        found = osmnx.features_from_xml(source, tags=tags)
    except (ValueError, osmnx._errors.InsufficientResponseError):
        return None
    return found if len(found) else None


def _geojson(path: Path, note: str, features: Iterable[dict[str, Any]]) -> int:
    rows = list(features)
    lines = [
        '{"type": "FeatureCollection",',
        f' "note": {orjson.dumps(note).decode()},',
        ' "features": [',
        ",\n".join("  " + orjson.dumps(f).decode() for f in rows),
        " ]}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(rows)


def _feature(identifier: str, row: Any, **properties: Any) -> dict[str, Any]:
    name = _text(row.get("name"))
    return {
        "type": "Feature",
        "properties": {
            "id": identifier,
            "name_ko": name,
            "name_en": _text(row.get("name:en")) or name,
            **properties,
        },
        "geometry": _rounded_geometry(row.geometry.__geo_interface__),
    }


def _rounded_geometry(geometry: Any) -> Any:
    """Return a GeoJSON geometry with every coordinate rounded like the rest of the files."""
    if isinstance(geometry, dict):
        return {key: _rounded_geometry(value) for key, value in geometry.items()}
    if isinstance(geometry, (list, tuple)):
        if len(geometry) == 2 and all(isinstance(x, float | int) for x in geometry):
            return list(rounded((float(geometry[0]), float(geometry[1]))))
        return [_rounded_geometry(item) for item in geometry]
    return geometry


def _zones(osmnx: Any, source: Path, graph: Any) -> list[dict[str, Any]]:
    """Return zones: the most detailed named administrative areas, or the road network's hull."""
    areas = _features(osmnx, source, {"boundary": "administrative"})
    if areas is not None:
        areas = areas[areas.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
        areas = areas[areas["name"].notna()] if "name" in areas else areas.iloc[0:0]
    if areas is not None and len(areas):
        finest = areas
        if "admin_level" in areas:
            levels = areas["admin_level"].map(lambda x: _whole(x, 0))
            finest = areas[levels == levels.max()]
        return [
            _feature(f"{slug(_text(row.get('name:en')) or _text(row.get('name')))}", row)
            for _, row in finest.sort_index().iterrows()
        ]
    from shapely.geometry import MultiPoint, mapping

    hull = MultiPoint([(d["x"], d["y"]) for _, d in graph.nodes(data=True)]).convex_hull
    return [
        {
            "type": "Feature",
            "properties": {"id": "whole-district", "name_ko": "전체", "name_en": "Whole district"},
            "geometry": _rounded_geometry(mapping(hull.buffer(0.001))),
        }
    ]


def _places(osmnx: Any, source: Path) -> list[dict[str, Any]]:
    places = []
    for kind, tags in PLACE_TAGS.items():
        found = _features(osmnx, source, tags)
        if found is None or "name" not in found:
            continue
        for index, row in found[found["name"].notna()].sort_index().iterrows():
            extra: dict[str, Any] = {"kind": kind, "description": "Imported from OpenStreetMap."}
            if kind == "station":
                extra["station_type"] = [
                    "subway" if _text(row.get("station")) == "subway" else "rail"
                ]
            if kind == "apartment":
                if row.geometry.geom_type != "Polygon":
                    continue
                area = abs(osmnx.projection.project_gdf(found.loc[[index]]).area.iloc[0])
                extra["households"] = max(1, round(area / SQUARE_METRES_PER_HOUSEHOLD))
            places.append(_feature(f"{kind}-{index[-1]}", row, **extra))
    return places


def _parking(osmnx: Any, source: Path) -> list[dict[str, Any]]:
    found = _features(osmnx, source, {"amenity": "parking"})
    if found is None:
        return []
    lots = []
    for index, row in found.sort_index().iterrows():
        point = row.geometry.representative_point()
        name = _text(row.get("name")) or f"주차장 {index[-1]}"
        lots.append(
            {
                "id": f"parking-{index[-1]}",
                "name_ko": name,
                "name_en": _text(row.get("name:en")) or name,
                "longitude": rounded((point.x, point.y))[0],
                "latitude": rounded((point.x, point.y))[1],
                "total_spots": _whole(row.get("capacity"), 50),
                "spot_sensors": "false",
                "category": "public" if _text(row.get("access")) != "private" else "private",
                "layout": "multiStorey"
                if _text(row.get("parking")) == "multi-storey"
                else "surface",
            }
        )
    return lots


def import_osm(source: Path, folder: Path, district_id: str, *, seed: int = 1) -> ImportReport:
    """Write the district files of the area an .osm file covers into `folder`."""
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", district_id):
        raise DistrictError(f"district id {district_id!r}: use lowercase letters, digits and '-'")
    osmnx = _osmnx()
    if not source.is_file():
        raise DistrictError(f"{source} does not exist: give the path of a local .osm XML file")
    folder.mkdir(parents=True, exist_ok=True)
    tags = osmnx.settings.useful_tags_way
    osmnx.settings.useful_tags_way = sorted({*tags, "name:en"})
    try:
        raw = osmnx.graph_from_xml(source, simplify=False, retain_all=True)
    except Exception as error:  # osmnx reports a bad file through many exception types
        raise DistrictError(
            f"{source} is not a readable OpenStreetMap XML file: {error}"
        ) from error
    finally:
        osmnx.settings.useful_tags_way = tags
    # The reader keeps every way of the file; a road is a way tagged highway=*.
    raw.remove_edges_from(
        [(u, v, k) for u, v, k, d in raw.edges(keys=True, data=True) if not d.get("highway")]
    )
    raw.remove_nodes_from([node for node in list(raw.nodes) if raw.degree(node) == 0])
    if raw.number_of_edges() == 0:
        raise DistrictError(f"{source} has no roads (ways tagged highway=*)")
    graph = osmnx.simplify_graph(
        raw, node_attrs_include=["highway"], edge_attrs_differ=["name", "highway"]
    )
    nodes, links, kilometres = _road_files(graph, folder)
    note = "Imported from OpenStreetMap (ODbL); check and edit by hand."
    zones = _geojson(folder / "zones.geojson", note, _zones(osmnx, source, graph))
    place_rows = _places(osmnx, source)
    places = _geojson(folder / "places.geojson", note, place_rows)
    lots = _parking(osmnx, source)
    files = {"zones": "zones.geojson", "places": "places.geojson"}
    files |= {"road_nodes": "road_nodes.csv", "road_links": "road_links.csv"}
    if lots:
        _write_csv(folder / "parking.csv", lots)
        files["parking"] = "parking.csv"
    kinds = {str(row["properties"]["kind"]) for row in place_rows}
    generate = {kind: round(PER_KILOMETRE[kind] * kilometres) for kind in ASSET_KINDS}
    if "apartment" not in kinds:
        generate["waste_bins"] = 0
    if not kinds & {"station", "market"}:
        generate["points_of_interest"] = 0
        generate["beacons"] = 0
    manifest = {
        "id": district_id,
        "name_ko": district_id,
        "name_en": district_id,
        "files": files,
        "seed": seed,
        "generate": generate,
    }
    (folder / "district.yaml").write_text(
        f"# {note}\n" + yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    return ImportReport(folder, nodes, links, zones, places, len(lots), kilometres)
