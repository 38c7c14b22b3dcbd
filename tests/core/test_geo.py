"""Tests of the NGSI-LD geo-query parser and predicate."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from smartcity.core.errors import BadRequestData
from smartcity.core.geo import (
    GEORELS,
    GeoPredicate,
    GeoQuery,
    geo_query_from_json,
    geometry_bbox,
    parse_geo_query,
    parse_geometry,
)

WGS84 = Geod(ellps="WGS84")
CHANGDONG = (127.0473, 37.6531)
NOWON = (127.0615, 37.6551)
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
# Roughly Dobong-gu: Changdong station is inside, Nowon station (east of it) is not.
DOBONG = [[127.00, 37.63], [127.055, 37.63], [127.055, 37.70], [127.00, 37.70], [127.00, 37.63]]


def point(lon: float, lat: float) -> dict[str, Any]:
    """Return a GeoJSON Point."""
    return {"type": "Point", "coordinates": [lon, lat]}


def polygon(ring: list[list[float]]) -> dict[str, Any]:
    """Return a GeoJSON Polygon with one ring."""
    return {"type": "Polygon", "coordinates": [ring]}


def square(lon: float, lat: float, half: float) -> dict[str, Any]:
    """Return a square Polygon centred on a point, `half` degrees each side."""
    west, east, south, north = lon - half, lon + half, lat - half, lat + half
    return polygon([[west, south], [east, south], [east, north], [west, north], [west, south]])


def predicate(georel: str, geometry: dict[str, Any]) -> GeoPredicate:
    """Return the predicate of a geo-query given as HTTP parameters."""
    query = parse_geo_query(georel, geometry["type"], json.dumps(geometry["coordinates"]), LOCATION)
    assert query is not None
    return GeoPredicate(query)


def destination(lon: float, lat: float, bearing: float, metres: float) -> tuple[float, float]:
    """Return the point some metres from another along a bearing (geodesic)."""
    end_lon, end_lat, _ = WGS84.fwd(lon, lat, bearing, metres)
    return float(end_lon), float(end_lat)


def in_box(box: tuple[float, float, float, float] | None, lon: float, lat: float) -> bool:
    """Return whether a box holds a point."""
    assert box is not None
    return box[0] <= lon <= box[2] and box[1] <= lat <= box[3]


# --- parse_geometry ---------------------------------------------------------------------------

VALID_GEOMETRIES = [
    point(*CHANGDONG),
    {"type": "Point", "coordinates": [127, 37, 12.5]},
    {"type": "MultiPoint", "coordinates": [list(CHANGDONG), list(NOWON)]},
    {"type": "LineString", "coordinates": [list(CHANGDONG), list(NOWON)]},
    {"type": "MultiLineString", "coordinates": [[list(CHANGDONG), list(NOWON)], [[1, 1], [2, 2]]]},
    polygon(DOBONG),
    {
        "type": "Polygon",
        "coordinates": [
            [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
            [[2, 2], [2, 3], [3, 3], [3, 2], [2, 2]],
        ],
    },
    {"type": "MultiPolygon", "coordinates": [[DOBONG], square(0, 0, 1)["coordinates"]]},
]


@pytest.mark.parametrize("geometry", VALID_GEOMETRIES)
def test_parse_geometry_returns_a_valid_geometry_unchanged(geometry: dict[str, Any]) -> None:
    assert parse_geometry(geometry) is geometry


@pytest.mark.parametrize(
    ("geometry", "fragment"),
    [
        ([127.0, 37.6], "JSON object"),
        ({"type": "Point"}, "'coordinates'"),
        ({"type": "Circle", "coordinates": [1, 2]}, 'type "Circle"'),
        ({"type": "GeometryCollection", "coordinates": []}, "not one of"),
        ({"type": "Point", "coordinates": [1]}, "[longitude, latitude]"),
        ({"type": "Point", "coordinates": [1, 2, 3, 4]}, "[longitude, latitude]"),
        ({"type": "Point", "coordinates": "1,2"}, "[longitude, latitude]"),
        ({"type": "Point", "coordinates": [1, "2"]}, "numbers only"),
        ({"type": "Point", "coordinates": [True, 2]}, "numbers only"),
        ({"type": "Point", "coordinates": [181, 2]}, "longitude 181"),
        ({"type": "Point", "coordinates": [37.65, 127.05]}, "latitude 127.05"),
        ({"type": "Point", "coordinates": [float("nan"), 2]}, "longitude NaN"),
        ({"type": "Point", "coordinates": [1, 2, float("inf")]}, "altitude"),
        ({"type": "Point", "coordinates": [10**400, 2]}, "longitude"),
        ({"type": "MultiPoint", "coordinates": []}, "1 positions or more"),
        ({"type": "LineString", "coordinates": [[1, 2]]}, "2 positions or more"),
        ({"type": "LineString", "coordinates": [[1, 2], [1, 2]]}, "Too few points"),
        ({"type": "LineString", "coordinates": [[1, 2], [1, 95]]}, "coordinates[1]: latitude"),
        ({"type": "MultiLineString", "coordinates": []}, "non-empty array of lines"),
        ({"type": "MultiLineString", "coordinates": [[[1, 2]]]}, "coordinates[0] must"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}, "4 positions or more"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "not a closed"),
        ({"type": "Polygon", "coordinates": []}, "linear rings"),
        (polygon([[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]), "Self-intersection"),
        (
            {
                "type": "Polygon",
                "coordinates": [
                    square(0, 0, 1)["coordinates"][0],
                    square(5, 5, 1)["coordinates"][0],
                ],
            },
            "Hole lies outside shell",
        ),
        (
            {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [0, 0]]]]},
            "coordinates[0][0]",
        ),
        (
            {"type": "MultiPolygon", "coordinates": [[DOBONG], [DOBONG]]},
            "MultiPolygon is not valid",
        ),
    ],
)
def test_parse_geometry_says_what_is_wrong(geometry: object, fragment: str) -> None:
    with pytest.raises(BadRequestData, match="invalid GeoJSON geometry") as caught:
        parse_geometry(geometry)
    assert fragment in caught.value.detail


def test_geometry_bbox_spans_every_position() -> None:
    line = {"type": "LineString", "coordinates": [list(CHANGDONG), list(NOWON)]}
    assert geometry_bbox(line) == (127.0473, 37.6531, 127.0615, 37.6551)
    assert geometry_bbox(point(*NOWON)) == (*NOWON, *NOWON)
    with pytest.raises(BadRequestData):
        geometry_bbox({"type": "Point", "coordinates": [200, 0]})


# --- parse_geo_query and geo_query_from_json --------------------------------------------------


def test_no_geo_parameters_is_no_geo_query() -> None:
    assert parse_geo_query(None, None, None, LOCATION) is None


def test_http_parameters_make_a_geo_query() -> None:
    query = parse_geo_query("near;maxDistance==2000", "Point", "[127.05,37.65]", LOCATION)
    assert query == GeoQuery(
        georel="near",
        geometry={"type": "Point", "coordinates": [127.05, 37.65]},
        geoproperty=LOCATION,
        max_distance=2000.0,
        min_distance=None,
    )


@pytest.mark.parametrize(
    ("georel", "max_distance", "min_distance"),
    [
        ("near;maxDistance==2000", 2000.0, None),
        ("near;maxDistance==0.5", 0.5, None),
        ("near;minDistance==100", None, 100.0),
        ("near;maxDistance==1e3", 1000.0, None),
        ("near;minDistance==100;maxDistance==2000", 2000.0, 100.0),
        ("within", None, None),
        ("contains", None, None),
        ("intersects", None, None),
        ("equals", None, None),
        ("disjoint", None, None),
        ("overlaps", None, None),
    ],
)
def test_georel_values(georel: str, max_distance: float | None, min_distance: float | None) -> None:
    query = parse_geo_query(georel, "Point", "[127.05,37.65]", LOCATION)
    assert query is not None
    assert query.georel == georel.split(";")[0]
    assert (query.max_distance, query.min_distance) == (max_distance, min_distance)


def test_coordinates_may_come_parsed() -> None:
    query = parse_geo_query("within", "Polygon", [DOBONG], LOCATION)
    assert query is not None
    assert query.geometry == polygon(DOBONG)


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates", "fragment"),
    [
        ("within", None, None, "missing: geometry, coordinates"),
        (None, "Point", "[1,2]", "missing: georel"),
        ("near;maxDistance==10", "Point", None, "missing: coordinates"),
        ("", "Point", "[1,2]", 'georel ""'),
        ("nearby;maxDistance==10", "Point", "[1,2]", 'georel "nearby'),
        ("Within", "Point", "[1,2]", "is not supported"),
        ("near", "Point", "[1,2]", "needs a distance"),
        ("near;", "Point", "[1,2]", "maxDistance==<metres>"),
        ("near;maxDistance=10", "Point", "[1,2]", "maxDistance==<metres>"),
        ("near;maxDistance:10", "Point", "[1,2]", "maxDistance==<metres>"),
        ("near;distance==10", "Point", "[1,2]", "maxDistance==<metres>"),
        ("near;maxDistance==", "Point", "[1,2]", "maxDistance must be a number"),
        ("near;maxDistance==ten", "Point", "[1,2]", "maxDistance must be a number"),
        ("near;maxDistance==-5", "Point", "[1,2]", "0 or more"),
        ("near;maxDistance==inf", "Point", "[1,2]", "maxDistance must be a number"),
        ("near;maxDistance==nan", "Point", "[1,2]", "maxDistance must be a number"),
        ("near;maxDistance==1e999", "Point", "[1,2]", "maxDistance must be a number"),
        ("near;maxDistance== 10", "Point", "[1,2]", "maxDistance must be a number"),
        ("near;minDistance==-1", "Point", "[1,2]", "minDistance must be"),
        ("near;maxDistance==1;maxDistance==2", "Point", "[1,2]", "maxDistance twice"),
        ("near;minDistance==20;maxDistance==10", "Point", "[1,2]", "greater than"),
        ("within;maxDistance==10", "Point", "[1,2]", "takes no distance"),
        ("within", "point", "[1,2]", 'geometry "point" is not supported'),
        ("within", "Circle", "[1,2]", "is not supported"),
        ("within", "", "[1,2]", "is not supported"),
        ("within", "Point", "", "JSON array"),
        ("within", "Point", "1,2", "JSON array"),
        ("within", "Point", "[1,2", "JSON array"),
        ("within", "Point", "[" * 100_000, "JSON array"),
        ("within", "Point", "[37.65,127.05]", "latitude 127.05"),
        ("within", "Point", "[NaN,2]", "longitude NaN"),
        ("within", "Point", "[[1,2]]", "valid Point"),
        ("within", "LineString", "[1,2]", "valid LineString"),
        ("within", "Polygon", "[[[0,0],[1,0],[1,1]]]", "4 positions or more"),
        ("within", "Polygon", "[[[0,0],[1,0],[1,1],[0,1]]]", "not a closed ring"),
        ("within", "Polygon", "[[[0,0],[1,1],[1,0],[0,1],[0,0]]]", "Self-intersection"),
    ],
)
def test_malformed_parameters_are_bad_request_data(
    georel: str | None, geometry: str | None, coordinates: str | None, fragment: str
) -> None:
    with pytest.raises(BadRequestData) as caught:
        parse_geo_query(georel, geometry, coordinates, LOCATION)
    assert fragment in caught.value.detail


def test_empty_geoproperty_is_bad_request_data() -> None:
    with pytest.raises(BadRequestData, match="geoproperty"):
        parse_geo_query("within", "Point", "[1,2]", "")


def test_geo_q_member_makes_a_geo_query() -> None:
    geo_q = {"georel": "near;maxDistance==1300", "geometry": "Point", "coordinates": [127.0, 37.6]}
    query = geo_query_from_json(geo_q, LOCATION)
    assert query.geoproperty == LOCATION
    assert query.max_distance == 1300.0
    assert query.geometry == point(127.0, 37.6)
    text = geo_query_from_json({**geo_q, "coordinates": "[127.0,37.6]", "geoproperty": "p"}, "x")
    assert text == GeoQuery("near", point(127.0, 37.6), "p", 1300.0, None)


@pytest.mark.parametrize(
    ("geo_q", "fragment"),
    [
        ([], "JSON object"),
        ({"georel": "within", "geometry": "Point"}, "lacks coordinates"),
        ({"geometry": "Point", "coordinates": [1, 2]}, "lacks georel"),
        ({"georel": 1, "geometry": "Point", "coordinates": [1, 2]}, "georel must be a string"),
        ({"georel": "within", "geometry": ["Point"], "coordinates": [1, 2]}, "geometry must be"),
        ({"georel": "within", "geometry": "Point", "coordinates": 1}, "coordinates must be"),
        (
            {"georel": "within", "geometry": "Point", "coordinates": [1, 2], "geoproperty": 3},
            "geoproperty must be a string",
        ),
        (
            {"georel": "within", "geometry": "Point", "coordinates": [1, 2], "geoProperty": "x"},
            "unknown members: geoProperty",
        ),
        ({"georel": "near", "geometry": "Point", "coordinates": [1, 2]}, "needs a distance"),
        ({"georel": "within", "geometry": "Point", "coordinates": [1, 200]}, "latitude 200"),
    ],
)
def test_malformed_geo_q_is_bad_request_data(geo_q: Any, fragment: str) -> None:
    with pytest.raises(BadRequestData) as caught:
        geo_query_from_json(geo_q, LOCATION)
    assert fragment in caught.value.detail


# --- GeoPredicate ----------------------------------------------------------------------------


def test_the_stations_are_about_1270_metres_apart() -> None:
    assert WGS84.inv(*CHANGDONG, *NOWON)[2] == pytest.approx(1272.6, abs=0.1)


def test_near_max_distance_between_the_stations() -> None:
    assert predicate("near;maxDistance==1300", point(*CHANGDONG)).matches(point(*NOWON))
    assert not predicate("near;maxDistance==1200", point(*CHANGDONG)).matches(point(*NOWON))


def test_near_min_distance_between_the_stations() -> None:
    assert predicate("near;minDistance==1200", point(*CHANGDONG)).matches(point(*NOWON))
    assert not predicate("near;minDistance==1300", point(*CHANGDONG)).matches(point(*NOWON))
    far_away = point(129.04, 35.11)  # Busan
    assert predicate("near;minDistance==1300", point(*CHANGDONG)).matches(far_away)
    ring = predicate("near;minDistance==1000;maxDistance==1300", point(*CHANGDONG))
    assert ring.matches(point(*NOWON))
    assert not ring.matches(point(*CHANGDONG))
    assert not ring.matches(far_away)


def test_near_a_line_measures_to_its_nearest_point() -> None:
    # A north-south line through Changdong; Nowon lies about 1,250 m east of it.
    line = {"type": "LineString", "coordinates": [[127.0473, 37.64], [127.0473, 37.67]]}
    east_of_line = WGS84.inv(127.0473, 37.6551, *NOWON)[2]
    assert predicate(f"near;maxDistance=={east_of_line * 1.005}", line).matches(point(*NOWON))
    assert not predicate(f"near;maxDistance=={east_of_line * 0.995}", line).matches(point(*NOWON))


def test_near_measures_between_shapes() -> None:
    around_nowon = square(*NOWON, 0.001)  # about 90 m east-west and 110 m north-south each side
    assert predicate("near;maxDistance==1200", point(*CHANGDONG)).matches(around_nowon)
    assert not predicate("near;maxDistance==1100", point(*CHANGDONG)).matches(around_nowon)
    assert predicate("near;maxDistance==1", polygon(DOBONG)).matches(point(*CHANGDONG))
    assert not predicate("near;minDistance==1", polygon(DOBONG)).matches(point(*CHANGDONG))
    street = {"type": "LineString", "coordinates": [list(NOWON), [127.08, 37.66]]}
    assert predicate("near;maxDistance==1300", point(*CHANGDONG)).matches(street)
    assert not predicate("near;minDistance==1300", point(*CHANGDONG)).matches(street)


def test_within_dobong() -> None:
    within = predicate("within", polygon(DOBONG))
    assert within.matches(point(*CHANGDONG))
    assert not within.matches(point(*NOWON))
    assert within.matches({"type": "LineString", "coordinates": [[127.01, 37.64], [127.05, 37.69]]})
    assert not within.matches({"type": "LineString", "coordinates": [list(CHANGDONG), list(NOWON)]})
    assert within.matches(square(127.03, 37.66, 0.01))
    assert not within.matches(point(127.00, 37.65))  # on the boundary


def test_contains_the_reference() -> None:
    contains = predicate("contains", point(*CHANGDONG))
    assert contains.matches(polygon(DOBONG))
    assert not contains.matches(square(*NOWON, 0.001))
    assert contains.matches(point(*CHANGDONG))
    assert contains.matches(
        {"type": "LineString", "coordinates": [[127.0473, 37.6], [127.0473, 37.7]]}
    )


def test_intersects_and_disjoint() -> None:
    crossing = {"type": "LineString", "coordinates": [list(CHANGDONG), list(NOWON)]}
    outside = {"type": "LineString", "coordinates": [[127.06, 37.64], [127.07, 37.66]]}
    intersects, disjoint = (
        predicate("intersects", polygon(DOBONG)),
        predicate("disjoint", polygon(DOBONG)),
    )
    for geometry, meets in [
        (point(*CHANGDONG), True),
        (point(*NOWON), False),
        (crossing, True),
        (outside, False),
        (square(*NOWON, 0.01), True),
        (square(*NOWON, 0.001), False),
    ]:
        assert intersects.matches(geometry) is meets
        assert disjoint.matches(geometry) is not meets


def test_equals_is_topological() -> None:
    equals = predicate("equals", polygon(DOBONG))
    assert equals.matches(polygon(DOBONG))
    assert equals.matches(polygon(DOBONG[2:] + DOBONG[1:3]))  # same ring, other start
    assert not equals.matches(square(127.03, 37.66, 0.01))
    assert predicate("equals", point(*CHANGDONG)).matches(point(*CHANGDONG))
    assert not predicate("equals", point(*CHANGDONG)).matches(point(*NOWON))


def test_overlaps_needs_a_shared_part_and_parts_apart() -> None:
    overlaps = predicate("overlaps", polygon(DOBONG))
    assert overlaps.matches(square(127.055, 37.65, 0.01))
    assert not overlaps.matches(square(127.03, 37.66, 0.01))  # inside
    assert not overlaps.matches(square(*NOWON, 0.001))  # apart
    assert not overlaps.matches(point(*CHANGDONG))  # not the same dimension


INVALID_STORED = [
    None,
    "POINT (127 37)",
    {},
    {"type": "Point"},
    {"type": "Point", "coordinates": [127.0]},
    {"type": "Point", "coordinates": [37.65, 127.05]},
    {"type": "Point", "coordinates": ["127", "37"]},
    {"type": "Point", "coordinates": [float("nan"), 37.0]},
    {"type": "Circle", "coordinates": [127.0, 37.6], "radius": 5},
    {"type": "LineString", "coordinates": [[127.0, 37.6]]},
    polygon([[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]),
    polygon([[127.0, 37.6], [127.1, 37.6], [127.1, 37.7]]),
]


@pytest.mark.parametrize("stored", INVALID_STORED)
@pytest.mark.parametrize(
    "georel",
    [
        "within",
        "contains",
        "intersects",
        "equals",
        "disjoint",
        "overlaps",
        "near;maxDistance==100000",
        "near;minDistance==1",
    ],
)
def test_invalid_stored_geometry_never_matches(georel: str, stored: object) -> None:
    assert predicate(georel, point(*CHANGDONG)).matches(stored) is False
    assert predicate(georel, polygon(DOBONG)).matches(stored) is False


def test_bbox_of_each_relation() -> None:
    dobong_box = (127.00, 37.63, 127.055, 37.70)
    for georel in ["within", "contains", "intersects", "equals", "overlaps"]:
        assert predicate(georel, polygon(DOBONG)).bbox == dobong_box
    assert predicate("disjoint", polygon(DOBONG)).bbox is None
    assert predicate("near;minDistance==10", polygon(DOBONG)).bbox is None
    box = predicate("near;maxDistance==1000", polygon(DOBONG)).bbox
    assert box is not None
    west, south, east, north = box
    assert 37.62 < south < 37.63
    assert 37.70 < north < 37.71
    assert 126.98 < west < 127.00
    assert 127.055 < east < 127.07


def test_near_bbox_takes_the_whole_width_near_a_pole_or_the_antimeridian() -> None:
    assert predicate("near;maxDistance==50000", point(0, 89.9)).bbox == pytest.approx(
        (-180, 89.45, 180, 90), abs=0.01
    )
    box = predicate("near;maxDistance==50000", point(179.9, 0)).bbox
    assert box is not None
    assert (box[0], box[2]) == (-180.0, 180.0)
    across = point(-179.95, 0.0)
    assert predicate("near;maxDistance==20000", point(179.95, 0)).matches(across)
    assert not predicate("near;maxDistance==5000", point(179.95, 0)).matches(across)


def test_a_predicate_checks_its_query() -> None:
    with pytest.raises(BadRequestData):
        GeoPredicate(
            GeoQuery("within", {"type": "Point", "coordinates": [1]}, LOCATION, None, None)
        )


# --- properties ------------------------------------------------------------------------------

korea_lon = st.floats(124.5, 131.0)
korea_lat = st.floats(33.0, 38.6)
bearings = st.floats(0.0, 360.0)
distances = st.floats(1.0, 50_000.0)


@given(korea_lon, korea_lat, distances, bearings)
def test_near_is_exact_about_a_point_and_its_box_holds_the_circle(
    lon: float, lat: float, metres: float, bearing: float
) -> None:
    near = predicate(f"near;maxDistance=={metres!r}", point(lon, lat))
    inside = destination(lon, lat, bearing, metres * 0.99)
    outside = destination(lon, lat, bearing, metres * 1.01)
    assert in_box(near.bbox, *inside)
    assert near.matches(point(*inside))
    assert not near.matches(point(*outside))


@given(st.floats(-179.0, 179.0), st.floats(-89.0, 89.0), st.floats(1.0, 2_000_000.0), bearings)
def test_near_box_holds_the_circle_anywhere(
    lon: float, lat: float, metres: float, bearing: float
) -> None:
    near = predicate(f"near;maxDistance=={metres!r}", point(lon, lat))
    assert in_box(near.bbox, *destination(lon, lat, bearing, metres))


@settings(deadline=None)
@given(
    korea_lon,
    korea_lat,
    st.floats(0.0, 20_000.0),
    bearings,
    st.floats(10.0, 50_000.0),
    bearings,
)
def test_near_a_multipoint_is_accurate_off_the_projection_centre(
    lon: float, lat: float, spread: float, spread_bearing: float, metres: float, bearing: float
) -> None:
    first, second = (lon, lat), destination(lon, lat, spread_bearing, spread)
    reference = {"type": "MultiPoint", "coordinates": [list(first), list(second)]}
    entity = destination(lon, lat, bearing, metres)
    expected = min(WGS84.inv(*first, *entity)[2], WGS84.inv(*second, *entity)[2])
    assume(expected > 1.0)
    assert predicate(f"near;maxDistance=={expected * 1.005!r}", reference).matches(point(*entity))
    assert not predicate(f"near;maxDistance=={expected * 0.995!r}", reference).matches(
        point(*entity)
    )
    line = {"type": "LineString", "coordinates": [list(entity), [entity[0] + 1e-4, entity[1]]]}
    assert predicate(f"near;maxDistance=={expected * 1.005!r}", reference).matches(line)


georel_texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(GEORELS).map(str),
    st.builds(lambda rest: "near;" + rest, st.text(max_size=30)),
    st.builds(lambda number: f"near;maxDistance=={number}", st.text(max_size=12)),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children)
    ),
    max_leaves=20,
)
coordinate_texts = st.one_of(st.text(max_size=40), json_values.map(json.dumps))


@settings(deadline=None)
@given(
    georel_texts, st.sampled_from(["Point", "Polygon", "LineString", "Box", ""]), coordinate_texts
)
def test_any_parameters_give_a_query_or_bad_request_data(
    georel: str, geometry: str, coordinates: str
) -> None:
    try:
        query = parse_geo_query(georel, geometry, coordinates, LOCATION)
    except BadRequestData:
        return
    assert query is not None
    assert GeoPredicate(query).matches(point(*CHANGDONG)) in (True, False)


@given(json_values)
def test_any_json_is_a_geometry_or_bad_request_data(value: object) -> None:
    with contextlib.suppress(BadRequestData):
        assert parse_geometry(value) is value
    assert predicate("intersects", polygon(DOBONG)).matches(value) in (True, False)
