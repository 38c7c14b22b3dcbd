"""The simulated clock: a start time, a speed factor, jumps and pauses over a wall clock.

Simulated time runs `speed` times faster than the wall clock from the moment it was last set
(started, jumped, re-sped, resumed). An infinite speed means "as fast as the platform takes it":
the clock then stands wherever the simulation last put it (`advance_to`). What the simulation
emits never depends on the wall clock, only on the simulated time of each emission; the wall
clock only decides when it is sent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta

WallClock = Callable[[], float]
"""Seconds from an arbitrary origin that never goes back (time.monotonic)."""


def parse_speed(text: str | float) -> float:
    """Read a speed factor: a positive number ("60", "60x", "0.5") or "max" (infinite)."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        cleaned = text.strip().lower()
        if cleaned in ("max", "inf", "infinite"):
            return math.inf
        cleaned = cleaned.removesuffix("x").removesuffix("×")
        try:
            value = float(cleaned)
        except ValueError:
            raise ValueError(f"speed must be a number such as 60 or 'max', not {text!r}") from None
    if not value > 0:
        raise ValueError(f"speed must be above 0 (1 is real time), not {text!r}")
    return value


class SimClock:
    """Simulated time, `speed` times the wall clock's pace (a `Clock`)."""

    def __init__(self, start: datetime, speed: float = 1.0, wall: WallClock = time.monotonic):
        if start.tzinfo is None:
            raise ValueError("the simulated clock needs an aware start time")
        self._wall = wall
        self._speed = parse_speed(speed)
        self._base = start
        self._base_wall = wall()
        self._paused = False

    @property
    def speed(self) -> float:
        """The speed factor (math.inf: as fast as possible)."""
        return self._speed

    @property
    def paused(self) -> bool:
        """Whether simulated time stands still."""
        return self._paused

    def now(self) -> datetime:
        """Return the current simulated time."""
        if self._paused or math.isinf(self._speed):
            return self._base
        elapsed = (self._wall() - self._base_wall) * self._speed
        return self._base + timedelta(seconds=elapsed)

    def _rebase(self, moment: datetime) -> None:
        self._base = moment
        self._base_wall = self._wall()

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on (the simulated time so far is kept)."""
        self._rebase(self.now())
        self._speed = parse_speed(speed)

    def jump(self, moment: datetime) -> None:
        """Set the simulated time (forward or back); the speed is kept."""
        if moment.tzinfo is None:
            raise ValueError("jump needs an aware time")
        self._rebase(moment)

    def advance_to(self, moment: datetime) -> None:
        """Move an infinitely fast clock to a moment the simulation reached (else no-op)."""
        if math.isinf(self._speed) and moment > self._base:
            self._base = moment

    def pause(self) -> None:
        """Stop simulated time."""
        if not self._paused:
            self._rebase(self.now())
            self._paused = True

    def resume(self) -> None:
        """Let simulated time run again from where it stood."""
        if self._paused:
            self._paused = False
            self._rebase(self._base)

    def wall_seconds_until(self, moment: datetime) -> float:
        """Return how many wall seconds until simulated time reaches `moment` (0 if reached;
        infinite while paused)."""
        if math.isinf(self._speed):
            return 0.0
        ahead = (moment - self.now()).total_seconds()
        if ahead <= 0:
            return 0.0
        if self._paused:
            return math.inf
        return ahead / self._speed
