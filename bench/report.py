"""The figures as a rich table on the terminal and as docs/benchmarks.md."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.cpu import CpuUse
from bench.load import percentile
from bench.machine import Machine
from bench.scenarios import BackendResult, QueryLine, Sizes
from bench.temporal import AGGREGATE_GOAL, DAY_GOAL

NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
INVESTIGATIONS = Path(__file__).with_name("investigations.md")  # one-off findings, by hand
QUERY_GOAL = 0.025


@dataclass
class Row:
    """One line of the figures table: a measure on each backend, and its goal or reference."""

    figure: str
    measure: str
    values: dict[str, str] = field(default_factory=dict)
    goal: str = ""


def rate(value: float) -> str:
    """Format a rate per second."""
    return f"{value:,.0f}/s" if math.isfinite(value) else "-"


def ms(seconds: float) -> str:
    """Format seconds as milliseconds."""
    if not math.isfinite(seconds):
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def share(value: float) -> str:
    """Format a ratio as a percentage."""
    return f"{value * 100:.0f} %"


def _collect(
    results: Sequence[BackendResult],
    figure: str,
    measure: str,
    value: Callable[[BackendResult], str | None],
    goal: str = "",
) -> Row | None:
    row = Row(figure, measure, goal=goal)
    for result in results:
        shown = value(result)
        if shown is not None:
            row.values[result.backend] = shown
    return row if row.values else None


def cpu_split(cpu: CpuUse) -> str:
    """Format who used the CPU, in cores."""
    return (
        f"server {cpu.server:.2f} · db {cpu.database:.2f} · "
        f"client {cpu.clients:.2f} · other {cpu.other:.2f}"
    )


def _query_line(result: BackendResult, name: str) -> QueryLine | None:
    if result.queries is None:
        return None
    return next((line for line in result.queries.lines if line.name == name), None)


def _latencies(line: QueryLine | None) -> str | None:
    if line is None:
        return None
    values = line.run.latencies
    shown = " / ".join(ms(percentile(values, p)) for p in (0.5, 0.95, 0.99))
    return shown + (f" ({len(line.run.failures)} failed)" if line.run.failures else "")


def _results(line: QueryLine | None) -> str | None:
    if line is None or not line.run.results:
        return None
    return f"{sum(line.run.results) / len(line.run.results):.1f}"


def _query_latencies(result: BackendResult, name: str) -> str | None:
    return _latencies(_query_line(result, name))


def _query_results(result: BackendResult, name: str) -> str | None:
    return _results(_query_line(result, name))


def figure_rows(results: Sequence[BackendResult], sizes: Sizes) -> list[Row]:
    """Return every line of the figures table."""
    up = "1. batch upsert"
    rows = [
        _collect(
            results,
            up,
            f"entity updates/s ({sizes.upsert_workers} connections)",
            lambda r: rate(r.upsert.rate) if r.upsert else None,
            "≥ 10,000/s on SQLite; Orion-LD ~1,800/s",
        ),
        _collect(
            results,
            up,
            f"p50 / p95 per {sizes.batch_size}-entity request",
            lambda r: (
                f"{ms(percentile(r.upsert.run.latencies, 0.5))} / "
                f"{ms(percentile(r.upsert.run.latencies, 0.95))}"
                if r.upsert
                else None
            ),
        ),
        _collect(
            results,
            up,
            "CPU cores busy",
            lambda r: cpu_split(r.upsert.cpu) if r.upsert else None,
        ),
        _collect(
            results,
            up,
            "failed requests",
            lambda r: str(len(r.upsert.run.failures)) if r.upsert else None,
        ),
        _collect(
            results,
            up,
            "storage ceiling (same rows, plain executemany)",
            lambda r: rate(r.upsert.ceiling.rate) if r.upsert else None,
        ),
        _collect(
            results,
            up,
            "API / ceiling",
            lambda r: share(r.upsert.ratio) if r.upsert else None,
        ),
    ]
    get = "2. retrieve by id"
    conns = sizes.retrieve_connections
    rows += [
        _collect(
            results,
            get,
            f"GET /entities/{{id}} req/s ({conns} connections)",
            lambda r: rate(r.retrieve.entity.rate) if r.retrieve else None,
            "Orion-LD ~4,200/s",
        ),
        _collect(
            results,
            get,
            "p50 / p95 latency",
            lambda r: (
                f"{ms(percentile(r.retrieve.entity.latencies, 0.5))} / "
                f"{ms(percentile(r.retrieve.entity.latencies, 0.95))}"
                if r.retrieve
                else None
            ),
        ),
        _collect(
            results,
            get,
            "CPU cores busy",
            lambda r: cpu_split(r.retrieve.entity.cpu) if r.retrieve else None,
        ),
        _collect(
            results,
            get,
            f"GET /health/live req/s ({conns} connections)",
            lambda r: rate(r.retrieve.live.rate) if r.retrieve else None,
        ),
        _collect(
            results,
            get,
            "/health/live CPU cores busy",
            lambda r: cpu_split(r.retrieve.live.cpu) if r.retrieve else None,
        ),
        _collect(
            results,
            get,
            "entity / live",
            lambda r: share(r.retrieve.ratio) if r.retrieve else None,
        ),
    ]
    qry = f"3. queries at {sizes.query_entities:,}"
    rows.append(
        _collect(
            results,
            qry,
            "load through batch upsert (entities/s)",
            lambda r: rate(r.queries.load_rate) if r.queries else None,
        )
    )
    names = [
        ("type+q", "p95 < 25 ms; Stellio 1.44 s"),
        ("near+type", "p95 < 25 ms"),
        ("q compound path", "(extra: Python re-check)"),
        ("q with !=", "(extra: Python re-check)"),
        ("q != matching none", "(extra: worst case)"),
    ]
    for name, goal in names:
        rows.append(
            _collect(
                results,
                qry,
                f"{name}: p50 / p95 / p99",
                partial(_query_latencies, name=name),
                goal,
            )
        )
        rows.append(
            _collect(
                results,
                qry,
                f"{name}: mean results",
                partial(_query_results, name=name),
            )
        )
    rows += _temporal_rows(results, sizes)
    return [row for row in rows if row is not None]


def _temporal_latencies(result: BackendResult, name: str) -> str | None:
    line = result.temporal.line(name) if result.temporal else None
    if line is None:
        return None
    shown = " / ".join(ms(percentile(line.latencies, p)) for p in (0.5, 0.95, 0.99))
    return shown + (f" ({len(line.failures)} failed)" if line.failures else "")


def _temporal_sizes(result: BackendResult, name: str) -> str | None:
    line = result.temporal.line(name) if result.temporal else None
    if line is None or not line.sizes:
        return None
    return f"{sum(line.sizes) / len(line.sizes):,.0f}"


def _temporal_rows(results: Sequence[BackendResult], sizes: Sizes) -> list[Row | None]:
    stored = sizes.temporal_sensors * sizes.temporal_readings
    fig = f"4. temporal at {stored:,} instances"
    rows = [
        _collect(
            results,
            fig,
            "bulk load through the storage API (instances/s)",
            lambda r: rate(r.temporal.load_rate) if r.temporal else None,
        )
    ]
    names = [
        ("day", "one sensor's day, normalized", "p95 < 50 ms", "instances per response"),
        (
            "hourly avg",
            f"hourly avg over one sensor's {sizes.temporal_readings:,} instances",
            "p95 < 100 ms; Stellio 321 ms at 100k",
            "periods per response",
        ),
        ("day (temporalValues)", "one sensor's day, temporalValues", "(extra)", "values"),
    ]
    for name, label, goal, unit in names:
        rows.append(
            _collect(
                results,
                fig,
                f"{label}: p50 / p95 / p99",
                partial(_temporal_latencies, name=name),
                goal,
            )
        )
        rows.append(_collect(results, fig, f"{label}: {unit}", partial(_temporal_sizes, name=name)))
    return rows


def print_table(console: Console, rows: Sequence[Row], backends: Sequence[str]) -> None:
    """Print the figures as one table."""
    table = Table(title="Broker benchmarks", show_lines=False)
    table.add_column("figure", style="bold")
    table.add_column("measure")
    for backend in backends:
        table.add_column(NAMES[backend], justify="right")
    table.add_column("goal / reference", style="dim")
    previous = ""
    for row in rows:
        figure = row.figure if row.figure != previous else ""
        if figure and previous:
            table.add_section()
        previous = row.figure
        table.add_row(figure, row.measure, *(row.values.get(b, "-") for b in backends), row.goal)
    console.print(table)


def verdicts(results: Sequence[BackendResult]) -> list[str]:
    """Return one sentence per goal: met or missed, by how much."""
    lines = []
    for result in results:
        name = NAMES[result.backend]
        if result.upsert and result.backend == "sqlite":
            met = "meets" if result.upsert.rate >= 10_000 else "misses"
            lines.append(
                f"Batch upsert on {name}: {rate(result.upsert.rate)} {met} the goal of "
                f"≥ 10,000/s ({share(result.upsert.rate / 10_000)} of it); "
                f"{result.upsert.rate / 1_800:.1f}× Orion-LD's published ~1,800/s."
            )
        elif result.upsert:
            lines.append(
                f"Batch upsert on {name}: {rate(result.upsert.rate)}, "
                f"{result.upsert.rate / 1_800:.1f}× Orion-LD's published ~1,800/s "
                "(the 10,000/s goal is for SQLite)."
            )
        if result.retrieve:
            lines.append(
                f"Retrieve by id on {name}: {rate(result.retrieve.entity.rate)}, "
                f"{result.retrieve.entity.rate / 4_200:.2f}× Orion-LD's published ~4,200/s."
            )
        for goal in ("type+q", "near+type"):
            line = _query_line(result, goal)
            if line is None or not line.run.latencies:
                continue
            p95 = percentile(line.run.latencies, 0.95)
            met = "meets" if p95 < QUERY_GOAL else "misses"
            lines.append(f"{goal} on {name}: p95 {ms(p95)} {met} the goal of p95 < 25 ms.")
        lines += _temporal_verdicts(result, name)
    return lines


def _temporal_verdicts(result: BackendResult, name: str) -> list[str]:
    lines = []
    goals = [("day", "one sensor's day", DAY_GOAL), ("hourly avg", "hourly avg", AGGREGATE_GOAL)]
    for key, label, goal in goals:
        line = result.temporal.line(key) if result.temporal else None
        if line is None or not line.latencies:
            continue
        p95 = percentile(line.latencies, 0.95)
        met = "meets" if p95 < goal else "misses"
        lines.append(
            f"Temporal {label} on {name}: p95 {ms(p95)} {met} the goal of "
            f"p95 < {goal * 1000:.0f} ms."
        )
    return lines


def _markdown_table(rows: Sequence[Row], backends: Sequence[str]) -> list[str]:
    header = ["figure", "measure", *(NAMES[b] for b in backends), "goal / reference"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    previous = ""
    for row in rows:
        figure = row.figure if row.figure != previous else ""
        previous = row.figure
        cells = [figure, row.measure, *(row.values.get(b, "-") for b in backends), row.goal]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def _temporal_setup(results: Sequence[BackendResult], sizes: Sizes) -> list[str]:
    temporal = next((r.temporal for r in results if r.temporal), None)
    if temporal is None:
        return []
    examples = [f"  - **{line.name}**: `...?{line.example}`" for line in temporal.lines]
    vacuumed = any(r.temporal and r.temporal.vacuumed for r in results)
    vacuum = [
        "  PostgreSQL: with autovacuum off, the bench runs `VACUUM (ANALYZE)` on the history "
        "after the load",
        "  (what autovacuum does after a bulk insert; not counted in the load rate).",
    ]
    return [
        f"- **4. Temporal**: a history of {temporal.stored:,} attribute instances: "
        f"{temporal.sensors} temperature sensors,",
        f"  {temporal.readings:,} readings each at one a minute (observedAt), loaded in bulk "
        "through the storage",
        "  API (`SqlHistoryStore.add_many`), minute by minute across all sensors as a live feed "
        "writes them",
        f"  ({sizes.temporal_sensors * 100:,} instances per transaction). Then one client, one "
        f"request at a time, {sizes.temporal_warmup} warm-up",
        f"  and {sizes.temporal_requests} timed requests per kind on random sensors "
        "(`GET /ngsi-ld/v1/temporal/entities/{id}`):",
        *examples,
        "  The day is 1,440 instances; the hourly average aggregates every instance of the "
        "sensor in SQL",
        "  (GROUP BY a period computed from the time column) and returns one value per hour.",
        *(vacuum if vacuumed else []),
    ]


def markdown(
    machine: Machine,
    sizes: Sizes,
    results: Sequence[BackendResult],
    rows: Sequence[Row],
    duration: float,
    findings: Sequence[str],
) -> str:
    """Return docs/benchmarks.md."""
    backends = [r.backend for r in results]
    queries = next((r.queries for r in results if r.queries), None)
    examples = [f"- **{line.name}**: `{line.example}`" for line in queries.lines] if queries else []
    analyzed = any(r.queries and r.queries.analyzed for r in results)
    out = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench`); do not edit by hand. A benchmark measures,",
        "it does not assert: these are the figures of one run on the machine below.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        f"| CPU | {machine.cpu} |",
        f"| cores | {machine.cores} (server, database and load generator all share them) |",
        f"| memory | {machine.memory_gib:.1f} GiB |",
        f"| OS | {machine.kernel} |",
        f"| Python | {machine.python} |",
        f"| SQLite | {machine.sqlite} |",
        f"| PostgreSQL | {machine.postgres} (local, over TCP; shared_buffers "
        f"{machine.shared_buffers}, autovacuum {machine.autovacuum}) |",
        f"| packages | {machine.packages} |",
        f"| code | {machine.commit} |",
        f"| date | {machine.date} |",
        f"| run time | {duration / 60:.1f} min for the whole run |",
        "",
        "## Setup",
        "",
        "- The server under test is a real subprocess:",
        "  `smartcity serve --port P --database-url URL` (one uvicorn process,",
        "  `SMARTCITY_CONTEXT_OFFLINE=true`, log level warning), on a fresh",
        "  database per backend: a new SQLite file in a temporary folder, or a new PostgreSQL",
        "  database `smartcity_bench` (dropped at the end). The load generator runs on the same",
        "  machine.",
        "- Entities are Smart-Data-Models-shaped, five types (OffStreetParking,",
        "  TrafficFlowObserved, AirQualityObserved, WasteContainer, Streetlight), eight attributes",
        "  each: numbers, strings, a DateTime, observedAt on measured values, one Relationship, a",
        "  GeoProperty `location` (a Point spread uniformly over lon 127.03–127.08,",
        "  lat 37.63–37.68, Changdong). They are sent as `application/json` without a Link",
        "  header: the NGSI-LD core @context only, no remote context.",
        f"- **1. Batch upsert**: `POST /ngsi-ld/v1/entityOperations/upsert`, batches of "
        f"{sizes.batch_size} entities, {sizes.upsert_entities:,} entities × "
        f"{sizes.upsert_rounds} rounds (the same ids each round, values changed, as in Orion-LD's",
        f"  load tests), {sizes.upsert_workers} concurrent httpx keep-alive connections; rounds",
        "  run one after the other. Rate = entities written / wall time of the requests.",
        "  The storage ceiling builds exactly the rows the store writes (`codec.parse_entity`,",
        "  `indexing.index_rows`, `sqlbase.geo_rows`; timed stage by stage, apart) and writes",
        "  them with plain",
        f"  `executemany` on one connection, {sizes.batch_size} entities per transaction",
        "  (upsert entity rows, delete the old index and geo rows, insert the new ones), into a",
        "  fresh database of the same kind.",
        f"- **2. Retrieve by id**: `GET /ngsi-ld/v1/entities/{{id}}` of random ids out of the "
        f"{results[0].retrieve.stored if results[0].retrieve else 0:,} stored entities,",
        f"  {sizes.retrieve_connections} keep-alive connections over {sizes.retrieve_processes} "
        f"client processes ({sizes.client} HTTP/1.1 client), {sizes.retrieve_seconds:g} s after",
        "  2 s of warm-up; then the same load on `GET /health/live` (answers without the store).",
        "  CPU: the server's from /proc/<pid>/stat, the clients' from their process time.",
        f"- **3. Queries**: {sizes.query_entities:,} entities "
        f"({sizes.query_entities // 5:,} per type) loaded through the batch upsert endpoint;",
        f"  then, one client, one request at a time, {sizes.query_warmup} warm-up requests and",
        f"  {sizes.query_requests} timed ones per kind ({sizes.scan_requests} for the worst case),"
        " latency measured by the client (httpx) around each request:",
        *[f"  {line}" for line in examples],
        "  The type+q ranges are chosen to match ~75 entities; near is 200 m around a random",
        "  point of the district. The last three are extra lines: `!=` and paths into a compound",
        "  value are answered by SQL with a superset that Python re-checks.",
    ]
    if analyzed:
        out += [
            f"- PostgreSQL: autovacuum is {machine.autovacuum} on this server, so the bench runs",
            "  `ANALYZE` after every 5,000 entities of the query data set's load (what autovacuum",
            "  does while a table grows; its time counts in the load rate). Figure 1 runs on a",
            "  fresh database without it (2,000 entities: no measurable difference).",
        ]
    out += _temporal_setup(results, sizes)
    out += ["", "## Figures", "", *_markdown_table(rows, backends), ""]
    out += ["## Against the goals", "", *[f"- {line}" for line in verdicts(results)], ""]
    if findings:
        out += ["## What limits each figure", "", *findings, ""]
    if INVESTIGATIONS.exists():
        out += [INVESTIGATIONS.read_text().rstrip(), ""]
    return "\n".join(out)
