"""Parking guidance: how long "where can I park near X at T?" takes, with the forecast included.

`python -m bench --only parking-guidance` builds a platform (SQLite and PostgreSQL) with
Changdong's parking — 25 modelled lots, 4 shared-parking sites and 2 resident-priority zones,
285 spot sensors and the 65 road segments walks are measured on — and asks the parking service
for the 5 best sites near random destinations in the district, arriving 30 minutes later for a
two-hour stay (so every live site also gets a forecast). Two ways: warm (the tenant's snapshot
is reused for `parking_cache_seconds`, as in production) and cold (the snapshot is read from
the database for every query). Wall time and the CPU time of the querying thread per query,
and how busy the machine was (other work runs on it).
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from bench.cpu import machine_cpu_seconds
from bench.scenarios import Backend
from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.platform import Platform, build_platform
from smartcity.sim.district import load_district
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from smartcity.sim.loader import build_entities
from smartcity.sim.seed import data_path

SECTION = "parking-guidance"
PARKING_TYPES = frozenset({"OffStreetParking", "OnStreetParking", "ParkingSpot", "RoadSegment"})
BOUNDS = ((127.038, 37.647), (127.069, 37.669))
"""The district's lots lie within these corners (longitude, latitude)."""
GOAL_P95_MS = 50.0


@dataclass(frozen=True)
class GuidanceFigures:
    """What one way of asking measured on one backend."""

    backend: Backend
    mode: str
    queries: int
    sites: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_ms: float
    machine_busy: float
    """Cores busy on the whole machine during the run (of 2)."""


def _platform(backend: Backend, folder: Path, postgres_url: str, cache: float) -> Platform:
    settings = Settings(
        database_url=f"sqlite:///{folder / 'guidance.db'}",
        context_offline=True,
        notifications_enabled=False,
        auth_secret="bench-secret-for-signing-bearer-tokens-0123456789",
        module_settings={"mobility": {"parking_cache_seconds": cache}},
    )
    if backend == "postgres":
        schema = f"bench_parking_{uuid.uuid4().hex[:8]}"
        settings = settings.model_copy(
            update={"database_url": postgres_url, "database_schema": schema}
        )
    platform = build_platform(settings)
    platform.contexts.preload_file(CHANGDONG_CONTEXT_URL, data_path("changdong-context.jsonld"))
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    entities = [e for e in build_entities(load_district()) if e["type"] in PARKING_TYPES]
    for start in range(0, len(entities), 500):
        platform.entities.batch_upsert(
            Caller.system(), entities[start : start + 500], lambda _: ctx
        )
    return platform


def _drop(platform: Platform, postgres_url: str) -> None:
    schema = platform.settings.database_schema
    platform.close()
    if schema:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def measure(
    backend: Backend, mode: str, queries: int, postgres_url: str, seed: int = 7
) -> GuidanceFigures:
    """Ask `queries` guidance questions on one backend; warm or cold snapshot."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as folder:
        platform = _platform(backend, Path(folder), postgres_url, 2.0 if mode == "warm" else 0.0)
        try:
            parking: Any = platform.services["mobility"].parking
            caller = Caller.system()
            sites = len(parking.directory.snapshot("").sites)
            for _ in range(5):  # imports, first plans, caches
                parking.guidance(caller, _place(rng), platform.clock.now() + timedelta(minutes=30))
            walls: list[float] = []
            cpu = 0.0
            busy_before, total_before = machine_cpu_seconds()
            for _ in range(queries):
                near = _place(rng)
                arrival = platform.clock.now() + timedelta(minutes=30)
                wall, thread = time.perf_counter(), time.thread_time()
                answer = parking.guidance(caller, near, arrival, timedelta(hours=2))
                cpu += time.thread_time() - thread
                walls.append((time.perf_counter() - wall) * 1000)
                assert answer["sites"] is not None
            busy_after, total_after = machine_cpu_seconds()
        finally:
            _drop(platform, postgres_url)
    walls.sort()
    cores = (busy_after - busy_before) / max(total_after - total_before, 1e-9) * _cores()
    return GuidanceFigures(
        backend,
        mode,
        queries,
        sites,
        statistics.median(walls),
        walls[int(len(walls) * 0.95) - 1],
        walls[int(len(walls) * 0.99) - 1],
        cpu / queries * 1000,
        cores,
    )


def _place(rng: random.Random) -> tuple[float, float]:
    (west, south), (east, north) = BOUNDS
    return (rng.uniform(west, east), rng.uniform(south, north))


def _cores() -> int:
    return os.cpu_count() or 1


def run(backends: list[Backend], postgres_url: str, quick: bool) -> list[GuidanceFigures]:
    """Measure warm and cold guidance on every backend asked for."""
    queries = 200 if quick else 1000
    figures = []
    for backend in backends:
        figures.append(measure(backend, "warm", queries, postgres_url))
        figures.append(measure(backend, "cold", max(100, queries // 5), postgres_url))
    return figures


def print_figures(console: Console, figures: list[GuidanceFigures]) -> None:
    """Print the figures as a table."""
    table = Table(title="parking guidance (5 best sites, forecast at arrival included)")
    for column in ("backend", "snapshot", "queries", "p50 ms", "p95 ms", "p99 ms", "CPU ms/q",
                   "machine busy"):  # fmt: skip
        table.add_column(column, justify="right")
    for f in figures:
        table.add_row(
            f.backend, f.mode, str(f.queries), f"{f.p50_ms:.1f}", f"{f.p95_ms:.1f}",
            f"{f.p99_ms:.1f}", f"{f.cpu_ms:.1f}", f"{f.machine_busy:.2f} cores",
        )  # fmt: skip
    console.print(table)


def section(figures: list[GuidanceFigures], date: str) -> str:
    """Return the parking-guidance section of docs/benchmarks.md."""
    sites = figures[0].sites if figures else 0
    lines = [
        "## Parking guidance (issue 8)",
        "",
        f"Measured {date} by `python -m bench --only parking-guidance` on the machine above.",
        "",
        f"One query: the 5 best of {sites} parking sites (Changdong's 25 lots, 4 shared-parking",
        "sites, 2 resident-priority zones; 285 spot sensors) near a random destination, arriving",
        "in 30 minutes for 2 hours: walks on the district's road graph, opening hours and shared",
        "windows, availability with freshness, the persistence forecast at arrival and the fee.",
        "Warm: the tenant's snapshot is reused for `parking_cache_seconds` (2 s, the default);",
        "cold: it is read from the database for each query. In process (no HTTP). CPU is the",
        "querying thread's; 'machine busy' is every core's work during the run (2 cores, other",
        "helpers' test suites were running).",
        "",
        "| backend | snapshot | queries | p50 | p95 | p99 | CPU per query | machine busy |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for f in figures:
        lines.append(
            f"| {f.backend} | {f.mode} | {f.queries:,} | {f.p50_ms:.1f} ms | {f.p95_ms:.1f} ms "
            f"| {f.p99_ms:.1f} ms | {f.cpu_ms:.1f} ms | {f.machine_busy:.2f} cores |"
        )
    warm = [f for f in figures if f.mode == "warm"]
    verdict = all(f.p95_ms < GOAL_P95_MS for f in warm)
    lines += [
        "",
        f"Goal: p95 under {GOAL_P95_MS:.0f} ms with the forecast included (warm) — "
        + ("met on every backend." if verdict else "not met in wall time on this run."),
    ]
    if any(f.machine_busy >= 0.9 * _cores() for f in figures):
        cpu = max(f.cpu_ms for f in warm) if warm else 0.0
        lines += [
            "The machine was saturated by other work during the run (every core busy): wall "
            "times include waiting for a core. A warm query needs at most "
            f"{cpu:.1f} ms of CPU, so a quiet machine should show a p95 near that; this run "
            "does not show it: run again on a quiet machine.",
        ]
    return "\n".join(lines)
