"""Parking occupancy forecast: the model against persistence and the historical average.

Weeks of the district's lots are simulated (`sim/parking_history.py`, by seed), written into a
SQLite history through the store, read back on a 5-minute grid by the forecaster's own reader,
and evaluated rolling-origin: for each of the last weeks, `ParkingForecaster.train` learns from
the history before the week (its usual training path), and every 5-minute origin of the week
is forecast 15, 30 and 60 minutes ahead; on each concert evening of the week a forecast made at
16:00 is scored on every hour from 17:00 to 23:00. MAPE is on occupied spaces,
100 * mean(|predicted - actual| / actual), over the points where the lot is at least 10% full
(a nearly empty lot makes any percentage meaningless); MAE is in spaces, over every point.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from smartcity.core.clock import ManualClock
from smartcity.domains.mobility.parking.forecast import (
    ForecastOptions,
    ParkingForecaster,
    TenantModel,
)
from smartcity.domains.mobility.parking.forecast_features import (
    IntArray,
    KnownEvent,
    StaticEvents,
)
from smartcity.domains.mobility.parking.forecast_models import (
    HistoricalAverage,
    LotData,
    Persistence,
)
from smartcity.domains.mobility.parking.forecast_series import FloatArray, OccupancyHistory
from smartcity.sim.district import load_district
from smartcity.sim.parking_history import (
    HistoryPlan,
    SimulatedHistory,
    lot_entity_id,
    simulate_history,
    write_history,
)
from smartcity.storage.history import SqlHistoryStore
from smartcity.storage.sqlite import SqliteEntityStore

SECTION = "parking-forecast"
TENANT = ""
MIN_SHARE = 0.10
"""MAPE counts the points where the lot is at least this full."""
HORIZONS = (15, 30, 60)
EVENING = "event evening"
MODELS = ("gradient-boosting", "persistence", "historical-average")


@dataclass(frozen=True)
class Sizes:
    """How much to simulate and evaluate."""

    days: int
    folds: int
    seed: int = 7
    start: date = date(2026, 9, 7)


FULL = Sizes(days=56, folds=2)
QUICK = Sizes(days=21, folds=1)


@dataclass
class Score:
    """Errors of one model at one horizon, gathered over the folds."""

    errors: list[FloatArray] = field(default_factory=list)
    actual: list[FloatArray] = field(default_factory=list)
    capacity: list[FloatArray] = field(default_factory=list)
    inside: list[FloatArray] = field(default_factory=list)

    def add(self, predicted: FloatArray, actual: FloatArray, capacity: float) -> None:
        keep = ~np.isnan(predicted) & ~np.isnan(actual)
        self.errors.append(predicted[keep] - actual[keep])
        self.actual.append(actual[keep])
        self.capacity.append(np.full(int(keep.sum()), capacity))

    def figures(self) -> tuple[float, float, int]:
        """Return MAPE (%), MAE (spaces) and the points scored (NaN when nothing was scored)."""
        if not self.errors or not sum(len(e) for e in self.errors):
            return float("nan"), float("nan"), 0
        errors, actual = np.concatenate(self.errors), np.concatenate(self.actual)
        capacity = np.concatenate(self.capacity)
        busy = actual >= MIN_SHARE * capacity
        mape = float(np.mean(np.abs(errors[busy]) / actual[busy]) * 100)
        return mape, float(np.mean(np.abs(errors))), len(errors)


@dataclass
class Result:
    """What the benchmark measured."""

    sizes: Sizes
    lots: int
    concerts: int
    test_concerts: int
    rows: int
    simulate_cpu: float
    write_wall: float
    read_wall: float
    train: list[TenantModel]
    scores: dict[tuple[str, str], Score]
    coverage: dict[str, float]
    predict_us: float
    predict_cpu_us: float
    service_ms: float
    load: str


def _events(history: SimulatedHistory, venue: tuple[float, float]) -> StaticEvents:
    calendar = StaticEvents()
    for concert in history.concerts:
        calendar.add(
            TENANT,
            KnownEvent(
                venue, concert.show_start, concert.show_end, concert.visitors, concert.car_share
            ),
        )
    return calendar


def run_parking_forecast(sizes: Sizes, say: Callable[[str], None] = print) -> Result:
    """Simulate, store, train and evaluate; return the figures."""
    load = os.getloadavg()
    district = load_district()
    venue = next(p.anchor for p in district.places if p.id == "seoul-arena")
    cpu = time.process_time()
    say(f"simulating {sizes.days} days of {len(district.parking)} lots")
    history = simulate_history(district, HistoryPlan(sizes.start, sizes.days, sizes.seed))
    simulate_cpu = time.process_time() - cpu
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteEntityStore(Path(folder) / "bench.db")
        try:
            store_history = SqlHistoryStore(store)
            say("writing the history")
            wall = time.perf_counter()
            rows = write_history(store_history, TENANT, history)
            write_wall = time.perf_counter() - wall
            reader = OccupancyHistory(store_history, store)
            end = history.start + len(history.lots[0].occupied) * history.step
            wall = time.perf_counter()
            full = {
                lot.lot.id: reader.series(TENANT, lot_entity_id(lot.lot.id), history.start, end)
                for lot in history.lots
            }
            read_wall = time.perf_counter() - wall
            calendar = _events(history, venue)
            clock = ManualClock(end)
            forecaster = ParkingForecaster(reader, clock, calendar, ForecastOptions())
            scores = {(m, h): Score() for m in MODELS for h in (*map(str, HORIZONS), EVENING)}
            inside: list[float] = []
            trained: list[TenantModel] = []
            timing: list[tuple[float, float, int]] = []
            test_concerts = 0
            for fold in range(sizes.folds, 0, -1):
                split = end - timedelta(days=7 * fold)
                say(f"training on the history before {split:%Y-%m-%d}")
                model = forecaster.train(TENANT, split)
                assert model is not None
                trained.append(model)
                stop = split + timedelta(days=7)
                for lot_history in history.lots:
                    series = full[lot_history.lot.id]
                    assert series is not None
                    known = model.lots[lot_entity_id(lot_history.lot.id)]
                    data = LotData(series, known.usual, calendar.events.get(TENANT, []))
                    first, last = series.index_of(split), series.index_of(stop)
                    origins = np.arange(first, last, dtype=np.int64)
                    timing.append(_score_short(model, data, origins, scores, inside))
                concerts = [c for c in history.concerts if split <= c.show_start < stop]
                test_concerts += len(concerts)
                for concert in concerts:
                    for lot_history in history.lots:
                        series = full[lot_history.lot.id]
                        assert series is not None
                        known = model.lots[lot_entity_id(lot_history.lot.id)]
                        data = LotData(series, known.usual, calendar.events.get(TENANT, []))
                        _score_evening(model, data, concert.show_start, history, scores)
            service_ms = _service_latency(forecaster, history, end)
        finally:
            store.close()
    wall_total = sum(t[0] for t in timing)
    cpu_total = sum(t[1] for t in timing)
    points = sum(t[2] for t in timing)
    return Result(
        sizes=sizes,
        lots=len(history.lots),
        concerts=len(history.concerts),
        test_concerts=test_concerts,
        rows=rows,
        simulate_cpu=simulate_cpu,
        write_wall=write_wall,
        read_wall=read_wall,
        train=trained,
        scores=scores,
        coverage={"30": float(np.mean(inside)) if inside else float("nan")},
        predict_us=wall_total / max(points, 1) * 1e6,
        predict_cpu_us=cpu_total / max(points, 1) * 1e6,
        service_ms=service_ms,
        load=" ".join(f"{x:.2f}" for x in load),
    )


def _score_short(
    model: TenantModel,
    data: LotData,
    origins: IntArray,
    scores: dict[tuple[str, str], Score],
    inside: list[float],
) -> tuple[float, float, int]:
    """Score the three models at 15, 30 and 60 minutes; return (wall, cpu, points) of the model."""
    series = data.series
    capacity = float(series.lot.capacity)
    occupied = series.occupied
    baselines = (Persistence(), HistoricalAverage(model.model.clock))
    wall = cpu = 0.0
    points = 0
    for minutes in HORIZONS:
        steps = minutes // 5
        valid = origins[origins + steps < len(occupied)]
        actual = occupied[valid + steps]
        started, cpu_started = time.perf_counter(), time.process_time()
        prediction = model.model.predict(data, valid, minutes)
        wall += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        points += len(valid)
        scores[("gradient-boosting", str(minutes))].add(
            prediction.value * capacity, actual, capacity
        )
        if minutes == 30:
            known = ~np.isnan(actual) & ~np.isnan(prediction.value)
            low, high = prediction.low[known] * capacity, prediction.high[known] * capacity
            hit = (actual[known] >= low - 0.5) & (actual[known] <= high + 0.5)
            inside.extend(hit.astype(float).tolist())
        for baseline in baselines:
            predicted = baseline.predict(data, valid, minutes) * capacity
            scores[(baseline.name, str(minutes))].add(predicted, actual, capacity)
    return wall, cpu, points


def _score_evening(
    model: TenantModel,
    data: LotData,
    show_start: datetime,
    history: SimulatedHistory,
    scores: dict[tuple[str, str], Score],
) -> None:
    """Score a forecast made at 16:00 local on a concert day, for every hour 17:00-23:00."""
    series = data.series
    capacity = float(series.lot.capacity)
    local_day = show_start.astimezone(history.zone).date()
    issued = datetime.combine(local_day, day_time(16, 0), history.zone).astimezone(UTC)
    origin = np.array([series.index_of(issued)], dtype=np.int64)
    baselines = (Persistence(), HistoricalAverage(model.model.clock))
    for hours in range(1, 8):
        minutes = 60 * hours
        target = int(origin[0]) + minutes // 5
        if target >= len(series.occupied):
            continue
        actual = series.occupied[[target]]
        value = model.model.predict(data, origin, minutes).value * capacity
        scores[("gradient-boosting", EVENING)].add(value, actual, capacity)
        for baseline in baselines:
            predicted = baseline.predict(data, origin, minutes) * capacity
            scores[(baseline.name, EVENING)].add(predicted, actual, capacity)


def _service_latency(
    forecaster: ParkingForecaster, history: SimulatedHistory, end: datetime
) -> float:
    """Return the mean wall milliseconds of `free_spaces_at` (reads the lot's last week)."""
    now = end - timedelta(days=1)
    calls = 0
    started = time.perf_counter()
    for lot in history.lots:
        for minutes in (15, 30, 60):
            forecaster.free_spaces_at(
                TENANT, lot_entity_id(lot.lot.id), now, now + timedelta(minutes=minutes)
            )
            calls += 1
    return (time.perf_counter() - started) / calls * 1000


def print_result(console: Console, result: Result) -> None:
    """Print the figures as a table."""
    table = Table(title="Parking occupancy forecast (simulated district)")
    table.add_column("horizon")
    for name in MODELS:
        table.add_column(f"{name} MAPE %", justify="right")
        table.add_column(f"{name} MAE", justify="right")
    for horizon in (*map(str, HORIZONS), EVENING):
        cells = []
        for name in MODELS:
            mape, mae, _ = result.scores[(name, horizon)].figures()
            cells += [f"{mape:.1f}", f"{mae:.2f}"]
        table.add_row(horizon if horizon == EVENING else f"{horizon} min", *cells)
    console.print(table)
    for model in result.train:
        console.print(
            f"trained at {model.trained_at:%Y-%m-%d}: {len(model.lots)} lots, "
            f"{model.wall_seconds:.1f} s wall, {model.cpu_seconds:.1f} s CPU"
        )
    console.print(f"30-minute interval coverage: {result.coverage['30'] * 100:.0f}%")


def section(result: Result, when: str) -> str:
    """Return the docs section of the benchmark."""
    s = result.sizes
    lines = [
        "## Parking occupancy forecast",
        "",
        f"Measured {when}, load average before the run {result.load} (2 cores, other work on "
        "the machine). `python -m bench --only parking-forecast`; method in "
        "[parking-forecast.md](parking-forecast.md).",
        "",
        f"Setup: {result.lots} lots of the Changdong district, {s.days} days simulated from "
        f"{s.start} (seed {s.seed}, 5-minute readings, {result.concerts} concerts, "
        f"{result.rows:,} history rows written through `SqlHistoryStore`); rolling origin over "
        f"the last {s.folds} week(s): each week is forecast by models trained on the history "
        f"before it (at most {ForecastOptions().history_days} days). Event evening: the "
        f"{result.test_concerts} concert evenings of the test weeks, forecast at 16:00 for "
        "each hour 17:00-23:00, all lots. MAPE: points at least 10% full; MAE: every point.",
        "",
        "| horizon | " + " | ".join(f"{m} MAPE % | {m} MAE" for m in MODELS) + " | points |",
        "| --- | " + " | ".join("---: | ---:" for _ in MODELS) + " | ---: |",
    ]
    for horizon in (*map(str, HORIZONS), EVENING):
        cells = []
        points = 0
        for name in MODELS:
            mape, mae, points = result.scores[(name, horizon)].figures()
            cells += [f"{mape:.1f}", f"{mae:.2f}"]
        label = horizon if horizon == EVENING else f"{horizon} min"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {points:,} |")
    lines += ["", "| cost | figure |", "| --- | ---: |"]
    lines.append(f"| simulate {s.days} days, CPU | {result.simulate_cpu:.1f} s |")
    lines.append(f"| write the history (SQLite), wall | {result.write_wall:.1f} s |")
    lines.append(f"| read {result.lots} lots back on the grid, wall | {result.read_wall:.2f} s |")
    for model in result.train:
        per_lot = model.cpu_seconds / max(len(model.lots), 1)
        lines.append(
            f"| train to {model.trained_at:%Y-%m-%d} ({len(model.lots)} lots), wall / CPU | "
            f"{model.wall_seconds:.1f} s / {model.cpu_seconds:.1f} s ({per_lot:.2f} s CPU a lot) |"
        )
    lines.append(
        f"| predict one point (batched), wall / CPU | {result.predict_us:.0f} µs / "
        f"{result.predict_cpu_us:.0f} µs |"
    )
    lines.append(
        "| `free_spaces_at` (three windowed reads of the history), wall | "
        f"{result.service_ms:.1f} ms |"
    )
    lines.append(
        f"| 30-minute 10-90% interval holds the actual count | {result.coverage['30'] * 100:.0f}% |"
    )
    return "\n".join(lines)
