"""Macroscopic traffic: origin-destination demand assigned to the road graph, speeds by BPR.

Demand flows between the district's zones (produced by households, attracted by stations,
offices, shops and schools) and through it between the gateways where its roads leave the map
(the Dongbu expressway carries the heaviest through traffic). Each origin-destination pair has
its two fastest routes at free flow; every simulated minute the pair's demand splits between
them by a logit on last minute's travel times, link volumes add up, and each link's travel time
follows the Bureau of Public Roads curve t = t0 (1 + 0.15 (v/c)^4), with the capacity from its
lanes. Rain lowers free-flow speeds and capacities and adds car trips; incidents close lanes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx

from smartcity.sim.geodesy import Position, distance
from smartcity.sim.model import District
from smartcity.sim.roads import DirectedLink, RoadGraph

LANE_CAPACITY = {
    "motorway": 2000.0,
    "trunk": 1600.0,
    "motorway_link": 1400.0,
    "primary": 850.0,
    "secondary": 750.0,
    "tertiary": 600.0,
    "residential": 450.0,
    "service": 300.0,
}
"""Vehicles per hour per lane (signalised urban roads get about half their green time)."""
BPR_ALPHA = 0.15
BPR_BETA = 4
TRIPS_PER_HOUSEHOLD = 0.12
"""Car trips per household in the weekday morning peak hour."""
EXPRESSWAY_THROUGH = 2600.0
"""Vehicles per hour each way on the expressway through the district at the peak."""
ARTERIAL_THROUGH = 300.0
"""Through vehicles per hour per lane leaving by each arterial gateway at the peak (split over
the other arterial gateways by their lanes)."""
GATEWAY_ACCESS = 110.0
"""Vehicles per hour per lane entering the district's zones from each gateway."""
ATTRACTION = {
    "station": 3.0,
    "office": 3.0,
    "shopping": 4.0,
    "market": 2.0,
    "school": 1.0,
    "development": 1.0,
    "culture": 1.0,
    "landmark": 1.0,
}
ROUTE_SPREAD = 0.15
"""Logit scale as a share of the best route's time: lower sends everyone the fastest way."""


@dataclass(frozen=True, slots=True)
class Path:
    """One route of an origin-destination pair, as indexes of directed links."""

    links: tuple[int, ...]


@dataclass(slots=True)
class Pair:
    """Demand between two points of the graph, at the weekday peak, and its routes."""

    origin: str
    destination: str
    peak: float
    """Vehicles per hour."""
    paths: list[Path]
    through: bool


@dataclass(frozen=True, slots=True)
class LinkState:
    """One directed link during one minute."""

    volume: float
    """Vehicles per hour."""
    speed: float
    """Km/h."""
    ratio: float
    """Volume over capacity."""


class TrafficModel:
    """Link volumes and speeds of a district, minute by minute."""

    def __init__(self, district: District, graph: RoadGraph | None = None) -> None:
        self.district = district
        self.graph = graph or RoadGraph(district)
        self.links: list[DirectedLink] = list(self.graph.directed.values())
        self.index = {link.id: number for number, link in enumerate(self.links)}
        self.capacity = [
            link.link.lanes * LANE_CAPACITY.get(link.link.road_class, 450.0) for link in self.links
        ]
        self.free_time = [link.travel_time for link in self.links]
        self._extra_cache: dict[tuple[str, str], list[Path]] = {}
        self.gateways = self._gateways()
        self.pairs = self._demand()
        self.times = list(self.free_time)
        self.state = [LinkState(0.0, float(link.link.speed_limit), 0.0) for link in self.links]

    # -- building ---------------------------------------------------------------------------

    def _gateways(self) -> list[str]:
        """Return the nodes where roads leave the map: dead ends on the edge of the district."""
        undirected = self.graph.graph.to_undirected()
        positions = [node.position for node in self.district.nodes.values()]
        west = min(p[0] for p in positions)
        east = max(p[0] for p in positions)
        south = min(p[1] for p in positions)
        north = max(p[1] for p in positions)
        margin = 0.0015
        found = []
        for node in self.district.nodes.values():
            longitude, latitude = node.position
            on_edge = (
                longitude - west < margin
                or east - longitude < margin
                or latitude - south < margin
                or north - latitude < margin
            )
            if undirected.degree(node.id) == 1 and on_edge:
                found.append(node.id)
        return found

    def _lanes_at(self, node: str) -> int:
        return max(
            (link.link.lanes for link in self.links if node in (link.start, link.end)), default=1
        )

    def _is_expressway(self, node: str) -> bool:
        return any(
            link.link.road_class == "motorway"
            for link in self.links
            if node in (link.start, link.end)
        )

    def _zone_points(self) -> list[tuple[str, float, float]]:
        """Return (node, households, attraction) for each zone's centre."""
        points = []
        for zone in self.district.zones:
            households = 0.0
            attraction = 1.0
            for place in self.district.places:
                if self.district.zone_at(place.anchor) is not zone:
                    continue
                if place.kind == "apartment":
                    households += float(place.extra.get("households", 0))
                attraction += ATTRACTION.get(place.kind, 0.0)
            centre = _centroid(zone.geometry)
            points.append((self.graph.nearest_node(centre), households, attraction))
        return points

    def _demand(self) -> list[Pair]:
        """Return the peak-hour demand of every origin-destination pair, with its routes."""
        zones = self._zone_points()
        attraction_total = sum(a for _, _, a in zones) or 1.0
        wanted: dict[tuple[str, str], tuple[float, bool]] = {}

        def add(origin: str, destination: str, flow: float, through: bool) -> None:
            if origin == destination or flow <= 0:
                return
            before, was_through = wanted.get((origin, destination), (0.0, through))
            wanted[(origin, destination)] = (before + flow, was_through and through)

        for origin, households, _ in zones:
            for destination, _, attraction in zones:
                add(
                    origin,
                    destination,
                    households * TRIPS_PER_HOUSEHOLD * attraction / attraction_total,
                    False,
                )
        arterial = [gate for gate in self.gateways if not self._is_expressway(gate)]
        arterial_lanes = sum(self._lanes_at(gate) for gate in arterial) or 1
        for gate, other in itertools.permutations(self.gateways, 2):
            if self._is_expressway(gate) and self._is_expressway(other):
                add(gate, other, EXPRESSWAY_THROUGH, True)
            elif gate in arterial and other in arterial:
                share = self._lanes_at(other) / (arterial_lanes - self._lanes_at(gate))
                add(gate, other, ARTERIAL_THROUGH * self._lanes_at(gate) * share, True)
        for gate in self.gateways:
            if self._is_expressway(gate):
                continue
            access = GATEWAY_ACCESS * self._lanes_at(gate)
            for node, _, attraction in zones:
                share = access * attraction / attraction_total
                add(gate, node, share, False)
                add(node, gate, share, False)
        return [
            Pair(origin, destination, flow, self.routes(origin, destination), through)
            for (origin, destination), (flow, through) in sorted(wanted.items())
        ]

    def routes(self, origin: str, destination: str, count: int = 2) -> list[Path]:
        """Return up to `count` fastest loop-free routes at free flow."""
        try:
            found = nx.shortest_simple_paths(self.graph.graph, origin, destination, "travel_time")
            node_lists = list(itertools.islice(found, count))
        except nx.NetworkXNoPath:
            return []
        return [
            Path(
                tuple(
                    self.index[self.graph.graph.edges[a, b]["id"]]
                    for a, b in itertools.pairwise(nodes)
                )
            )
            for nodes in node_lists
        ]

    # -- a minute ---------------------------------------------------------------------------

    def step(
        self,
        demand: float,
        extra: Sequence[tuple[str, str, float]] = (),
        *,
        speed_factor: float = 1.0,
        capacity_factor: float = 1.0,
        closures: dict[int, float] | None = None,
    ) -> list[LinkState]:
        """Assign one minute's demand and return every link's state.

        `demand` scales the peak demand (the daily profile, weather, the scenario's factor);
        `extra` adds (origin, destination, vehicles per hour) flows such as concert traffic;
        `closures` keeps a share of some links' capacity (0.2: most lanes closed).
        """
        volumes = [0.0] * len(self.links)
        for pair in self.pairs:
            flow = pair.peak * (demand if not pair.through else 0.5 + 0.5 * demand)
            self._assign(pair.paths, flow, volumes)
        for origin, destination, flow in extra:
            self._assign(self._extra_paths(origin, destination), flow, volumes)
        closures = closures or {}
        states = []
        for number, link in enumerate(self.links):
            capacity = self.capacity[number] * capacity_factor * closures.get(number, 1.0)
            ratio = volumes[number] / capacity
            free = self.free_time[number] / speed_factor
            travel = free * (1 + BPR_ALPHA * ratio**BPR_BETA)
            self.times[number] = travel
            speed = min(link.link.speed_limit * speed_factor, link.length / travel * 3.6)
            states.append(LinkState(volumes[number], speed, ratio))
        self.state = states
        return states

    def _assign(self, paths: list[Path], flow: float, volumes: list[float]) -> None:
        if not paths or flow <= 0:
            return
        costs = [sum(self.times[i] for i in path.links) for path in paths]
        best = min(costs)
        scale = max(best * ROUTE_SPREAD, 1.0)
        weights = [math.exp(-(cost - best) / scale) for cost in costs]
        total = sum(weights)
        for path, weight in zip(paths, weights, strict=True):
            share = flow * weight / total
            for i in path.links:
                volumes[i] += share

    def _extra_paths(self, origin: str, destination: str) -> list[Path]:
        key = (origin, destination)
        if key not in self._extra_cache:
            self._extra_cache[key] = self.routes(origin, destination)
        return self._extra_cache[key]

    def near(self, position: Position, radius: float) -> list[tuple[int, float]]:
        """Return (link index, metres) of the links whose middle lies within `radius`."""
        found = []
        for number, link in enumerate(self.links):
            middle = (
                link.points[len(link.points) // 2] if len(link.points) > 2 else _middle(link.points)
            )
            metres = distance(position, middle)
            if metres <= radius:
                found.append((number, metres))
        return found


def _middle(points: Sequence[Position]) -> Position:
    first, last = points[0], points[-1]
    return ((first[0] + last[0]) / 2, (first[1] + last[1]) / 2)


def _centroid(geometry: dict[str, object]) -> Position:
    from shapely.geometry import shape

    point = shape(geometry).representative_point()
    return (float(point.x), float(point.y))
