"""The forecaster service: trained from the history, answering free spaces, retrained."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from smartcity.core.clock import ManualClock
from smartcity.domains.mobility.parking.forecast import ForecastOptions, ParkingForecaster
from smartcity.domains.mobility.parking.forecast_models import LotData, TrainingOptions
from smartcity.domains.mobility.parking.forecast_series import OccupancyHistory
from smartcity.domains.mobility.parking.forecasting import ForecastPoint
from smartcity.storage.history import SqlHistoryStore
from smartcity.storage.sqlite import SqliteEntityStore
from tests.domains.mobility.parking.forecast_factories import START, daily_series, write_series

DAYS = 11
LOTS = {"urn:ngsi-ld:OffStreetParking:a": 60, "urn:ngsi-ld:OffStreetParking:b": 200}
NOW = START + timedelta(days=DAYS - 1, hours=3)  # 12:00 in Seoul
SMALL = ForecastOptions(
    training=TrainingOptions(
        max_iter=20, short_horizons=(15, 30), ahead_hours=2, calibration_days=2
    )
)


@pytest.fixture
def forecaster(tmp_path: Path) -> Iterator[ParkingForecaster]:
    """Yield a forecaster over a SQLite history of two lots."""
    store = SqliteEntityStore(tmp_path / "forecast.db")
    history = SqlHistoryStore(store)
    for number, (lot, capacity) in enumerate(LOTS.items()):
        write_series(history, "city", daily_series(lot, capacity, DAYS, seed=number))
    yield ParkingForecaster(OccupancyHistory(history, store), ManualClock(NOW), options=SMALL)
    store.close()


def test_free_spaces_come_with_a_range_and_the_model_that_said_so(
    forecaster: ParkingForecaster,
) -> None:
    trained = forecaster.train("city", NOW - timedelta(days=1))
    assert trained is not None
    assert set(trained.lots) == set(LOTS)
    lot = "urn:ngsi-ld:OffStreetParking:b"
    for minutes, model in ((0, "observed"), (20, "gradient-boosting"), (90, "gradient-boosting")):
        point = forecaster.free_spaces_at("city", lot, NOW, NOW + timedelta(minutes=minutes))
        assert isinstance(point, ForecastPoint)
        assert point.model == model
        assert 0 <= point.low <= point.value <= point.high <= LOTS[lot]
    far = forecaster.free_spaces_at("city", lot, NOW, NOW + timedelta(days=2))
    assert far is not None
    assert far.model == "historical-average"


def test_unknown_lots_and_untrained_tenants_get_none(forecaster: ParkingForecaster) -> None:
    later = NOW + timedelta(minutes=30)
    lot = "urn:ngsi-ld:OffStreetParking:a"
    assert forecaster.free_spaces_at("city", lot, NOW, later) is None  # not trained yet
    forecaster.train("city", NOW)
    assert forecaster.free_spaces_at("city", "urn:ngsi-ld:OffStreetParking:zz", NOW, later) is None
    assert forecaster.free_spaces_at("elsewhere", lot, NOW, later) is None
    assert forecaster.train("elsewhere", NOW) is None  # no lots, no model


@pytest.mark.parametrize("minutes", [30, 120])
def test_reading_only_the_windows_features_need_changes_nothing(
    forecaster: ParkingForecaster, minutes: int
) -> None:
    trained = forecaster.train("city", NOW - timedelta(days=1))
    assert trained is not None
    lot = "urn:ngsi-ld:OffStreetParking:b"
    known = trained.lots[lot]
    end = NOW + timedelta(seconds=1)
    full = forecaster.history.series("city", lot, NOW - timedelta(days=8), end, known.series.lot)
    assert full is not None
    origin = np.array([full.index_of(NOW)], dtype=np.int64)
    whole = trained.model.predict(LotData(full, known.usual), origin, minutes)
    found = forecaster.occupancy_at("city", lot, NOW, NOW + timedelta(minutes=minutes))
    assert found is not None
    assert found[0] == pytest.approx(float(whole.value[0]) * LOTS[lot])
