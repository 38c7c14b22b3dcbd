"""The road graph routes: the main places are connected by plausible shortest paths."""

from __future__ import annotations

import pytest

from smartcity.sim.geodesy import distance
from smartcity.sim.model import District
from smartcity.sim.roads import RoadGraph


def test_every_junction_reaches_every_other(changdong_roads: RoadGraph) -> None:
    assert changdong_roads.is_connected()
    signalised = [n for n, data in changdong_roads.graph.nodes(data=True) if data["signalised"]]
    assert len(signalised) >= 20


def test_links_carry_lanes_speed_and_geodesic_length(changdong: District) -> None:
    for link in changdong.links:
        straight = distance(link.points[0], link.points[-1])
        assert link.length == pytest.approx(straight, rel=1e-9) or link.length > straight
        assert 20 < link.length < 2000, link.id
        assert link.lanes >= 1
        assert link.speed_limit >= 30
    expressway = [link for link in changdong.links if link.name_en == "Dongbu Expressway"]
    assert {link.speed_limit for link in expressway} == {80}


@pytest.mark.parametrize(
    ("origin", "destination", "shortest", "longest"),
    [
        ("changdong", "seoul-arena", 200, 2000),
        ("changdong", "nowon", 1000, 2500),
        ("changdong", "dobong-gu-office", 1300, 3000),
        ("nowon", "changdong-depot", 600, 3000),
        ("ssangmun", "platform-changdong-61", 1000, 3500),
    ],
)
def test_routes_between_main_places_are_plausible(
    changdong: District,
    changdong_roads: RoadGraph,
    origin: str,
    destination: str,
    shortest: float,
    longest: float,
) -> None:
    places = {place.id: place for place in changdong.places}
    start, end = places[origin].anchor, places[destination].anchor
    route = changdong_roads.route_between(start, end)
    assert shortest <= route.length <= longest
    # A road route is never shorter than the straight line between its end junctions.
    first = changdong.nodes[route.nodes[0]].position
    last = changdong.nodes[route.nodes[-1]].position
    assert route.length >= distance(first, last)
    assert route.travel_time > route.length / (80 / 3.6)


def test_one_way_links_are_routed_one_way(changdong: District) -> None:
    from dataclasses import replace

    link = next(link for link in changdong.links if link.id == "arena-1")
    one_way = replace(changdong, links=[replace(link, oneway=True)], _zone_shapes=[])
    graph = RoadGraph(one_way)
    assert graph.graph.has_edge(link.start, link.end)
    assert not graph.graph.has_edge(link.end, link.start)
    assert graph.route(link.start, link.end).length == pytest.approx(link.length)
