"""Where a vulnerable person's SOS wearable is, and when it calls for help.

At home the band reports its home; while the scenario's missing person from that home is out,
it follows their walk (the same walk the cameras see). Once its wearer has been outside the safe
zone for `SOS_AFTER` minutes the band raises its own SOS (its automatic alarm), until they are
back inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from smartcity.sim.geodesy import Planar, Position, distance

SOS_AFTER: Final = 30
"""Minutes outside the safe zone after which the band raises its SOS."""


def wearer_report(
    walks: Sequence[tuple[datetime, datetime, Sequence[tuple[float, float]]]],
    at: datetime,
    home: Position,
    radius: float,
    planar: Planar,
) -> tuple[Position, bool]:
    """Return where the band is at a moment and whether it raises its SOS.

    `walks` are the wearer's outings: start, end, and a planar position for each minute.
    """
    for start, end, walk in walks:
        if not walk or not start <= at < end:
            continue
        minute = min(len(walk) - 1, int((at - start) / timedelta(minutes=1)))
        spots = [planar.position(x, y) for x, y in walk[: minute + 1]]
        outside = [distance(home, spot) > radius for spot in spots]
        inside_last = max((i for i, out in enumerate(outside) if not out), default=-1)
        out_for = minute - inside_last if outside[-1] else 0
        return spots[-1], out_for >= SOS_AFTER
    return home, False


def rounded_text(position: Position) -> str:
    """Return a position as the band sends it: 'lon,lat' with 6 decimals."""
    return f"{position[0]:.6f},{position[1]:.6f}"


__all__ = ["SOS_AFTER", "rounded_text", "wearer_report"]
