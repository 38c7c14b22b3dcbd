"""The load generator: batch POSTs over a few keep-alive connections, GET floods driven from
several client processes, and sequential timed GETs."""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Literal
from urllib.parse import urlsplit

import httpx
import orjson

from bench.cpu import CpuSnapshot, CpuUse, wait_for_quiet
from bench.server import Server, auth_headers

ClientKind = Literal["raw", "httpx"]
JSON_HEADERS = {"Content-Type": "application/json"}
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def percentile(values: Sequence[float], share: float) -> float:
    """Return the nearest-rank percentile (share in 0..1) of values; NaN if there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


# -- batch POSTs -------------------------------------------------------------------------------


@dataclass
class BatchRun:
    """What one series of batch requests took."""

    wall: float
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class BatchPoster:
    """Send request bodies to one path with `workers` concurrent keep-alive connections."""

    def __init__(self, base_url: str, path: str, workers: int) -> None:
        self.path = path
        self.workers = workers
        limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
        self._client = httpx.AsyncClient(
            base_url=base_url, limits=limits, timeout=300, headers=auth_headers()
        )

    async def __aenter__(self) -> BatchPoster:
        await asyncio.gather(*(self._client.get("/health/live") for _ in range(self.workers)))
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.aclose()

    async def run(self, bodies: Sequence[bytes], advance: Callable[[int], None]) -> BatchRun:
        """Send every body once, in order, each by the next free worker."""
        pending = deque(bodies)
        run = BatchRun(wall=0.0)

        async def worker() -> None:
            while pending:
                body = pending.popleft()
                started = time.perf_counter()
                response = await self._client.post(self.path, content=body, headers=JSON_HEADERS)
                run.latencies.append(time.perf_counter() - started)
                if response.status_code >= 300:
                    run.failures.append(f"{response.status_code}: {response.text[:300]}")
                advance(1)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(self.workers)))
        run.wall = time.perf_counter() - started
        return run


# -- GET floods --------------------------------------------------------------------------------


class RawConnection:
    """A minimal HTTP/1.1 keep-alive GET client: far less client CPU per request than httpx."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        """Send one GET and return (status, body)."""
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        extra = "".join(f"{name}: {value}\r\n" for name, value in auth_headers().items())
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{extra}\r\n"
        self._writer.write(request.encode())
        head = await self._reader.readuntil(b"\r\n\r\n")
        length = _CONTENT_LENGTH.search(head)
        if length is None:
            raise RuntimeError("response without Content-Length: " + head[:200].decode())
        body = await self._reader.readexactly(int(length.group(1)))
        return int(head[9:12]), body

    def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()


@dataclass
class FloodShare:
    """What one client process measured inside the measuring window."""

    requests: int
    failures: int
    latencies: list[float]
    cpu_seconds: float


@dataclass
class FloodRun:
    """A GET flood: throughput, latency, and the CPU each side used."""

    requests: int
    failures: int
    wall: float
    latencies: list[float]
    cpu: CpuUse
    processes: int
    connections: int
    client: ClientKind

    @property
    def rate(self) -> float:
        """Return successful requests per second."""
        return (self.requests - self.failures) / self.wall


async def _flood_connections(
    base_url: str,
    paths: Sequence[str],
    connections: int,
    start_at: float,
    stop_at: float,
    seed: int,
    client: ClientKind,
) -> FloodShare:
    rng = random.Random(seed)
    share = FloodShare(0, 0, [], 0.0)
    split = urlsplit(base_url)
    host, port = split.hostname or "127.0.0.1", split.port or 80

    async def raw_loop() -> None:
        connection = RawConnection(host, port)
        try:
            while (now := time.time()) < stop_at:
                started = time.perf_counter()
                status, _ = await connection.get(rng.choice(paths))
                if now >= start_at and time.time() <= stop_at:
                    share.latencies.append(time.perf_counter() - started)
                    share.requests += 1
                    share.failures += status != 200
        finally:
            connection.close()

    async def httpx_loop(pool: httpx.AsyncClient) -> None:
        while (now := time.time()) < stop_at:
            started = time.perf_counter()
            response = await pool.get(rng.choice(paths))
            if now >= start_at and time.time() <= stop_at:
                share.latencies.append(time.perf_counter() - started)
                share.requests += 1
                share.failures += response.status_code != 200

    async def cpu_window() -> None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        begin = time.process_time()
        await asyncio.sleep(max(0.0, stop_at - time.time()))
        share.cpu_seconds = time.process_time() - begin

    if client == "raw":
        await asyncio.gather(cpu_window(), *(raw_loop() for _ in range(connections)))
        return share
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=60, headers=auth_headers()
    ) as pool:
        await asyncio.gather(cpu_window(), *(httpx_loop(pool) for _ in range(connections)))
    return share


def flood_process(
    base_url: str,
    paths: Sequence[str],
    connections: int,
    start_at: float,
    stop_at: float,
    seed: int,
    client: ClientKind,
) -> FloodShare:
    """Run one client process of a flood: `connections` connections, measured in a window."""
    return asyncio.run(
        _flood_connections(base_url, paths, connections, start_at, stop_at, seed, client)
    )


def flood(
    server: Server,
    paths: Sequence[str],
    *,
    connections: int,
    processes: int,
    duration: float,
    warmup: float = 2.0,
    client: ClientKind = "raw",
    quiet_wait: float = 60.0,
) -> FloodRun:
    """GET random paths from `connections` connections over `processes` processes."""
    wait_for_quiet(max_wait=quiet_wait)
    context = get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        # Spawned processes import httpx first; they connect, warm up, then measure together.
        start_at = time.time() + 2.0 + warmup
        stop_at = start_at + duration
        per_process = [
            connections // processes + (i < connections % processes) for i in range(processes)
        ]
        futures = [
            pool.submit(
                flood_process, server.base_url, paths, count, start_at, stop_at, 1000 + i, client
            )
            for i, count in enumerate(per_process)
        ]
        time.sleep(max(0.0, start_at - time.time()))
        before = CpuSnapshot.take(server.pid)
        time.sleep(max(0.0, stop_at - time.time()))
        after = CpuSnapshot.take(server.pid)
        shares = [future.result() for future in futures]
    return FloodRun(
        requests=sum(s.requests for s in shares),
        failures=sum(s.failures for s in shares),
        wall=duration,
        latencies=[latency for s in shares for latency in s.latencies],
        cpu=CpuUse.between(before, after, sum(s.cpu_seconds for s in shares)),
        processes=processes,
        connections=connections,
        client=client,
    )


# -- sequential GETs ---------------------------------------------------------------------------


@dataclass
class TimedRun:
    """Latencies and result counts of sequential GETs (one connection, one at a time)."""

    latencies: list[float]
    results: list[int]
    failures: list[str]


def timed_gets(
    base_url: str, paths: Sequence[str], warmup: int, advance: Callable[[int], None]
) -> TimedRun:
    """GET each path in turn after `warmup` untimed requests; count the entities returned."""
    run = TimedRun([], [], [])
    with httpx.Client(base_url=base_url, timeout=120, headers=auth_headers()) as client:
        for path in paths[:warmup]:
            client.get(path)
        for path in paths:
            started = time.perf_counter()
            response = client.get(path)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                run.failures.append(f"{response.status_code}: {response.text[:300]}")
                continue
            run.latencies.append(elapsed)
            run.results.append(len(orjson.loads(response.content)))
            advance(1)
    return run
