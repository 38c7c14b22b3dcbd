"""`python -m bench`: measure the broker on this machine, print the figures, write the docs."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench.findings import findings
from bench.ingest_writer import FULL as WRITER_FULL
from bench.ingest_writer import QUICK as WRITER_QUICK
from bench.ingest_writer import print_phases, run_ingest_writer
from bench.ingest_writer import section as writer_section
from bench.ingest_writer import write_section as write_writer_section
from bench.machine import describe_machine
from bench.notifications import (
    FULL as NOTIFICATIONS_FULL,
)
from bench.notifications import (
    QUICK as NOTIFICATIONS_QUICK,
)
from bench.notifications import (
    NotificationResult,
    print_results,
    run_notifications,
    section,
    write_section,
)
from bench.profile import Breakdown, print_breakdown, profile, threadpool_hop_us
from bench.report import figure_rows, markdown, print_table
from bench.scenarios import FIGURES, FULL, QUICK, Advance, Backend, BackendResult, run_backend
from bench.simulator import FULL as SIMULATOR_FULL
from bench.simulator import QUICK as SIMULATOR_QUICK
from bench.simulator import print_results as print_simulator
from bench.simulator import run_simulator
from bench.simulator import section as simulator_section
from bench.simulator import write_section as write_simulator_section

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


class ProgressTracker:
    """Progress bars for the long phases, on one rich Progress display."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    @contextmanager
    def phase(self, description: str, total: int | None) -> Iterator[Advance]:
        """Show one bar (a spinner when total is None) while the block runs."""
        task = self.progress.add_task(description, total=total)

        def advance(steps: int) -> None:
            self.progress.advance(task, steps)

        try:
            yield advance
        finally:
            self.progress.update(task, completed=total or 1, total=total or 1)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of `python -m bench`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the NGSI-LD broker on this machine (server, database and load "
        "generator on the same machine); print the figures and, on a full run, write "
        "docs/benchmarks.md.",
    )
    parser.add_argument(
        "--only",
        choices=(*FIGURES, "notifications", "ingest-writer", "simulator"),
        help="run one figure only (docs not written, except the notifications, ingest "
        "writer and simulator sections)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run (under a minute); docs not written",
    )
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgres", "both"],
        default="both",
        help="which store to measure (default both; docs written only for both)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SMARTCITY_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="PostgreSQL maintenance database to create the bench databases from "
        f"(default $SMARTCITY_BENCH_POSTGRES_URL or {DEFAULT_POSTGRES})",
    )
    parser.add_argument(
        "--no-profile",
        action="store_true",
        help="skip the cProfile runs of the server (upsert and retrieve on SQLite)",
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="do not run ANALYZE on PostgreSQL after loading the query data set",
    )
    return parser


def notifications(console: Console, backends: list[Backend], args: argparse.Namespace) -> str:
    """Run the notification benchmark on each backend; return its docs section."""
    sizes = NOTIFICATIONS_QUICK if args.quick else NOTIFICATIONS_FULL
    results: list[NotificationResult] = []
    # At the rate in both layouts, then at a lower rate to show the pipeline's own
    # latency when the machine is not saturated.
    runs = [(False, sizes), (True, sizes), (False, replace(sizes, changes_per_second=300))]
    for backend in backends:
        for separate, run_sizes in runs:
            with console.status(
                f"{backend}: notifications ({run_sizes.subscriptions:,} subscriptions)"
            ):
                results.append(
                    run_notifications(backend, args.postgres_url, run_sizes, separate=separate)
                )
    print_results(console, results)
    return section(results, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))


def ingest_writer(console: Console, args: argparse.Namespace) -> str:
    """Run the ingest writer benchmark on the in-process bus and NATS; return its docs section."""
    sizes = WRITER_QUICK if args.quick else WRITER_FULL
    with console.status(f"ingest writer: {sizes.entities:,} entities, memory and NATS buses"):
        phases = run_ingest_writer(["memory", "nats"], sizes)
    print_phases(console, phases)
    return writer_section(phases, sizes, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))


def simulator(console: Console, args: argparse.Namespace) -> str:
    """Run the simulator benchmark (what the district sends, whether the platform keeps up)."""
    sizes = SIMULATOR_QUICK if args.quick else SIMULATOR_FULL
    with console.status("simulator: the district at 1x, 10x, 60x and max through the platform"):
        production, results = run_simulator(sizes)
    print_simulator(console, production, results)
    return simulator_section(
        production, results, sizes, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks."""
    args = build_parser().parse_args(argv)
    sizes = QUICK if args.quick else FULL
    backends: list[Backend] = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    console = Console(width=None if sys.stdout.isatty() else 150)
    if args.only == "notifications":
        text = notifications(console, backends, args)
        if not args.quick:
            write_section(DOCS, text)
            console.print(f"wrote the notifications section of {DOCS}")
        return 0
    if args.only == "simulator":
        text = simulator(console, args)
        if not args.quick:
            write_simulator_section(DOCS, text)
            console.print(f"wrote the simulator section of {DOCS}")
        return 0
    if args.only == "ingest-writer":
        text = ingest_writer(console, args)
        if not args.quick:
            write_writer_section(DOCS, text)
            console.print(f"wrote the ingest writer section of {DOCS}")
        return 0
    started = time.perf_counter()
    results: list[BackendResult] = []
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        tracker = ProgressTracker(progress)
        for backend in backends:
            results.append(
                run_backend(
                    backend, args.postgres_url, tracker, sizes, args.only, not args.no_analyze
                )
            )
    duration = time.perf_counter() - started
    rows = figure_rows(results, sizes)
    print_table(console, rows, backends)
    profiles: list[Breakdown] = []
    hop_us: float | None = None
    if not (args.quick or args.no_profile or args.only):
        hop_us = threadpool_hop_us()
        for scenario in ("upsert", "retrieve"):
            with Progress(*columns, console=console) as progress:
                task = progress.add_task(f"sqlite: cProfile of the server ({scenario})", total=None)
                profiles.append(profile(scenario, "sqlite", args.postgres_url))
                progress.update(task, total=1, completed=1)
            print_breakdown(console, profiles[-1])
    notes = findings(results, profiles, hop_us)
    for note in notes:
        console.print(note)
    console.print(f"whole run: {duration:.0f} s")
    if args.quick or args.only or args.backend != "both":
        console.print("[dim]partial or quick run: docs/benchmarks.md left as it was[/dim]")
        return 0
    notification_section = notifications(console, backends, args)
    machine = describe_machine(args.postgres_url)
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(markdown(machine, sizes, results, rows, duration, notes))
    write_section(DOCS, notification_section)
    write_writer_section(DOCS, ingest_writer(console, args))
    write_simulator_section(DOCS, simulator(console, args))
    console.print(f"wrote {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
