"""The road network of RoadSegment entities: one-way streets, live speeds, routes out and in."""

from __future__ import annotations

from typing import Any

from smartcity.core.entity import StoredEntity
from smartcity.operations.roadnet import RoadNetwork

SDM = "https://smartdatamodels.org/dataModel.Transportation/"
STEP = 0.0045
"""About 400 m of latitude (and 395 m of longitude at 37.65 N)."""
ORIGIN = (127.05, 37.65)


def at(x: float, y: float) -> list[float]:
    return [round(ORIGIN[0] + x * STEP, 6), round(ORIGIN[1] + y * STEP, 6)]


def prop(value: Any) -> list[dict[str, Any]]:
    return [{"type": "Property", "value": value}]


def segment(
    name: str, line: list[list[float]], *, oneway: bool = False, speed: float = 50, lanes: int = 2
) -> StoredEntity:
    return StoredEntity(
        f"urn:ngsi-ld:RoadSegment:{name}",
        [SDM + "RoadSegment"],
        {
            "location": [
                {"type": "GeoProperty", "value": {"type": "LineString", "coordinates": line}}
            ],
            "name": prop(name),
            "laneUsage": prop(["forward"] if oneway else ["forward", "backward"]),
            "maximumAllowedSpeed": prop(speed),
            "totalLaneNumber": prop(lanes),
        },
    )


def flow(segment_name: str, speed: float, way: str = "forward") -> StoredEntity:
    return StoredEntity(
        f"urn:ngsi-ld:TrafficFlowObserved:{segment_name}-{way}",
        [SDM + "TrafficFlowObserved"],
        {
            "refRoadSegment": [
                {"type": "Relationship", "object": f"urn:ngsi-ld:RoadSegment:{segment_name}"}
            ],
            "averageVehicleSpeed": prop(speed),
            "laneDirection": prop(way),
        },
    )


def grid() -> list[StoredEntity]:
    """A plus-shaped crossing at (0, 0) with arms 2 steps long, and a one-way east arm."""
    return [
        segment("north", [at(0, 0), at(0, 1), at(0, 2)]),
        segment("south", [at(0, 0), at(0, -1), at(0, -2)]),
        segment("west", [at(0, 0), at(-1, 0), at(-2, 0)], speed=30, lanes=2),
        segment("east", [at(2, 0), at(1, 0), at(0, 0)], oneway=True),  # into the crossing only
    ]


def scene() -> tuple[float, float]:
    x, y = at(0, -0.5)
    return (x + 0.00005, y)  # 4 m off the southern arm, half a step south of the crossing


def test_a_scene_snaps_to_its_road_and_routes_leave_every_way_the_law_allows() -> None:
    network = RoadNetwork(grid())
    edge, _along, off = network.snap(scene()) or (None, 0.0, 0.0)
    assert edge is not None
    assert edge.segment.endswith("south")
    assert off < 6
    routes = network.escape_routes(scene(), count=5, distance=600)
    ends = sorted(r.segments()[-1].rsplit(":", 1)[-1] for r in routes)
    # Out by the south arm, or through the crossing north or west: not east (one-way in).
    assert ends == ["north", "south", "west"]
    times = [r.seconds for r in routes]
    assert times == sorted(times)
    assert all(r.length >= 600 or r.ends_at_edge for r in routes)


def test_on_foot_the_one_way_arm_is_a_way_out_too() -> None:
    routes = RoadNetwork(grid()).escape_routes(scene(), count=5, distance=600, mode="foot")
    assert sorted(r.segments()[-1].rsplit(":", 1)[-1] for r in routes) == [
        "east",
        "north",
        "south",
        "west",
    ]


def test_live_speeds_reorder_the_routes() -> None:
    free = RoadNetwork(grid()).escape_routes(scene(), count=3, distance=1000)
    jammed = RoadNetwork(grid(), [flow("south", 4.0, "forward")]).escape_routes(
        scene(), count=3, distance=1000
    )
    assert free[0].segments()[-1].endswith("south")
    assert not jammed[0].segments()[-1].endswith("south")
    assert jammed[-1].seconds > free[-1].seconds


def test_the_fastest_way_in_respects_one_way_streets() -> None:
    network = RoadNetwork(grid())
    east_end = tuple(at(2, 0))
    route = network.route_to((east_end[0], east_end[1]), scene())
    assert route is not None
    assert route.segments() == ["urn:ngsi-ld:RoadSegment:east", "urn:ngsi-ld:RoadSegment:south"]
    inbound = RoadNetwork(
        [segment("a", [at(0, 0), at(0, -2)], oneway=True), segment("b", [at(0, -2), at(2, -2)])]
    )
    # The scene is on a one-way street flowing south: from its far end there is no way in.
    assert inbound.route_to((at(2, -2)[0], at(2, -2)[1]), scene()) is None


def test_no_road_near_means_no_route() -> None:
    network = RoadNetwork(grid())
    assert network.escape_routes((127.2, 37.8), count=3, distance=500) == []
    assert RoadNetwork([]).escape_routes(scene(), count=3, distance=500) == []
