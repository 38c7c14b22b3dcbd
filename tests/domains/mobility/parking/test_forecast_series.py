"""Reading a lot's occupancy from the temporal history onto a grid, gaps kept as gaps."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from smartcity.domains.mobility.parking.forecast_series import OccupancyHistory, align
from smartcity.storage.history import SqlHistoryStore
from smartcity.storage.sqlbase import SqlEntityStore
from tests.domains.mobility.parking.forecast_factories import START, daily_series, write_series

LOT = "urn:ngsi-ld:OffStreetParking:test-lot"


@pytest.fixture
def store(backend_store: SqlEntityStore) -> SqlEntityStore:
    """An empty store of each backend (the shared `backend_store`)."""
    return backend_store


def test_a_gap_stays_missing_and_is_never_read_as_free(store: SqlEntityStore) -> None:
    series = daily_series(LOT, 80, 2, seed=1)
    series.occupied[100:130] = np.nan  # the counter was silent for 2.5 hours
    history = SqlHistoryStore(store)
    write_series(history, "", series)
    read = OccupancyHistory(history, store).series("", LOT, START, START + timedelta(days=2))
    assert read is not None
    assert read.lot.capacity == 80
    assert len(read.occupied) == 2 * 288
    assert np.isnan(read.occupied[100:130]).all()
    known = ~np.isnan(series.occupied)
    assert np.array_equal(read.occupied[known], series.occupied[known])


def test_occupied_spaces_come_from_the_free_count_when_that_is_all_a_lot_sends(
    store: SqlEntityStore,
) -> None:
    series = daily_series(LOT, 45, 1, seed=2)
    history = SqlHistoryStore(store)
    write_series(history, "", series, available_only=True)
    read = OccupancyHistory(history).series("", LOT, START, START + timedelta(days=1))
    assert read is not None
    assert np.array_equal(read.occupied, series.occupied)


def test_an_unknown_lot_or_another_tenant_reads_nothing(store: SqlEntityStore) -> None:
    history = SqlHistoryStore(store)
    write_series(history, "", daily_series(LOT, 30, 1, seed=3))
    reader = OccupancyHistory(history)
    end = START + timedelta(days=1)
    assert reader.series("", "urn:ngsi-ld:OffStreetParking:nowhere", START, end) is None
    assert reader.series("other", LOT, START, end) is None
    assert reader.lot_ids("") == [LOT]
    assert reader.lot_ids("other") == []


def test_the_grid_starts_on_a_step_and_averages_the_readings_in_it(
    store: SqlEntityStore,
) -> None:
    history = SqlHistoryStore(store)
    write_series(history, "", daily_series(LOT, 50, 1, seed=4))
    moment = START + timedelta(minutes=7, seconds=30)
    read = OccupancyHistory(history).series("", LOT, moment, moment + timedelta(minutes=20))
    assert read is not None
    assert read.start == align(moment) == START + timedelta(minutes=5)
    assert len(read.occupied) == 5
    assert not any(math.isnan(v) for v in read.occupied)
