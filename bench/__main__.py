"""`python -m bench`: measure the broker on this machine, print the figures, write the docs."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
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

from bench import ingest_writer as writer_bench
from bench import iot_agent as iot_bench
from bench import iot_report
from bench import notifications as notification_bench
from bench import parking_forecast as parking_forecast_bench
from bench import parking_guidance as parking_bench
from bench import parking_payment as payment_bench
from bench import reading_ceiling as ceiling_bench
from bench import rules as rules_bench
from bench import rules_latency as latency_bench
from bench import simulator as simulator_bench
from bench.findings import findings
from bench.machine import describe_machine
from bench.notifications import NotificationResult
from bench.profile import Breakdown, print_breakdown, profile, threadpool_hop_us
from bench.report import figure_rows, markdown, print_table
from bench.scenarios import FIGURES, FULL, QUICK, Advance, Backend, BackendResult, run_backend
from bench.sections import sections, write_section

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
        choices=(*FIGURES, *SECTIONS),
        help="run one figure only (docs not written, except the sections of the notifications, "
        "the ingest writer, the IoT agent, the simulator and the rule engine)",
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
    sizes = notification_bench.QUICK if args.quick else notification_bench.FULL
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
                    notification_bench.run_notifications(
                        backend, args.postgres_url, run_sizes, separate=separate
                    )
                )
    notification_bench.print_results(console, results)
    return notification_bench.section(results, _now())


def ingest_writer(console: Console, _backends: list[Backend], args: argparse.Namespace) -> str:
    """Run the ingest writer benchmark on the in-process bus and NATS; return its docs section."""
    sizes = writer_bench.QUICK if args.quick else writer_bench.FULL
    with console.status(f"ingest writer: {sizes.entities:,} entities, memory and NATS buses"):
        phases = writer_bench.run_ingest_writer(["memory", "nats"], sizes)
    writer_bench.print_phases(console, phases)
    return writer_bench.section(phases, sizes, _now())


def iot_agent(console: Console, _backends: list[Backend], args: argparse.Namespace) -> str:
    """Run the IoT agent benchmark (MQTT to SQLite, clean and malformed); return its section."""
    sizes = iot_bench.QUICK if args.quick else iot_bench.FULL
    with console.status("IoT agent") as status:
        result = iot_bench.run_iot_agent(sizes, lambda text: status.update(text))
    iot_report.print_result(console, result)
    return iot_report.section(result, _now())


def simulator(console: Console, _backends: list[Backend], args: argparse.Namespace) -> str:
    """Run the simulator benchmark (what the district sends, whether the platform keeps up)."""
    sizes = simulator_bench.QUICK if args.quick else simulator_bench.FULL
    with console.status("simulator: the district at 1x, 10x, 60x and max through the platform"):
        production, results = simulator_bench.run_simulator(sizes)
    simulator_bench.print_results(console, production, results)
    return simulator_bench.section(production, results, sizes, _now())


def reading_ceiling(console: Console, _backends: list[Backend], args: argparse.Namespace) -> str:
    """Measure SQLite's own cost of storing readings (one writer); return its docs section."""
    sizes = ceiling_bench.QUICK if args.quick else ceiling_bench.FULL
    with console.status("reading ceiling") as status:
        results = ceiling_bench.run_reading_ceiling(sizes, lambda text: status.update(text))
    ceiling_bench.print_results(console, results)
    return ceiling_bench.section(results, sizes, _now())


def parking_payment(console: Console, backends: list[Backend], args: argparse.Namespace) -> str:
    """Run the parking payment benchmark (offline batches through the ledger); return it."""
    sizes = payment_bench.QUICK if args.quick else payment_bench.FULL
    with console.status(f"parking payment: {sizes.transactions:,} transactions per phase"):
        results = payment_bench.run_payment(sizes, args.postgres_url, list(backends))
    payment_bench.print_results(console, results)
    return payment_bench.section(results, sizes, _now())


def parking_guidance(console: Console, backends: list[Backend], args: argparse.Namespace) -> str:
    """Run the parking guidance benchmark (warm and cold snapshot, forecast included)."""
    with console.status("parking guidance: history, training, then the 5 best sites near X"):
        figures, trainings = parking_bench.run(backends, args.postgres_url, args.quick)
    parking_bench.print_figures(console, figures)
    return parking_bench.section(figures, trainings, _now())


def rules(console: Console, _backends: list[Backend], args: argparse.Namespace) -> str:
    """Run the rule engine benchmark (changes/s with 100 rules and none); return its section."""
    sizes = rules_bench.QUICK if args.quick else rules_bench.FULL
    with console.status(f"rule engine: {sizes.changes:,} changes, {sizes.rules} rules"):
        result = rules_bench.run_rules(sizes)
    rules_bench.print_result(console, result)
    return rules_bench.section(result, _now())


def rules_latency(console: Console, backends: list[Backend], args: argparse.Namespace) -> str:
    """Run the rules latency benchmark (change committed -> alert stored); return its section."""
    sizes = latency_bench.QUICK if args.quick else latency_bench.FULL
    results = []
    # NATS is for several processes: with PostgreSQL, when it is among the backends run.
    runs = [(backend, "memory") for backend in backends]
    runs.append(("postgres" if "postgres" in backends else "sqlite", "nats"))
    for backend, bus in runs:
        with console.status(f"rules latency: {backend}, {bus} bus, {sizes.rate:,} changes/s"):
            results.append(latency_bench.run_rules_latency(backend, bus, sizes, args.postgres_url))
    latency_bench.print_results(console, results)
    return latency_bench.section(results, sizes, _now())


def parking_forecast(console: Console, _backends: list[Backend], args: argparse.Namespace) -> str:
    """Run the parking forecast benchmark (model against two baselines); return its section."""
    sizes = parking_forecast_bench.QUICK if args.quick else parking_forecast_bench.FULL
    with console.status("parking forecast") as status:
        result = parking_forecast_bench.run_parking_forecast(sizes, lambda t: status.update(t))
    parking_forecast_bench.print_result(console, result)
    return parking_forecast_bench.section(result, _now())


SECTIONS: dict[str, Callable[[Console, list[Backend], argparse.Namespace], str]] = {
    notification_bench.SECTION: notifications,
    writer_bench.SECTION: ingest_writer,
    iot_report.SECTION: iot_agent,
    ceiling_bench.SECTION: reading_ceiling,
    simulator_bench.SECTION: simulator,
    payment_bench.SECTION: parking_payment,
    parking_bench.SECTION: parking_guidance,
    rules_bench.SECTION: rules,
    latency_bench.SECTION: rules_latency,
    parking_forecast_bench.SECTION: parking_forecast,
}
"""The benchmarks that write a section of docs/benchmarks.md of their own, in run order."""


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks."""
    args = build_parser().parse_args(argv)
    sizes = QUICK if args.quick else FULL
    backends: list[Backend] = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    console = Console(width=None if sys.stdout.isatty() else 150)
    if args.only in SECTIONS:
        text = SECTIONS[args.only](console, backends, args)
        if not args.quick:
            write_section(DOCS, args.only, text)
            console.print(f"wrote the {args.only} section of {DOCS}")
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
    # Sections this run does not measure (the live map needs a browser) stay as they were.
    kept = sections(DOCS.read_text()) if DOCS.exists() else {}
    DOCS.write_text(markdown(machine, sizes, results, rows, duration, notes))
    write_section(DOCS, notification_bench.SECTION, notification_section)
    for name, run in SECTIONS.items():
        if name != notification_bench.SECTION:
            write_section(DOCS, name, run(console, backends, args))
    for name, body in kept.items():
        if name not in SECTIONS:
            write_section(DOCS, name, body)
    console.print(f"wrote {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
