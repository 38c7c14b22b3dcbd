"""What a scenario's incidents show: fires, assaults and a missing person, as cameras see them.

Every camera event is worked out once, when the simulation is built, from the scenario and the
seed: which cameras see the smoke and when, which see the assault, where the missing person
walks and which cameras they pass. The simulation then reads them minute by minute.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import networkx as nx

from smartcity.sim.environment import Plume
from smartcity.sim.geodesy import Planar, Position
from smartcity.sim.model import District
from smartcity.sim.roads import RoadGraph
from smartcity.sim.scenario import Scenario

SMOKE_RANGE = 250.0
"""Metres within which a camera sees a fire's smoke."""
ASSAULT_RANGE = 120.0
MATCH_RANGE = 45.0
"""Metres within which a camera's face or attribute matching can pick the missing person."""
MATCH_REPEAT = timedelta(minutes=15)
WALK_METRES_PER_MINUTE = 40.0
"""About 2.4 km/h: a slow, wandering walk."""
CLOSED_CAPACITY = 0.25
"""Share of capacity left on the roads at a fire while the engines stand there."""


@dataclass(frozen=True, slots=True, order=True)
class CameraEvent:
    """Something a camera's analytics detects, at a moment."""

    at: datetime
    camera: str
    event: str
    confidence: float


@dataclass(frozen=True, slots=True)
class FireEffect:
    """A fire's reach: its place, closed links, the cameras that see it, and its time."""

    xy: tuple[float, float]
    start: datetime
    end: datetime
    closed: tuple[int, ...]
    cameras: frozenset[str]

    def strength(self, moment: datetime) -> float:
        """Return how much smoke the fire gives off at a moment (0-1)."""
        if moment < self.start:
            return 0.0
        if moment < self.end:
            return min(1.0, (moment - self.start).total_seconds() / 600)
        fading = 1 - (moment - self.end).total_seconds() / 1800
        return max(0.0, fading)


class Incidents:
    """The scenario's incidents, ready to be read minute by minute."""

    def __init__(
        self,
        scenario: Scenario,
        district: District,
        graph: RoadGraph,
        planar: Planar,
        cameras: dict[str, Position],
        lamps: dict[str, Position],
        link_index: dict[str, int],
        seed: int,
    ) -> None:
        self.planar = planar
        places = {place.id: place for place in district.places}
        camera_xy = {camera: planar.xy(position) for camera, position in sorted(cameras.items())}
        self.events: list[CameraEvent] = []
        self.fires: list[FireEffect] = []
        self.dark_lamps: set[str] = set()
        self.walks: list[list[tuple[float, float]]] = []
        for number, fire in enumerate(scenario.fires):
            xy = planar.xy(places[fire.place].anchor)
            node = graph.nearest_node(places[fire.place].anchor)
            closed = tuple(
                sorted(
                    index for link_id, index in link_index.items() if _touches(graph, link_id, node)
                )
            )
            seeing = self._within(camera_xy, xy, SMOKE_RANGE)
            rng = random.Random(f"{seed}:fire:{number}")
            for camera in seeing:
                at = fire.start + timedelta(seconds=rng.randrange(120, 420))
                self.events.append(
                    CameraEvent(at, camera, "smoke", round(rng.uniform(0.75, 0.97), 2))
                )
            self.fires.append(FireEffect(xy, fire.start, fire.end, closed, frozenset(seeing)))
        for number, assault in enumerate(scenario.assaults):
            xy = planar.xy(places[assault.place].anchor)
            rng = random.Random(f"{seed}:assault:{number}")
            nearest = sorted(camera_xy, key=lambda c: (math.dist(camera_xy[c], xy), c))
            seeing = [c for c in nearest[:3] if math.dist(camera_xy[c], xy) <= ASSAULT_RANGE]
            for camera in seeing or nearest[:1]:
                at = assault.at + timedelta(seconds=rng.randrange(0, 40))
                confidence = round(rng.uniform(0.7, 0.93), 2)
                self.events.append(CameraEvent(at, camera, "violence", confidence))
                later = at + timedelta(seconds=60)
                self.events.append(
                    CameraEvent(later, camera, "running", round(rng.uniform(0.6, 0.85), 2))
                )
            lamp_xy = {lamp: planar.xy(position) for lamp, position in sorted(lamps.items())}
            darkest = sorted(lamp_xy, key=lambda lamp: (math.dist(lamp_xy[lamp], xy), lamp))
            self.dark_lamps.update(darkest[: assault.dark_streetlights])
        for number, person in enumerate(scenario.missing):
            end = person.end or scenario.end
            rng = random.Random(f"{seed}:missing:{number}")
            minutes = max(1, math.ceil((end - person.start).total_seconds() / 60))
            walk = _wander(graph, planar, places[person.place].anchor, minutes, rng)
            self.walks.append(walk)
            last_seen: dict[str, datetime] = {}
            for minute, spot in enumerate(walk):
                at = person.start + timedelta(minutes=minute, seconds=rng.randrange(60))
                for camera in self._within(camera_xy, spot, MATCH_RANGE):
                    if camera in last_seen and at - last_seen[camera] < MATCH_REPEAT:
                        continue
                    last_seen[camera] = at
                    confidence = round(rng.uniform(0.55, 0.9), 2)
                    self.events.append(CameraEvent(at, camera, "person-match", confidence))
        self.events.sort()
        self._times = [event.at for event in self.events]

    @staticmethod
    def _within(
        cameras: dict[str, tuple[float, float]], xy: tuple[float, float], metres: float
    ) -> list[str]:
        return [camera for camera, where in cameras.items() if math.dist(where, xy) <= metres]

    def camera_events(self, start: datetime, end: datetime) -> list[CameraEvent]:
        """Return the camera events from `start` (included) to `end` (excluded)."""
        first = bisect.bisect_left(self._times, start)
        last = bisect.bisect_left(self._times, end)
        return self.events[first:last]

    def plumes(self, moment: datetime) -> list[Plume]:
        """Return the smoke plumes at a moment."""
        plumes = []
        for fire in self.fires:
            strength = fire.strength(moment)
            if strength > 0:
                plumes.append(Plume(fire.xy, strength))
        return plumes

    def closures(self, moment: datetime) -> dict[int, float]:
        """Return the capacity left on links closed by incidents at a moment."""
        closed: dict[int, float] = {}
        for fire in self.fires:
            if fire.start <= moment < fire.end:
                for index in fire.closed:
                    closed[index] = CLOSED_CAPACITY
        return closed

    def smoke_seen(self, camera: str, moment: datetime) -> bool:
        """Tell whether a camera sees a fire's smoke at a moment."""
        return any(camera in fire.cameras and fire.strength(moment) > 0.3 for fire in self.fires)

    def onlookers(self, xy: tuple[float, float], moment: datetime) -> float:
        """Return the people gathered to watch fires near a point."""
        total = 0.0
        for fire in self.fires:
            strength = fire.strength(moment)
            if strength > 0:
                total += 80.0 * strength * math.exp(-((math.dist(xy, fire.xy) / 120.0) ** 2))
        return total


def _touches(graph: RoadGraph, link_id: str, node: str) -> bool:
    link = graph.directed[link_id]
    return node in (link.start, link.end)


def _wander(
    graph: RoadGraph, planar: Planar, home: Position, minutes: int, rng: random.Random
) -> list[tuple[float, float]]:
    """Return a wandering walk's position at each minute, along the streets from home."""
    streets: nx.Graph[str] = graph.graph.to_undirected()
    node = graph.nearest_node(home)
    previous: str | None = None
    where = planar.xy(graph.district.nodes[node].position)
    positions: list[tuple[float, float]] = []
    path: list[tuple[float, float]] = []
    while len(positions) < minutes:
        if not path:
            choices = sorted(streets.neighbors(node))
            onward = [n for n in choices if n != previous] or choices
            following = rng.choice(onward)
            start = planar.xy(graph.district.nodes[node].position)
            end = planar.xy(graph.district.nodes[following].position)
            steps = max(1, round(math.dist(start, end) / WALK_METRES_PER_MINUTE))
            path = [
                (
                    start[0] + (end[0] - start[0]) * k / steps,
                    start[1] + (end[1] - start[1]) * k / steps,
                )
                for k in range(1, steps + 1)
            ]
            previous, node = node, following
        where = path.pop(0)
        positions.append(where)
    return positions
