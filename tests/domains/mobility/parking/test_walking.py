"""Walking distances over the district's road graph, or great-circle times a detour factor."""

from __future__ import annotations

import pytest
from pyproj import Geod

from smartcity.domains.mobility.parking.walking import (
    ACCESS_DETOUR,
    DETOUR,
    MAX_DETOUR,
    WalkingGraph,
    great_circle,
)

A, B, C = (127.0400, 37.6500), (127.0500, 37.6500), (127.0500, 37.6600)


def test_great_circle_is_within_half_a_percent_of_the_ellipsoid() -> None:
    _, _, metres = Geod(ellps="WGS84").inv(A[0], A[1], C[0], C[1])
    assert great_circle(A, C) == pytest.approx(metres, rel=0.005)


def test_without_roads_the_detour_factor_applies() -> None:
    walk = WalkingGraph([]).from_destination(C).walk(A)
    assert walk.method == "detour"
    assert walk.metres == pytest.approx(great_circle(A, C) * DETOUR, abs=0.1)


def test_along_the_roads_with_access_legs_capped_by_the_longest_detour() -> None:
    graph = WalkingGraph([[A, B, C]])
    along = graph.from_destination(C).walk(A)
    assert along.method == "network"
    cap = great_circle(A, C) * MAX_DETOUR
    assert along.metres == pytest.approx(min(great_circle(A, B) + great_circle(B, C), cap), abs=0.1)
    near = (127.0450, 37.6505)  # just off the road between A and B
    off = graph.from_destination(B).walk(near)
    node, access = graph.nearest(near)
    expected = access * ACCESS_DETOUR + great_circle(node, B)
    assert off.metres == pytest.approx(min(expected, great_circle(near, B) * MAX_DETOUR), abs=0.1)
    assert off.minutes == pytest.approx(off.metres / 1.25 / 60, abs=0.1)


def test_another_component_of_the_graph_falls_back_to_the_detour() -> None:
    far = (127.0700, 37.6700)
    graph = WalkingGraph([[A, B], [far, (127.0710, 37.6710)]])
    walk = graph.from_destination(A).walk(far)
    assert walk.method == "detour"
