"""The simulator inside the platform: start, stop, pause, re-speed and jump it, as allowed.

Admins and operators control it (`Permission.CONTROL_SIMULATION`), in the tenant it runs in;
analysts may read its status. It only runs where `sim_enabled` is set: a real city's platform
never mixes simulated readings with its devices'. Starting registers the simulated devices
(their keys drawn fresh), then sends their payloads through the real ingest path: MQTT devices
to the broker at `ingest_mqtt_url` (the MQTT southbound takes them from there), HTTP devices to
this process's IoT agent (see `transports`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from smartcity.auth.policy import Permission, require
from smartcity.auth.principal import Caller
from smartcity.core.clock import isoformat
from smartcity.core.errors import BadRequestData, Conflict, Forbidden, SmartCityError
from smartcity.platform import Platform
from smartcity.sim.clock import SimClock, parse_speed
from smartcity.sim.district import load_district
from smartcity.sim.engine import Simulation
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from smartcity.sim.events import concert_entities
from smartcity.sim.model import District
from smartcity.sim.provision import new_keys, prepare_contexts, provision, register_wearers
from smartcity.sim.runner import SimulationRunner
from smartcity.sim.scenario import (
    Scenario,
    ScenarioError,
    load_scenario,
    scenario_names,
    scenario_path,
)
from smartcity.sim.transports import AgentSender, MqttSender, RoutingSender

log = structlog.get_logger(__name__)
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class StartRequest:
    """What to simulate."""

    scenario: str
    speed: float | str = 1.0
    seed: int = 1
    start: str = "scenario"
    """'scenario', 'today', 'now' or an ISO 8601 date and time (see `resolve_start`)."""
    until: str | None = None
    """When to stop: 'HH:MM' or an ISO 8601 date and time; None: the scenario's end."""


def resolve_start(
    text: str, scenario_start: datetime, zone: ZoneInfo, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """Return (start, skip to) for a start option.

    'scenario': the scenario's own start; 'today': its time of day, today; 'now': today too, but
    skipping ahead to the current time of day when that falls within the run; else a date and
    time (local to the district when it has no offset).
    """
    option = text.strip().lower()
    if option in ("", "scenario"):
        return None, None
    local_now = now.astimezone(zone)
    if option in ("today", "now"):
        start = datetime.combine(local_now.date(), scenario_start.astimezone(zone).time(), zone)
        return start, (now if option == "now" else None)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadRequestData(
            f"start {text!r} must be 'scenario', 'today', 'now' or a date and time such as "
            "2026-11-27T16:00"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)), None


def resolve_moment(text: str, after: datetime, zone: ZoneInfo) -> datetime:
    """Read 'HH:MM' (the first such local time at or after `after`) or a date and time."""
    clock = _CLOCK.match(text.strip())
    if clock is not None:
        local = after.astimezone(zone)
        wanted = time(int(clock.group(1)), int(clock.group(2)))
        moment = datetime.combine(local.date(), wanted, zone)
        return moment if moment >= local else moment + timedelta(days=1)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadRequestData(
            f"{text!r} is not a time: write 'HH:MM' (e.g. 19:30) or 2026-11-27T19:30"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


class SimulationService:
    """The platform's simulator: one run at a time."""

    def __init__(self, platform: Platform, district: District | None = None) -> None:
        self.platform = platform
        self.settings = platform.settings
        self._district = district
        self.runner: SimulationRunner | None = None
        self.request: StartRequest | None = None
        self.state = "idle"
        self.error: str | None = None
        self.keys: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._sender: RoutingSender | None = None
        self._mqtt: MqttSender | None = None

    @property
    def enabled(self) -> bool:
        """Tell whether this platform runs a simulator at all."""
        return self.settings.sim_enabled

    @property
    def tenant(self) -> str:
        """Return the tenant the simulated devices live in."""
        return self.settings.sim_tenant

    def district(self) -> District:
        """Return the simulated district (Changdong unless given)."""
        if self._district is None:
            self._district = load_district()
        return self._district

    # -- permissions --------------------------------------------------------------------------

    def _check(self, caller: Caller, permission: Permission) -> None:
        require(caller, permission)
        if caller.tenant != self.tenant:
            shown = self.tenant or "the default tenant"
            raise Forbidden(f"the simulator runs in {shown}; ask in that tenant")

    def _control(self, caller: Caller) -> None:
        self._check(caller, Permission.CONTROL_SIMULATION)
        if not self.enabled:
            raise Conflict(
                "the simulator is not enabled on this platform (SMARTCITY_SIM_ENABLED=true, "
                "as `smartcity demo` sets it; never on a real city's platform)"
            )

    # -- reading ------------------------------------------------------------------------------

    def scenarios(self, caller: Caller) -> list[dict[str, Any]]:
        """Return the shipped scenarios: name, title, description, start, duration."""
        self._check(caller, Permission.READ_DEVICES)
        found = []
        for name in scenario_names():
            scenario = load_scenario(name, self.district())
            found.append(
                {
                    "name": scenario.name,
                    "title": scenario.title,
                    "description": scenario.description,
                    "start": isoformat(scenario.start),
                    "end": isoformat(scenario.end),
                }
            )
        return found

    def status(self, caller: Caller) -> dict[str, Any]:
        """Return what the simulator is doing."""
        self._check(caller, Permission.READ_DEVICES)
        return self.describe()

    def describe(self) -> dict[str, Any]:
        """Return the status without a permission check (for the CLI and logs)."""
        body: dict[str, Any] = {"enabled": self.enabled, "state": self.state}
        if self.error:
            body["error"] = self.error
        runner, request = self.runner, self.request
        if runner is None or request is None:
            return body
        clock = runner.clock
        body.update(
            {
                "scenario": runner.simulation.scenario.name,
                "title": runner.simulation.scenario.title,
                "seed": request.seed,
                "speed": "max" if math.isinf(clock.speed) else clock.speed,
                "paused": clock.paused,
                "start": isoformat(runner.simulation.scenario.start),
                "end": isoformat(runner.end),
                "simulatedTime": isoformat(clock.now()),
                "devices": len(runner.simulation.devices),
                "stats": runner.stats.as_dict(),
            }
        )
        return body

    # -- control ------------------------------------------------------------------------------

    async def start(self, caller: Caller, request: StartRequest) -> dict[str, Any]:
        """Start a scenario (stopping the one running); return the status."""
        self._control(caller)
        async with self._lock:
            await self._halt()
            try:
                parse_speed(request.speed)
                scenario_path(request.scenario)
            except ValueError as error:
                raise BadRequestData(str(error)) from None
            self.state, self.error = "starting", None
            try:
                runner = await asyncio.to_thread(self._prepare, request)
                if self._mqtt is not None:
                    await self._mqtt.connect()
            except SmartCityError as error:
                self.state, self.error = "failed", error.detail
                raise
            self.request, self.runner = request, runner
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self._run(runner), name="simulator")
            self.state = "running"
            log.info(
                "simulation started",
                scenario=request.scenario,
                speed=request.speed,
                seed=request.seed,
                devices=len(runner.simulation.devices),
            )
        return self.describe()

    def _prepare(self, request: StartRequest) -> SimulationRunner:
        """Build the simulation, register its devices and connect the senders (a thread)."""
        district = self.district()
        zone = ZoneInfo(district.timezone)
        plain = load_scenario(request.scenario, district)
        start, skip = resolve_start(request.start, plain.start, zone, datetime.now(zone))
        scenario = load_scenario(request.scenario, district, start=start) if start else plain
        simulation = Simulation(district, scenario, request.seed)
        if skip is not None and scenario.start < skip < scenario.end:
            simulation.skip_to(skip)
        until = resolve_moment(request.until, scenario.start, zone) if request.until else None
        prepare_contexts(self.platform)
        self.keys = new_keys()
        provision(
            self.platform.iot.devices,
            Caller.system(self.tenant),
            simulation.devices,
            self.keys,
        )
        register_wearers(self.platform, district, self.tenant)
        publish_events(self.platform, Caller.system(self.tenant), scenario, district)
        agent = self.platform.iot.agent
        mqtt = MqttSender(
            self.settings.ingest_mqtt_url,
            self.keys,
            topic_prefix=self.settings.ingest_mqtt_topic_prefix,
            client_id=f"smartcity-simulator-{uuid.uuid4().hex[:8]}",
        )
        http = AgentSender(agent, self.keys)
        self._mqtt = mqtt
        self._sender = RoutingSender(mqtt, http)
        backlog = None
        if self.platform.iot.mqtt is not None:
            base = agent.stats.received

            def backlog() -> int:
                return (mqtt.sent + http.sent) - (agent.stats.received - base)

        clock = SimClock(simulation.cursor, parse_speed(request.speed))
        return SimulationRunner(
            simulation,
            clock,
            self._sender,
            until=until,
            backlog=backlog,
            max_backlog=self.settings.sim_max_backlog,
        )

    async def _run(self, runner: SimulationRunner) -> None:
        try:
            await runner.run(self._stop)
            if not self._stop.is_set():
                self.state = "finished"
                log.info("simulation finished", **runner.stats.as_dict())
        except Exception as error:  # a run that fails is reported, never kills the server
            self.state, self.error = "failed", f"{type(error).__name__}: {error}"
            log.exception("simulation failed")
        finally:
            if self._sender is not None:
                with contextlib.suppress(Exception):
                    await self._sender.close()

    async def _halt(self) -> None:
        if self._task is not None:
            self._stop.set()
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
            if self.state == "running":
                self.state = "stopped"

    async def stop(self, caller: Caller) -> dict[str, Any]:
        """Stop the running scenario (what was sent stays); return the status."""
        self._control(caller)
        async with self._lock:
            await self._halt()
        return self.describe()

    def _running(self) -> SimulationRunner:
        if self.runner is None or self.state != "running":
            raise Conflict("no simulation is running; start one first")
        return self.runner

    async def pause(self, caller: Caller) -> dict[str, Any]:
        """Stop the simulated clock; return the status."""
        self._control(caller)
        self._running().pause()
        return self.describe()

    async def resume(self, caller: Caller) -> dict[str, Any]:
        """Let the simulated clock run again; return the status."""
        self._control(caller)
        self._running().resume()
        return self.describe()

    async def set_speed(self, caller: Caller, speed: str | float) -> dict[str, Any]:
        """Change the speed factor; return the status."""
        self._control(caller)
        try:
            value = parse_speed(speed)
        except ValueError as error:
            raise BadRequestData(str(error)) from None
        self._running().set_speed(value)
        return self.describe()

    async def jump(self, caller: Caller, to: str) -> dict[str, Any]:
        """Skip ahead to a moment of the running scenario ('HH:MM' or a date and time)."""
        self._control(caller)
        runner = self._running()
        zone = ZoneInfo(self.district().timezone)
        scenario = runner.simulation.scenario
        moment = resolve_moment(to, scenario.start, zone)
        if not scenario.start <= moment < runner.end:
            raise BadRequestData(
                f"{to!r} is outside the run ({isoformat(scenario.start)} to "
                f"{isoformat(runner.end)})"
            )
        if moment < runner.simulation.cursor:
            raise BadRequestData(
                "the simulation cannot go back in time (its parking lots and bins keep state); "
                "start the scenario again with start set to that moment"
            )
        runner.jump(moment)
        return self.describe()

    async def shutdown(self) -> None:
        """Stop any run (the platform is stopping)."""
        async with self._lock:
            await self._halt()


class SimulatorWorker:
    """Runs the simulator with the platform's workers, starting the configured scenario."""

    name = "simulator"

    def __init__(self, service: SimulationService, autostart: bool = True) -> None:
        self.service = service
        self.autostart = autostart

    async def run(self, stop: asyncio.Event) -> None:
        """Start `sim_scenario` (with autostart), then keep the simulator until the platform
        stops."""
        if not self.autostart:
            await stop.wait()
            await self.service.shutdown()
            return
        settings = self.service.settings
        request = StartRequest(
            scenario=settings.sim_scenario,
            speed=settings.sim_speed,
            seed=settings.sim_seed,
            start=settings.sim_start,
        )
        try:
            await self.service.start(Caller.system(settings.sim_tenant), request)
        except (SmartCityError, ScenarioError) as error:
            log.error("the simulator did not start", error=error.detail)
        else:
            await self.backfill()
        await stop.wait()
        await self.service.shutdown()

    async def backfill(self) -> None:
        """Write `sim_parking_history_days` of parking history before the run (a thread)."""
        settings, runner = self.service.settings, self.service.runner
        if settings.sim_parking_history_days <= 0 or runner is None:
            return
        from smartcity.sim.parking_backfill import backfill_parking_history

        try:
            await asyncio.to_thread(
                backfill_parking_history,
                self.service.platform,
                self.service.district(),
                settings.sim_tenant,
                runner.simulation.cursor,
                settings.sim_parking_history_days,
                settings.sim_seed,
            )
        except Exception:  # the live run goes on without the past
            log.exception("the parking history could not be written")


def publish_events(
    platform: Platform, caller: Caller, scenario: Scenario, district: District
) -> None:
    """Write the scenario's planned events (concerts) as `Event` entities."""
    entities = concert_entities(scenario.concerts, district)
    if not entities:
        return
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    result, _ = platform.entities.batch_upsert(caller, entities, lambda _: ctx)
    if result.errors:
        problems = "; ".join(f"{e.entity_id}: {e.error.detail}" for e in result.errors)
        raise BadRequestData(f"the scenario's events could not be written: {problems}")


def attach_simulator(platform: Platform, district_path: Path | None = None) -> SimulationService:
    """Return the platform's simulator service; with `sim_enabled`, add its worker."""
    district = load_district(district_path) if district_path is not None else None
    service = SimulationService(platform, district)
    if platform.settings.sim_enabled:
        platform.workers.append(SimulatorWorker(service, platform.settings.sim_autostart))
    return service
