"""Run a simulation in time: each emission is sent when the simulated clock reaches it.

The runner works a minute at a time: the simulation computes the minute (in a thread, so the
event loop keeps serving), then the runner sends its emissions as the clock reaches them, in
batches of whatever is due. When the platform falls behind (the IoT agent has not yet taken
what was sent, which an MQTT broker would otherwise queue and, past its limit, drop) the runner
waits: the simulated clock does not stop, so the run falls behind schedule and says by how
much (`lag`). Control (pause, resume, speed, jump) takes effect at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from smartcity.core.clock import isoformat
from smartcity.sim.clock import SimClock
from smartcity.sim.emission import Emission
from smartcity.sim.engine import Simulation
from smartcity.sim.transports import Sender

log = structlog.get_logger(__name__)

Backlog = Callable[[], int]
"""How many sent messages the platform has not taken yet."""


@dataclass(slots=True)
class RunStats:
    """What a run has done so far."""

    emitted: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    expected_refusals: Counter[str] = field(default_factory=Counter)
    """Emissions of faulty devices, by the reason the platform should give."""
    minutes: int = 0
    skipped_minutes: int = 0
    lag: float = 0.0
    """Wall seconds the last batch went out after its time."""
    max_lag: float = 0.0
    waits: float = 0.0
    """Wall seconds spent waiting for the platform to catch up."""
    started: float = field(default_factory=time.monotonic)
    sim_time: datetime | None = None

    def as_dict(self) -> dict[str, object]:
        """Return the figures as JSON-ready values."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return {
            "emitted": self.emitted,
            "byKind": dict(sorted(self.by_kind.items())),
            "expectedRefusals": dict(sorted(self.expected_refusals.items())),
            "minutes": self.minutes,
            "skippedMinutes": self.skipped_minutes,
            "emittedPerSecond": round(self.emitted / elapsed, 1),
            "lagSeconds": round(self.lag, 3),
            "maxLagSeconds": round(self.max_lag, 3),
            "waitedSeconds": round(self.waits, 3),
            "simulatedTime": isoformat(self.sim_time) if self.sim_time else None,
        }


class SimulationRunner:
    """Sends a simulation's emissions through a sender, paced by a simulated clock."""

    def __init__(
        self,
        simulation: Simulation,
        clock: SimClock,
        sender: Sender,
        *,
        until: datetime | None = None,
        backlog: Backlog | None = None,
        max_backlog: int = 1000,
        on_minute: Callable[[RunStats], None] | None = None,
    ) -> None:
        self.simulation = simulation
        self.clock = clock
        self.sender = sender
        self.until = until
        self.backlog = backlog
        self.max_backlog = max_backlog
        self.on_minute = on_minute
        self.stats = RunStats()
        self.done = False
        self._wake = asyncio.Event()
        self._jump_to: datetime | None = None

    # -- control ------------------------------------------------------------------------------

    def pause(self) -> None:
        """Stop the simulated clock (nothing is sent until resumed)."""
        self.clock.pause()
        self._wake.set()

    def resume(self) -> None:
        """Let the simulated clock run again."""
        self.clock.resume()
        self._wake.set()

    def set_speed(self, speed: float) -> None:
        """Change the speed factor from now on."""
        self.clock.set_speed(speed)
        self._wake.set()

    def jump(self, moment: datetime) -> None:
        """Skip ahead to a moment: the models move on silently, then sending resumes there."""
        self._jump_to = moment
        self._wake.set()

    # -- running ------------------------------------------------------------------------------

    @property
    def end(self) -> datetime:
        """Return when the run ends: `until`, or the scenario's end."""
        end = self.simulation.scenario.end
        return min(self.until, end) if self.until is not None else end

    async def run(self, stop: asyncio.Event) -> RunStats:
        """Run until the end, or until `stop` is set; return the figures."""
        try:
            while not stop.is_set() and self.simulation.cursor < self.end:
                if self._jump_to is not None:
                    await self._skip()
                    continue
                minute = await asyncio.to_thread(self._next_minute)
                await self._send_minute(minute, stop)
                self.stats.minutes += 1
                if self.on_minute is not None:
                    self.on_minute(self.stats)
        finally:
            self.done = True
        return self.stats

    def _next_minute(self) -> list[Emission]:
        minute = self.simulation.advance()
        return self.simulation.emissions(minute)

    async def _skip(self) -> None:
        target, self._jump_to = self._jump_to, None
        assert target is not None
        skipped = await asyncio.to_thread(self.simulation.skip_to, min(target, self.end))
        self.stats.skipped_minutes += skipped
        self.clock.jump(self.simulation.cursor)
        log.info("simulation jumped", to=isoformat(self.simulation.cursor), minutes=skipped)

    async def _send_minute(self, emissions: list[Emission], stop: asyncio.Event) -> None:
        pending = emissions
        while pending and not stop.is_set():
            if self._jump_to is not None:
                return  # the rest of this minute is skipped with it
            now = self.clock.now()
            due = 0
            while due < len(pending) and pending[due].at <= now:
                due += 1
            if math.isinf(self.clock.speed) and not self.clock.paused:
                due = len(pending)
            if due:
                batch, pending = pending[:due], pending[due:]
                await self._wait_for_platform(stop)
                await self._send(batch)
                continue
            wait = self.clock.wall_seconds_until(pending[0].at)
            await self._sleep(min(wait, 1.0), stop)

    async def _send(self, batch: list[Emission]) -> None:
        await self.sender.send(batch)
        last = batch[-1].at
        self.clock.advance_to(last)
        stats = self.stats
        stats.emitted += len(batch)
        for emission in batch:
            stats.by_kind[emission.kind.name] += 1
            if emission.expect is not None:
                stats.expected_refusals[emission.expect] += 1
        stats.sim_time = last
        if not math.isinf(self.clock.speed):
            behind = (self.clock.now() - batch[0].at).total_seconds() / self.clock.speed
            stats.lag = max(0.0, behind)
            stats.max_lag = max(stats.max_lag, stats.lag)

    async def _wait_for_platform(self, stop: asyncio.Event) -> None:
        if self.backlog is None:
            return
        started = time.monotonic()
        # Polled: the agent counts what it took, it does not signal.
        while self.backlog() > self.max_backlog and not stop.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        self.stats.waits += time.monotonic() - started

    async def _sleep(self, seconds: float, stop: asyncio.Event) -> None:
        self._wake.clear()
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        waiters = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            for waiter in waiters:
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
