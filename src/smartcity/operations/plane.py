"""A local plane around the district, in metres: distances to lines, lengths, cuts.

Equirectangular around a point: exact to well under a metre over a few kilometres, and much
cheaper than geodesics for the thousands of point-to-line distances a route needs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from smartcity.operations.places import EARTH_RADIUS

Position = tuple[float, float]


@dataclass(slots=True)
class Plane:
    """A local equirectangular plane around a point, in metres."""

    origin: Position
    kx: float = field(init=False)
    ky: float = field(init=False)

    def __post_init__(self) -> None:
        self.ky = math.pi * EARTH_RADIUS / 180
        self.kx = self.ky * math.cos(math.radians(self.origin[1]))

    def xy(self, p: Position) -> tuple[float, float]:
        """Return a position's (x, y) in metres from the origin."""
        return (p[0] - self.origin[0]) * self.kx, (p[1] - self.origin[1]) * self.ky

    def lonlat(self, x: float, y: float) -> Position:
        """Return the position at (x, y)."""
        return (self.origin[0] + x / self.kx, self.origin[1] + y / self.ky)

    def to_line(self, p: Position, line: Sequence[Position]) -> tuple[float, float, Position]:
        """Return the distance from `p` to a polyline, how far along it the nearest point is
        (metres from its start), and that point."""
        px, py = self.xy(p)
        best = (math.inf, 0.0, line[0])
        walked = 0.0
        for a, b in itertools.pairwise(line):
            ax, ay = self.xy(a)
            bx, by = self.xy(b)
            dx, dy = bx - ax, by - ay
            span = math.hypot(dx, dy)
            t = (
                0.0
                if span == 0
                else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / span**2))
            )
            cx, cy = ax + t * dx, ay + t * dy
            gap = math.hypot(px - cx, py - cy)
            if gap < best[0]:
                best = (gap, walked + t * span, self.lonlat(cx, cy))
            walked += span
        return best

    def distance(self, a: Position, b: Position) -> float:
        """Return the distance in metres between two positions."""
        return math.dist(self.xy(a), self.xy(b))

    def length(self, line: Sequence[Position]) -> float:
        """Return a polyline's length in metres."""
        return sum(math.dist(self.xy(a), self.xy(b)) for a, b in itertools.pairwise(line))

    def split(self, line: Sequence[Position], at: float) -> tuple[list[Position], list[Position]]:
        """Return a polyline cut `at` metres from its start: the part before and after."""
        walked = 0.0
        for index, (a, b) in enumerate(itertools.pairwise(line)):
            span = math.dist(self.xy(a), self.xy(b))
            if walked + span >= at and span > 0:
                t = (at - walked) / span
                cut = (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))
                return [*line[: index + 1], cut], [cut, *line[index + 1 :]]
            walked += span
        return list(line), [line[-1]]
