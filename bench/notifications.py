"""Notification throughput and latency: 1,000 subscriptions, 1,000 entity changes/s, a local sink.

The server is a real `smartcity serve` subprocess; the HTTP sink that receives the notifications
runs in a process of its own; this process drives the updates. Latency is measured per
notification from the entity's `modifiedAt` (set in the writing transaction, just before its
commit) to the moment the sink has read the request: both clocks are this machine's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from bench.load import percentile
from bench.server import Server, auth_headers, free_port, postgres_database

ENTITY = "urn:ngsi-ld:Streetlight:bench-{}"
SECTION = "notifications"
"""Its section of docs/benchmarks.md (see bench/sections.py)."""
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class NotificationSizes:
    """How big the notification benchmark is."""

    subscriptions: int = 1_000
    changes_per_second: int = 1_000
    ticks_per_second: int = 20
    seconds: float = 20.0
    drain_timeout: float = 60.0


FULL = NotificationSizes()
QUICK = NotificationSizes(subscriptions=200, changes_per_second=200, seconds=4.0)


@dataclass
class Phase:
    """One load phase: what was sent, what came, how late."""

    name: str
    changes: int
    send_seconds: float
    expected: int
    delivered: int
    delivered_per_second: float
    latencies: list[float] = field(default_factory=list, repr=False)

    def latency(self, share: float) -> float:
        """Return a latency percentile in milliseconds."""
        return percentile(self.latencies, share) * 1000


@dataclass
class NotificationResult:
    """The phases measured on one backend, in one process layout."""

    backend: str
    sizes: NotificationSizes
    phases: list[Phase]
    layout: str = "one process"


# -- the sink (its own process) ----------------------------------------------------------------


def _sink_main(port: int, commands: Queue[str], results: Queue[Any]) -> None:
    asyncio.run(_sink(port, commands, results))


async def _sink(port: int, commands: Queue[str], results: Queue[Any]) -> None:
    records: list[tuple[str, float, float]] = []  # (path, latency, received at)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                path = line.split(b" ", 2)[1].decode()
                length = 0
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    if header[:15].lower() == b"content-length:":
                        length = int(header[15:])
                body = await reader.readexactly(length)
                if path == "/dead":
                    await asyncio.sleep(3600)
                    return
                now = time.time()
                for entity in orjson.loads(body)["data"]:
                    modified = datetime.fromisoformat(entity["modifiedAt"]).timestamp()
                    records.append((path, now - modified, now))
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a client gone, or the sink stopping with a dead endpoint's request open
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=2048)
    results.put("ready")
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, commands.get)
        if command == "stop":
            server.close()
            return
        taken, records = records, []
        results.put(taken)


@contextmanager
def running_sink() -> Iterator[tuple[str, Queue[str], Queue[Any]]]:
    """Start the sink process; yield its URL and its command and result queues."""
    context = multiprocessing.get_context("spawn")
    commands: Queue[str] = context.Queue()
    results: Queue[Any] = context.Queue()
    port = free_port()
    process = context.Process(target=_sink_main, args=(port, commands, results), daemon=True)
    process.start()
    if results.get(timeout=30) != "ready":
        raise RuntimeError("the notification sink did not start")
    try:
        yield f"http://127.0.0.1:{port}", commands, results
    finally:
        commands.put("stop")
        process.join(10)
        if process.is_alive():
            process.kill()


# -- the load ----------------------------------------------------------------------------------


def _light(number: int, level: int) -> dict[str, Any]:
    return {
        "id": ENTITY.format(number),
        "type": "Streetlight",
        "illuminanceLevel": {"type": "Property", "value": level},
    }


async def _setup(client: httpx.AsyncClient, sink: str, count: int) -> None:
    for start in range(0, count, 100):
        batch = [_light(n, 0) for n in range(start, min(count, start + 100))]
        response = await client.post(
            "/ngsi-ld/v1/entityOperations/upsert", content=orjson.dumps(batch), headers=JSON
        )
        response.raise_for_status()
    limit = asyncio.Semaphore(8)

    async def subscribe(number: int) -> None:
        body = {
            "id": f"urn:ngsi-ld:Subscription:bench-{number}",
            "type": "Subscription",
            "entities": [{"type": "Streetlight", "id": ENTITY.format(number)}],
            "watchedAttributes": ["illuminanceLevel"],
            "notification": {
                "attributes": ["illuminanceLevel"],
                "sysAttrs": True,
                "endpoint": {"uri": f"{sink}/n/{number}"},
            },
        }
        async with limit:
            response = await client.post(
                "/ngsi-ld/v1/subscriptions", content=orjson.dumps(body), headers=JSON
            )
            response.raise_for_status()

    await asyncio.gather(*(subscribe(n) for n in range(count)))


async def _drive(client: httpx.AsyncClient, sizes: NotificationSizes, round_: int) -> float:
    """Send the updates at the set rate; return how long sending took."""
    per_tick = sizes.changes_per_second // sizes.ticks_per_second
    ticks = int(sizes.seconds * sizes.ticks_per_second)
    limit = asyncio.Semaphore(8)
    tasks: list[asyncio.Task[None]] = []
    started = time.perf_counter()

    async def send(batch: list[dict[str, Any]]) -> None:
        async with limit:
            response = await client.post(
                "/ngsi-ld/v1/entityOperations/update", content=orjson.dumps(batch), headers=JSON
            )
            response.raise_for_status()

    for tick in range(ticks):
        first = tick * per_tick
        batch = [
            _light((first + k) % sizes.subscriptions, round_ * 1_000_000 + tick * per_tick + k)
            for k in range(per_tick)
        ]
        tasks.append(asyncio.create_task(send(batch)))
        delay = started + (tick + 1) / sizes.ticks_per_second - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    await asyncio.gather(*tasks)
    return time.perf_counter() - started


def _collect(
    name: str,
    commands: Queue[str],
    results: Queue[Any],
    sizes: NotificationSizes,
    send_seconds: float,
    started: float,
    excluded: int,
) -> Phase:
    changes = int(sizes.seconds * sizes.ticks_per_second) * (
        sizes.changes_per_second // sizes.ticks_per_second
    )
    expected = changes - excluded
    records: list[tuple[str, float, float]] = []
    deadline = time.monotonic() + sizes.drain_timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        commands.put("collect")
        try:
            records.extend(results.get(timeout=10))
        except queue.Empty:
            break
        alive = [r for r in records if r[0] != "/n/0" or not excluded]
        if len(alive) >= expected:
            break
    alive = [r for r in records if r[0] != "/n/0" or not excluded]
    last = max((r[2] for r in alive), default=started)
    return Phase(
        name=name,
        changes=changes,
        send_seconds=send_seconds,
        expected=expected,
        delivered=len(alive),
        delivered_per_second=len(alive) / max(last - started, 1e-9),
        latencies=[r[1] for r in alive],
    )


def run_notifications(
    backend: str, postgres_url: str, sizes: NotificationSizes, *, separate: bool = False
) -> NotificationResult:
    """Measure both phases (all endpoints alive; one dead) on one backend.

    `separate`: the server only serves the API and a `smartcity workers` process notifies.
    """
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smartcity-bench-")))
        url = stack.enter_context(_database(backend, postgres_url, folder))
        base, commands, results = stack.enter_context(running_sink())
        with _environment({"SMARTCITY_NOTIFICATIONS_ENABLED": "false"} if separate else {}):
            server = stack.enter_context(Server(url, folder / "server.log"))
        if separate:
            stack.enter_context(_workers(url, folder / "workers.log"))
        result = asyncio.run(_phases(server.base_url, backend, sizes, base, commands, results))
        result.layout = "API + workers process" if separate else "one process"
        return result


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _workers(database_url: str, log_path: Path) -> Iterator[None]:
    """Run `smartcity workers` (polling the change log every 20 ms) beside the server."""
    command = str(Path(sys.executable).with_name("smartcity"))
    env = {
        **os.environ,
        "SMARTCITY_CONTEXT_OFFLINE": "true",
        "SMARTCITY_NOTIFICATION_POLL_INTERVAL": "0.02",
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [command, "workers", "--database-url", database_url, "--log-level", "warning"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def _database(backend: str, postgres_url: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'notifications.db'}"
    else:
        with postgres_database(postgres_url, "smartcity_bench_notifications") as url:
            yield url


async def _phases(
    base_url: str,
    backend: str,
    sizes: NotificationSizes,
    sink: str,
    commands: Queue[str],
    results: Queue[Any],
) -> NotificationResult:
    phases: list[Phase] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60, headers=auth_headers()) as client:
        await _setup(client, sink, sizes.subscriptions)
        for round_, name in enumerate(("all endpoints alive", "one endpoint dead"), start=1):
            excluded = 0
            if round_ == 2:
                dead = {"notification": {"endpoint": {"uri": f"{sink}/dead"}}}
                response = await client.patch(
                    "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:bench-0",
                    content=orjson.dumps(dead),
                    headers=JSON,
                )
                response.raise_for_status()
                excluded = (
                    int(sizes.seconds * sizes.ticks_per_second)
                    * (sizes.changes_per_second // sizes.ticks_per_second)
                    // sizes.subscriptions
                )
            started = time.time()
            send_seconds = await _drive(client, sizes, round_)
            phase = await asyncio.to_thread(
                _collect, name, commands, results, sizes, send_seconds, started, excluded
            )
            phases.append(phase)
    return NotificationResult(backend, sizes, phases)


# -- the report --------------------------------------------------------------------------------


def print_results(console: Console, results: list[NotificationResult]) -> None:
    """Print one table row per backend and phase."""
    table = Table(title="Notifications: 1 subscription per entity, local HTTP sink")
    for column in (
        "backend",
        "phase",
        "changes/s",
        "delivered",
        "delivered/s",
        "p50",
        "p95",
        "p99",
    ):
        table.add_column(column)
    for result in results:
        for phase in result.phases:
            table.add_row(*_cells(result, phase))
    console.print(table)


def _cells(result: NotificationResult, phase: Phase) -> list[str]:
    return [
        result.backend,
        result.layout,
        phase.name,
        f"{phase.changes / phase.send_seconds:,.0f}",
        f"{phase.delivered:,} / {phase.expected:,}",
        f"{phase.delivered_per_second:,.0f}",
        f"{phase.latency(0.50):,.0f} ms",
        f"{phase.latency(0.95):,.0f} ms",
        f"{phase.latency(0.99):,.0f} ms",
    ]


def section(results: list[NotificationResult], date: str) -> str:
    """Return the markdown section of docs/benchmarks.md for these results."""
    sizes = results[0].sizes
    lines = [
        "## Notifications (issue 3)",
        "",
        f"Measured {date} by `python -m bench --only notifications` on the machine above.",
        "",
        f"- {sizes.subscriptions:,} subscriptions, one per Streetlight entity (`entities` by id,",
        "  `watchedAttributes` illuminanceLevel, `notification.attributes` and `sysAttrs`), each",
        "  to its own path of one local HTTP sink running in a separate process (raw asyncio,",
        "  answers 204). The server is `smartcity serve` (one uvicorn process: API, notifier and",
        "  delivery worker together; default settings: 100 deliveries at once, 5 s timeout).",
        f"- Load: {sizes.changes_per_second:,} entity changes/s for {sizes.seconds:g} s, as "
        f"{sizes.ticks_per_second} batch updates/s",
        f"  (`POST /entityOperations/update`, {sizes.changes_per_second // sizes.ticks_per_second}"
        " entities each, up to 8 in flight), round robin over the entities; the last rows of each",
        "  backend run at a lower rate, to show the pipeline's latency when the machine is not",
        "  saturated.",
        "- Latency: from the entity's `modifiedAt` (taken inside the writing transaction, just",
        "  before commit) to the sink reading the notification; delivered/s = notifications",
        "  received / time from the first update to the last receipt.",
        f"- Delivered: notifications received by the end of the load plus up to "
        f"{sizes.drain_timeout:g} s; any",
        "  missing were still queued in the outbox when the run stopped (not lost).",
        "- Second phase: subscription 0 is PATCHed to an endpoint that accepts the connection and",
        "  never answers (each attempt waits out the 5 s timeout, then backs off); the figures",
        "  are those of the other subscriptions.",
        "",
        "| backend | processes | phase | changes/s sent | notifications delivered | delivered/s "
        "| p50 | p95 | p99 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        for phase in result.phases:
            lines.append("| " + " | ".join(_cells(result, phase)) + " |")
    lines += [
        "",
        "Goal: p95 under 100 ms; with one endpoint dead the others' p95 within 20 %. Reference:",
        "Orion (NGSIv2) published ~170 updates/s with 1,000 subscriptions on 4 cores.",
        "",
        *[f"- {line}" for line in verdicts(results)],
    ]
    return "\n".join(lines)


def verdicts(results: list[NotificationResult]) -> list[str]:
    """Say, per backend and layout, whether the goals were met."""
    lines = []
    for result in results:
        alive, dead = result.phases
        p95, p95_dead = alive.latency(0.95), dead.latency(0.95)
        kept_up = alive.delivered_per_second >= 0.95 * alive.changes / alive.send_seconds
        change = (p95_dead - p95) / p95 * 100 if p95 else 0.0
        lines.append(
            f"{result.backend}, {result.layout}, "
            f"{alive.changes / alive.send_seconds:,.0f} changes/s: p95 {p95:,.0f} ms "
            f"({'meets' if p95 < 100 else 'misses'} the 100 ms goal); delivery "
            f"{'kept up with' if kept_up else 'fell behind'} the changes "
            f"({alive.delivered_per_second:,.0f}/s); one endpoint dead: others' p95 "
            f"{p95_dead:,.0f} ms ({change:+.0f} %, goal within ±20 %)."
        )
    return lines
