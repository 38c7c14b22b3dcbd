"""The boosted forecaster against the baselines on a small series with a clear daily pattern."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pytest

from smartcity.domains.mobility.parking.forecast_features import (
    FEATURES,
    LocalClock,
    UsualOccupancy,
    build_features,
)
from smartcity.domains.mobility.parking.forecast_models import (
    BoostedForecaster,
    HistoricalAverage,
    LotData,
    Persistence,
    TrainingOptions,
)
from smartcity.domains.mobility.parking.forecast_series import OccupancySeries
from tests.domains.mobility.parking.forecast_factories import daily_series

CLOCK = LocalClock(ZoneInfo("Asia/Seoul"))
SMALL = TrainingOptions(max_iter=60, short_horizons=(60,), ahead_hours=1)
DAYS, TEST_DAYS = 22, 4


def _split(series: OccupancySeries) -> tuple[LotData, LotData, np.ndarray]:
    cut = (DAYS - TEST_DAYS) * 288
    train = OccupancySeries(series.lot, series.start, series.step, series.occupied[:cut])
    usual = UsualOccupancy.fit(train, CLOCK)
    origins = np.arange(cut, len(series.occupied) - 12, dtype=np.int64)
    return LotData(train, usual), LotData(series, usual), origins


def _lots() -> list[OccupancySeries]:
    return [
        daily_series(f"urn:lot:{n}", capacity, DAYS, seed=n)
        for n, capacity in enumerate((60, 150, 400))
    ]


def _mae(predicted: np.ndarray, series: OccupancySeries, origins: np.ndarray, steps: int) -> float:
    actual = series.occupied[origins + steps]
    return float(np.nanmean(np.abs(predicted * series.lot.capacity - actual)))


@pytest.fixture(scope="module")
def fitted() -> tuple[BoostedForecaster, list[tuple[LotData, LotData, np.ndarray]]]:
    """Return a model fitted on the first weeks of three lots, and the lots' splits."""
    splits = [_split(series) for series in _lots()]
    model = BoostedForecaster(CLOCK, SMALL)
    model.fit([train for train, _, _ in splits])
    return model, splits


Fitted = tuple[BoostedForecaster, list[tuple[LotData, LotData, np.ndarray]]]


def test_the_model_beats_persistence_and_the_average_an_hour_ahead(fitted: Fitted) -> None:
    model, splits = fitted
    ours, persistence, average = [], [], []
    for _, full, origins in splits:
        ours.append(_mae(model.predict(full, origins, 60).value, full.series, origins, 12))
        persistence.append(_mae(Persistence().predict(full, origins, 60), full.series, origins, 12))
        average.append(
            _mae(HistoricalAverage(CLOCK).predict(full, origins, 60), full.series, origins, 12)
        )
    assert sum(ours) < 0.7 * sum(persistence)
    assert sum(ours) < sum(average)


def test_training_is_deterministic() -> None:
    splits = [_split(series) for series in _lots()[:2]]
    predictions = []
    for _ in range(2):
        model = BoostedForecaster(CLOCK, TrainingOptions(max_iter=20, short_horizons=(15,)))
        model.fit([train for train, _, _ in splits])
        _, full, origins = splits[0]
        predictions.append(model.predict(full, origins, 15))
    assert np.array_equal(predictions[0].value, predictions[1].value)
    assert np.array_equal(predictions[0].low, predictions[1].low)


def test_the_interval_brackets_the_forecast(fitted: Fitted) -> None:
    model, splits = fitted
    _, full, origins = splits[1]
    prediction = model.predict(full, origins, 60)
    assert (prediction.low <= prediction.value).all()
    assert (prediction.value <= prediction.high).all()
    assert (prediction.high - prediction.low).mean() > 0


def test_features_have_one_column_per_name_and_keep_gaps_missing() -> None:
    series = daily_series("urn:lot:gap", 100, 9, seed=5)
    series.occupied[8 * 288 - 20 :] = np.nan  # silent for the last 100 minutes
    usual = UsualOccupancy.fit(series, CLOCK)
    origins = np.array([8 * 288 + 10], dtype=np.int64)
    row = build_features(series, origins, np.array([6]), usual, CLOCK)
    assert row.shape == (1, len(FEATURES))
    assert np.isnan(row[0, FEATURES.index("ratio_now")])
    assert not np.isnan(row[0, FEATURES.index("last_week_at_target")])
