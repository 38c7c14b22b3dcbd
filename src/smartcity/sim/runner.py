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
from typing import Any

import aiomqtt
import structlog

from smartcity.core.clock import isoformat
from smartcity.sim.clock import SimClock
from smartcity.sim.emission import Emission
from smartcity.sim.engine import Simulation
from smartcity.sim.transports import Sender, command_link

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
        self._commands: list[tuple[str, str, Any]] = []
        self.obeyed = 0
        """Commands from the platform the devices carried out (or refused)."""

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

    def take_command(self, device_id: str, name: str, arguments: Any) -> None:
        """Queue a command a device received; it is carried out at the simulated clock's now."""
        self._commands.append((device_id, name, arguments))
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> RunStats:
        """Run until the end, or until `stop` is set; return the figures."""
        link = command_link(self.sender)
        kinds = sorted(
            {d.kind for d in self.simulation.devices if d.kind.commands}, key=lambda k: k.name
        )
        listening = (
            asyncio.create_task(link.listen(kinds, self.take_command))
            if link is not None and kinds
            else None
        )
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
            if listening is not None:
                listening.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await listening
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
            if self._commands:
                pending = await self._obey(pending)
                continue
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

    async def _obey(self, pending: list[Emission]) -> list[Emission]:
        """Carry out the queued commands; return what is left to send of the minute.

        A device that obeyed reports its new state at once, so what it was to send later in
        this minute (computed before the command) is dropped.
        """
        link = command_link(self.sender)
        while self._commands:
            device_id, name, arguments = self._commands.pop(0)
            answer = self.simulation.command(device_id, name, arguments, self.clock.now())
            self.obeyed += 1
            if answer.report is not None:
                await self._send([answer.report])
            device = self.simulation.by_id.get(device_id)
            if link is not None and device is not None:
                await link.answer(device.kind, device_id, name, answer.ok, answer.info)
            log.info(
                "device command", device=device_id, command=name, ok=answer.ok, info=answer.info
            )
            if answer.ok:
                pending = [e for e in pending if e.device.id != device_id]
        return pending

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
