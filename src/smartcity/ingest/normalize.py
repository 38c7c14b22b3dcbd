"""Normalize values: units to UN/CEFACT codes, times to UTC ISO 8601 (Z), places to WGS84.

Each function takes what a device or an adapter sent and returns the platform's form, or raises
`Rejected` (stage "normalize") with the path at fault and what to change. Values are converted
only where the unit changes; nothing is guessed silently except two well-defined cases: epoch
numbers in seconds or milliseconds (told apart by size), and [latitude, longitude] pairs that
are only valid swapped and then fall in Korea (where this platform runs).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any, Final

from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from smartcity.ingest.ports import Rejected
from smartcity.ingest.units import (
    PREFERRED,
    UNITS,
    Unit,
    convert,
    looks_like_common_code,
    unit_for,
)

STAGE: Final = "normalize"
OUT_OF_RANGE: Final = "out-of-range"

KOREA: Final = (123.5, 32.5, 132.5, 43.5)
"""Longitude/latitude box around the Korean peninsula, for telling swapped pairs apart."""

_DEPTH: Final = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "Polygon": 2,
    "MultiLineString": 2,
    "MultiPolygon": 3,
}
_EPOCH: Final = re.compile(r"^-?\d{9,}(\.\d+)?$")
Position = list[float]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _significant(value: float) -> float | int:
    """Drop the floating-point noise a conversion adds (68 °F is 20, not 20.000000000000004)."""
    rounded = float(f"{value:.12g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(item) for item in value)
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    return True


def check_finite(value: Any, path: str) -> None:
    """Refuse NaN and infinities anywhere in a value (JSON has none; a decoder may make them)."""
    if _finite(value):
        return
    if isinstance(value, float):
        raise Rejected(
            OUT_OF_RANGE, f"{path} is {value}: send a finite number", stage=STAGE, path=path
        )
    items = enumerate(value) if isinstance(value, list) else value.items()
    for key, item in items:
        check_finite(item, f"{path}[{key}]" if isinstance(value, list) else f"{path}.{key}")


# -- units ------------------------------------------------------------------------------------


def normalize_measure(
    value: Any, unit_text: Any, wanted: Unit | None, path: str
) -> tuple[Any, str]:
    """Return the value in the unit the model wants (or the preferred one) and its code.

    `wanted` is the unit the model declares for the attribute, if it declares one; `path`
    names the attribute (its `value` and `unitCode` members are reported).
    """
    where = f"{path}.unitCode"
    if not isinstance(unit_text, str) or not unit_text.strip():
        raise Rejected(
            "unit",
            f"{where} must be a unit code such as 'CEL', not {unit_text!r}",
            stage=STAGE,
            path=where,
        )
    unit = unit_for(unit_text)
    if unit is None:
        code = unit_text.strip()
        if not looks_like_common_code(code):
            raise Rejected(
                "unit",
                f"{where}: unknown unit {code!r}; use a UN/CEFACT common code "
                "(CEL, P1, KMH, ...) or a known symbol (°C, %, km/h, ...)",
                stage=STAGE,
                path=where,
            )
        if wanted is not None and wanted.code != code:
            raise Rejected(
                "unit",
                f"{where}: the model wants {wanted.name} ({wanted.code}); "
                f"{code} cannot be converted to it here: send {wanted.code}",
                stage=STAGE,
                path=where,
            )
        return value, code
    target = wanted or UNITS.get(PREFERRED.get(unit.code, ""), unit)
    if target.dimension != unit.dimension:
        raise Rejected(
            "unit",
            f"{where}: the model wants {target.name} ({target.code}), "
            f"which {unit.name} ({unit.code}) cannot be converted to",
            stage=STAGE,
            path=where,
        )
    if target.code == unit.code:
        return value, unit.code
    return _converted(value, unit, target, f"{path}.value"), target.code


def _converted(value: Any, unit: Unit, target: Unit, path: str) -> Any:
    if _number(value):
        return _significant(convert(float(value), unit, target))
    if isinstance(value, list) and all(_number(item) for item in value):
        return [_significant(convert(float(item), unit, target)) for item in value]
    raise Rejected(
        "unit",
        f"{path}: a value in {unit.name} must be a number to be converted "
        f"to {target.name}, not {value!r}",
        stage=STAGE,
        path=path,
    )


# -- times ------------------------------------------------------------------------------------


def parse_moment(value: Any, naive_zone: tzinfo) -> datetime:
    """Return the moment an ISO 8601 text or an epoch number (seconds or ms) names.

    A text without an offset is read in `naive_zone`. ValueError says what is wrong.
    """
    if _number(value) or (isinstance(value, str) and _EPOCH.match(value.strip())):
        seconds = float(value)
        # 1e11 s is the year 5138: anything larger is milliseconds (or finer).
        for divisor in (1.0, 1e3, 1e6, 1e9):
            if abs(seconds / divisor) < 1e11:
                seconds /= divisor
                break
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as error:
            raise ValueError(f"{value!r} is not a time the platform can hold") from error
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is neither an ISO 8601 text nor epoch seconds")
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=naive_zone)
    return moment


def utc_timestamp(value: Any, naive_zone: tzinfo, path: str) -> str:
    """Return a time as UTC ISO 8601 with a Z, or raise Rejected ("time")."""
    try:
        moment = parse_moment(value, naive_zone).astimezone(UTC)
        # The broker's format (core.clock.isoformat), without strftime's cost.
        return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    except (ValueError, OverflowError) as error:
        raise Rejected(
            "time",
            f"{path}: {value!r} is not a time ({error}); send ISO 8601 with an offset "
            "(2026-11-28T10:00:00+09:00) or epoch seconds",
            stage=STAGE,
            path=path,
        ) from error


# -- places -----------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _to_wgs84(crs_name: str) -> tuple[Transformer, tuple[float, float, float, float] | None]:
    """Return the transformer from a CRS to WGS84 (x, y order) and the CRS's area of use."""
    crs = CRS.from_user_input(crs_name)
    area = crs.area_of_use
    bounds = None
    if area is not None:
        margin = 0.25  # degrees: points just off the coast still belong
        bounds = (area.west - margin, area.south - margin, area.east + margin, area.north + margin)
    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True), bounds


def _crs_name(crs: Any, path: str) -> str:
    name = crs.get("properties", {}).get("name") if isinstance(crs, dict) else crs
    if not isinstance(name, str) or not name:
        raise Rejected(
            "geometry",
            f"{path}.crs must be {{'type': 'name', 'properties': "
            "{'name': 'EPSG:5186'}} or a CRS name",
            stage=STAGE,
            path=f"{path}.crs",
        )
    # "urn:ogc:def:crs:EPSG::5186" and "EPSG:5186" both name the same system.
    match = re.fullmatch(r"urn:ogc:def:crs:EPSG:[\d.]*:(\d+)", name)
    return f"EPSG:{match.group(1)}" if match else name


def _positions(coordinates: Any, depth: int, path: str) -> list[Position]:
    if depth == 0:
        if (
            not isinstance(coordinates, list)
            or len(coordinates) not in (2, 3)
            or not all(_number(c) for c in coordinates)
        ):
            raise Rejected(
                "geometry",
                f"{path} must be a position [longitude, latitude] of numbers, not {coordinates!r}",
                stage=STAGE,
                path=path,
            )
        check_finite(coordinates, path)
        return [coordinates]
    if not isinstance(coordinates, list) or not coordinates:
        raise Rejected("geometry", f"{path} must be a non-empty array", stage=STAGE, path=path)
    found: list[Position] = []
    for index, item in enumerate(coordinates):
        found.extend(_positions(item, depth - 1, f"{path}[{index}]"))
    return found


def _rebuild(coordinates: Any, depth: int, replace: Callable[[Position], Position]) -> Any:
    if depth == 0:
        return replace(coordinates)
    return [_rebuild(item, depth - 1, replace) for item in coordinates]


def _valid(position: Position) -> bool:
    return -180 <= position[0] <= 180 and -90 <= position[1] <= 90


def _in_korea(position: Position) -> bool:
    west, south, east, north = KOREA
    return west <= position[0] <= east and south <= position[1] <= north


def _swap(position: Position) -> Position:
    return [position[1], position[0], *position[2:]]


def normalize_geometry(value: Any, path: str) -> dict[str, Any]:
    """Return a GeoJSON geometry in WGS84 [lon, lat]; convert a declared projected CRS."""
    if not isinstance(value, dict):
        raise Rejected(
            "geometry", f"{path} must be a GeoJSON geometry object", stage=STAGE, path=path
        )
    kind = value.get("type")
    if kind == "GeometryCollection":
        members = value.get("geometries")
        if not isinstance(members, list):
            raise Rejected(
                "geometry",
                f"{path}.geometries must be an array",
                stage=STAGE,
                path=f"{path}.geometries",
            )
        crs = value.get("crs")
        geometries = [
            normalize_geometry(m if crs is None else {**m, "crs": crs}, f"{path}.geometries[{i}]")
            for i, m in enumerate(members)
        ]
        return {k: v for k, v in value.items() if k != "crs"} | {"geometries": geometries}
    if kind not in _DEPTH:
        raise Rejected(
            "geometry",
            f"{path}.type must be one of {', '.join(_DEPTH)} or GeometryCollection, not {kind!r}",
            stage=STAGE,
            path=f"{path}.type",
        )
    depth = _DEPTH[kind]
    where = f"{path}.coordinates"
    positions = _positions(value.get("coordinates"), depth, where)
    if "crs" in value:
        replace = _projected(positions, _crs_name(value["crs"], path), where)
    else:
        replace = _geographic(positions, where)
    coordinates = _rebuild(value["coordinates"], depth, replace)
    return {k: v for k, v in value.items() if k != "crs"} | {"coordinates": coordinates}


def _geographic(positions: list[Position], where: str) -> Callable[[Position], Position]:
    if all(_valid(p) for p in positions):
        return lambda position: position
    if all(_in_korea(_swap(p)) for p in positions):
        return _swap
    bad = next(p for p in positions if not _valid(p))
    if any(abs(c) > 1000 for c in bad[:2]):
        hint = (
            "these look like projected coordinates in metres: declare their system, e.g. "
            '"crs": {"type": "name", "properties": {"name": "EPSG:5186"}}'
        )
    else:
        hint = "GeoJSON positions are [longitude, latitude]"
    raise Rejected(
        OUT_OF_RANGE,
        f"{where}: {bad} is not a WGS84 position (longitude within "
        f"±180, latitude within ±90); {hint}",
        stage=STAGE,
        path=where,
    )


def _projected(
    positions: list[Position], crs_name: str, where: str
) -> Callable[[Position], Position]:
    try:
        transformer, bounds = _to_wgs84(crs_name)
    except CRSError as error:
        raise Rejected(
            "geometry",
            f"{where}: unknown coordinate reference system "
            f"{crs_name!r}; name it as EPSG:<code> (EPSG:5186, EPSG:5179, ...)",
            stage=STAGE,
            path=where,
        ) from error

    def to_wgs84(position: Position) -> Position:
        lon, lat = transformer.transform(position[0], position[1])
        return [round(lon, 8), round(lat, 8), *position[2:]]

    def inside(position: Position) -> bool:
        if not (math.isfinite(position[0]) and math.isfinite(position[1])):
            return False
        if bounds is None:
            return _valid(position)
        west, south, east, north = bounds
        return west <= position[0] <= east and south <= position[1] <= north

    if all(inside(to_wgs84(p)) for p in positions):
        return to_wgs84
    # The EPSG axis order of the Korean systems is (northing, easting), and Korean surveying
    # writes X for northing: a pair given that way lands in the system's area swapped.
    if all(inside(to_wgs84(_swap(p))) for p in positions):
        return lambda position: to_wgs84(_swap(position))
    raise Rejected(
        OUT_OF_RANGE,
        f"{where}: the coordinates fall outside the area where "
        f"{crs_name} is used; check the values and the declared system",
        stage=STAGE,
        path=where,
    )
