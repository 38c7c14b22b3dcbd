"""Parking payment benchmark: offline terminal batches through the ledger, with duplicates.

One process holds the payment service on a fresh database (SQLite in a temporary folder, or a
fresh PostgreSQL database) and two uploader threads. The workload is a day of visits to six
lots of three operators by prepaid (90%) and postpaid (10%) cards, 10% of them light cars
(경차 50%), plus top-ups. Each terminal (an entry gate, an exit gate and a kiosk per lot) uploads
its own log in batches, so exits often arrive before their entries (kept pending, then closed);
5% of the transactions are uploaded a second time in a later batch of the same terminal.

Phases: *paced* offers batches at the target rate (500 transactions/s) and measures whether the
ledger keeps up; *max* uploads as fast as the uploaders can. After each run the bench checks:
double charges (a session charged twice, or a key accepted twice), the ledger's sum, that the
revenue equals the fees computed independently with `parking_fee`, and that every prepaid card's
stored value equals its ledger account.
"""

from __future__ import annotations

import queue
import random
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.cpu import machine_cpu_seconds, wait_for_quiet
from bench.server import postgres_database
from smartcity.auth.policy import AccessControl
from smartcity.auth.principal import Caller
from smartcity.core.clock import ManualClock
from smartcity.domains.mobility.parking.payment.model import (
    CardKind,
    Transaction,
    TransactionKind,
)
from smartcity.domains.mobility.parking.payment.service import PaymentService
from smartcity.domains.mobility.parking.tariff import (
    EXAMPLE_TARIFF,
    KST,
    DiscountClass,
    parking_fee,
)
from smartcity.platform import open_store
from smartcity.storage.sqlaccounts import SqlAccountStore
from smartcity.storage.sqlbase import SqlEntityStore

SECTION = "parking-payment"
"""Its section of docs/benchmarks.md (see bench/sections.py)."""
DAY = datetime(2026, 11, 27, 6, 0, tzinfo=KST)
LOTS = 6
OPERATORS = 3
SYSTEM = Caller.system("")


@dataclass(frozen=True)
class PaymentSizes:
    """How big the payment benchmark is."""

    cards: int = 3_000
    transactions: int = 30_000
    """Distinct transactions of the paced phase (the max phase uses as many again)."""
    batch: int = 50
    rate: int = 500
    duplicates: float = 0.05
    uploaders: int = 2


FULL = PaymentSizes()
QUICK = PaymentSizes(cards=300, transactions=2_500)


@dataclass
class Workload:
    """Batches to upload, and what the ledger must hold afterwards."""

    batches: list[list[Transaction]]
    distinct: int
    duplicates: int
    expected_gross: int
    sessions: int


@dataclass
class RunResult:
    """What one phase of one backend measured and checked."""

    backend: str
    phase: str
    offered_rate: float | None
    transactions: int
    duplicates: int
    seconds: float
    batch_ms: list[float]
    process_cpu: float
    database_cpu: float
    machine_busy: float
    busy_before: float
    double_charges: int = 0
    ledger_sum: int = 0
    unbalanced: int = 0
    card_mismatches: int = 0
    revenue_matches: bool = False
    pending_left: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.transactions / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.batch_ms)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    @property
    def cpu_ms_per_transaction(self) -> float:
        return (self.process_cpu + self.database_cpu) * 1000 / self.transactions


def make_workload(sizes: PaymentSizes, count: int, seed: int, prefix: str) -> Workload:
    """Return batches of `count` distinct transactions (+ duplicates) from terminal logs."""
    rng = random.Random(seed)
    logs: dict[str, list[Transaction]] = defaultdict(list)
    counters: dict[str, int] = defaultdict(int)
    free_at = {f"{prefix}card-{n}": DAY for n in range(sizes.cards)}
    light = {card for n, card in enumerate(free_at) if n % 10 == 1}
    expected_gross = sessions = made = 0

    def record(kind: TransactionKind, lot: int, terminal: str, at: datetime, card: str) -> None:
        nonlocal made
        counters[terminal] += 1
        amount = 10_000 if kind is TransactionKind.TOPUP else None
        tx = Transaction(kind, f"lot-{lot}", terminal, counters[terminal], at, card, None, amount)
        logs[terminal].append(tx)
        made += 1

    while made < count:
        card = rng.choice(list(free_at))
        lot = rng.randrange(LOTS)
        entry = free_at[card] + timedelta(minutes=rng.randint(1, 240), seconds=rng.randint(0, 59))
        exit_at = entry + timedelta(minutes=rng.randint(3, 420), seconds=rng.randint(0, 59))
        free_at[card] = exit_at
        record(TransactionKind.ENTRY, lot, f"lot-{lot}-in", entry, card)
        record(TransactionKind.EXIT, lot, f"lot-{lot}-out", exit_at, card)
        classes = [DiscountClass.LIGHT_CAR] if card in light else []
        expected_gross += parking_fee(EXAMPLE_TARIFF, entry, exit_at, classes).gross
        sessions += 1
        if _is_prepaid(card) and rng.random() < 0.05:
            record(TransactionKind.TOPUP, lot, f"lot-{lot}-kiosk", exit_at, card)
    batches: list[tuple[datetime, list[Transaction]]] = []
    duplicates = 0
    for log in logs.values():
        log.sort(key=lambda tx: tx.at)
        chunks = [log[start : start + sizes.batch] for start in range(0, len(log), sizes.batch)]
        for index, chunk in enumerate(chunks):
            # A terminal that lost an acknowledgement sends some items again next time.
            if index > 0:
                again = [tx for tx in chunks[index - 1] if rng.random() < sizes.duplicates]
                duplicates += len(again)
                chunk = [*again, *chunk]
            rng.shuffle(chunk)
            batches.append((max(tx.at for tx in chunk), chunk))
    batches.sort(key=lambda item: item[0])
    return Workload([chunk for _, chunk in batches], made, duplicates, expected_gross, sessions)


def _is_prepaid(card: str) -> bool:
    return int(card.rsplit("-", 1)[1]) % 10 != 0


def set_up(store: SqlEntityStore, sizes: PaymentSizes, prefixes: list[str]) -> PaymentService:
    """Return a service with the lots and the cards, each prepaid card loaded generously."""
    clock = ManualClock(DAY)
    service = PaymentService(store, AccessControl(SqlAccountStore(store), clock), clock)
    for lot in range(LOTS):
        service.register_lot(SYSTEM, f"lot-{lot}", f"op-{lot % OPERATORS}", EXAMPLE_TARIFF)
    for prefix in prefixes:
        loads = []
        for n in range(sizes.cards):
            card = f"{prefix}card-{n}"
            kind = CardKind.PREPAID if _is_prepaid(card) else CardKind.POSTPAID
            light = [DiscountClass.LIGHT_CAR] if n % 10 == 1 else []
            service.issue_card(SYSTEM, card, kind, classes=light)
            if kind is CardKind.PREPAID:
                at = DAY - timedelta(days=1)
                loads.append(
                    Transaction(
                        TransactionKind.TOPUP, "lot-0", "bank", n, at, card, None, 1_000_000
                    )
                )
        for start in range(0, len(loads), 500):
            service.submit(SYSTEM, loads[start : start + 500])
    return service


def upload(
    service: PaymentService, workload: Workload, sizes: PaymentSizes, rate: float | None
) -> tuple[float, list[float], dict[str, int]]:
    """Upload the batches (paced at `rate` transactions/s, or as fast as possible)."""
    work: queue.Queue[tuple[float, list[Transaction]] | None] = queue.Queue()
    started = time.perf_counter()
    due = started
    for batch in workload.batches:
        work.put((due, batch))
        if rate is not None:
            due += len(batch) / rate
    for _ in range(sizes.uploaders):
        work.put(None)
    latencies: list[float] = []
    outcomes: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def uploader() -> None:
        while (item := work.get()) is not None:
            when, batch = item
            pause = when - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            begun = time.perf_counter()
            try:
                results = service.submit(SYSTEM, batch)
            except BaseException as error:
                errors.append(error)
                return
            took = (time.perf_counter() - begun) * 1000
            with lock:
                latencies.append(took)
                for result in results:
                    outcomes[result.outcome.value] += 1

    threads = [threading.Thread(target=uploader) for _ in range(sizes.uploaders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started, latencies, dict(outcomes)


def check(service: PaymentService, store: SqlEntityStore, result: RunResult, gross: int) -> None:
    """Fill in the checks: double charges, ledger sum, revenue and card balances."""
    ledger = service.ledger_check(SYSTEM)
    result.ledger_sum = ledger["sum"]
    result.unbalanced = len(ledger["unbalancedJournals"])
    result.card_mismatches = len(ledger["cardMismatches"])
    with store.reading() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM (SELECT session_id FROM parking_pay_journals "
            "WHERE kind = 'charge' GROUP BY session_id HAVING COUNT(*) > 1) twice"
        )
        charged_twice = int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT COUNT(*) FROM (SELECT exit_key FROM parking_pay_sessions "
            "WHERE exit_key IS NOT NULL GROUP BY exit_key HAVING COUNT(*) > 1) twice"
        )
        exit_twice = int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT COALESCE(-SUM(amount), 0) FROM parking_pay_postings "
            "WHERE account LIKE 'revenue:%'"
        )
        revenue = int(cursor.fetchone()[0])
        cursor.execute("SELECT COUNT(*) FROM parking_pay_pending")
        result.pending_left = int(cursor.fetchone()[0])
    result.double_charges = charged_twice + exit_twice
    result.revenue_matches = revenue == gross


def database_cpu_seconds(store: SqlEntityStore) -> float:
    """Return the CPU seconds the PostgreSQL backends serving this database have used so far."""
    from bench.cpu import process_cpu_seconds

    with store.reading() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        pids = [int(row[0]) for row in cursor.fetchall()]
    total = 0.0
    for pid in pids:
        try:
            total += process_cpu_seconds(pid)
        except OSError:
            continue
    return total


def run_phase(
    backend: str,
    store: SqlEntityStore,
    service: PaymentService,
    workload: Workload,
    sizes: PaymentSizes,
    phase: str,
    rate: float | None,
    gross_so_far: int,
) -> RunResult:
    """Run one phase and check the ledger after it."""
    busy_before = wait_for_quiet(threshold=0.5, max_wait=30)
    postgres = backend == "postgres"
    cpu_before = time.process_time()
    db_before = database_cpu_seconds(store) if postgres else 0.0
    machine_before = machine_cpu_seconds()
    seconds, latencies, outcomes = upload(service, workload, sizes, rate)
    machine_after = machine_cpu_seconds()
    share = (machine_after[0] - machine_before[0]) / max(machine_after[1] - machine_before[1], 1e-9)
    result = RunResult(
        backend=backend,
        phase=phase,
        offered_rate=rate,
        transactions=workload.distinct + workload.duplicates,
        duplicates=workload.duplicates,
        seconds=seconds,
        batch_ms=latencies,
        process_cpu=time.process_time() - cpu_before,
        database_cpu=(database_cpu_seconds(store) - db_before) if postgres else 0.0,
        machine_busy=share * 2,
        busy_before=busy_before,
        outcomes=outcomes,
    )
    check(service, store, result, gross_so_far)
    return result


def run_payment(
    sizes: PaymentSizes, postgres_admin_url: str, backends: list[str]
) -> list[RunResult]:
    """Run both phases on each backend."""
    results: list[RunResult] = []
    paced = make_workload(sizes, sizes.transactions, seed=1, prefix="a-")
    fastest = make_workload(sizes, sizes.transactions, seed=2, prefix="b-")
    for backend in backends:
        with ExitStack() as stack:
            if backend == "sqlite":
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                store = open_store(f"sqlite:///{folder / 'payment.db'}")
            else:
                url = stack.enter_context(
                    postgres_database(postgres_admin_url, "smartcity_bench_pay")
                )
                store = open_store(url)
            stack.callback(store.close)
            service = set_up(store, sizes, ["a-", "b-"])
            gross = paced.expected_gross
            results.append(
                run_phase(backend, store, service, paced, sizes, "paced", sizes.rate, gross)
            )
            gross += fastest.expected_gross
            results.append(run_phase(backend, store, service, fastest, sizes, "max", None, gross))
    return results


def _cells(result: RunResult) -> list[str]:
    offered = f"{result.offered_rate:,.0f}" if result.offered_rate else "max"
    checks = (
        "ok"
        if (
            result.double_charges == 0
            and result.ledger_sum == 0
            and result.unbalanced == 0
            and result.card_mismatches == 0
            and result.revenue_matches
            and result.pending_left == 0
        )
        else "FAILED"
    )
    return [
        result.backend,
        offered,
        f"{result.transactions:,}",
        f"{result.duplicates:,}",
        f"{result.per_second:,.0f}",
        f"{statistics.median(result.batch_ms):.0f}",
        f"{result.percentile(0.95):.0f}",
        f"{result.cpu_ms_per_transaction:.2f}",
        f"{result.database_cpu * 1000 / result.transactions:.2f}",
        f"{result.machine_busy:.2f}",
        f"{result.busy_before:.2f}",
        str(result.double_charges),
        str(result.ledger_sum),
        checks,
    ]


HEADERS = [
    "backend",
    "offered tx/s",
    "transactions",
    "duplicates",
    "tx/s",
    "p50 ms/batch",
    "p95 ms/batch",
    "CPU ms/tx",
    "of which db",
    "machine cores",
    "busy before",
    "double charges",
    "ledger sum",
    "checks",
]


def print_results(console: Console, results: list[RunResult]) -> None:
    """Print the results as a table."""
    table = Table(title="Parking payment: offline batches through the ledger")
    for header in HEADERS:
        table.add_column(header, justify="left" if header == "backend" else "right")
    for result in results:
        table.add_row(*_cells(result))
    console.print(table)
    for result in results:
        console.print(
            f"{result.backend} {result.phase}: outcomes {result.outcomes}; unbalanced "
            f"{result.unbalanced}, card mismatches {result.card_mismatches}, revenue matches "
            f"{result.revenue_matches}, pending left {result.pending_left}"
        )


def section(results: list[RunResult], sizes: PaymentSizes, date: str) -> str:
    """Return the markdown section of docs/benchmarks.md."""
    lines = [
        "## Parking payment (issue 8)",
        "",
        f"Measured {date} by `python -m bench --only parking-payment` on the machine above.",
        "",
        f"- The payment service in the bench process with {sizes.uploaders} uploader threads, on a",
        "  fresh SQLite file (WAL) or a fresh PostgreSQL database on the same machine.",
        f"- {sizes.cards:,} cards per phase (90% prepaid, 10% postpaid, 10% light cars), six lots",
        "  of three operators, the example tariff. Each terminal uploads its own log in batches",
        f"  of {sizes.batch}, so exits often arrive before their entries (kept pending, closed",
        f"  when the entry arrives); {sizes.duplicates:.0%} of the transactions are uploaded",
        "  again in the terminal's next batch.",
        f"- *{sizes.rate}* offers batches at that many transactions/s (the issue's goal): tx/s is",
        "  what went through (below the offer means it did not keep up). *max*: as fast as the",
        "  uploaders go. Latency: one `submit` call (one batch, one transaction).",
        "- `CPU ms/tx`: the bench process (service and uploaders) plus the PostgreSQL backends",
        "  serving the bench database (pg_stat_activity), per transaction. `machine cores`: cores",
        "  busy on the whole machine during the phase (of 2, other helpers' work included);",
        "  `busy before`: cores busy just before (after waiting up to 30 s for under 0.5).",
        "- Checks after each phase: double charges (a session charged twice or an exit key used",
        "  twice) must be 0, the ledger sums to 0 with every journal balanced, the revenue equals",
        "  the fees computed independently by `parking_fee`, each prepaid card's stored value",
        "  equals its ledger account, and no exit is left pending.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "| --- | " + " | ".join("---:" for _ in HEADERS[1:]) + " |",
    ]
    lines += ["| " + " | ".join(_cells(result)) + " |" for result in results]
    lines += ["", *_reading(results)]
    return "\n".join(lines)


def _reading(results: list[RunResult]) -> list[str]:
    """Return how to read the figures: the CPU bound next to what this run got."""
    notes = []
    for backend in sorted({result.backend for result in results}):
        mine = [result for result in results if result.backend == backend]
        cpu = statistics.median(result.cpu_ms_per_transaction for result in mine)
        busy = max(result.busy_before for result in mine)
        # SQLite has one writer and nearly all the work runs inside its write transaction.
        cores, how = (1, "one core (one writer)") if backend == "sqlite" else (2, "two cores")
        notes.append(
            f"- {backend}: {cpu:.2f} ms of CPU per transaction (service and database), so "
            f"{how}, otherwise idle, bound it near {cores * 1000 / cpu:,.0f} transactions/s; "
            "during this "
            f"run {busy:.2f} of 2 cores were already busy with other work before each phase, "
            "so the wall figures above measure the sharing, not the code."
        )
    return notes
