"""The SQLite ceiling for readings: what the database itself spends to store one reading.

The ingest writer stores readings with `EntityService.batch_upsert(mode="update")`. Here the
same call runs in this process on a fresh SQLite file (the platform's schema and pragmas),
with every cursor of the store timing its statements by the process's CPU clock. SQLite has
one writer at a time, so the statements' own time per reading bounds what any ingestion
design can store per second on SQLite, however fast everything else is.

Readings are those of the ingest-writer bench (AirQualityObserved: temperature, and
relativeHumidity on every other one); each round updates every entity once, in batches.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from rich.console import Console
from rich.table import Table

from bench.ingest_writer import reading
from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.platform import build_platform

SECTION = "reading-ceiling"
"""Its section of docs/benchmarks.md (see bench/sections.py)."""


@dataclass(frozen=True)
class CeilingSizes:
    """How big the reading ceiling benchmark is."""

    entities: int = 2_000
    rounds: int = 6
    batch: int = 500
    """Readings per batch_upsert, as the ingest writer's default batch size."""


FULL = CeilingSizes()
QUICK = CeilingSizes(entities=200, rounds=2, batch=100)


@dataclass
class StatementTimes:
    """CPU seconds and calls per SQL statement (whitespace-normalized, cut to 80 characters)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, sql: str, seconds: float) -> None:
        """Count one call of a statement."""
        key = " ".join(sql.split())[:80]
        self.seconds[key] += seconds
        self.calls[key] += 1

    @property
    def total(self) -> float:
        """Return the CPU seconds of every statement."""
        return sum(self.seconds.values())


@dataclass
class CeilingResult:
    """What storing the readings cost."""

    label: str
    readings: int
    cpu_seconds: float
    """The whole batch_upsert, Python and SQLite, by this process's CPU clock."""
    statements: StatementTimes

    @property
    def sql_us(self) -> float:
        """Return SQLite's own CPU time per reading, in microseconds."""
        return self.statements.total / self.readings * 1e6

    @property
    def ceiling(self) -> float:
        """Return the readings per second SQLite's own work allows (one writer)."""
        return self.readings / self.statements.total


def _timing_cursor(times: StatementTimes) -> type[sqlite3.Cursor]:
    class TimingCursor(sqlite3.Cursor):
        def execute(self, sql: str, parameters: Any = (), /) -> Self:
            started = time.process_time()
            try:
                return super().execute(sql, parameters)
            finally:
                times.add(sql, time.process_time() - started)

        def executemany(self, sql: str, rows: Iterable[Any], /) -> Self:
            rows = list(rows)
            started = time.process_time()
            try:
                return super().executemany(sql, rows)
            finally:
                times.add(sql, time.process_time() - started)

    return TimingCursor


@contextmanager
def timed_statements(times: StatementTimes, pragmas: Sequence[str] = ()) -> Iterator[None]:
    """Make the SQLite store's connections time every statement while the block runs."""
    cursor_class = _timing_cursor(times)

    class TimingConnection(sqlite3.Connection):
        def cursor(self, factory: Any = None) -> Any:
            return super().cursor(factory or cursor_class)

    original = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = original(*args, factory=TimingConnection, **kwargs)
        for pragma in pragmas:
            connection.execute(pragma)
        return connection

    sqlite3.connect = connect  # type: ignore[assignment]  # the store's module calls it
    try:
        yield
    finally:
        sqlite3.connect = original


def measure(label: str, sizes: CeilingSizes, pragmas: Sequence[str] = ()) -> CeilingResult:
    """Store `rounds` readings of every entity with batch_upsert, timing each statement."""
    times = StatementTimes()
    with tempfile.TemporaryDirectory() as folder, timed_statements(times, pragmas):
        settings = Settings(
            database_url=f"sqlite:///{Path(folder) / 'ceiling.db'}",
            context_offline=True,
            notifications_enabled=False,
            ingest_enabled=False,
            log_level="warning",
        )
        platform = build_platform(settings)
        try:
            context = platform.contexts.resolve(None)
            caller = Caller.system("")

            def store(round_number: int) -> None:
                body = [
                    reading(number, round_number, "ceiling").entity()
                    for number in range(sizes.entities)
                ]
                for start in range(0, len(body), sizes.batch):
                    platform.entities.batch_upsert(
                        caller, body[start : start + sizes.batch], lambda _: context, mode="update"
                    )

            store(0)  # the entities exist before the measured rounds, as devices' entities do
            times.seconds.clear()
            times.calls.clear()
            started = time.process_time()
            for round_number in range(1, sizes.rounds + 1):
                store(round_number)
            cpu = time.process_time() - started
        finally:
            platform.close()
    return CeilingResult(label, sizes.entities * sizes.rounds, cpu, times)


def run_reading_ceiling(sizes: CeilingSizes, status: Callable[[str], None]) -> list[CeilingResult]:
    """Measure with the platform's pragmas, then with checkpoints moved out of the writer."""
    status("reading ceiling: the platform's SQLite settings")
    results = [measure("platform settings", sizes)]
    status("reading ceiling: no WAL checkpoint in the writer")
    results.append(measure("no checkpoint in the writer", sizes, ["PRAGMA wal_autocheckpoint=0"]))
    return results


def print_results(console: Console, results: list[CeilingResult]) -> None:
    """Print the ceilings and the costliest statements of the first run."""
    table = Table(title="SQLite ceiling for readings (one writer)")
    for column in ("run", "readings", "CPU µs/reading (all)", "SQLite µs/reading", "ceiling/s"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for result in results:
        table.add_row(
            result.label,
            f"{result.readings:,}",
            f"{result.cpu_seconds / result.readings * 1e6:,.0f}",
            f"{result.sql_us:,.0f}",
            f"{result.ceiling:,.0f}",
        )
    console.print(table)


def _statement_rows(result: CeilingResult, limit: int = 8) -> list[str]:
    ranked = sorted(result.statements.seconds.items(), key=lambda item: -item[1])[:limit]
    return [
        f"| `{sql}` | {seconds / result.readings * 1e6:.1f} |"
        for sql, seconds in ranked
        if seconds / result.readings * 1e6 >= 0.5
    ]


def section(results: list[CeilingResult], sizes: CeilingSizes, date: str) -> str:
    """Return the docs section of the reading ceiling."""
    lines = [
        "## SQLite ceiling for readings",
        "",
        f"Measured {date} by `python -m bench --only reading-ceiling` (bench/reading_ceiling.py):",
        f"{sizes.entities:,} AirQualityObserved entities, {sizes.rounds} rounds of one reading "
        f"each, `batch_upsert(mode=update)` in batches of {sizes.batch} as the ingest writer "
        "calls it, in one process on a fresh SQLite file. Times are this process's CPU time; "
        "SQLite's share is the time inside its statements (it has one writer at a time, so its "
        "share bounds every ingestion design on SQLite).",
        "",
        "| run | readings | CPU µs/reading (all) | SQLite µs/reading | ceiling (readings/s) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        lines.append(
            f"| {result.label} | {result.readings:,} | "
            f"{result.cpu_seconds / result.readings * 1e6:,.0f} | {result.sql_us:,.0f} | "
            f"{result.ceiling:,.0f} |"
        )
    lines += [
        "",
        "Costliest statements (platform settings), SQLite CPU µs per reading:",
        "",
        "| statement | µs/reading |",
        "| --- | ---: |",
        *_statement_rows(results[0]),
    ]
    return "\n".join(lines)
