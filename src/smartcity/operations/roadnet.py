"""The district's road network for dispatch: routes out of a scene and routes to it.

Built from the tenant's `RoadSegment` entities (LineString locations; `laneUsage` forward only
or `category` oneway makes a one-way segment; `maximumAllowedSpeed` in km/h), with the live
`averageVehicleSpeed` of the `TrafficFlowObserved` entities that name the segment
(`refRoadSegment`, `laneDirection` forward or backward) where there is one. Segment ends meet
where their coordinates agree to about 10 cm. A scene is snapped to the nearest point of the
nearest segment, so a route starts where the incident is, not at a crossing 200 m away.

Distances are computed on a local plane around the district (equirectangular, exact to well
under a metre over a few kilometres).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import networkx as nx

from smartcity.core.entity import StoredEntity
from smartcity.operations.assets import is_a
from smartcity.operations.cameras import attribute
from smartcity.operations.plane import Plane, Position

Mode = Literal["vehicle", "foot"]
SCENE: Final = "scene"
ORIGIN: Final = "origin"
SNAP_DIGITS: Final = 6
DEFAULT_SPEED: Final = 30.0
"""km/h where a segment says no speed limit."""
FOOT_SPEED: Final = 5.0
"""km/h of a person running off and walking by turns."""
SLOWEST: Final = 3.0
"""km/h floor for a jammed segment, so a route through it is slow but still a route."""
MAX_SNAP: Final = 300.0
"""Metres: a scene farther than this from every road has no route."""


@dataclass(frozen=True, slots=True)
class Edge:
    """One direction of travel along a road segment."""

    segment: str
    name: str
    points: tuple[Position, ...]
    length: float
    speed_limit: float
    lanes: int
    """Lanes in this direction."""
    live_speed: float | None = None

    def seconds(self, mode: Mode = "vehicle") -> float:
        """Return the time to travel it (live speed where measured, else the limit)."""
        if mode == "foot":
            return self.length / (FOOT_SPEED / 3.6)
        speed = self.speed_limit if self.live_speed is None else max(self.live_speed, SLOWEST)
        return self.length / (min(speed, self.speed_limit) / 3.6)


@dataclass(frozen=True, slots=True)
class Path:
    """A route along the network: its edges (the first and last maybe partial), in order."""

    edges: tuple[Edge, ...]
    mode: Mode = "vehicle"
    ends_at_edge: bool = False
    """It leaves the district (ends at a road end on the map's edge)."""

    @property
    def length(self) -> float:
        """Return its length in metres."""
        return sum(e.length for e in self.edges)

    @property
    def seconds(self) -> float:
        """Return its travel time in seconds."""
        return sum(e.seconds(self.mode) for e in self.edges)

    @property
    def line(self) -> list[Position]:
        """Return its polyline."""
        points: list[Position] = []
        for edge in self.edges:
            for p in edge.points:
                if not points or points[-1] != p:
                    points.append(p)
        return points

    def segments(self) -> list[str]:
        """Return the road segment ids it runs along, in order, once each."""
        return list(dict.fromkeys(e.segment for e in self.edges))


def _key(p: Position) -> Position:
    return (round(p[0], SNAP_DIGITS), round(p[1], SNAP_DIGITS))


def _number(value: object, default: float) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


class RoadNetwork:
    """The directed road network of a tenant, with live speeds where they are measured."""

    def __init__(
        self, segments: Iterable[StoredEntity], flows: Iterable[StoredEntity] = ()
    ) -> None:
        live: dict[tuple[str, str], list[float]] = {}
        for flow in flows:
            segment = attribute(flow, "refRoadSegment")
            speed = attribute(flow, "averageVehicleSpeed")
            if isinstance(segment, str) and isinstance(speed, int | float):
                way = str(attribute(flow, "laneDirection") or "forward")
                live.setdefault((segment, way), []).append(float(speed))
        self.graph: nx.MultiDiGraph[Position] = nx.MultiDiGraph()
        lines: list[list[Position]] = []
        for segment in segments:
            if not is_a(segment, "RoadSegment"):
                continue
            geometry = attribute(segment, "location")
            if not isinstance(geometry, dict) or geometry.get("type") != "LineString":
                continue
            line = [_key((float(c[0]), float(c[1]))) for c in geometry.get("coordinates") or []]
            if len(line) < 2:
                continue
            lines.append(line)
            usage = attribute(segment, "laneUsage")
            category = attribute(segment, "category") or []
            oneway = "oneway" in category or (isinstance(usage, list) and usage == ["forward"])
            lanes = int(_number(attribute(segment, "totalLaneNumber"), 2))
            per_way = max(1, lanes if oneway else lanes // 2)
            name = str(attribute(segment, "name") or segment.id)
            limit = _number(attribute(segment, "maximumAllowedSpeed"), DEFAULT_SPEED)
            ways: list[tuple[str, list[Position]]] = [("forward", line)]
            if not oneway:
                ways.append(("backward", line[::-1]))
            for way, points in ways:
                speeds = live.get((segment.id, way))
                self.graph.add_edge(
                    points[0],
                    points[-1],
                    edge=Edge(
                        segment.id,
                        name,
                        tuple(points),
                        0.0,  # measured below, once the plane is known
                        limit,
                        per_way,
                        None if not speeds else sum(speeds) / len(speeds),
                    ),
                )
        nodes = list(self.graph.nodes)
        centre = (
            (sum(p[0] for p in nodes) / len(nodes), sum(p[1] for p in nodes) / len(nodes))
            if nodes
            else (0.0, 0.0)
        )
        self.plane = Plane(centre)
        for _, _, data in self.graph.edges(data=True):
            edge: Edge = data["edge"]
            data["edge"] = _with_length(edge, self.plane.length(edge.points))
        self.lines = lines

    def __len__(self) -> int:
        return int(self.graph.number_of_edges())

    def edges(self) -> list[Edge]:
        """Return every directed edge."""
        return [data["edge"] for _, _, data in self.graph.edges(data=True)]

    def snap(self, here: Position) -> tuple[Edge, float, float] | None:
        """Return the edge nearest a position, how far along it, and how far off it (metres)."""
        best: tuple[Edge, float, float] | None = None
        for edge in self.edges():
            gap, along, _ = self.plane.to_line(here, edge.points)
            if best is None or gap < best[2] - 1e-9:
                best = (edge, along, gap)
        if best is None or best[2] > MAX_SNAP:
            return None
        return best

    def with_scene(
        self, here: Position, mode: Mode, origin: Position | None = None
    ) -> nx.MultiDiGraph[Position | str] | None:
        """Return the network (undirected for `foot`) with the scene as a node on its road
        (and an origin as another, when given)."""
        points = {SCENE: here} if origin is None else {SCENE: here, ORIGIN: origin}
        snapped = {name: self.snap(where) for name, where in points.items()}
        if any(found is None for found in snapped.values()):
            return None
        nearest = {name: found[0] for name, found in snapped.items() if found is not None}
        split = {_stretch(edge) for edge in nearest.values()}
        graph: nx.MultiDiGraph[Position | str] = nx.MultiDiGraph()
        for u, v, data in self.graph.edges(data=True):
            if _stretch(data["edge"]) in split:
                continue  # the scene's own road: replaced by its halves below
            graph.add_edge(u, v, edge=data["edge"])
            if mode == "foot" and not self.graph.has_edge(v, u):
                graph.add_edge(v, u, edge=_reversed(data["edge"]))
        for name, edge in nearest.items():
            self._attach(graph, name, points[name], edge, mode)
        return graph

    def _attach(
        self,
        graph: nx.MultiDiGraph[Position | str],
        name: str,
        here: Position,
        nearest: Edge,
        mode: Mode,
    ) -> None:
        """Add a point on a road as a node, joined to both ends of its road (each way the
        road may be travelled)."""
        start, end = nearest.points[0], nearest.points[-1]
        pairs = [(nearest, start, end)]
        for _, _, data in self.graph.edges(end, data=True):
            edge = data["edge"]
            if edge.segment == nearest.segment and edge.points[-1] == start:
                pairs.append((edge, end, start))
        if mode == "foot" and len(pairs) == 1:
            pairs.append((_reversed(nearest), end, start))
        for edge, head, tail in pairs:
            _, along, _ = self.plane.to_line(here, edge.points)
            before, after = self.plane.split(edge.points, along)
            graph.add_edge(name, tail, edge=_with_length(edge, self.plane.length(after), after))
            graph.add_edge(head, name, edge=_with_length(edge, self.plane.length(before), before))

    def escape_routes(
        self,
        here: Position,
        *,
        count: int,
        distance: float,
        mode: Mode = "vehicle",
        overlap: float = 0.5,
    ) -> list[Path]:
        """Return up to `count` distinct routes out of a scene, fastest first.

        A route runs from the scene until it is `distance` metres away along the roads (it
        ends at the first crossing past that) or reaches a road end on the edge of the map.
        Routes are taken fastest first, skipping any that shares more than `overlap` of its
        length with one already taken.
        """
        graph = self.with_scene(here, mode)
        if graph is None:
            return []

        def metres(u: object, v: object, data: dict[object, dict[str, Edge]]) -> float:
            return min(d["edge"].length for d in data.values())

        def seconds(u: object, v: object, data: dict[object, dict[str, Edge]]) -> float:
            return min(d["edge"].seconds(mode) for d in data.values())

        reach = nx.single_source_dijkstra_path_length(graph, SCENE, weight=metres)
        exits: dict[Position | str, bool] = {}
        for node, far in reach.items():
            if node == SCENE:
                continue
            onward = [v for v in graph.successors(node) if v != node]
            ways_back = set(graph.predecessors(node)) | set(onward)
            if far >= distance and any(
                reach.get(u, math.inf) < distance for u in graph.predecessors(node)
            ):
                exits[node] = False
            elif far < distance and len(ways_back) <= 1:
                exits[node] = True
        times, paths = nx.single_source_dijkstra(graph, SCENE, weight=seconds)
        candidates = sorted((times[node], str(node), node) for node in exits if node in paths)
        chosen: list[Path] = []
        for _, _, node in candidates:
            route = Path(_edges(graph, paths[node], mode), mode, exits[node])
            if not route.edges or route.length == 0:
                continue
            if all(_shared(route, other) <= overlap * route.length for other in chosen):
                chosen.append(route)
            if len(chosen) == count:
                break
        return chosen

    def route_to(self, origin: Position, scene: Position, mode: Mode = "vehicle") -> Path | None:
        """Return the fastest route from a position (on its nearest road) to the scene."""
        graph = self.with_scene(scene, mode, origin)
        if graph is None:
            return None

        def seconds(u: object, v: object, data: dict[object, dict[str, Edge]]) -> float:
            return min(d["edge"].seconds(mode) for d in data.values())

        try:
            nodes = nx.dijkstra_path(graph, ORIGIN, SCENE, weight=seconds)
        except nx.NetworkXNoPath:
            return None
        return Path(_edges(graph, nodes, mode), mode)


def _with_length(edge: Edge, length: float, points: Sequence[Position] | None = None) -> Edge:
    return Edge(
        edge.segment,
        edge.name,
        tuple(edge.points if points is None else points),
        length,
        edge.speed_limit,
        edge.lanes,
        edge.live_speed,
    )


def _reversed(edge: Edge) -> Edge:
    return Edge(
        edge.segment,
        edge.name,
        edge.points[::-1],
        edge.length,
        edge.speed_limit,
        edge.lanes,
        edge.live_speed,
    )


def _edges(
    graph: nx.MultiDiGraph[Position | str], nodes: Sequence[Position | str], mode: Mode
) -> tuple[Edge, ...]:
    edges = []
    for u, v in itertools.pairwise(nodes):
        options = [d["edge"] for d in graph.get_edge_data(u, v).values()]
        edges.append(min(options, key=lambda e: e.seconds(mode)))
    return tuple(edges)


def _stretch(edge: Edge) -> tuple[str, frozenset[Position]]:
    """Return what names a stretch of road whichever way it is travelled."""
    return edge.segment, frozenset((edge.points[0], edge.points[-1]))


def _shared(a: Path, b: Path) -> float:
    """Return the metres of road two routes share."""
    theirs = {_stretch(e) for e in b.edges}
    return sum(e.length for e in a.edges if _stretch(e) in theirs)
