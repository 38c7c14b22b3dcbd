"""No double booking, ever: 100 parallel requests for the last space, exactly one succeeds.

Both databases, both ways a deployment runs: threads of one process through the reservation
service, and four processes (each its own connections) of 25 threads each on the store.
"""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from multiprocessing.synchronize import Barrier as ProcessBarrier
from typing import Any

import pytest

from smartcity.auth.principal import Caller, Role
from smartcity.core.clock import ManualClock, isoformat
from smartcity.core.errors import Conflict
from smartcity.domains.mobility.parking.store import Refusal, Reservation, ReservationStore
from smartcity.platform import Platform, open_store
from tests.domains.mobility.parking.city import lot, make_parking_public, parking

CHURCH = lot("changdong-hanbit-church-shared")  # 20 shareable spaces
REQUESTS = 100
PROCESSES = 4


def run_together(count: int, attempt: Callable[[int], Any]) -> list[Any]:
    """Run `attempt(i)` in `count` threads released at one moment; return their results."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = attempt(index)
        except Exception as error:  # kept, then checked by the test
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_threads_race_for_the_last_space(city: Platform, clock: ManualClock) -> None:
    make_parking_public(city)
    reservations = parking(city).reservations
    start = clock.now() + timedelta(minutes=30)
    end = start + timedelta(hours=2)
    for number in range(19):
        reservations.reserve(_person(f"early-{number}"), CHURCH, start, end)

    results = run_together(
        REQUESTS,
        lambda i: reservations.reserve(_person(f"racer-{i}"), CHURCH, start, end),
    )
    made = [r for r in results if isinstance(r, Reservation)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(made) == 1, [r for r in results if not isinstance(r, Reservation | Conflict)]
    assert len(refused) == REQUESTS - 1
    assert parking(city).store.reserved_peak("", CHURCH, isoformat(start), isoformat(end)) == 20


def _person(name: str) -> Caller:
    return Caller(name, "", frozenset({Role.PUBLIC}), principal_id=f"id-{name}")


def _contend(
    url: str, schema: str | None, barrier: ProcessBarrier, process: int, results: Any
) -> None:
    """One process: its own store, 25 threads asking for the last space at once."""
    store = open_store(url, schema)
    try:
        reservations = ReservationStore(store)
        now = datetime(2026, 11, 27, 9, 0)
        stamp = isoformat(now.astimezone())
        barrier.wait(timeout=60)

        def attempt(index: int) -> bool:
            reservation = Reservation(
                uuid.uuid4().hex, "", "site-1", f"holder-{process}-{index}",
                "2026-11-27T10:00:00.000000Z", "2026-11-27T12:00:00.000000Z",
                "reserved", stamp, stamp,
            )  # fmt: skip
            made = reservations.reserve(reservation, capacity=3, holder_limit=1)
            assert isinstance(made, Reservation | Refusal)
            return isinstance(made, Reservation)

        outcome = run_together(REQUESTS // PROCESSES, attempt)
        results.put([o if isinstance(o, bool) else repr(o) for o in outcome])
    finally:
        store.close()


@pytest.mark.slow
def test_processes_race_for_the_last_space(
    request: pytest.FixtureRequest, backend: str, tmp_path: Any
) -> None:
    if backend == "postgres":
        from tests.conftest import postgres_url

        url, schema = postgres_url(), str(request.getfixturevalue("postgres_schema"))
    else:
        url, schema = f"sqlite:///{tmp_path / 'race.db'}", None
    store = open_store(url, schema)
    reservations = ReservationStore(store)
    for number in range(2):  # two of the three spaces are taken: one is left
        stamp = "2026-11-27T09:00:00.000000Z"
        early = Reservation(
            f"early-{number}", "", "site-1", f"early-{number}",
            "2026-11-27T09:30:00.000000Z", "2026-11-27T11:00:00.000000Z",
            "reserved", stamp, stamp,
        )  # fmt: skip
        assert reservations.reserve(early, capacity=3, holder_limit=1) == early
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=_contend, args=(url, schema, barrier, n, results))
        for n in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=180) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    flat = [o for batch in outcomes for o in batch]
    assert len(flat) == REQUESTS
    assert flat.count(True) == 1, [o for o in flat if not isinstance(o, bool)]
    assert flat.count(False) == REQUESTS - 1
    peak = reservations.reserved_peak(
        "", "site-1", "2026-11-27T00:00:00.000000Z", "2026-11-28T00:00:00.000000Z"
    )
    assert peak == 3
    store.close()
