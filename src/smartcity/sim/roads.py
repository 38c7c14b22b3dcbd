"""The district's road graph as a directed networkx graph: route, measure, find the nearest node."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import networkx as nx

from smartcity.sim.geodesy import Position, distance
from smartcity.sim.model import District, RoadLink


@dataclass(frozen=True, slots=True)
class DirectedLink:
    """One direction of travel on a road link (a two-way link gives two of them)."""

    id: str
    link: RoadLink
    start: str
    end: str
    points: tuple[Position, ...]
    length: float
    """Metres."""

    @property
    def travel_time(self) -> float:
        """Return the seconds to drive it at the speed limit."""
        return self.length / (self.link.speed_limit / 3.6)


@dataclass(frozen=True, slots=True)
class Route:
    """A path through the road graph."""

    nodes: list[str]
    links: list[DirectedLink]

    @property
    def length(self) -> float:
        """Return the route's length in metres."""
        return sum(link.length for link in self.links)

    @property
    def travel_time(self) -> float:
        """Return the seconds to drive it at the speed limits."""
        return sum(link.travel_time for link in self.links)


class RoadGraph:
    """Directed road graph of a district: nodes carry position and signals, edges the links."""

    def __init__(self, district: District) -> None:
        self.district = district
        self.graph: nx.DiGraph[str] = nx.DiGraph()
        self.directed: dict[str, DirectedLink] = {}
        for node in district.nodes.values():
            self.graph.add_node(node.id, position=node.position, signalised=node.signalised)
        for link in district.links:
            length = link.length
            ways = [(link.start, link.end, link.points, "forward")]
            if not link.oneway:
                ways.append((link.end, link.start, tuple(reversed(link.points)), "backward"))
            for start, end, points, way in ways:
                directed = DirectedLink(f"{link.id}-{way}", link, start, end, points, length)
                self.directed[directed.id] = directed
                previous = self.graph.get_edge_data(start, end)
                if previous is None or previous["length"] > length:
                    self.graph.add_edge(
                        start,
                        end,
                        id=directed.id,
                        length=length,
                        travel_time=directed.travel_time,
                        lanes=link.lanes,
                        speed_limit=link.speed_limit,
                        name=link.name_ko,
                    )

    def nearest_node(self, position: Position) -> str:
        """Return the id of the node closest to a position (ties: the first in file order)."""
        return min(
            self.district.nodes.values(), key=lambda node: distance(node.position, position)
        ).id

    def route(self, start: str, end: str, *, weight: str = "length") -> Route:
        """Return the shortest route between two nodes by `length` or `travel_time`."""
        nodes: list[str] = nx.shortest_path(self.graph, start, end, weight=weight)
        links = [self.directed[self.graph.edges[a, b]["id"]] for a, b in itertools.pairwise(nodes)]
        return Route(nodes, links)

    def route_between(self, origin: Position, destination: Position) -> Route:
        """Return the shortest route by length between the nodes nearest two positions."""
        return self.route(self.nearest_node(origin), self.nearest_node(destination))

    def is_connected(self) -> bool:
        """Return whether every node can reach every other node."""
        return bool(nx.is_strongly_connected(self.graph))
