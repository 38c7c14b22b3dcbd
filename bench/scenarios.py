"""The figures of issues 2 and 3, each measured against a real server on one backend."""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlencode

import psycopg

from bench import ceiling
from bench.cpu import CpuSnapshot, CpuUse, wait_for_quiet
from bench.entities import (
    EAST,
    LOCALITIES,
    NORTH,
    SOUTH,
    SPOT_VALUES,
    TYPES,
    WEST,
    batch_bodies,
    entity_id,
    mixed_keys,
)
from bench.load import BatchPoster, BatchRun, ClientKind, FloodRun, TimedRun, flood, timed_gets
from bench.server import Server, postgres_database
from bench.temporal import TemporalResult, measure_temporal

Backend = Literal["sqlite", "postgres"]
Advance = Callable[[int], None]
UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"
GOAL_QUERIES = ("type+q", "near+type")
SCAN = "q != matching none"


class Tracker(Protocol):
    """Shows the progress of a long phase."""

    def phase(self, description: str, total: int | None) -> AbstractContextManager[Advance]:
        """Open a progress bar of `total` steps (None: a spinner); yield its advance function."""
        ...


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark is."""

    upsert_entities: int = 2_000
    upsert_rounds: int = 10
    batch_size: int = 100
    upsert_workers: int = 4
    retrieve_connections: int = 16
    retrieve_processes: int = 2
    retrieve_seconds: float = 10.0
    client: ClientKind = "raw"
    query_entities: int = 100_000
    query_requests: int = 300
    query_warmup: int = 30
    scan_requests: int = 30
    quiet_wait: float = 120.0  # wait up to this long for other work on the machine to stop
    temporal_sensors: int = 100
    temporal_readings: int = 10_000  # one a minute: ~6.9 days per sensor
    temporal_requests: int = 200
    temporal_warmup: int = 20


FULL = Sizes()
QUICK = Sizes(
    upsert_entities=500,
    upsert_rounds=3,
    retrieve_seconds=2.0,
    query_entities=5_000,
    query_requests=40,
    query_warmup=5,
    scan_requests=5,
    quiet_wait=0.0,
    temporal_sensors=10,
    temporal_readings=2_000,
    temporal_requests=30,
    temporal_warmup=5,
)


# -- results -------------------------------------------------------------------------------------


@dataclass
class UpsertResult:
    """Figure 1: batch upsert through the API, and the storage ceiling for the same rows."""

    entities: int
    rounds: int
    batch_size: int
    workers: int
    run: BatchRun
    cpu: CpuUse
    ceiling: ceiling.CeilingRun

    @property
    def rate(self) -> float:
        """Return entities written per second through the API."""
        return self.entities * self.rounds / self.run.wall

    @property
    def ratio(self) -> float:
        """Return the API rate as a share of the storage ceiling."""
        return self.rate / self.ceiling.rate


@dataclass
class RetrieveResult:
    """Figure 2: GET one entity by id, and the trivial endpoint of the same server."""

    stored: int
    entity: FloodRun
    live: FloodRun

    @property
    def ratio(self) -> float:
        """Return the entity rate as a share of the trivial endpoint's rate."""
        return self.entity.rate / self.live.rate


@dataclass
class QueryLine:
    """One kind of query, sent sequentially."""

    name: str
    example: str
    run: TimedRun
    extra: bool = False


@dataclass
class QueryResult:
    """Figure 3: queries over the loaded entities."""

    stored: int
    load_wall: float
    load_failures: list[str]
    analyzed: bool = False
    lines: list[QueryLine] = field(default_factory=list)

    @property
    def load_rate(self) -> float:
        """Return entities loaded per second."""
        return self.stored / self.load_wall


@dataclass
class BackendResult:
    """Every figure measured on one backend."""

    backend: Backend
    upsert: UpsertResult | None = None
    retrieve: RetrieveResult | None = None
    queries: QueryResult | None = None
    temporal: TemporalResult | None = None


# -- one backend's run ---------------------------------------------------------------------------


@dataclass
class Session:
    """A server on a fresh database, and what has been loaded into it."""

    backend: Backend
    server: Server
    database_url: str
    ceiling_target: str
    tracker: Tracker
    sizes: Sizes
    loaded: list[str] = field(default_factory=list)


@contextmanager
def open_session(
    backend: Backend, admin_url: str, tracker: Tracker, sizes: Sizes
) -> Iterator[Session]:
    """Start a server on a fresh database of the backend; drop everything afterwards."""
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smartcity-bench-")))
        if backend == "sqlite":
            url = f"sqlite:///{workdir / 'broker.db'}"
            ceiling_target = str(workdir / "ceiling.db")
        else:
            url = stack.enter_context(postgres_database(admin_url, "smartcity_bench"))
            ceiling_target = stack.enter_context(
                postgres_database(admin_url, "smartcity_bench_ceiling")
            )
        log_path = Path(tempfile.gettempdir()) / f"smartcity-bench-{backend}.log"
        log_path.unlink(missing_ok=True)
        with tracker.phase(f"{backend}: starting the server", None):
            server = stack.enter_context(Server(url, log_path))
        yield Session(backend, server, url, ceiling_target, tracker, sizes)


def _post(session: Session, rounds: Sequence[Sequence[bytes]], advance: Advance) -> BatchRun:
    """Send each round's bodies (rounds one after the other) over one set of connections."""

    async def go() -> BatchRun:
        total = BatchRun(wall=0.0)
        poster = BatchPoster(session.server.base_url, UPSERT_PATH, session.sizes.upsert_workers)
        async with poster:
            for bodies in rounds:
                run = await poster.run(bodies, advance)
                total.wall += run.wall
                total.latencies += run.latencies
                total.failures += run.failures
        return total

    return asyncio.run(go())


def measure_upsert(session: Session) -> UpsertResult:
    """Figure 1: upsert the same entities round after round, then the storage ceiling."""
    sizes = session.sizes
    keys = mixed_keys(sizes.upsert_entities)
    rounds = [batch_bodies(keys, r, sizes.batch_size) for r in range(sizes.upsert_rounds)]
    total_batches = sum(len(bodies) for bodies in rounds)
    name = session.backend
    with session.tracker.phase(f"{name}: batch upsert (API)", total_batches) as advance:
        wait_for_quiet(max_wait=sizes.quiet_wait)
        before = CpuSnapshot.take(session.server.pid)
        run = _post(session, rounds, advance)
        cpu = CpuUse.between(before, CpuSnapshot.take(session.server.pid))
    ids = [entity_id(t, n) for t, n in keys]
    session.loaded = list(dict.fromkeys([*session.loaded, *ids]))
    with session.tracker.phase(f"{name}: building the ceiling's rows", None):
        batches, build = ceiling.build_batches(rounds, ids)
    total = sizes.upsert_entities * sizes.upsert_rounds
    with session.tracker.phase(f"{name}: storage ceiling", total) as advance:
        if session.backend == "sqlite":
            write = ceiling.write_sqlite(Path(session.ceiling_target), batches, advance)
        else:
            write = ceiling.write_postgres(session.ceiling_target, batches, advance)
    return UpsertResult(
        entities=sizes.upsert_entities,
        rounds=sizes.upsert_rounds,
        batch_size=sizes.batch_size,
        workers=sizes.upsert_workers,
        run=run,
        cpu=cpu,
        ceiling=ceiling.summarize(batches, build, write),
    )


def load_entities(
    session: Session, count: int, *, analyze_as_loaded: bool = False
) -> tuple[float, list[str]]:
    """Upsert `count` mixed entities through the API; return (seconds, failures).

    With `analyze_as_loaded`, PostgreSQL's statistics are refreshed after every chunk (what
    autovacuum does while a table grows; the time counts in the load).
    """
    keys = mixed_keys(count)
    sizes = session.sizes
    chunk = sizes.batch_size * 50
    wall = 0.0
    failures: list[str] = []
    with session.tracker.phase(f"{session.backend}: loading {count:,} entities", count) as step:
        for start in range(0, count, chunk):
            bodies = batch_bodies(keys[start : start + chunk], 0, sizes.batch_size)
            part = _post(session, [bodies], lambda n: step(n * sizes.batch_size))
            wall += part.wall
            failures += part.failures
            if analyze_as_loaded:
                started = time.perf_counter()
                analyze(session)
                wall += time.perf_counter() - started
    session.loaded = list(dict.fromkeys([*session.loaded, *(entity_id(t, n) for t, n in keys)]))
    return wall, failures


def analyze(session: Session) -> None:
    """Refresh PostgreSQL's planner statistics, as autovacuum does soon after a bulk load."""
    with psycopg.connect(session.database_url, autocommit=True) as connection:
        connection.execute("ANALYZE")


def measure_retrieve(session: Session) -> RetrieveResult:
    """Figure 2: GET random entities by id, then /health/live, with the same connections."""
    sizes = session.sizes
    if not session.loaded:
        load_entities(session, sizes.upsert_entities)
    paths = [f"/ngsi-ld/v1/entities/{entity}" for entity in session.loaded]
    runs: list[FloodRun] = []
    for label, targets in (("GET entity by id", paths), ("GET /health/live", ["/health/live"])):
        with session.tracker.phase(f"{session.backend}: {label}", None):
            runs.append(
                flood(
                    session.server,
                    targets,
                    connections=sizes.retrieve_connections,
                    processes=sizes.retrieve_processes,
                    duration=sizes.retrieve_seconds,
                    client=sizes.client,
                    quiet_wait=sizes.quiet_wait,
                )
            )
    return RetrieveResult(len(session.loaded), runs[0], runs[1])


def _query_path(params: dict[str, str]) -> str:
    return "/ngsi-ld/v1/entities?" + urlencode(params)


def query_paths(per_type: int, count: int, seed: int = 7) -> dict[str, tuple[str, list[str]]]:
    """Return, per query kind, an example and `count` random query paths."""
    rng = random.Random(seed)
    width = max(1, round(75 / max(per_type / SPOT_VALUES, 1e-9)))
    base = {"type": "OffStreetParking", "limit": "100"}

    def spot_range() -> str:
        low = rng.randrange(SPOT_VALUES - width)
        return f"availableSpotNumber>={low};availableSpotNumber<{low + width}"

    def near() -> dict[str, str]:
        lon, lat = rng.uniform(WEST, EAST), rng.uniform(SOUTH, NORTH)
        return {
            "georel": "near;maxDistance==200",
            "geometry": "Point",
            "coordinates": f"[{lon:.6f},{lat:.6f}]",
        }

    kinds: dict[str, Callable[[], dict[str, str]]] = {
        "type+q": lambda: {**base, "q": spot_range()},
        "near+type": lambda: {**base, **near()},
        "q compound path": lambda: {
            **base,
            "q": f'address[addressLocality]=="{rng.choice(LOCALITIES)}"',
        },
        "q with !=": lambda: {**base, "q": spot_range() + ';status!="closed"'},
        SCAN: lambda: {
            **base,
            "q": 'refPointOfInterest!="urn:ngsi-ld:PointOfInterest:seoul-arena"',
        },
    }
    result: dict[str, tuple[str, list[str]]] = {}
    for name, make in kinds.items():
        paths = [_query_path(make()) for _ in range(count)]
        example = "&".join(f"{k}={v}" for k, v in make().items())
        result[name] = (example, paths)
    return result


def measure_queries(session: Session, *, analyze_after_load: bool) -> QueryResult:
    """Figure 3: load the entities, then time each kind of query sequentially."""
    sizes = session.sizes
    wall, failures = load_entities(
        session, sizes.query_entities, analyze_as_loaded=analyze_after_load
    )
    result = QueryResult(sizes.query_entities, wall, failures, analyzed=analyze_after_load)
    per_type = sizes.query_entities // len(TYPES)
    for name, (example, paths) in query_paths(per_type, sizes.query_requests).items():
        count = sizes.scan_requests if name == SCAN else sizes.query_requests
        wait_for_quiet(max_wait=sizes.quiet_wait)
        with session.tracker.phase(f"{session.backend}: {name}", count) as advance:
            run = timed_gets(
                session.server.base_url, paths[:count], min(sizes.query_warmup, count), advance
            )
        result.lines.append(QueryLine(name, example, run, extra=name not in GOAL_QUERIES))
    return result


FIGURES = ("upsert", "queries", "retrieve", "temporal")


def run_backend(
    backend: Backend,
    admin_url: str,
    tracker: Tracker,
    sizes: Sizes,
    only: str | None,
    analyze_postgres: bool,
) -> BackendResult:
    """Measure the chosen figures on one backend, with one server on one fresh database."""
    result = BackendResult(backend)
    with open_session(backend, admin_url, tracker, sizes) as session:
        if only in (None, "upsert"):
            result.upsert = measure_upsert(session)
        if only in (None, "queries"):
            analyze_after_load = backend == "postgres" and analyze_postgres
            result.queries = measure_queries(session, analyze_after_load=analyze_after_load)
        if only in (None, "retrieve"):
            result.retrieve = measure_retrieve(session)
        if only in (None, "temporal"):
            analyze_after_load = backend == "postgres" and analyze_postgres
            result.temporal = measure_temporal(session, analyze=analyze_after_load)
    return result
