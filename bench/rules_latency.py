"""Rules latency: from an entity change committed to the alert it raises stored.

One process holds the platform (SQLite in a temporary folder or a fresh PostgreSQL schema),
the bus (in-process, or a fresh stream on the local NATS server), the change relay and the engine
worker (four partitions). The load generator commits temperature readings of `sensors` entities
at `rate` changes/s (a transaction every 20 ms, written straight to the store as the ingest
writer's batches are); one change in `crossing_every` crosses the rule's
threshold, raising or clearing an alert (an `Alert` entity written through the broker). On
SQLite the generator is a thread of the platform's process (SQLite deployments are one process);
on PostgreSQL it is a process of its own, as the API processes that take a city's writes are
beside `smartcity workers` (the relay hears their commits through LISTEN/NOTIFY,
`storage/pgnotify.py`). Latency: from the return of the commit holding the crossing change to the
write of the alert it raised or cleared (the store's change hook, inside the alert's
transaction), both on the system-wide monotonic clock.

The engine is the platform's own: the convergence engine (`rules.plug.engine_plug`), with the
threshold rule stored through the rule service. Readings carry their event time (the wall clock
when the generator made them), and the engine runs with `rules_lateness` 0: a change meets the
rules as soon as it is the newest (with the default 60 s, every alert would wait a minute for
late readings); `rules_clock_delay` 5 s lets readings on their way count when the workers move
the engine's time on with the clock.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from bench.cpu import thread_cpu_seconds, wait_for_quiet
from smartcity.auth.principal import Caller
from smartcity.broker.change_events import SUBJECT_PREFIX
from smartcity.config import Settings
from smartcity.core.entity import DEFAULT_CONTEXT_VOCAB, StoredEntity
from smartcity.logs import configure_logging
from smartcity.platform import Platform, build_platform, freeze_startup_objects
from smartcity.rules.alerts import ALERT_VOCAB, RULES_VOCAB
from smartcity.rules.assembly import build_rules
from smartcity.rules.convergence import TenantEngines
from smartcity.rules.names import format_moment
from smartcity.rules.plug import engine_plug
from smartcity.rules.runtime import RulesRuntime
from smartcity.storage.base import Changes, EntityStore, LoggedChanges
from smartcity.storage.postgres import PostgresEntityStore

ROOT = Path(__file__).resolve().parent.parent
TEMPERATURE = DEFAULT_CONTEXT_VOCAB + "temperature"
RULE: dict[str, Any] = {  # a threshold rule in the engine's language (as stored by the API)
    "kind": "threshold",
    "severity": "high",
    "when": {"type": "WeatherObserved"},
    "value": "temperature",
    "raise": "> 30",
    "clear": "<= 30",
    "actions": [{"alert": {"category": "environment"}}],
}
LATENESS = 0.0
CLOCK_DELAY = 5.0
SECTION = "rules-latency"
NATS_URL = os.environ.get("SMARTCITY_BENCH_NATS_URL", "nats://127.0.0.1:4222")
THING = DEFAULT_CONTEXT_VOCAB + "WeatherObserved"
VALID_TO = ALERT_VOCAB + "validTo"


@dataclass(frozen=True)
class RulesSizes:
    """How big the rules latency benchmark is."""

    rate: int = 5_000
    seconds: float = 15.0
    sensors: int = 2_000
    crossing_every: int = 250
    """One change in this many raises or clears an alert (20 alerts/s at 5,000 changes/s)."""
    every: float = 0.02
    """Seconds between two transactions of the load generator (100 readings each at 5,000/s)."""
    quiet_wait: float = 15.0
    """Seconds to wait at most for the machine to be quiet before the run (0: none)."""


FULL = RulesSizes()
QUICK = RulesSizes(rate=1_000, seconds=4.0, sensors=200, crossing_every=100)


@dataclass
class RulesResult:
    """What one run measured."""

    backend: str
    bus: str
    offered: int
    writer: str = "thread"
    """Where the load generator ran: a `thread` of the platform's process, or its own `process`."""
    written: int = 0
    seconds: float = 0.0
    handled: int = 0
    alerts: int = 0
    expected_alerts: int = 0
    latencies: list[float] = field(default_factory=list)
    too_late: int = 0
    """Changes the engine took after its watermark had passed them (they fire nothing)."""
    cpu_seconds: float = 0.0
    """CPU of the platform's process (less the load generator's thread when it runs there)."""
    busy_before: float = 0.0
    load: float = 0.0
    """The machine's 1-minute load average at the start (other work on a shared machine)."""

    @property
    def cpu_per_change(self) -> float:
        """Return the platform process's CPU milliseconds per change the engine handled."""
        return self.cpu_seconds / max(self.handled, 1) * 1000

    @property
    def written_per_second(self) -> float:
        """Return the changes committed per second."""
        return self.written / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        """Return a latency percentile in ms (nan without samples)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(int(share * len(ordered)), len(ordered) - 1)] * 1000


def _upserting(entities: list[StoredEntity]) -> Callable[[dict[str, StoredEntity]], Changes]:
    def plan(_current: dict[str, StoredEntity]) -> Changes:
        return Changes(upserts=entities)

    return plan


def clock() -> float:
    """Return the system-wide monotonic clock (the same in every process of the machine)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class AlertTimes:
    """When each alert was written (the store's change hook, in the alert's transaction)."""

    def __init__(self) -> None:
        self.written: dict[tuple[str, str], float] = {}

    def on_logged(self, _cursor: Any, logged: LoggedChanges) -> None:
        now = clock()
        for record in logged.records:
            if ALERT_VOCAB + "Alert" not in record.entity.types:
                continue
            attrs = record.entity.attrs
            key = attrs[RULES_VOCAB + "ruleKey"][0]["value"]
            cleared = VALID_TO in attrs and VALID_TO in record.changed
            at = attrs[VALID_TO if cleared else ALERT_VOCAB + "dateIssued"][0]["value"]
            self.written.setdefault((key, at["@value"]), now)


class Generator:
    """Commit readings at a rate; remember when each crossing change committed."""

    def __init__(self, store: EntityStore, sizes: RulesSizes) -> None:
        self.store = store
        self.sizes = sizes
        self.hot = [False] * sizes.sensors
        self.crossings: dict[tuple[str, str], float] = {}
        self.count = 0
        self.cpu = 0.0
        self.seconds = 0.0

    def _batch(self, size: int) -> list[StoredEntity]:
        entities: list[StoredEntity] = []
        now = datetime.now(UTC)
        for _ in range(size):
            n = self.count
            self.count += 1
            sensor = n % self.sizes.sensors
            crossing = n % self.sizes.crossing_every == 0
            if crossing:
                self.hot[sensor] = not self.hot[sensor]
            at = format_moment(round(now.timestamp(), 3))  # a sensor reads every 200+ ms
            entity_id = f"urn:ngsi-ld:WeatherObserved:bench-{sensor}"
            value = 35 if self.hot[sensor] else 20
            instance = {"type": "Property", "value": value, "observedAt": at}
            entities.append(StoredEntity(entity_id, [THING], {TEMPERATURE: [instance]}, [], at, at))
            if crossing:
                self.crossings[(entity_id, at)] = 0.0
        return entities

    def run(self, stop: threading.Event) -> None:
        """Write a batch every `sizes.every` seconds until `stop` (catching up when behind)."""
        thread_id = threading.get_native_id()
        started_cpu = thread_cpu_seconds(thread_id)
        per_batch = max(round(self.sizes.rate * self.sizes.every), 1)
        started = next_at = time.perf_counter()
        while not stop.is_set():
            entities = self._batch(per_batch)
            unique = {e.id: e for e in entities}
            self.store.apply("", list(unique), _upserting(list(unique.values())))
            committed = clock()
            for entity in unique.values():
                at = entity.attrs[TEMPERATURE][0]["observedAt"]
                if (entity.id, at) in self.crossings:
                    self.crossings[(entity.id, at)] = committed
            next_at += self.sizes.every
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        self.seconds = time.perf_counter() - started
        self.cpu = thread_cpu_seconds(thread_id) - started_cpu


def _writer_main() -> None:
    """The load generator as a process of its own (PostgreSQL): write for the given seconds,
    then print what it wrote as JSON (argv: database URL, schema, sizes as JSON)."""
    url, schema, given = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    sizes = RulesSizes(**given)
    store = PostgresEntityStore(url, schema=schema, max_size=1)
    generator = Generator(store, sizes)
    stop = threading.Event()
    threading.Timer(sizes.seconds, stop.set).start()
    generator.run(stop)
    store.close()
    crossings = [[*key, at] for key, at in generator.crossings.items()]
    print(
        json.dumps({"count": generator.count, "seconds": generator.seconds, "crossings": crossings})
    )


async def _write_elsewhere(
    settings: Settings, sizes: RulesSizes
) -> tuple[int, float, dict[tuple[str, str], float]]:
    """Run the generator as a process of its own; return its count, seconds and crossings."""
    code = "from bench.rules_latency import _writer_main\n_writer_main()\n"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        settings.database_url,
        settings.database_schema or "",
        json.dumps(asdict(sizes)),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the load generator's process failed ({process.returncode})")
    done = json.loads(out.decode().strip().splitlines()[-1])
    crossings = {(entity_id, at): committed for entity_id, at, committed in done["crossings"]}
    return done["count"], done["seconds"], crossings


def _settings(backend: str, bus: str, folder: Path, postgres_url: str, schema: str) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{folder / 'rules.db'}",
        "context_offline": True,
        "notifications_enabled": False,
        "ingest_enabled": False,
        "rules_enabled": True,
        "rules_checkpoint_seconds": 5.0,
        "rules_lateness": LATENESS,
        "rules_clock_delay": CLOCK_DELAY,
        "auth_secret": "bench-secret-for-signing-bearer-tokens-0123456789",
        "log_level": "warning",
    }
    if backend == "postgres":
        values.update(database_url=postgres_url, database_schema=schema)
    if bus == "nats":
        values.update(bus_url=NATS_URL, bus_stream=f"bench_{schema}", bus_subjects=[f"{schema}.>"])
    return Settings(**values)


async def _measure(
    platform: Platform, settings: Settings, sizes: RulesSizes, result: RulesResult, prefix: str
) -> None:
    parts = build_rules(
        settings,
        store=platform.store,
        entities=platform.entities,
        resolve=platform.contexts.resolve,
        bus=platform.bus,
        clock=platform.clock,
        history=platform.history,
        access=platform.access,
        devices=platform.iot.devices,
        plug=engine_plug(settings.rules_lateness, settings.rules_clock_delay),
        subject_prefix=prefix,
    )
    assert parts.runtime is not None
    parts.service.create(Caller.system(""), "bench-hot", {"id": "bench-hot", **RULE})
    alerts = AlertTimes()
    platform.store.set_change_hook("bench-rules", alerts.on_logged)
    await platform.start()
    stop = asyncio.Event()
    workers = [asyncio.create_task(w.run(stop)) for w in parts.workers]
    state = parts.state
    await _until(lambda: all(state.checkpoint(p) for p in range(settings.rules_partitions)), 60)
    result.busy_before = await asyncio.to_thread(wait_for_quiet, 0.5, max_wait=sizes.quiet_wait)
    result.load = os.getloadavg()[0]
    cpu_before = time.process_time()
    if result.writer == "process":
        written, seconds, crossings = await _write_elsewhere(settings, sizes)
        writer_cpu = 0.0  # another process's
    else:
        generator = Generator(platform.store, sizes)
        stop_writing = threading.Event()
        writer = asyncio.create_task(asyncio.to_thread(generator.run, stop_writing))
        await asyncio.sleep(sizes.seconds)
        stop_writing.set()
        await writer
        written, seconds, writer_cpu = generator.count, generator.seconds, generator.cpu
        crossings = generator.crossings
    await _until(lambda: len(alerts.written) >= len(crossings), 30)
    result.cpu_seconds = time.process_time() - cpu_before - writer_cpu
    result.handled = parts.runtime.counts()["handled"]
    result.too_late = _too_late(parts.runtime)
    stop.set()
    await asyncio.gather(*workers)
    await platform.stop()
    result.written, result.seconds = written, seconds
    result.expected_alerts = len(crossings)
    result.alerts = len(alerts.written)
    result.latencies = [
        alerts.written[key] - committed
        for key, committed in crossings.items()
        if key in alerts.written and committed
    ]


def _too_late(runtime: RulesRuntime) -> int:
    """Return the changes the engines took too late for the rules (behind their watermark)."""
    late = 0
    for owned in runtime.owned.values():
        engines = owned.runner.engine
        if isinstance(engines, TenantEngines):
            late += sum(metrics["tooLate"] for metrics in engines.metrics().values())
    return late


async def _until(condition: Callable[[], bool], seconds: float) -> None:
    """Wait until `condition()` holds or `seconds` passed."""
    for _ in range(int(seconds * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)


def run_rules_latency(backend: str, bus: str, sizes: RulesSizes, postgres_url: str) -> RulesResult:
    """Run the benchmark on one store and one bus (on PostgreSQL, the writes come from a process
    of their own)."""
    configure_logging("warning", "console")
    schema = f"bench_rules_{uuid.uuid4().hex[:10]}"
    result = RulesResult(backend, bus, sizes.rate, "process" if backend == "postgres" else "thread")
    with tempfile.TemporaryDirectory() as folder:
        settings = _settings(backend, bus, Path(folder), postgres_url, schema)
        # The platform without its own rule workers: the bench builds them on its subjects.
        platform = build_platform(settings.model_copy(update={"rules_enabled": False}))
        thresholds = gc.get_threshold()
        freeze_startup_objects()  # as `smartcity serve` and `smartcity workers` do
        try:
            prefix = f"{schema}.changes" if bus == "nats" else SUBJECT_PREFIX
            asyncio.run(_measure(platform, settings, sizes, result, prefix))
        finally:
            gc.unfreeze()
            gc.set_threshold(*thresholds)
            platform.close()
            if backend == "postgres":
                with psycopg.connect(postgres_url, autocommit=True) as connection:
                    connection.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                    )
    return result


def print_results(console: Console, results: list[RulesResult]) -> None:
    """Print the figures as a table."""
    table = Table(title="rules: change committed -> alert stored")
    columns = (
        "store",
        "bus",
        "writer",
        "offered/s",
        "written/s",
        "alerts",
        "too late",
        "p50 ms",
        "p95 ms",
        "p99 ms",
    )
    for column in (*columns, "CPU ms/change", "busy before", "load"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(*_cells(r))
    console.print(table)


def _cells(r: RulesResult) -> list[str]:
    per_change = r.cpu_per_change
    return [
        r.backend,
        r.bus,
        r.writer,
        f"{r.offered:,}",
        f"{r.written_per_second:,.0f}",
        f"{r.alerts}/{r.expected_alerts}",
        f"{r.too_late:,}",
        f"{r.percentile(0.50):.1f}",
        f"{r.percentile(0.95):.1f}",
        f"{r.percentile(0.99):.1f}",
        f"{per_change:.3f}",
        f"{r.busy_before:.2f}",
        f"{r.load:.1f}",
    ]


def section(results: list[RulesResult], sizes: RulesSizes, date: str) -> str:
    """Return the markdown section of docs/benchmarks.md for these results."""
    lines = [
        "## Rules latency (issue 6)",
        "",
        f"Measured {date} by `python -m bench --only rules-latency` on the machine above.",
        "",
        f"- {sizes.sensors:,} WeatherObserved entities; temperature readings committed at the",
        f"  offered rate in transactions every 10 ms; one change in {sizes.crossing_every}",
        "  crosses a threshold rule and raises or clears an `Alert` (through the broker).",
        "- The platform's process: store, bus, change relay and engine worker (4 partitions,",
        "  each reading every change). The load generator: on SQLite a thread of that process",
        "  (`writer` thread: SQLite deployments are one process), on PostgreSQL a process of",
        "  its own (`writer` process, as a city's API processes are beside `smartcity workers`;",
        "  the relay hears its commits by LISTEN/NOTIFY). Engine: the platform's convergence",
        "  engine (`engine_plug`), the threshold rule stored through the rule service, with",
        f"  `rules_lateness` {LATENESS:g}: a change meets the rules as soon as it is the newest",
        "  (the default 60 s makes every alert wait a minute for late readings), and",
        f"  `rules_clock_delay` {CLOCK_DELAY:g} s. Readings carry the wall clock as event time.",
        "- Latency: from the return of the commit holding the crossing change to the write of",
        "  the alert (inside its transaction), on the machine's monotonic clock. `CPU",
        "  ms/change`: the platform process's CPU (less the generator's thread), per change the",
        "  engine handled (summed over partitions that hold rules). `busy before`: cores busy",
        "  just before the run (of 2); `load`: the 1-minute load average then (other helpers'",
        "  tests and benches ran on the machine).",
        "  `too late`: readings that reached the engine after its time had passed them (the",
        f"  newest reading's, or the clock less {CLOCK_DELAY:g} s): they fire nothing, so a",
        "  crossing among them has no alert.",
        "",
        "| store | bus | writer | offered/s | written/s | alerts | too late | p50 ms | p95 ms "
        "| p99 ms | CPU ms/change | busy before | load |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in results]
    lines += [
        "",
        "The process runs the garbage collector as `smartcity serve` and `smartcity workers` do",
        "(`platform.freeze_startup_objects`: the start-up objects frozen, young collections every",
        "10,000 allocations). Without that, the full collections that walk the ~150,000 start-up",
        "objects stall everything for tens of milliseconds: on this machine the same code gave a",
        "p99 of 165-177 ms on SQLite with the in-process bus.",
    ]
    if any(r.written_per_second < 0.9 * r.offered for r in results):
        lines += [
            "",
            "Where `written/s` is under the offered rate, the load generator could not commit",
            "faster: as a thread it shares the process and its GIL with the store, the relay and",
            "the engine; as a process it shares the machine's two cores with the platform's",
            "process, PostgreSQL and NATS. The latencies are at the rate written.",
        ]
    nats = [r for r in results if r.bus == "nats" and r.handled]
    memory = [r for r in results if r.bus == "memory" and r.handled]
    if nats and memory:
        over = nats[0].cpu_per_change - min(r.cpu_per_change for r in memory)
        lines += [
            "",
            "With NATS every change is a JetStream message: the relay publishes it and waits for",
            "the stream's acknowledgement, the partition fetches, decodes and acknowledges it.",
            f"That costs the platform's process {over * 1000:.0f} µs of CPU per change more than",
            "the in-process bus (most of it in the Python client, nats-py: parsing, a task per",
            f"message fetched), {over * nats[0].offered / 1000:.2f} of a core at the offered rate,",
            "on a machine whose two cores also run the load generator, PostgreSQL and the NATS",
            "server: the changes queue, and the latency with them.",
        ]
    verdicts = []
    for r in results:
        if not r.latencies:
            continue
        p99 = r.percentile(0.99)
        full = r.written_per_second >= 0.9 * r.offered
        verdicts.append(
            f"{r.backend} with the {'in-process' if r.bus == 'memory' else r.bus} bus: p99 "
            f"{p99:.1f} ms at {r.written_per_second:,.0f} changes/s written, "
            + (
                "met"
                if p99 < 50 and full
                else ("under 50 ms but below the offered rate" if p99 < 50 else "not met")
            )
        )
    if verdicts:
        lines += ["", "Goal (p99 under 50 ms at 5,000 changes/s): " + "; ".join(verdicts) + "."]
    return "\n".join(lines) + "\n"
