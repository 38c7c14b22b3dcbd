"""What `smartcity simulate` does: list and check scenarios, run one here or against a server.

Here (the default) the command builds the platform from the settings with its MQTT southbound
and ingest writer, registers the simulated devices and runs the scenario through them: MQTT
devices publish to the broker, HTTP devices go to this process's IoT agent. With `--url` it
drives a running platform instead: devices are registered through its API (an admin's or
operator's key), MQTT devices publish to the broker it listens to and HTTP devices POST to its
`/iot/json` and `/iot/d`. `--dry-run` only computes the emissions and prints their digest.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.core.errors import ConfigurationError, SmartCityError
from smartcity.ingest.writer import IngestWriter
from smartcity.platform import Platform, build_platform
from smartcity.sim.clock import SimClock, parse_speed
from smartcity.sim.district import load_district
from smartcity.sim.emission import digest
from smartcity.sim.engine import Simulation
from smartcity.sim.model import District
from smartcity.sim.provision import new_keys, prepare_contexts, provision, registrations
from smartcity.sim.runner import RunStats, SimulationRunner
from smartcity.sim.scenario import ScenarioError, load_scenario, scenario_names
from smartcity.sim.service import resolve_moment, resolve_start
from smartcity.sim.transports import AgentSender, HttpSender, MqttSender, RoutingSender, Sender
from smartcity.storage.deadletters import DeadLetterFilter

API_KEY_VARIABLE = "SMARTCITY_API_KEY"


def run_simulate(settings: Settings, args: argparse.Namespace) -> int:
    """Run `smartcity simulate`."""
    console = Console(stderr=True)
    district = load_district(args.district)
    try:
        if args.list:
            return _list(district)
        if args.check:
            return _check(district, args.check, console)
        simulation, until = _simulation(district, args)
        if args.dry_run:
            return _dry_run(simulation, until, console)
        if args.url:
            return asyncio.run(_remote(settings, args, simulation, until, console))
        return asyncio.run(_here(settings, args, simulation, until, console))
    except SmartCityError as error:
        console.print(f"smartcity: {error.detail}", markup=False, highlight=False, soft_wrap=True)
        return 1


def _list(district: District) -> int:
    table = Table("scenario", "title", "starts", "lasts")
    for name in scenario_names():
        scenario = load_scenario(name, district)
        zone = ZoneInfo(district.timezone)
        hours = (scenario.end - scenario.start).total_seconds() / 3600
        start = scenario.start.astimezone(zone).strftime("%a %Y-%m-%d %H:%M")
        table.add_row(name, scenario.title, start, f"{hours:g} h")
    Console().print(table)
    return 0


def _check(district: District, files: list[Path], console: Console) -> int:
    failed = 0
    for path in files:
        try:
            load_scenario(path, district)
        except ScenarioError as error:
            failed += 1
            console.print(error.detail, markup=False, highlight=False, soft_wrap=True)
        else:
            console.print(f"{path}: OK", markup=False, highlight=False, soft_wrap=True)
    return 1 if failed else 0


def _simulation(district: District, args: argparse.Namespace) -> tuple[Simulation, datetime | None]:
    zone = ZoneInfo(district.timezone)
    plain = load_scenario(args.scenario, district)
    start, skip = resolve_start(args.start, plain.start, zone, datetime.now(zone))
    scenario = load_scenario(args.scenario, district, start=start) if start else plain
    simulation = Simulation(district, scenario, args.seed)
    if args.jump:
        skip = resolve_moment(args.jump, scenario.start, zone)
    if skip is not None and scenario.start < skip < scenario.end:
        simulation.skip_to(skip)
    until = resolve_moment(args.until, scenario.start, zone) if args.until else None
    return simulation, until


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("min"),
        TimeElapsedColumn(),
        console=console,
    )


def _minutes(simulation: Simulation, until: datetime | None) -> int:
    end = min(until, simulation.scenario.end) if until else simulation.scenario.end
    return max(0, math.ceil((end - simulation.cursor).total_seconds() / 60))


def _dry_run(simulation: Simulation, until: datetime | None, console: Console) -> int:
    kinds: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    emitted = []
    with _progress(console) as progress:
        task = progress.add_task("computing", total=_minutes(simulation, until))
        for _, emissions in simulation.run(until):
            emitted.extend(emissions)
            for emission in emissions:
                kinds[emission.kind.name] += 1
                if emission.expect:
                    refusals[emission.expect] += 1
            progress.advance(task)
    _summary(kinds, refusals)
    print(f"emissions: {len(emitted)}  digest: {digest(emitted)}")
    return 0


def _summary(
    kinds: Counter[str], refusals: Counter[str], stored: dict[str, Any] | None = None
) -> None:
    table = Table("device kind", "messages")
    for kind, count in sorted(kinds.items()):
        table.add_row(kind, f"{count:,}")
    Console().print(table)
    print(f"messages sent: {sum(kinds.values()):,}")
    if refusals:
        print(
            "malformed on purpose (expected dead letters): "
            + ", ".join(f"{reason} {count}" for reason, count in sorted(refusals.items()))
        )
    for name, value in (stored or {}).items():
        print(f"{name}: {value}")


async def _run(
    simulation: Simulation,
    until: datetime | None,
    sender: Sender,
    speed: float,
    console: Console,
    backlog: Any = None,
    max_backlog: int = 1000,
) -> RunStats:
    clock = SimClock(simulation.cursor, speed)
    zone = ZoneInfo(simulation.district.timezone)
    with _progress(console) as progress:
        task = progress.add_task("starting", total=_minutes(simulation, until))

        def on_minute(stats: RunStats) -> None:
            moment = stats.sim_time.astimezone(zone).strftime("%H:%M") if stats.sim_time else ""
            text = f"{simulation.scenario.name} {moment} · {stats.emitted:,} sent"
            if stats.lag > 1:
                text += f" · {stats.lag:.0f} s behind"
            progress.update(task, description=text)
            progress.advance(task)

        runner = SimulationRunner(
            simulation,
            clock,
            sender,
            until=until,
            backlog=backlog,
            max_backlog=max_backlog,
            on_minute=on_minute,
        )
        stop = asyncio.Event()
        try:
            return await runner.run(stop)
        finally:
            await sender.close()


async def _here(
    settings: Settings,
    args: argparse.Namespace,
    simulation: Simulation,
    until: datetime | None,
    console: Console,
) -> int:
    changes: dict[str, Any] = {"ingest_mqtt_enabled": True, "ingest_enabled": True}
    if args.database_url:
        changes["database_url"] = args.database_url
    platform = build_platform(settings.model_copy(update=changes))
    try:
        return await _run_here(platform, args, simulation, until, console)
    finally:
        platform.close()


async def _run_here(
    platform: Platform,
    args: argparse.Namespace,
    simulation: Simulation,
    until: datetime | None,
    console: Console,
) -> int:
    settings = platform.settings
    if args.load_district:
        from smartcity.sim.commands import load_with_progress

        load_with_progress(platform, args.district, console)
    prepare_contexts(platform)
    keys = new_keys()
    caller = Caller.system(args.tenant)
    with console.status(f"registering {len(simulation.devices):,} simulated devices"):
        await asyncio.to_thread(provision, platform.iot.devices, caller, simulation.devices, keys)
    stop = asyncio.Event()
    workers = asyncio.create_task(platform.run_workers(stop))
    try:
        southbound = platform.iot.mqtt
        assert southbound is not None
        await asyncio.wait_for(southbound.connected.wait(), 15)
        agent = platform.iot.agent
        writer = next(w for w in platform.workers if isinstance(w, IngestWriter))
        base_received, base_stored = agent.stats.received, writer.counts.stored
        mqtt = MqttSender(
            settings.ingest_mqtt_url,
            keys,
            topic_prefix=settings.ingest_mqtt_topic_prefix,
            client_id=f"smartcity-simulate-{uuid.uuid4().hex[:8]}",
        )
        http = AgentSender(agent, keys)

        def backlog() -> int:
            return (mqtt.sent + http.sent) - (agent.stats.received - base_received)

        started = time.monotonic()
        stats = await _run(
            simulation,
            until,
            RoutingSender(mqtt, http),
            parse_speed(args.speed),
            console,
            backlog,
            settings.sim_max_backlog,
        )
        readings = stats.emitted - sum(stats.expected_refusals.values())
        deadline = time.monotonic() + 60
        with console.status("waiting for the platform to store the last readings"):
            while (  # noqa: ASYNC110 (the writer counts, it does not signal)
                time.monotonic() < deadline and writer.counts.stored - base_stored < readings
            ):
                await asyncio.sleep(0.2)
        elapsed = time.monotonic() - started
        letters = platform.deadletters.counts_by_reason(
            Caller.system(args.tenant), DeadLetterFilter()
        )
        _summary(
            stats.by_kind,
            stats.expected_refusals,
            {
                "taken by the IoT agent": f"{agent.stats.received - base_received:,}",
                "readings stored": f"{writer.counts.stored - base_stored:,} in {elapsed:.1f} s",
                "dead letters in the tenant": dict(sorted(letters.items())) or "none",
            },
        )
        return 0
    finally:
        stop.set()
        await workers


def _api_key(args: argparse.Namespace) -> str:
    if args.api_key_file is not None:
        try:
            return str(args.api_key_file.read_text()).strip()
        except OSError as error:
            raise ConfigurationError(f"cannot read {args.api_key_file}: {error}") from error
    key = os.environ.get(API_KEY_VARIABLE, "").strip()
    if not key:
        raise ConfigurationError(
            f"--url needs an operator's or admin's API key: set {API_KEY_VARIABLE} or give "
            "--api-key-file"
        )
    return key


async def _remote(
    settings: Settings,
    args: argparse.Namespace,
    simulation: Simulation,
    until: datetime | None,
    console: Console,
) -> int:
    url = args.url.rstrip("/")
    keys = new_keys()
    headers = {"X-API-Key": _api_key(args)}
    if args.tenant:
        headers["NGSILD-Tenant"] = args.tenant
    with console.status(f"registering {len(simulation.devices):,} devices at {url}"):
        async with httpx.AsyncClient(timeout=600) as client:
            response = await client.post(
                f"{url}/iot/v1/devices/import",
                params={"replace": "true"},
                json=registrations(simulation.devices, keys),
                headers=headers,
            )
    if response.status_code >= 300:
        raise ConfigurationError(
            f"{url} refused the devices (HTTP {response.status_code}): {response.text[:300]}"
        )
    failed = response.json().get("failed") or []
    if failed:
        raise ConfigurationError(f"{len(failed)} devices were not registered: {failed[:3]}")
    mqtt = MqttSender(
        settings.ingest_mqtt_url,
        keys,
        topic_prefix=settings.ingest_mqtt_topic_prefix,
        client_id=f"smartcity-simulate-{uuid.uuid4().hex[:8]}",
    )
    http = HttpSender(url, keys)
    stats = await _run(
        simulation, until, RoutingSender(mqtt, http), parse_speed(args.speed), console
    )
    _summary(
        stats.by_kind,
        stats.expected_refusals,
        {"refused over HTTP": http.refused, "HTTP failures": len(http.failures)},
    )
    return 0
