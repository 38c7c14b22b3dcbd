"""Weeks of simulated lot occupancy: deterministic by seed, with holidays, concerts and gaps."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from smartcity.domains.mobility.parking.forecast_series import OccupancyHistory
from smartcity.sim.model import District
from smartcity.sim.parking_history import (
    HistoryPlan,
    korean_holidays,
    lot_entity_id,
    simulate_history,
    write_history,
)
from smartcity.storage.history import SqlHistoryStore
from smartcity.storage.sqlite import SqliteEntityStore

LOTS = ("seoul-arena", "emart-changdong", "chang-1-dong-public")
# Friday 2 October 2026 to Friday 9 October: National Foundation Day (Saturday 3rd, substitute
# Monday 5th) and Hangul Day (Friday 9th).
PLAN = HistoryPlan(date(2026, 10, 2), 8, seed=3, lots=LOTS, concerts_per_week=(2, 2))


def test_the_same_seed_gives_the_same_weeks_and_another_differs(changdong: District) -> None:
    first = simulate_history(changdong, PLAN)
    again = simulate_history(changdong, PLAN)
    other = simulate_history(changdong, replace(PLAN, seed=4))
    assert [lot.occupied for lot in first.lots] == [lot.occupied for lot in again.lots]
    assert [lot.occupied for lot in first.lots] != [lot.occupied for lot in other.lots]
    assert len(first.lots[0].occupied) == 8 * 288


def test_concert_evenings_fill_the_arena_lot(changdong: District) -> None:
    history = simulate_history(changdong, PLAN)
    arena = next(lot for lot in history.lots if lot.lot.id == "seoul-arena")
    assert history.concerts
    times = list(history.times())
    for concert in history.concerts:
        during = [
            value
            for moment, value in zip(times, arena.occupied, strict=True)
            if concert.show_start <= moment < concert.show_end and value is not None
        ]
        quiet = [
            value
            for moment, value in zip(times, arena.occupied, strict=True)
            if concert.show_start - timedelta(hours=12) <= moment < concert.arrive_from
            and value is not None
        ]
        assert min(during) > 3 * max(quiet)


def test_public_holidays_are_known() -> None:
    assert {date(2026, 10, 3), date(2026, 10, 5), date(2026, 10, 9)} <= korean_holidays(
        date(2026, 10, 1), date(2026, 10, 31)
    )


def test_silent_counters_leave_gaps_that_the_reader_keeps(
    changdong: District, tmp_path: Path
) -> None:
    history = simulate_history(changdong, replace(PLAN, outage_rate=1.0, days=2))
    assert any(value is None for lot in history.lots for value in lot.occupied)
    store = SqliteEntityStore(tmp_path / "history.db")
    try:
        history_store = SqlHistoryStore(store)
        write_history(history_store, "", history)
        reader = OccupancyHistory(history_store)
        end = history.start + timedelta(days=2)
        for lot in history.lots:
            series = reader.series("", lot_entity_id(lot.lot.id), history.start, end)
            assert series is not None
            assert series.lot.capacity == lot.lot.total_spots
            read = [None if value != value else int(value) for value in series.occupied]
            assert read == lot.occupied
    finally:
        store.close()
