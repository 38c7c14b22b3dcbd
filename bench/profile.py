"""Where the server's CPU goes: cProfile every server thread while a load process drives it.

The app runs in this process under uvicorn exactly as `smartcity serve` builds it (real event
loop, real threadpool); each thread gets its own profiler timed by its own CPU clock
(`time.thread_time`), so waiting (GIL, I/O, idle) counts for nothing and the threads add up to
the server's CPU. The load comes from a separate process. cProfile slows Python calls more than
C calls, so shares are approximate; the total is scaled back to the unprofiled figures.

Run alone: `python -m bench.profile [upsert|retrieve] [--backend sqlite|postgres]`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import orjson
import uvicorn
from rich.console import Console
from rich.table import Table
from starlette.concurrency import run_in_threadpool

from bench.entities import batch_bodies, entity_id, mixed_keys
from bench.load import BatchPoster, FloodShare, flood_process
from bench.server import API_KEY_VARIABLE, free_port, postgres_database
from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.logs import configure_logging
from smartcity.platform import build_platform
from smartcity.web.app import create_app

Scenario = Literal["upsert", "retrieve"]
FunctionKey = tuple[str, int, str]

# (label, file suffix, function name): cumulative time of each, per unit of work. Only plain
# functions: cProfile's cumulative time of a coroutine is not meaningful.
KEY_FUNCTIONS: dict[Scenario, list[tuple[str, str, str]]] = {
    "upsert": [
        ("EntityService.batch_upsert", "broker/service.py", "batch_upsert"),
        ("  parse entities (codec.parse_entity)", "broker/service.py", "_parse_batch"),
        ("  store.apply (one transaction)", "storage/sqlbase.py", "apply"),
        ("    load the current entities", "storage/sqlbase.py", "_load"),
        ("    write", "storage/sqlbase.py", "_write"),
        ("      upsert entity rows (+ JSON encode)", "storage/sqlite.py", "_upsert_entities"),
        ("      upsert entity rows (+ JSON encode)", "storage/postgres.py", "_upsert_entities"),
        ("      delete the old index + geo rows", "storage/sqlbase.py", "_delete_index"),
        ("      build index rows (indexing.index_rows)", "storage/indexing.py", "index_rows"),
        ("      build geo rows (sqlbase.geo_rows)", "storage/sqlbase.py", "geo_rows"),
        ("      insert index rows", "storage/sqlbase.py", "_insert_index"),
        ("      insert index rows", "storage/postgres.py", "_insert_index"),
        ("      insert geo rows", "storage/sqlite.py", "_insert_geo"),
        ("      insert geo rows", "storage/postgres.py", "_insert_geo"),
        ("request body JSON decode (orjson.loads)", "~", "<built-in method orjson.loads>"),
    ],
    "retrieve": [
        ("EntityService.retrieve", "broker/service.py", "retrieve"),
        ("  store.get (SELECT + JSON decode)", "storage/sqlbase.py", "get"),
        ("present (compact the entity)", "broker/present.py", "present"),
        ("ld_response (JSON encode)", "web/negotiation.py", "ld_response"),
        ("@context resolution (resolver.resolve)", "broker/contexts.py", "resolve"),
        ("sync dependency get_platform", "web/deps.py", "get_platform"),
        ("sync dependency tenant_of", "web/negotiation.py", "tenant_of"),
    ],
}
HOP = ("anyio/_backends/_asyncio.py", "_report_result")  # once per threadpool round trip

CATEGORIES: list[tuple[str, Callable[[str, str], bool]]] = [
    ("smartcity code", lambda file, _: "/smartcity/" in file),
    ("SQLite (C)", lambda file, name: file == "~" and "sqlite3" in name),
    ("psycopg", lambda file, _: "/psycopg" in file),
    ("orjson (C)", lambda file, name: file == "~" and "orjson" in name),
    ("uvicorn + h11", lambda file, _: "/uvicorn/" in file or "/h11/" in file),
    (
        "FastAPI + Starlette + pydantic",
        lambda file, _: any(part in file for part in ("/fastapi/", "/starlette/", "/pydantic")),
    ),
    (
        "anyio threadpool + asyncio",
        lambda file, name: (
            any(
                part in file
                for part in ("/anyio/", "/asyncio/", "/concurrent/", "threading.py", "queue.py")
            )
            or (file == "~" and any(p in name for p in ("_asyncio", "select", "_thread", "_queue")))
        ),
    ),
    ("prometheus_client", lambda file, _: "/prometheus_client/" in file),
    ("other", lambda _file, _name: True),
]


class ThreadProfiles:
    """One cProfile per thread, each timed by that thread's own CPU clock.

    The clock is the thread's (pthread_getcpuclockid), not `time.thread_time`, because stopping
    a worker's profiler from the main thread reads the timer there: it must be the worker's.
    """

    def __init__(self) -> None:
        self._profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _new(self) -> cProfile.Profile:
        clock = time.pthread_getcpuclockid(threading.get_ident())
        profile = cProfile.Profile(partial(time.clock_gettime, clock))
        with self._lock:
            self._profiles.append(profile)
        return profile

    def _boot(self, frame: FrameType, event: str, arg: Any) -> None:
        self._new().enable()

    def start(self) -> None:
        """Profile this thread and every thread started from now on."""
        threading.setprofile(self._boot)
        self._new().enable()

    def stop(self) -> pstats.Stats:
        """Stop profiling and merge what every thread recorded."""
        threading.setprofile(None)
        with self._lock:
            profiles = list(self._profiles)
        for profile in profiles:
            profile.disable()
        return pstats.Stats(*profiles)


@dataclass
class Breakdown:
    """Where the profiled server CPU went, per unit of work (an entity or a request)."""

    scenario: Scenario
    backend: str
    units: int
    unit: str
    cpu_seconds: float
    wall_seconds: float
    key_functions: list[tuple[str, float]]
    categories: list[tuple[str, float]]
    top: list[tuple[str, float, float]]  # name, own seconds, cumulative seconds
    hops: int  # threadpool round trips (anyio run_sync_in_worker_thread calls)

    @property
    def plural(self) -> str:
        """Return the unit of work in the plural."""
        return "entities" if self.unit == "entity" else f"{self.unit}s"

    def per_unit_us(self, seconds: float) -> float:
        """Return seconds as microseconds per unit of work."""
        return seconds / self.units * 1e6


def _category(file: str, func: str) -> str:
    return next(label for label, test in CATEGORIES if test(file, func))


def _is_library_call(func: str) -> bool:
    return any(name in func for name in ("sqlite3", "orjson", "psycopg", "select", "_asyncio"))


def _with_callers(
    stats: pstats.Stats,
) -> list[tuple[FunctionKey, tuple[int, int, float, float], dict[FunctionKey, Any]]]:
    raw: dict[FunctionKey, tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    return [(key, (cc, nc, tt, ct), callers) for key, (cc, nc, tt, ct, callers) in raw.items()]


def _stats_rows(stats: pstats.Stats) -> dict[FunctionKey, tuple[int, int, float, float]]:
    raw: dict[FunctionKey, tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    return {key: (cc, nc, tt, ct) for key, (cc, nc, tt, ct, _) in raw.items()}


def _calls(rows: dict[FunctionKey, tuple[int, int, float, float]], suffix: str, name: str) -> int:
    return sum(
        nc
        for (file, _, func), (nc, _, _, _) in rows.items()
        if file.endswith(suffix) and func == name
    )


def analyse(stats: pstats.Stats, scenario: Scenario, backend: str, wall: float) -> Breakdown:
    """Sum the profile up: key functions, categories of own time, the top 15, hops."""
    rows = _stats_rows(stats)
    total = sum(tt for _, _, tt, _ in rows.values())
    keys: list[tuple[str, float]] = []
    for label, suffix, name in KEY_FUNCTIONS[scenario]:
        found = [
            ct
            for (file, _, func), (_, _, _, ct) in rows.items()
            if file.endswith(suffix) and func == name
        ]
        if found:
            keys.append((label, sum(found)))
    categories: dict[str, float] = {}
    for (file, _, func), (_, _, tt, _), callers in _with_callers(stats):
        if file == "~" and not _is_library_call(func) and callers:
            # A built-in (isinstance, dict.get, ...) counts where it is called from.
            spent = sum(caller_tt for _, _, caller_tt, _ in callers.values()) or 1.0
            for (caller_file, _, caller_func), (_, _, caller_tt, _) in callers.items():
                label = _category(caller_file, caller_func)
                categories[label] = categories.get(label, 0.0) + tt * caller_tt / spent
            continue
        label = _category(file, func)
        categories[label] = categories.get(label, 0.0) + tt
    top = sorted(rows.items(), key=lambda item: -item[1][2])[:15]
    if scenario == "upsert":
        units = _calls(rows, "broker/codec.py", "parse_entity")
    else:
        units = _calls(rows, "broker/service.py", "retrieve")
    return Breakdown(
        scenario=scenario,
        backend=backend,
        units=max(units, 1),
        unit="entity" if scenario == "upsert" else "request",
        cpu_seconds=total,
        wall_seconds=wall,
        key_functions=keys,
        categories=sorted(categories.items(), key=lambda item: -item[1]),
        top=[
            (f"{Path(file).name}:{line} {func}" if file != "~" else func, tt, ct)
            for (file, line, func), (_, _, tt, ct) in top
        ],
        hops=_calls(rows, *HOP),
    )


def threadpool_hop_us(hops: int = 20_000, concurrency: int = 16) -> float:
    """Return the CPU µs of one round trip through Starlette's threadpool (16 at a time)."""

    def nothing() -> None:
        return None

    async def worker(count: int) -> None:
        for _ in range(count):
            await run_in_threadpool(nothing)

    async def measure() -> float:
        await worker(500)
        started = time.process_time()
        await asyncio.gather(*(worker(hops // concurrency) for _ in range(concurrency)))
        return (time.process_time() - started) / hops * 1e6

    return asyncio.run(measure())


# -- load processes ---------------------------------------------------------------------------


def _drive_upsert(base_url: str, entities: int, rounds: int, workers: int) -> None:
    keys = mixed_keys(entities)
    bodies = [batch_bodies(keys, r, 100) for r in range(rounds)]

    async def go() -> None:
        async with BatchPoster(base_url, "/ngsi-ld/v1/entityOperations/upsert", workers) as poster:
            for round_bodies in bodies:
                await poster.run(round_bodies, lambda _: None)

    asyncio.run(go())


def _drive_retrieve(base_url: str, paths: list[str], seconds: float) -> FloodShare:
    start = time.time()
    return flood_process(base_url, paths, 16, start, start + seconds, 1, "raw")


@contextmanager
def _database(backend: str, admin_url: str) -> Iterator[str]:
    with ExitStack() as stack:
        if backend == "sqlite":
            folder = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="smartcity-prof-"))
            )
            yield f"sqlite:///{folder / 'profile.db'}"
        else:
            yield stack.enter_context(postgres_database(admin_url, "smartcity_bench_profile"))


def profile(
    scenario: Scenario,
    backend: str = "sqlite",
    admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres",
    *,
    entities: int = 2_000,
    rounds: int = 10,
    seconds: float = 10.0,
) -> Breakdown:
    """Profile the server in this process while a child process drives one scenario."""
    configure_logging("warning")
    with _database(backend, admin_url) as url:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        settings = Settings(database_url=url, port=port, context_offline=True, log_level="warning")
        platform = build_platform(settings)
        os.environ[API_KEY_VARIABLE] = platform.accounts.create_key(
            Caller.system(), "bench-admin", ["admin"]
        ).key
        keys = mixed_keys(entities)
        if scenario == "retrieve":
            ctx = platform.contexts.resolve(None)
            for body in batch_bodies(keys, 0, 100):
                platform.entities.batch_upsert(
                    Caller.system(), orjson.loads(body), lambda _raw: ctx
                )
        config = uvicorn.Config(
            create_app(platform),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            log_config=None,
        )
        server = uvicorn.Server(config)
        context = get_context("spawn")

        def control() -> None:
            while not server.started:
                time.sleep(0.05)
            with context.Pool(1) as pool:
                if scenario == "upsert":
                    pool.apply(_drive_upsert, (base_url, entities, rounds, 4))
                else:
                    paths = [f"/ngsi-ld/v1/entities/{entity_id(t, n)}" for t, n in keys]
                    pool.apply(_drive_retrieve, (base_url, paths, seconds))
            server.should_exit = True

        controller = threading.Thread(target=control, daemon=True)
        controller.start()  # before profiling starts: its own waiting is not the server's
        profiles = ThreadProfiles()
        started = time.perf_counter()
        profiles.start()
        server.run()
        stats = profiles.stop()
        wall = time.perf_counter() - started
        controller.join()
    return analyse(stats, scenario, backend, wall)


def print_breakdown(console: Console, breakdown: Breakdown) -> None:
    """Print a breakdown as tables."""
    per = breakdown.unit
    title = (
        f"{breakdown.scenario} on {breakdown.backend}: server CPU under cProfile "
        f"{breakdown.per_unit_us(breakdown.cpu_seconds):.0f} µs per {per} "
        f"({breakdown.units:,} {breakdown.plural})"
    )
    table = Table(title=title)
    table.add_column("where (cumulative)")
    table.add_column(f"µs per {per}", justify="right")
    table.add_column("share", justify="right")
    for label, seconds in breakdown.key_functions:
        table.add_row(
            label,
            f"{breakdown.per_unit_us(seconds):.0f}",
            f"{seconds / breakdown.cpu_seconds * 100:.0f} %",
        )
    table.add_section()
    for label, seconds in breakdown.categories:
        table.add_row(
            f"own time: {label}",
            f"{breakdown.per_unit_us(seconds):.0f}",
            f"{seconds / breakdown.cpu_seconds * 100:.0f} %",
        )
    console.print(table)
    top = Table(title="top functions by own time")
    top.add_column("function")
    top.add_column(f"own µs per {per}", justify="right")
    top.add_column(f"cumulative µs per {per}", justify="right")
    for name, own, cumulative in breakdown.top:
        top.add_row(
            name, f"{breakdown.per_unit_us(own):.1f}", f"{breakdown.per_unit_us(cumulative):.1f}"
        )
    console.print(top)
    console.print(f"threadpool round trips per {per}: {breakdown.hops / breakdown.units:.2f}")


def main() -> None:
    """Profile one scenario and print where the server's CPU goes."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("scenario", choices=["upsert", "retrieve"], nargs="?", default="upsert")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    print_breakdown(Console(), profile(args.scenario, args.backend))


if __name__ == "__main__":
    main()
