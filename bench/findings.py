"""What limits each figure, read off the measurements (and the profiles) of the same run."""

from __future__ import annotations

from collections.abc import Sequence

from bench.cpu import CpuUse
from bench.load import percentile
from bench.profile import Breakdown
from bench.report import NAMES, QUERY_GOAL, ms, rate, share
from bench.scenarios import BackendResult, RetrieveResult, UpsertResult


def _bound(cpu: CpuUse) -> str:
    if cpu.server >= 0.85:
        return "the server process is CPU-bound (one uvicorn worker: one core, one GIL)"
    if cpu.machine >= 0.9 * cpu.cores:
        return "every core of the machine is busy (server, database and client share them)"
    return "no CPU is saturated: waiting (I/O, locks, round trips) bounds it"


def _cpu(cpu: CpuUse) -> str:
    return (
        f"server {cpu.server:.2f} cores, PostgreSQL {cpu.database:.2f}, "
        f"load generator {cpu.clients:.2f}, other processes {cpu.other:.2f} "
        f"(machine {cpu.machine:.2f} of {cpu.cores})"
    )


def _upsert(name: str, up: UpsertResult) -> list[str]:
    written = up.entities * up.rounds
    server_us = up.cpu.server * up.cpu.wall / written * 1e6
    database_us = up.cpu.database * up.cpu.wall / written * 1e6
    wall_us = up.run.wall / written * 1e6
    build = up.ceiling.build
    per = up.ceiling.entities
    stages = {
        "request JSON decode": build.decode,
        "codec.parse_entity": build.parse,
        "JSON encode of the stored document": build.encode,
        "index_rows": build.index,
        "geo_rows": build.geo,
    }
    measured = {label: seconds / per * 1e6 for label, seconds in stages.items()}
    write_us = up.ceiling.write_seconds / per * 1e6
    parts = ", ".join(f"{label} {value:.0f} µs" for label, value in measured.items())
    head = (
        f"- **Batch upsert on {name}**: {rate(up.rate)} = {wall_us:.0f} µs of wall time per "
        f"entity. CPU: {_cpu(up.cpu)}: {_bound(up.cpu)}. The server spends "
        f"{server_us:.0f} µs of CPU per entity. Timed one by one outside the server, the same "
        f"Python work costs {parts} ({sum(measured.values()):.0f} µs in all)"
    )
    if name == "SQLite":
        rest = server_us - sum(measured.values()) - write_us
        return [
            f"{head}; writing the rows into SQLite (the storage ceiling, in-process CPU) "
            f"{write_us:.0f} µs; the remaining {rest:.0f} µs is HTTP, the framework, reading "
            "the current entities, thread hand-offs and GIL contention between the request "
            "threads. 10,000/s leaves 100 µs per entity for all of it, which the Python work "
            "plus the ceiling's write alone exceed."
        ]
    return [
        f"{head}. PostgreSQL itself used {database_us:.0f} µs of CPU per entity; the ceiling "
        f"(one connection, pipelined executemany, 100 entities per transaction) takes "
        f"{write_us:.0f} µs of wall time per entity, mostly waiting on the server. The store "
        "loads index and geo rows with COPY (faster than executemany) and writes from up to "
        f"{up.workers} connections at once, so it can come close to or beat this ceiling."
    ]


def _retrieve(name: str, retrieve: RetrieveResult, hop_us: float | None) -> list[str]:
    entity, live = retrieve.entity, retrieve.live
    entity_us = entity.cpu.server / entity.rate * 1e6
    live_us = live.cpu.server / live.rate * 1e6
    hops = (
        f" A round trip through the threadpool costs {hop_us:.0f} µs of CPU on this machine "
        f"(measured alone); a GET by id makes 4 (see the profile), ~{4 * hop_us:.0f} µs."
        if hop_us is not None
        else ""
    )
    return [
        f"- **Retrieve by id on {name}**: {_cpu(entity.cpu)}: {_bound(entity.cpu)}. The server "
        f"spends {entity_us:.0f} µs of CPU per GET of an entity and {live_us:.0f} µs per "
        f"GET /health/live ({_cpu(live.cpu)}), so the HTTP server and framework alone cap one "
        f"process near {rate(1e6 / live_us)}; the entity route costs {entity_us - live_us:.0f} "
        f"µs more.{hops} The load generator ({entity.client} client, {entity.processes} "
        f"processes) used {entity.cpu.clients:.2f} cores: it is not the bottleneck."
    ]


def _queries(name: str, result: BackendResult) -> list[str]:
    if result.queries is None:
        return []
    parts = []
    for line in result.queries.lines:
        if not line.run.latencies:
            continue
        p95 = percentile(line.run.latencies, 0.95)
        mark = "" if line.extra else (" (goal met)" if p95 < QUERY_GOAL else " (goal missed)")
        parts.append(f"{line.name} p95 {ms(p95)}{mark}, max {ms(max(line.run.latencies))}")
    return [f"- **Queries on {name}**: " + "; ".join(parts) + "."]


def _profile(breakdown: Breakdown) -> list[str]:
    per = breakdown.unit
    lines = [
        f"- **cProfile of {breakdown.scenario} on {breakdown.backend}** (every server thread, "
        f"thread CPU clocks; {breakdown.units:,} {breakdown.plural}; cProfile inflates Python "
        "calls, so read the shares, not the absolute times):",
        "",
        "  | where (cumulative, plain functions) | share of server CPU |",
        "  | --- | --- |",
    ]
    lines += [
        f"  | {label.strip()} | {share(seconds / breakdown.cpu_seconds)} |"
        for label, seconds in breakdown.key_functions
    ]
    lines += ["", "  | own time by package | share of server CPU |", "  | --- | --- |"]
    lines += [
        f"  | {label} | {share(seconds / breakdown.cpu_seconds)} |"
        for label, seconds in breakdown.categories
        if seconds / breakdown.cpu_seconds >= 0.005
    ]
    lines += [
        "",
        f"  Threadpool round trips per {per}: {breakdown.hops / breakdown.units:.2f}.",
        "",
    ]
    return lines


def findings(
    results: Sequence[BackendResult],
    profiles: Sequence[Breakdown] = (),
    hop_us: float | None = None,
) -> list[str]:
    """Return markdown lines on what bounds each figure, from this run's numbers."""
    lines: list[str] = []
    for result in results:
        name = NAMES[result.backend]
        if result.upsert:
            lines += _upsert(name, result.upsert)
        if result.retrieve:
            lines += _retrieve(name, result.retrieve, hop_us)
        lines += _queries(name, result)
    for breakdown in profiles:
        lines += _profile(breakdown)
    return lines
