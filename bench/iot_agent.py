"""IoT agent benchmark: MQTT readings through Mosquitto to stored entities on SQLite.

One process holds the platform as `smartcity serve` runs it (SQLite in a temporary folder, the
in-process bus, the ingest writer writing the history in each change's transaction;
notifications off) with the MQTT southbound. The broker is a Mosquitto of the benchmark's own on
a free local port, configured as the platform needs (see MOSQUITTO_CONF): Mosquitto's default
keeps at most 1,000 messages queued per client and silently drops the rest for a subscriber that
falls behind, which would lose readings the broker had acknowledged. The devices (1,000) are
played by one publisher process (`bench/iot_publisher.py`, QoS 1, up to 1,000 messages
unacknowledged), round robin, so each device reports in turn as in a district. Each device
feeds its own AirQualityObserved entity; each measure carries its send time (TimeInstant),
which becomes the stored instance's observedAt.

A session is one fresh platform and Mosquitto: a warm-up (every device once: the entities are
created, not reported), then the phases:
- a flood: every message published as fast as the publisher can (the capacity);
- paced runs at fixed offered rates, lowest first, stopping after the first that falls behind.
The clean session runs the flood and the paced runs; the malformed session the flood and one
paced run at the sustained rate, with every 10th message cut short.

Nothing is sampled: after each phase every reading is looked up in the history table, its
latency is the instance's modifiedAt (taken by the writer's upsert, in the transaction that
stores it) minus its observedAt (the device's send time), and the counts say that every good
reading is stored and every bad message is a dead letter. CPU comes from /proc (the platform
process, Mosquitto, the publisher, the machine) and, inside the platform, from thread CPU clocks
around the agent's work and the writer's upserts (see `Meter`).

`python -m bench --only iot-agent [--quick]`, or `python -m bench.iot_agent` for the table alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.cpu import (
    machine_cpu_seconds,
    process_cpu_seconds,
    thread_cpu_seconds,
    wait_for_quiet,
)
from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.core.clock import isoformat
from smartcity.ingest.readings import Reading
from smartcity.ingest.writer import IngestWriter
from smartcity.logs import configure_logging
from smartcity.platform import Platform, build_platform
from smartcity.storage.deadletters import DeadLetterFilter

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "smart-data-models"
ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-air"
ENTITY_PREFIX = "urn:ngsi-ld:AirQualityObserved:bench-"
LATENCY_GOAL_MS = 250.0
KEEP_UP = 0.95
"""A paced run keeps up when the publisher sent at least this share of the offered rate..."""
DRAIN_LIMIT = 1.0
"""...and every message settled at most this many seconds after the last was sent."""
BEHIND_SECONDS = 2.0
"""A paced run is given up once this many seconds of offered messages are not yet settled."""
SLACK = 0.001
"""Seconds added around a phase's send times when its readings are looked up by observedAt
(timestamps are truncated to microseconds; phases are seconds apart)."""
MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
# Keep what arrives for a subscriber that falls behind (the default, 1000, drops the rest).
max_queued_messages 10000000
max_queued_bytes 0
"""


@dataclass(frozen=True)
class IotSizes:
    """How big the IoT agent benchmark is."""

    devices: int = 1_000
    flood: int = 20_000
    """Messages of the flood phase."""
    rates: tuple[int, ...] = (500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000)
    """Offered rates of the paced runs (messages/s), tried lowest first."""
    seconds: float = 20.0
    """Length of each paced run."""
    malformed: float = 0.1
    """Share of malformed messages in the malformed session."""
    quiet_wait: float = 3.0
    """Seconds to wait, at most, for the machine to calm down before a phase."""
    settle_limit: float = 120.0
    """Seconds to wait, at most, for a phase's messages to settle after the last was sent."""


FULL = IotSizes()
QUICK = IotSizes(
    devices=20, flood=400, rates=(100, 200), seconds=1.0, quiet_wait=0.0, settle_limit=20.0
)


@dataclass(frozen=True)
class Cpu:
    """CPU seconds used so far, by whom (a snapshot)."""

    wall: float
    machine: float
    platform: float
    loop: float
    """The platform's event loop thread (MQTT client, bus, acknowledgements, the writer's
    decoding and settling)."""
    mosquitto: float
    agent: float
    upserts: float
    history: float
    letters: float
    """Recording dead letters (CPU)."""
    upserts_wall: float
    letters_wall: float
    """Wall time of the upserts and of recording dead letters: CPU plus waiting (for the GIL,
    or for SQLite's write lock, which the store gives one writer at a time)."""

    def __sub__(self, before: Cpu) -> Cpu:
        return Cpu(
            *(after - first for after, first in zip(_values(self), _values(before), strict=True))
        )


def _values(cpu: Cpu) -> tuple[float, ...]:
    return (
        cpu.wall,
        cpu.machine,
        cpu.platform,
        cpu.loop,
        cpu.mosquitto,
        cpu.agent,
        cpu.upserts,
        cpu.history,
        cpu.letters,
        cpu.upserts_wall,
        cpu.letters_wall,
    )


@dataclass
class Phase:
    """One phase's figures."""

    name: str
    rate: int | None
    """Offered messages/s (None: the flood)."""
    malformed_share: float
    sent: int = 0
    malformed: int = 0
    send_seconds: float = 0.0
    """First send to last send (the publisher's clock)."""
    settle_seconds: float = float("nan")
    """First send until every message was stored or dead-lettered (nan: it never was)."""
    stored: int = 0
    """Good readings found in the history (counted one by one)."""
    store_seconds: float = float("nan")
    """First send to the last stored reading's modifiedAt."""
    dead_letters: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    """modifiedAt - observedAt of every stored reading, in milliseconds (from the history)."""
    commit_latencies: list[float] = field(default_factory=list)
    """Commit seen by the writer - observedAt of every stored reading, in milliseconds."""
    given_up: bool = False
    """Publishing was stopped early: the platform had fallen too far behind."""
    cpu: Cpu | None = None
    publisher_cpu: float = 0.0
    busy_before: float = float("nan")

    @property
    def good(self) -> int:
        return self.sent - self.malformed

    @property
    def offered_rate(self) -> float:
        """Messages/s the publisher sent."""
        return self.sent / self.send_seconds if self.send_seconds else float("nan")

    @property
    def handled_rate(self) -> float:
        """Messages/s stored or dead-lettered, from the first send to the last one settled."""
        return self.sent / self.settle_seconds

    @property
    def stored_rate(self) -> float:
        """Good readings/s, from the first send to the last stored."""
        return self.stored / self.store_seconds if self.store_seconds else float("nan")

    @property
    def drain_seconds(self) -> float:
        """How long after the last send the last message settled."""
        return self.settle_seconds - self.send_seconds

    @property
    def all_stored(self) -> bool:
        return self.stored == self.good

    @property
    def all_dead_lettered(self) -> bool:
        return self.dead_letters == self.malformed

    @property
    def kept_up(self) -> bool:
        """A paced run handled the offered rate and was settled soon after the last send."""
        if self.rate is None or self.given_up:
            return False
        return self.offered_rate >= KEEP_UP * self.rate and self.drain_seconds <= DRAIN_LIMIT

    def latency(self, quantile: float) -> float:
        """The history latency (ms) below which this share of the stored readings fall."""
        return _quantile(self.latencies, quantile)

    def commit_latency(self, quantile: float) -> float:
        """The same, up to the writer seeing the commit (ms)."""
        return _quantile(self.commit_latencies, quantile)

    def within_goal(self, *, to_commit: bool = False) -> bool:
        """p95 under the goal: by the history's modifiedAt, or up to the commit (later)."""
        p95 = self.commit_latency(0.95) if to_commit else self.latency(0.95)
        return p95 < LATENCY_GOAL_MS

    def cores(self, seconds: float) -> float:
        """CPU seconds of this phase as cores busy over its wall time."""
        if self.cpu is None or not self.cpu.wall:
            return float("nan")
        return seconds / self.cpu.wall


def _quantile(values: list[float], quantile: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


@dataclass
class IotResult:
    """Every phase of both sessions, with the machine's load around them."""

    sizes: IotSizes
    clean: list[Phase]
    malformed: list[Phase]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    seconds: float

    @property
    def paced(self) -> list[Phase]:
        return [p for p in self.clean if p.rate is not None]

    @property
    def sustained(self) -> Phase | None:
        """The fastest clean paced run that kept up with p95 under the goal (the history's)."""
        return self._fastest(to_commit=False)

    @property
    def sustained_to_commit(self) -> Phase | None:
        """The same with p95 up to the commit under the goal."""
        return self._fastest(to_commit=True)

    def _fastest(self, *, to_commit: bool) -> Phase | None:
        fine = [p for p in self.paced if p.kept_up and p.within_goal(to_commit=to_commit)]
        return max(fine, key=lambda p: p.rate or 0, default=None)


class Meter:
    """Thread CPU clocks (and wall time) around the platform's big jobs, accumulated.

    The agent's work (authenticate, decode, map, standardize, validate: `IotAgent._handle_all`),
    the writer's upserts (`IngestWriter._upsert`: the broker's batch upsert and SQLite, with the
    history rows written by the store's change hook, measured apart) and the recording of dead
    letters each run in a worker thread; `time.thread_time` counts only the CPU of the thread
    that calls it, so the sums are those jobs' own CPU, whatever else the process did meanwhile.
    """

    JOBS = ("agent", "upserts", "history", "letters")

    def __init__(self) -> None:
        self.cpu = dict.fromkeys(self.JOBS, 0.0)
        self.wall = dict.fromkeys(self.JOBS, 0.0)
        self._lock = threading.Lock()

    def install(self, platform: Platform, writer: IngestWriter) -> None:
        """Wrap these calls on the bench's own platform objects."""
        agent = platform.iot.agent
        setattr(agent, "_handle_all", self._timed(agent._handle_all, "agent"))  # noqa: B010
        setattr(writer, "_upsert", self._timed(writer._upsert, "upserts"))  # noqa: B010
        letters = platform.deadletters
        setattr(letters, "record_many", self._timed(letters.record_many, "letters"))  # noqa: B010
        history = platform.history
        platform.store.set_change_hook("history", self._timed(history._write_logged, "history"))

    def _timed(self, call: Callable[..., Any], job: str) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return call(*args)
            finally:
                spent, waited = time.thread_time() - cpu, time.perf_counter() - wall
                with self._lock:
                    self.cpu[job] += spent
                    self.wall[job] += waited

        return timed


@contextmanager
def private_mosquitto(folder: Path) -> Iterator[tuple[int, int]]:
    """Run a Mosquitto for this benchmark alone on a free local port; yield (port, pid)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = folder / "mosquitto.conf"
    config.write_text(MOSQUITTO_CONF.format(port=port))
    broker = subprocess.Popen(["mosquitto", "-c", str(config)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or broker.poll() is not None:
                raise SystemExit("the benchmark's Mosquitto did not start")
            time.sleep(0.05)
        yield port, broker.pid
    finally:
        broker.terminate()
        broker.wait(10)


def _settings(folder: Path, token: str, port: int) -> Settings:
    schemas = [str(SHARED)] if SHARED.is_dir() else []
    return Settings(
        database_url=f"sqlite:///{folder / 'bench.db'}",
        context_offline=True,
        context_preload_smart_data_models=str(SHARED) if SHARED.is_dir() else None,
        auth_secret="bench-secret-for-signing-bearer-tokens-0123456789",
        notifications_enabled=False,
        log_level="warning",
        ingest_schema_dirs=schemas,
        ingest_mqtt_enabled=True,
        ingest_mqtt_url=f"mqtt://127.0.0.1:{port}",
        ingest_mqtt_client_id=f"bench-agent-{token}",
        ingest_mqtt_topic_prefix=f"/bench-{token}",
        ingest_mqtt_session_expiry=600,
        ingest_device_health_interval=3600,
    )


def _devices(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"air-{device}",
            "apiKey": KEY,
            "entity": {"id": f"{ENTITY_PREFIX}{device}", "type": "AirQualityObserved"},
            "attributes": [
                {"objectId": "t", "name": "temperature", "unit": "CEL"},
                {"objectId": "h", "name": "relativeHumidity", "scale": 0.01},
            ],
        }
        for device in range(count)
    ]


class Session:
    """One platform with its Mosquitto and devices; runs phases one after the other."""

    def __init__(self, platform: Platform, port: int, mosquitto_pid: int, sizes: IotSizes) -> None:
        self.platform = platform
        self.port = port
        self.mosquitto_pid = mosquitto_pid
        self.sizes = sizes
        self.writer = next(w for w in platform.workers if isinstance(w, IngestWriter))
        self.meter = Meter()
        self.meter.install(platform, self.writer)
        self.loop_thread = threading.get_native_id()
        """The event loop's thread (sessions run in the thread that builds them)."""
        self.commits: list[tuple[str, float]] = []
        """(observedAt, wall-clock time) of each reading when the writer saw it committed."""
        self.writer.on_stored = self._on_stored

    def _on_stored(self, readings: list[Reading]) -> None:
        now = time.time()
        for reading in readings:
            observed = next(iter(reading.attributes.values())).get("observedAt")
            self.commits.append((str(observed), now))

    def cpu(self) -> Cpu:
        """Read every CPU counter now."""
        busy, _ = machine_cpu_seconds()
        return Cpu(
            wall=time.perf_counter(),
            machine=busy,
            platform=process_cpu_seconds(os.getpid()),
            loop=thread_cpu_seconds(self.loop_thread),
            mosquitto=process_cpu_seconds(self.mosquitto_pid),
            agent=self.meter.cpu["agent"],
            upserts=self.meter.cpu["upserts"],
            history=self.meter.cpu["history"],
            letters=self.meter.cpu["letters"],
            upserts_wall=self.meter.wall["upserts"],
            letters_wall=self.meter.wall["letters"],
        )

    def settled(self) -> int:
        """Messages stored or dead-lettered so far (the writer's and the agent's counters)."""
        return self.writer.counts.stored + sum(self.platform.iot.agent.stats.rejected.values())

    async def phase(self, name: str, count: int, rate: int | None, malformed: float) -> Phase:
        """Publish `count` messages (at `rate`/s, or a flood); measure until all are settled."""
        result = Phase(name, rate, malformed)
        result.busy_before = await asyncio.to_thread(
            wait_for_quiet, 0.5, 1.0, self.sizes.quiet_wait
        )
        since = isoformat(datetime.now(UTC))
        settled_before = self.settled()
        every = round(1 / malformed) if malformed > 0 else 0
        publisher = await self._publisher(count, rate, every)
        try:
            await asyncio.wait_for(publisher.stdout.readline(), 60)  # connected, sending
            cpu_before = self.cpu()
            expected = count / rate if rate else 0.0
            summary, settled_at = await self._watch(publisher, rate, expected, settled_before)
        finally:
            if publisher.returncode is None:
                publisher.kill()
                await publisher.wait()
        result.cpu = self.cpu() - cpu_before
        first = summary["first"]
        result.sent, result.malformed = summary["sent"], summary["malformed"]
        result.send_seconds = summary["last"] - first
        result.publisher_cpu = summary["cpu"]
        result.given_up = summary["sent"] < count
        if settled_at is not None:
            result.settle_seconds = settled_at - first
        commits, self.commits = self.commits, []
        low, high = first - SLACK, summary["last"] + SLACK
        observed = ((datetime.fromisoformat(moment).timestamp(), at) for moment, at in commits)
        result.commit_latencies = [
            (at - moment) * 1000 for moment, at in observed if low <= moment <= high
        ]
        await asyncio.to_thread(self._count, result, first, summary["last"], since)
        return result

    async def _publisher(self, count: int, rate: int | None, every: int) -> Any:
        prefix = self.platform.settings.ingest_mqtt_topic_prefix
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.iot_publisher",
            "--port", str(self.port),
            "--prefix", prefix,
            "--key", KEY,
            "--devices", str(self.sizes.devices),
            "--count", str(count),
            "--rate", str(rate or 0),
            "--malformed-every", str(every),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip

    async def _watch(
        self, publisher: Any, rate: int | None, expected: float, settled_before: int
    ) -> tuple[dict[str, Any], float | None]:
        """Follow a phase until every message sent is settled; stop the publisher early when
        a paced run falls too far behind. Return the publisher's summary and the wall-clock
        time the last message settled (None if they did not all settle in time)."""
        started = time.time()
        summary_line = asyncio.ensure_future(publisher.stdout.readline())
        summary: dict[str, Any] | None = None
        give_up_at = max(BEHIND_SECONDS * (rate or 0), 2_000)
        deadline = started + expected + self.sizes.settle_limit
        stopping = False
        settled, settled_at = 0, started
        while time.time() < deadline:
            await asyncio.sleep(0.01)
            if self.settled() - settled_before > settled:
                # When the last one settled (not when the publisher's summary came).
                settled, settled_at = self.settled() - settled_before, time.time()
            if summary is None and summary_line.done():
                summary = json.loads(summary_line.result())
                deadline = time.time() + self.sizes.settle_limit
            if summary is not None and settled >= summary["sent"]:
                await publisher.wait()
                return summary, settled_at
            behind = (time.time() - started) * (rate or 0) - settled
            if rate and summary is None and not stopping and behind > give_up_at:
                publisher.send_signal(signal.SIGTERM)
                stopping = True
        if summary is None:
            raise SystemExit("the benchmark's publisher did not finish in time")
        return summary, None

    def _count(self, result: Phase, first: float, last: float, since: str) -> None:
        """Look every reading of the phase up in the history; count the dead letters."""
        low, high = int((first - SLACK) * 1e6), int((last + SLACK) * 1e6)
        with self.platform.store.reading() as cursor:
            cursor.execute(
                "SELECT i.observed_at, MAX(i.modified_at) FROM history_instances i "
                "JOIN history_entities e ON e.hk = i.hk "
                "WHERE e.entity_id LIKE ? AND i.observed_at BETWEEN ? AND ? "
                "GROUP BY i.hk, i.observed_at",
                [f"{ENTITY_PREFIX}%", low, high],
            )
            rows = cursor.fetchall()
        result.stored = len(rows)
        result.latencies = [(modified - observed) / 1000 for observed, modified in rows]
        if rows:
            result.store_seconds = max(modified for _, modified in rows) / 1e6 - first
        reasons = self.platform.deadletters.counts_by_reason(
            Caller.system(), DeadLetterFilter(since=since)
        )
        result.reasons = dict(reasons)
        result.dead_letters = sum(reasons.values())


async def _session_phases(
    session: Session, sizes: IotSizes, malformed: float, rate: int | None
) -> list[Phase]:
    """Warm up, then the flood, then the paced runs (all of them, or the one at `rate`)."""
    platform = session.platform
    stop = asyncio.Event()
    workers = asyncio.create_task(platform.run_workers(stop))
    try:
        mqtt = platform.iot.mqtt
        assert mqtt is not None
        await asyncio.wait_for(mqtt.connected.wait(), 10)
        await session.phase("warm-up", sizes.devices, None, 0.0)
        label = "flood" if not malformed else f"flood, {malformed:.0%} malformed"
        phases = [await session.phase(label, sizes.flood, None, malformed)]
        rates = sizes.rates if rate is None else (rate,)
        for offered in rates:
            label = "paced" if not malformed else f"paced, {malformed:.0%} malformed"
            phase = await session.phase(label, round(offered * sizes.seconds), offered, malformed)
            phases.append(phase)
            if not phase.kept_up:
                break
        return phases
    finally:
        stop.set()
        await workers
        await platform.stop()


def run_session(sizes: IotSizes, malformed: float = 0.0, rate: int | None = None) -> list[Phase]:
    """Run one session on a fresh platform and Mosquitto; return its reported phases."""
    token = uuid.uuid4().hex[:10]
    with (
        tempfile.TemporaryDirectory(prefix=f"smartcity-bench-iot-{token}-") as name,
        private_mosquitto(Path(name)) as (port, mosquitto_pid),
    ):
        platform = build_platform(_settings(Path(name), token, port))
        try:
            report = platform.iot.devices.import_devices(Caller.system(), _devices(sizes.devices))
            if report.failed:
                raise SystemExit(f"bench devices not imported: {report.failed[:3]}")
            session = Session(platform, port, mosquitto_pid, sizes)
            return asyncio.run(_session_phases(session, sizes, malformed, rate))
        finally:
            platform.close()


def run_iot_agent(sizes: IotSizes, progress: Callable[[str], None] | None = None) -> IotResult:
    """Run the clean session, then the malformed one at the clean one's sustained rate."""
    configure_logging("warning", "console")
    started, load_before = time.perf_counter(), os.getloadavg()
    say = progress or (lambda _: None)
    say("IoT agent: clean readings (flood, then paced runs)")
    clean = run_session(sizes)
    result = IotResult(sizes, clean, [], load_before, load_before, 0.0)
    sustained = result.sustained
    rate = sustained.rate if sustained is not None and sustained.rate else sizes.rates[0]
    say(f"IoT agent: {sizes.malformed:.0%} malformed (flood, then {rate:,}/s)")
    result.malformed = run_session(sizes, sizes.malformed, rate)
    result.load_after = os.getloadavg()
    result.seconds = time.perf_counter() - started
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its figures (docs/benchmarks.md is left alone)."""
    from bench.iot_report import print_result  # the report imports this module

    parser = argparse.ArgumentParser(prog="python -m bench.iot_agent", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args(argv)
    console = Console()
    result = run_iot_agent(QUICK if args.quick else FULL, console.print)
    print_result(console, result)


if __name__ == "__main__":
    main()
