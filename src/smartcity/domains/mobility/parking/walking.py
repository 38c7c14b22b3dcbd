"""Walking distance from a parking site to a destination, over the district's own road graph.

The graph is the tenant's `RoadSegment` entities (their LineString geometries; the simulator
loads Changdong's, an import loads another district's), walkable both ways. A walk is the
straight access legs to and from the nearest graph nodes times `ACCESS_DETOUR`, plus the
shortest path between them; because the graph holds the arterial roads only (no alleys or
crossings), the result is capped at the great-circle distance times `MAX_DETOUR`. Without road
segments the estimate is the great-circle distance times `DETOUR` (the method says which).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import networkx as nx

from smartcity.core.entity import LOCATION, StoredEntity

Position = tuple[float, float]
Method = Literal["network", "detour"]
EARTH_RADIUS: Final = 6_371_008.8
DETOUR: Final = 1.3
"""Great-circle -> walking metres in a Korean urban grid without a graph (a common factor)."""
ACCESS_DETOUR: Final = 1.2
MAX_DETOUR: Final = 1.6
WALKING_SPEED: Final = 1.25
"""Metres per second (4.5 km/h)."""
SNAP_DIGITS: Final = 6
MAX_REMEMBERED: Final = 10_000


def great_circle(a: Position, b: Position) -> float:
    """Return the haversine distance in metres between two (longitude, latitude) positions."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class Walk:
    """An estimated walk: metres, minutes and how it was estimated."""

    metres: float
    minutes: float
    method: Method


class WalkingGraph:
    """The walkable graph of a district's road segments (possibly empty)."""

    def __init__(self, lines: Iterable[Sequence[Position]]) -> None:
        self.graph: nx.Graph[Position] = nx.Graph()
        for line in lines:
            points = [(round(p[0], SNAP_DIGITS), round(p[1], SNAP_DIGITS)) for p in line]
            for a, b in itertools.pairwise(points):
                if a != b:
                    self.graph.add_edge(a, b, length=great_circle(a, b))
        self.nodes: list[Position] = list(self.graph.nodes)
        self._nearest: dict[Position, tuple[Position, float]] = {}

    @classmethod
    def from_entities(cls, segments: Iterable[StoredEntity]) -> WalkingGraph:
        """Build the graph from RoadSegment entities' LineString locations."""
        lines: list[list[Position]] = []
        for segment in segments:
            for instance in segment.attrs.get(LOCATION, []):
                geometry = instance.get("value")
                if isinstance(geometry, dict) and geometry.get("type") == "LineString":
                    coordinates = geometry.get("coordinates") or []
                    lines.append([(float(c[0]), float(c[1])) for c in coordinates])
        return cls(lines)

    def nearest(self, position: Position) -> tuple[Position, float]:
        """Return the graph node nearest a position and its great-circle distance (sites do
        not move: each one's answer is kept)."""
        found = self._nearest.get(position)
        if found is None:
            best = min(self.nodes, key=lambda node: _flat(node, position))
            found = (best, great_circle(best, position))
            if len(self._nearest) < MAX_REMEMBERED:
                self._nearest[position] = found
        return found

    def from_destination(self, destination: Position) -> WalkPlanner:
        """Return a planner that measures walks to one destination (one shortest-path run)."""
        if not self.nodes:
            return WalkPlanner(self, destination, None, 0.0, {})
        node, access = self.nearest(destination)
        lengths = nx.single_source_dijkstra_path_length(self.graph, node, weight="length")
        return WalkPlanner(self, destination, node, access, dict(lengths))


@dataclass(slots=True)
class WalkPlanner:
    """Walking distances to one destination."""

    graph: WalkingGraph
    destination: Position
    node: Position | None
    access: float
    lengths: dict[Position, float]

    def walk(self, origin: Position) -> Walk:
        """Return the estimated walk from origin to the destination."""
        direct = great_circle(origin, self.destination)
        if self.node is None:
            return _walk(direct * DETOUR, "detour")
        start, access = self.graph.nearest(origin)
        path = self.lengths.get(start)
        if path is None:  # another component of the graph
            return _walk(direct * DETOUR, "detour")
        network = (access + self.access) * ACCESS_DETOUR + path
        return _walk(min(network, direct * MAX_DETOUR), "network")


def _walk(metres: float, method: Method) -> Walk:
    return Walk(round(metres, 1), round(metres / WALKING_SPEED / 60, 1), method)


def _flat(a: Position, b: Position) -> float:
    """Return a cheap squared planar distance (for ranking nearby nodes only)."""
    dx = (a[0] - b[0]) * math.cos(math.radians(b[1]))
    dy = a[1] - b[1]
    return dx * dx + dy * dy
