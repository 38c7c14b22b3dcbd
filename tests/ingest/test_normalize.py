"""Normalization tables and edge cases: units, times and coordinates."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from smartcity.ingest.normalize import (
    check_finite,
    normalize_geometry,
    normalize_measure,
    parse_moment,
    utc_timestamp,
)
from smartcity.ingest.ports import Rejected
from smartcity.ingest.units import UNITS, convert, unit_for, unit_in_description

SEOUL = ZoneInfo("Asia/Seoul")
CHANGDONG = (127.0477, 37.6531)
"""Changdong station, WGS84 longitude and latitude."""


@pytest.mark.parametrize(
    ("spelling", "code"),
    [
        ("°C", "CEL"),
        ("celsius", "CEL"),
        ("Celsius", "CEL"),
        ("C", "CEL"),
        ("degC", "CEL"),
        ("CEL", "CEL"),
        ("°F", "FAH"),
        ("K", "KEL"),
        ("%", "P1"),
        ("percent", "P1"),
        ("hPa", "A97"),
        ("Pa", "PAL"),
        ("mbar", "MBR"),
        ("km/h", "KMH"),
        ("KM/H", "KMH"),
        ("m/s", "MTS"),
        ("lux", "LUX"),
        ("lx", "LUX"),
        ("dB", "2N"),
        ("dBA", "2N"),
        ("dB(A)", "2N"),
        ("µg/m³", "GQ"),
        ("ug/m3", "GQ"),
        ("mg/m³", "GP"),
        ("ppm", "59"),
        ("ppb", "61"),
        ("kg", "KGM"),
        ("g", "GRM"),
        ("W", "WTT"),
        ("kW", "KWT"),
        ("kWh", "KWH"),
        ("V", "VLT"),
        ("A", "AMP"),
        ("m", "MTR"),
        ("cm", "CMT"),
        ("L", "LTR"),
        ("m³", "MTQ"),
        ("s", "SEC"),
        ("h", "HUR"),
        ("°", "DD"),
        (" km/h ", "KMH"),
    ],
)
def test_unit_spellings(spelling: str, code: str) -> None:
    unit = unit_for(spelling)
    assert unit is not None
    assert unit.code == code


@pytest.mark.parametrize("spelling", ["furlong", "M", "c", "degrees kelvin-ish", ""])
def test_unknown_spellings(spelling: str) -> None:
    assert unit_for(spelling) is None


def test_every_code_names_itself_and_converts_to_itself() -> None:
    for code, unit in UNITS.items():
        assert unit_for(code) is unit
        assert convert(12.5, unit, unit) == 12.5


@pytest.mark.parametrize(
    ("value", "sent", "wanted", "expected"),
    [
        (212, "°F", None, (100, "CEL")),
        (32, "F", None, (0, "CEL")),
        (-40, "°F", None, (-40, "CEL")),
        (21.5, "°C", None, (21.5, "CEL")),
        (1013.25, "hPa", None, (1013.25, "A97")),
        (1013.25, "hPa", "PAL", (101325, "PAL")),
        (500, "g", "KGM", (0.5, "KGM")),
        (500, "g", None, (500, "GRM")),
        (10, "m/s", "KMH", (36, "KMH")),
        (60, "mph", None, (96.56064, "KMH")),
        (40, "%", "C62", (0.4, "C62")),
        (250, "cm", "MTR", (2.5, "MTR")),
        (3600, "Wh", "KWH", (3.6, "KWH")),
        (293.15, "K", "CEL", (20, "CEL")),
        (35, "µg/m³", None, (35, "GQ")),
        (0.035, "mg/m³", "GQ", (35, "GQ")),
        ([10, 20], "m/s", "KMH", ([36, 72], "KMH")),
        ("ok", "CEL", None, ("ok", "CEL")),
        (7, "XYZ", None, (7, "XYZ")),
    ],
)
def test_measures_are_converted_only_where_the_unit_changes(
    value: Any, sent: str, wanted: str | None, expected: tuple[Any, str]
) -> None:
    target = UNITS[wanted] if wanted else None
    converted, code = normalize_measure(value, sent, target, "attribute")
    assert code == expected[1]
    if isinstance(expected[0], list):
        assert converted == pytest.approx(expected[0])
    else:
        assert converted == pytest.approx(expected[0])
        assert type(converted) is type(expected[0]) or isinstance(expected[0], float)


@pytest.mark.parametrize(
    ("value", "sent", "wanted", "message"),
    [
        (21, "furlong", None, "unknown unit 'furlong'"),
        (21, "", None, "must be a unit code"),
        (21, 7, None, "must be a unit code"),
        (21, "CEL", "KGM", "cannot be converted"),
        (21, "XYZ", "KGM", "send KGM"),
        ("hot", "°F", None, "must be a number"),
    ],
)
def test_bad_units_are_refused(value: Any, sent: Any, wanted: str | None, message: str) -> None:
    with pytest.raises(Rejected, match=message) as refused:
        normalize_measure(value, sent, UNITS[wanted] if wanted else None, "temperature")
    assert refused.value.reason == "unit"
    assert refused.value.stage == "normalize"
    assert refused.value.path in ("temperature.unitCode", "temperature.value")


@pytest.mark.parametrize(
    ("description", "code"),
    [
        ("Property. Units:'meters'. The average width", "MTR"),
        ("Units:'Kilometer per hour (Km/h)'", "KMH"),
        ("Units: 'KGM' of waste", "KGM"),
        ("Units:'Kilograms'", "KGM"),
        ("Units:'Degree'", "DD"),
        ("Units:'Hertz (Hz)'", "HTZ"),
        ("Units:'Liters per square meter'", None),
        ("The name of the item", None),
    ],
)
def test_units_declared_by_the_models(description: str, code: str | None) -> None:
    unit = unit_in_description(description)
    assert (unit.code if unit else None) == code


@pytest.mark.parametrize(
    ("value", "zone", "expected"),
    [
        ("2026-11-28T10:00:00+09:00", UTC, "2026-11-28T01:00:00.000000Z"),
        ("2026-11-28T10:00:00+0900", UTC, "2026-11-28T01:00:00.000000Z"),
        ("2026-11-28T01:00:00Z", UTC, "2026-11-28T01:00:00.000000Z"),
        ("2026-11-28t01:00:00z", UTC, "2026-11-28T01:00:00.000000Z"),
        ("2026-11-28T01:00:00.5-05:00", UTC, "2026-11-28T06:00:00.500000Z"),
        ("2026-11-28 10:00:00", SEOUL, "2026-11-28T01:00:00.000000Z"),
        ("2026-11-28T10:00:00", UTC, "2026-11-28T10:00:00.000000Z"),
        ("2016-03-15T11:00:00.00Z", UTC, "2016-03-15T11:00:00.000000Z"),
        (1764291600, UTC, "2025-11-28T01:00:00.000000Z"),
        (1764291600000, UTC, "2025-11-28T01:00:00.000000Z"),
        (1764291600.25, UTC, "2025-11-28T01:00:00.250000Z"),
        ("1764291600", UTC, "2025-11-28T01:00:00.000000Z"),
        ("1764291600123", UTC, "2025-11-28T01:00:00.123000Z"),
    ],
)
def test_times_become_utc_with_a_z(value: Any, zone: Any, expected: str) -> None:
    assert utc_timestamp(value, zone, "dateObserved") == expected


@pytest.mark.parametrize(
    "value", ["yesterday", "2026-13-01T00:00:00Z", "", True, None, [2026], 1e300, "12:00"]
)
def test_unreadable_times_are_refused(value: Any) -> None:
    with pytest.raises(Rejected) as refused:
        utc_timestamp(value, UTC, "dateObserved.value")
    assert (refused.value.reason, refused.value.stage, refused.value.path) == (
        "time",
        "normalize",
        "dateObserved.value",
    )
    assert "ISO 8601" in refused.value.message


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from(
            [UTC, SEOUL, timezone(timedelta(hours=-3, minutes=-30)), timezone(timedelta(hours=14))]
        ),
    )
)
@example(datetime(1987, 10, 11, 2, 0, fold=1, tzinfo=SEOUL))  # Seoul's last DST change
@example(datetime(1987, 5, 10, 2, 30, tzinfo=SEOUL))  # an hour that did not exist in Seoul
def test_any_offset_names_the_same_moment(moment: datetime) -> None:
    stamp = utc_timestamp(moment.isoformat(), UTC, "t")
    assert stamp.endswith("Z")
    # Compared in UTC: aware datetimes of two zones compare unequal when one falls in a
    # daylight-saving fold or gap (PEP 495), whatever instant they name.
    assert parse_moment(stamp, UTC) == moment.astimezone(UTC)
    seconds = moment.timestamp()
    if seconds >= 1e9:  # epoch numbers are read from 2001 on (nine digits or more)
        assert abs(parse_moment(seconds, UTC) - moment) < timedelta(microseconds=2)
        milliseconds = round(seconds * 1000)
        assert abs(parse_moment(milliseconds, UTC) - moment) < timedelta(milliseconds=1)


def _point(coordinates: list[Any], crs: Any = None) -> dict[str, Any]:
    point: dict[str, Any] = {"type": "Point", "coordinates": coordinates}
    if crs is not None:
        point["crs"] = crs
    return point


def test_valid_positions_are_kept() -> None:
    madrid = _point([-3.7122, 40.4238])
    assert normalize_geometry(madrid, "location") == madrid
    # Valid as [lon, lat] even if it were meant the other way: kept (only Korea is guessed).
    assert normalize_geometry(_point([40.4238, -3.7122]), "location")["coordinates"] == [
        40.4238,
        -3.7122,
    ]


def test_latitude_first_in_korea_is_swapped() -> None:
    swapped = normalize_geometry(_point([CHANGDONG[1], CHANGDONG[0], 35.0]), "location")
    assert swapped["coordinates"] == [CHANGDONG[0], CHANGDONG[1], 35.0]
    line = {"type": "LineString", "coordinates": [[37.65, 127.04], [37.66, 127.05]]}
    assert normalize_geometry(line, "location")["coordinates"] == [[127.04, 37.65], [127.05, 37.66]]


@pytest.mark.parametrize(
    ("coordinates", "hint"),
    [
        ([10.0, 100.0], "[longitude, latitude]"),
        ([181.0, 10.0], "[longitude, latitude]"),
        ([204209.27, 561497.53], "declare their system"),
    ],
)
def test_positions_out_of_range_are_refused(coordinates: list[float], hint: str) -> None:
    with pytest.raises(Rejected, match=hint) as refused:
        normalize_geometry(_point(coordinates), "location.value")
    assert (refused.value.reason, refused.value.path) == (
        "out-of-range",
        "location.value.coordinates",
    )


def test_a_line_half_in_korea_is_not_guessed() -> None:
    mixed = {"type": "LineString", "coordinates": [[37.65, 127.04], [127.05, 37.66]]}
    with pytest.raises(Rejected) as refused:
        normalize_geometry(mixed, "location")
    assert refused.value.reason == "out-of-range"


@pytest.mark.parametrize(
    ("crs", "easting", "northing"),
    [
        ("EPSG:5186", 204209.27, 561497.53),
        ({"type": "name", "properties": {"name": "EPSG:5186"}}, 204209.27, 561497.53),
        ("urn:ogc:def:crs:EPSG::5186", 204209.27, 561497.53),
        ("EPSG:5179", 960102.83, 1961608.06),
        ("EPSG:2097", 204394.88, 461192.46),
    ],
)
def test_korean_projected_coordinates_are_converted(
    crs: Any, easting: float, northing: float
) -> None:
    for pair in ([easting, northing], [northing, easting]):  # either axis order
        converted = normalize_geometry(_point(pair, crs), "location")
        assert "crs" not in converted
        lon, lat = converted["coordinates"]
        assert lon == pytest.approx(CHANGDONG[0], abs=1e-5)
        assert lat == pytest.approx(CHANGDONG[1], abs=1e-5)


def test_projected_polygons_and_collections_are_converted() -> None:
    ring = [
        [204209.27, 561497.53],
        [204309.27, 561497.53],
        [204309.27, 561597.53],
        [204209.27, 561497.53],
    ]
    polygon = {"type": "Polygon", "coordinates": [ring], "crs": "EPSG:5186"}
    converted = normalize_geometry(polygon, "location")
    assert converted["coordinates"][0][0] == pytest.approx([CHANGDONG[0], CHANGDONG[1]], abs=1e-5)
    assert len(converted["coordinates"][0]) == 4
    collection = {
        "type": "GeometryCollection",
        "crs": "EPSG:5186",
        "geometries": [_point([204209.27, 561497.53])],
    }
    inner = normalize_geometry(collection, "location")["geometries"][0]
    assert inner["coordinates"] == pytest.approx([CHANGDONG[0], CHANGDONG[1]], abs=1e-5)
    assert "crs" not in inner


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (_point([1.0, 2.0], "EPSG:999999"), "geometry"),
        (_point([1.0, 2.0], {"type": "name"}), "geometry"),
        (_point([204209.27, 9561497.53], "EPSG:5186"), "out-of-range"),
        (_point(["127", "37"]), "geometry"),
        (_point([127.0]), "geometry"),
        (_point([True, 37.0]), "geometry"),
        (_point([math.nan, 37.0]), "out-of-range"),
        ({"type": "Circle", "coordinates": [1, 2]}, "geometry"),
        ({"type": "LineString", "coordinates": []}, "geometry"),
        ({"type": "Polygon", "coordinates": [[1, 2]]}, "geometry"),
        ("POINT(127 37)", "geometry"),
    ],
)
def test_malformed_geometries_are_refused(value: Any, reason: str) -> None:
    with pytest.raises(Rejected) as refused:
        normalize_geometry(value, "location")
    assert refused.value.reason == reason
    assert refused.value.stage == "normalize"


def test_non_finite_numbers_are_out_of_range() -> None:
    check_finite({"a": [1.0, {"b": 2}]}, "x")
    with pytest.raises(Rejected) as refused:
        check_finite({"a": [1.0, {"b": math.inf}]}, "x")
    assert (refused.value.reason, refused.value.path) == ("out-of-range", "x.a[1].b")
