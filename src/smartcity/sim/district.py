"""Read a district folder: district.yaml and the plain files it names (docs/district.md).

Every file is something a city's staff can open and edit (GeoJSON in any GIS, CSV in a
spreadsheet), so the files are checked strictly and every problem names the file, the line or
feature, and what to write instead.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import yaml
from shapely.geometry import shape

from smartcity.sim.geodesy import Position
from smartcity.sim.model import (
    ASSET_KINDS,
    PLACE_KINDS,
    District,
    DistrictError,
    ParkingLot,
    Place,
    RoadLink,
    RoadNode,
    Zone,
)
from smartcity.sim.parking_details import read_parking_details


def builtin_district_path(name: str = "changdong") -> Path:
    """Return the folder of a district shipped with the package."""
    return Path(str(resources.files("smartcity.sim").joinpath("districts", name)))


def load_district(path: Path | None = None) -> District:
    """Read and check a district folder (or its district.yaml); default: Changdong."""
    folder = builtin_district_path() if path is None else path
    manifest = folder if folder.is_file() else folder / "district.yaml"
    if not manifest.is_file():
        raise DistrictError(f"{manifest} does not exist: a district folder needs a district.yaml")
    document = _read_yaml(manifest)
    root = manifest.parent
    files = _mapping(document.get("files"), manifest, "files")
    generate = _mapping(document.get("generate", {}), manifest, "generate")
    targets = {}
    for kind in ASSET_KINDS:
        count = generate.get(kind, 0)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise DistrictError(f"{manifest}: generate.{kind} must be a whole number >= 0")
        targets[kind] = count
    unknown = sorted(set(generate) - set(ASSET_KINDS))
    if unknown:
        raise DistrictError(
            f"{manifest}: unknown generate keys {unknown}; known: {', '.join(ASSET_KINDS)}"
        )
    seed = document.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise DistrictError(f"{manifest}: seed must be a whole number")
    district_id = str(document.get("id") or "")
    if not district_id.replace("-", "").isalnum() or not district_id.islower():
        raise DistrictError(f"{manifest}: id must be lowercase letters, digits and '-'")

    def file(key: str, required: bool = True) -> Path | None:
        name = files.get(key)
        if name is None:
            if required:
                raise DistrictError(f"{manifest}: files.{key} is missing")
            return None
        target = root / str(name)
        if not target.is_file():
            raise DistrictError(f"{manifest}: files.{key} names {target}, which does not exist")
        return target

    timezone = str(document.get("timezone", "UTC"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DistrictError(
            f"{manifest}: timezone {timezone!r} is not an IANA time zone (e.g. Asia/Seoul)"
        ) from None
    nodes = read_road_nodes(_required(file("road_nodes")))
    parking_file = file("parking", required=False)
    places_file = file("places", required=False)
    details_file = file("parking_details", required=False)
    parking = read_parking(parking_file) if parking_file else []
    details = None
    if details_file is not None:
        details = read_parking_details(details_file, {lot.id for lot in parking})
    return District(
        id=district_id,
        name_ko=str(document.get("name_ko", district_id)),
        name_en=str(document.get("name_en", district_id)),
        root=root,
        seed=seed,
        targets=targets,
        zones=read_zones(_required(file("zones"))),
        places=read_places(places_file) if places_file else [],
        nodes=nodes,
        links=read_road_links(_required(file("road_links")), nodes),
        parking=parking,
        timezone=timezone,
        parking_details=details,
    )


def _required(path: Path | None) -> Path:
    assert path is not None  # file(required=True) raised otherwise
    return path


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise DistrictError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise DistrictError(f"{path} must be a YAML mapping (key: value lines)")
    return document


def _mapping(value: Any, path: Path, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DistrictError(f"{path}: {key} must be a mapping")
    return value


def _features(path: Path) -> Iterator[tuple[int, dict[str, Any], dict[str, Any]]]:
    """Yield (index, properties, geometry) of each feature of a GeoJSON FeatureCollection."""
    try:
        document = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise DistrictError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise DistrictError(f"{path} must be a GeoJSON FeatureCollection")
    for index, feature in enumerate(document.get("features", [])):
        properties = feature.get("properties") if isinstance(feature, dict) else None
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(properties, dict) or not isinstance(geometry, dict):
            raise DistrictError(f"{path} feature {index}: needs properties and a geometry")
        try:
            if not shape(geometry).is_valid:
                raise DistrictError(f"{path} feature {index}: the geometry is not valid")
        except (ValueError, TypeError, AttributeError, KeyError) as error:
            raise DistrictError(f"{path} feature {index}: bad geometry ({error})") from error
        for name in ("id", "name_ko", "name_en"):
            if not isinstance(properties.get(name), str) or not properties[name]:
                raise DistrictError(f"{path} feature {index}: property {name!r} is required")
        yield index, properties, geometry


def read_zones(path: Path) -> list[Zone]:
    """Read zones (administrative areas) from a GeoJSON file of polygons."""
    zones = []
    for index, properties, geometry in _features(path):
        if geometry["type"] not in ("Polygon", "MultiPolygon"):
            raise DistrictError(f"{path} feature {index}: a zone must be a Polygon")
        zones.append(
            Zone(
                id=properties["id"],
                name_ko=properties["name_ko"],
                name_en=properties["name_en"],
                parent=str(properties.get("district", "")),
                geometry=geometry,
            )
        )
    _unique([zone.id for zone in zones], path)
    return zones


def read_places(path: Path) -> list[Place]:
    """Read named places from a GeoJSON file."""
    places = []
    known = ("id", "kind", "name_ko", "name_en", "description")
    for index, properties, geometry in _features(path):
        kind = properties.get("kind")
        if kind not in PLACE_KINDS:
            raise DistrictError(
                f"{path} feature {index}: kind must be one of {', '.join(sorted(PLACE_KINDS))}"
            )
        if kind == "apartment" and not isinstance(properties.get("households"), int):
            raise DistrictError(f"{path} feature {index}: an apartment needs households (number)")
        places.append(
            Place(
                id=properties["id"],
                kind=str(kind),
                name_ko=properties["name_ko"],
                name_en=properties["name_en"],
                description=str(properties.get("description", "")),
                geometry=geometry,
                extra={k: v for k, v in properties.items() if k not in known},
            )
        )
    _unique([place.id for place in places], path)
    return places


def _rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise DistrictError(f"{path}: missing columns {missing} (header line)")
        for row in reader:
            yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}


def _number(path: Path, line: int, column: str, text: str, *, minimum: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DistrictError(
            f"{path} line {line}: {column} must be a number, not {text!r}"
        ) from None
    if value < minimum:
        raise DistrictError(f"{path} line {line}: {column} must be >= {minimum}, not {text}")
    return value


def _whole(path: Path, line: int, column: str, text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise DistrictError(f"{path} line {line}: {column} must be a whole number >= 1")
    return int(text)


def _flag(path: Path, line: int, column: str, text: str) -> bool:
    if text.lower() not in ("true", "false", ""):
        raise DistrictError(f"{path} line {line}: {column} must be true or false, not {text!r}")
    return text.lower() == "true"


def _position(path: Path, line: int, row: dict[str, str]) -> Position:
    longitude = _number(path, line, "longitude", row["longitude"], minimum=-180)
    latitude = _number(path, line, "latitude", row["latitude"], minimum=-90)
    if longitude > 180 or latitude > 90:
        raise DistrictError(f"{path} line {line}: longitude/latitude out of range (WGS84 degrees)")
    return (longitude, latitude)


def read_road_nodes(path: Path) -> dict[str, RoadNode]:
    """Read road graph nodes from CSV: id, longitude, latitude, signalised[, name_ko, name_en]."""
    nodes: dict[str, RoadNode] = {}
    for line, row in _rows(path, ("id", "longitude", "latitude", "signalised")):
        if not row["id"] or row["id"] in nodes:
            raise DistrictError(f"{path} line {line}: node id missing or repeated")
        nodes[row["id"]] = RoadNode(
            id=row["id"],
            position=_position(path, line, row),
            signalised=_flag(path, line, "signalised", row["signalised"]),
            name_ko=row.get("name_ko", ""),
            name_en=row.get("name_en", ""),
        )
    return nodes


def _bends(path: Path, line: int, text: str) -> tuple[Position, ...]:
    points = []
    for pair in filter(None, (part.strip() for part in text.split(";"))):
        parts = pair.split()
        if len(parts) != 2:
            raise DistrictError(f"{path} line {line}: via must be 'lon lat; lon lat; ...'")
        points.append(
            (
                _number(path, line, "via", parts[0], minimum=-180),
                _number(path, line, "via", parts[1], minimum=-90),
            )
        )
    return tuple(points)


def read_road_links(path: Path, nodes: dict[str, RoadNode]) -> list[RoadLink]:
    """Read road links from CSV; each names its two nodes, lanes per direction and km/h."""
    columns = ("id", "from", "to", "name_ko", "name_en", "road_class", "lanes", "speed_limit")
    links = []
    for line, row in _rows(path, (*columns, "oneway")):
        for end in ("from", "to"):
            if row[end] not in nodes:
                raise DistrictError(f"{path} line {line}: {end} names unknown node {row[end]!r}")
        if row["from"] == row["to"]:
            raise DistrictError(f"{path} line {line}: a link must join two different nodes")
        first, last = nodes[row["from"]].position, nodes[row["to"]].position
        links.append(
            RoadLink(
                id=row["id"],
                start=row["from"],
                end=row["to"],
                name_ko=row["name_ko"],
                name_en=row["name_en"],
                road_class=row["road_class"] or "unclassified",
                lanes=_whole(path, line, "lanes", row["lanes"]),
                speed_limit=_whole(path, line, "speed_limit", row["speed_limit"]),
                oneway=_flag(path, line, "oneway", row["oneway"]),
                points=(first, *_bends(path, line, row.get("via", "")), last),
            )
        )
    _unique([link.id for link in links], path)
    return links


def read_parking(path: Path) -> list[ParkingLot]:
    """Read parking lots from CSV."""
    columns = ("id", "name_ko", "name_en", "longitude", "latitude", "total_spots", "spot_sensors")
    lots = []
    for line, row in _rows(path, columns):
        lots.append(
            ParkingLot(
                id=row["id"],
                name_ko=row["name_ko"],
                name_en=row["name_en"],
                position=_position(path, line, row),
                total_spots=_whole(path, line, "total_spots", row["total_spots"]),
                spot_sensors=_flag(path, line, "spot_sensors", row["spot_sensors"]),
                category=tuple(filter(None, row.get("category", "").split(";"))),
                layout=row.get("layout", "") or "surface",
            )
        )
    _unique([lot.id for lot in lots], path)
    return lots


def _unique(ids: list[str], path: Path) -> None:
    seen: set[str] = set()
    for identifier in ids:
        if identifier in seen:
            raise DistrictError(f"{path}: id {identifier!r} appears twice; ids must be unique")
        seen.add(identifier)
