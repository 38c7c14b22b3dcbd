"""Ingest writer component benchmark: readings on the bus -> entities in SQLite.

One process holds the platform (SQLite in a temporary folder, the history writer and the other
workers running as in `smartcity serve`, notifications off), the bus (in-process, or a fresh
stream on the local NATS JetStream server) and the publisher. Readings of AirQualityObserved
entities (temperature, and relativeHumidity on every other one) are published:
- all at once (`publish_many` in chunks of 1,000) to find how many the writer stores per second;
- at a fixed rate below that, to measure the publish-to-commit latency when it keeps up.
Latency: from just before the reading's `publish_many` call to the writer's commit of the
upsert that holds it (the `on_stored` hook, before the acknowledgements).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.cpu import wait_for_quiet
from smartcity.bus.base import Outgoing
from smartcity.bus.nats import NatsBus
from smartcity.config import Settings
from smartcity.core.clock import isoformat
from smartcity.ingest.readings import Reading, subject_for
from smartcity.ingest.writer import IngestWriter, WriterOptions
from smartcity.logs import configure_logging
from smartcity.platform import Platform, build_platform

SECTION = "ingest-writer"
"""Its section of docs/benchmarks.md (see bench/sections.py)."""
NATS_URL = os.environ.get("SMARTCITY_BENCH_NATS_URL", "nats://127.0.0.1:4222")
START = datetime(2026, 11, 28, tzinfo=UTC)
CHUNK = 1_000


@dataclass(frozen=True)
class WriterSizes:
    """How big the ingest writer benchmark is."""

    entities: int = 2_000
    rounds: int = 10
    """Readings per entity in the all-at-once phase."""
    rate: int = 2_000
    """Readings per second in the paced phase."""
    seconds: float = 10.0


FULL = WriterSizes()
QUICK = WriterSizes(entities=200, rounds=5, rate=500, seconds=3.0)


@dataclass
class Phase:
    """One phase: how many readings, how fast they were stored, how late."""

    bus: str
    name: str
    readings: int
    seconds: float
    cpu_seconds: float
    latencies: list[float] = field(default_factory=list)
    """Publish-to-commit, in milliseconds."""
    busy_before: float = float("nan")
    """Cores the machine had busy just before the phase (other processes: a shared machine)."""

    @property
    def per_second(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0

    def latency(self, quantile: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


class Recorder:
    """Publish times in, commit times out, per reading id."""

    def __init__(self) -> None:
        self.published: dict[str, float] = {}
        self.latencies: list[float] = []
        self.stored = 0
        self.last_commit = 0.0
        self.target = 0
        self.done = asyncio.Event()

    def expect(self, count: int) -> None:
        self.published.clear()
        self.latencies = []
        self.stored = 0
        self.target = count
        self.done = asyncio.Event()

    def on_stored(self, readings: list[Reading]) -> None:
        now = time.perf_counter()
        for reading in readings:
            sent = self.published.pop(reading.id, None)
            if sent is not None:
                self.latencies.append((now - sent) * 1000)
        self.stored += len(readings)
        self.last_commit = now
        if self.stored >= self.target:
            self.done.set()


def reading(number: int, round_number: int, prefix: str) -> Reading:
    """Return the reading of one bench entity in one round."""
    moment = isoformat(START + timedelta(seconds=round_number))
    attributes = {
        "temperature": {"type": "Property", "value": 20 + number % 10, "observedAt": moment}
    }
    if number % 2 == 0:
        attributes["relativeHumidity"] = {
            "type": "Property",
            "value": 0.4 + (round_number % 5) / 10,
            "observedAt": moment,
        }
    return Reading(
        id=f"{prefix}-{number}-{round_number}",
        tenant="",
        entity_id=f"urn:ngsi-ld:AirQualityObserved:changdong-bench-{number:05d}",
        entity_type="AirQualityObserved",
        attributes=attributes,
        received_at=moment,
        source="mqtt",
        device_id=f"bench-{number}",
    )


class Bench:
    """The platform, its bus and the writer under measurement."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        token = uuid.uuid4().hex[:10]
        self.prefix = f"bench{token}"
        settings = Settings(
            database_url=f"sqlite:///{folder / f'{kind}.db'}",
            context_offline=True,
            notifications_enabled=False,
            ingest_enabled=False,  # the bench's own writer, on the bench's subjects
            bus_url="memory://" if kind == "memory" else NATS_URL,
            bus_stream=f"BENCH_{token}",
            bus_subjects=[f"{self.prefix}.>"],
            log_level="warning",
        )
        self.platform: Platform = build_platform(settings)
        self.recorder = Recorder()
        self.writer = IngestWriter(
            self.platform.bus,
            self.platform.entities,
            self.platform.contexts,
            self.platform.deadletters,
            self.platform.clock,
            WriterOptions(
                batch_size=settings.ingest_batch_size,
                batch_wait=settings.ingest_batch_wait_ms / 1000,
            ),
            subjects=f"{self.prefix}.ingest.readings.>",
            on_stored=self.recorder.on_stored,
        )
        self.platform.workers.append(self.writer)
        self.subject = f"{self.prefix}.{subject_for('')}"

    def outgoing(self, readings: list[Reading]) -> list[Outgoing]:
        return [Outgoing(self.subject, r.to_bytes(), msg_id=r.id) for r in readings]

    async def publish(self, readings: list[Reading]) -> None:
        sent = time.perf_counter()
        for item in readings:
            self.recorder.published[item.id] = sent
        await self.platform.bus.publish_many(self.outgoing(readings))

    async def all_at_once(self, sizes: WriterSizes, first_round: int) -> Phase:
        readings = [
            reading(n, r, self.prefix)
            for r in range(first_round, first_round + sizes.rounds)
            for n in range(sizes.entities)
        ]
        self.recorder.expect(len(readings))
        cpu, started = _cpu(), time.perf_counter()
        for start in range(0, len(readings), CHUNK):
            await self.publish(readings[start : start + CHUNK])
        await asyncio.wait_for(self.recorder.done.wait(), timeout=600)
        seconds = self.recorder.last_commit - started
        return Phase(
            self.kind,
            "all at once",
            len(readings),
            seconds,
            _cpu() - cpu,
            self.recorder.latencies,
        )

    async def paced(self, sizes: WriterSizes, first_round: int) -> Phase:
        ticks = int(sizes.seconds * 50)
        per_tick = max(1, sizes.rate // 50)
        numbers = [
            (i % sizes.entities, first_round + i // sizes.entities) for i in range(ticks * per_tick)
        ]
        self.recorder.expect(len(numbers))
        loop = asyncio.get_running_loop()
        cpu, started = _cpu(), time.perf_counter()
        begin = loop.time()
        for tick in range(ticks):
            chunk = numbers[tick * per_tick : (tick + 1) * per_tick]
            await self.publish([reading(n, r, self.prefix) for n, r in chunk])
            delay = begin + (tick + 1) / 50 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.wait_for(self.recorder.done.wait(), timeout=600)
        seconds = self.recorder.last_commit - started
        name = f"{sizes.rate:,}/s for {sizes.seconds:g} s"
        return Phase(self.kind, name, len(numbers), seconds, _cpu() - cpu, self.recorder.latencies)

    async def run(self, sizes: WriterSizes) -> list[Phase]:
        await self.platform.start()
        stop = asyncio.Event()
        workers = asyncio.create_task(self.platform.run_workers(stop))
        try:
            # Warm-up, not reported: every entity created once.
            await self.all_at_once(WriterSizes(entities=sizes.entities, rounds=1), 0)
            busy = await asyncio.to_thread(wait_for_quiet, 0.5, 1.0, 30.0)
            burst = await self.all_at_once(sizes, 1)
            burst.busy_before = busy
            busy = await asyncio.to_thread(wait_for_quiet, 0.5, 1.0, 30.0)
            paced = await self.paced(sizes, 1 + sizes.rounds)
            paced.busy_before = busy
        finally:
            stop.set()
            await workers
            if isinstance(self.platform.bus, NatsBus):
                await self.platform.bus.delete_stream()
            await self.platform.stop()
            self.platform.close()
        return [burst, paced]


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def run_ingest_writer(buses: list[str], sizes: WriterSizes) -> list[Phase]:
    """Run the benchmark on each bus; return its phases."""
    configure_logging("warning", "console")
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix="smartcity-bench-ingest-") as folder:
        for kind in buses:
            phases.extend(asyncio.run(Bench(kind, Path(folder)).run(sizes)))
    return phases


def print_phases(console: Console, phases: list[Phase]) -> None:
    """Print the figures as a table."""
    table = Table(title="Ingest writer: readings on the bus -> entities in SQLite")
    columns = ("bus", "phase", "readings", "stored/s", "p50 ms", "p95 ms", "p99 ms", "cores")
    for column in (*columns, "busy before"):
        table.add_column(column, justify="left" if column in ("bus", "phase") else "right")
    for phase in phases:
        table.add_row(*_cells(phase))
    console.print(table)


def _cells(phase: Phase) -> list[str]:
    return [
        phase.bus,
        phase.name,
        f"{phase.readings:,}",
        f"{phase.per_second:,.0f}",
        f"{phase.latency(0.50):,.0f}",
        f"{phase.latency(0.95):,.0f}",
        f"{phase.latency(0.99):,.0f}",
        f"{phase.cpu_seconds / phase.seconds:.2f}" if phase.seconds else "-",
        f"{phase.busy_before:.1f}",
    ]


def section(phases: list[Phase], sizes: WriterSizes, date: str) -> str:
    """Return the markdown section of docs/benchmarks.md for these phases."""
    lines = [
        "## Ingest writer (issue 4)",
        "",
        f"Measured {date} by `python -m bench --only ingest-writer` on the machine above.",
        "",
        f"- {sizes.entities:,} AirQualityObserved entities (created by an unreported warm-up",
        "  round), readings of 1 or 2 attributes each (temperature; relativeHumidity on every",
        "  other entity), stored by the `IngestWriter` (batches of up to 500 readings or 50 ms,",
        "  `batch_upsert` in update mode) into SQLite, with the history writer running.",
        "- One process: platform, bus, writer and publisher together (the publisher's CPU counts",
        "  in `cores`). NATS: a fresh file-backed stream on the local server, publishes",
        "  pipelined and confirmed by JetStream.",
        f"- *All at once*: {sizes.rounds} readings per entity published as fast as possible;",
        "  stored/s = readings / (first publish to last commit). *Paced*: readings published",
        "  every 20 ms at the rate shown.",
        "- Latency: from just before `publish_many` to the commit of the upsert holding the",
        "  reading (before its acknowledgement). Under *all at once* it is mostly queueing.",
        "- `cores`: CPU used by the bench process (of 2); `busy before`: cores the machine had",
        "  busy just before the phase, after waiting up to 30 s for it to fall under 0.5 (other",
        "  work on a shared machine slows every figure).",
        "",
        "| bus | phase | readings | stored/s | p50 ms | p95 ms | p99 ms | cores | busy before |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += ["| " + " | ".join(_cells(phase)) + " |" for phase in phases]
    median = statistics.median(p.per_second for p in phases if p.name == "all at once")
    lines += [
        "",
        f"The writer alone stores about {median:,.0f} readings/s (median of the buses); the",
        "issue's end-to-end goal (10,000 MQTT readings/s) is measured through the IoT agent.",
    ]
    return "\n".join(lines)
