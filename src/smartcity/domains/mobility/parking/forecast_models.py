"""Occupancy forecast models: two baselines and gradient-boosted trees, all on shares of capacity.

- persistence: the last reading holds (the usual yardstick of short-term forecasts);
- historical average: the mean share at the same weekday and time of day in the history;
- gradient boosting: one model per short horizon (15, 30, 60 minutes) and one "ahead" model
  with the horizon as a feature (1-8 hours, the evening of an event), over all the tenant's
  lots at once. They predict the change from the last reading; the interval is the 10th-90th
  percentile of each lot's errors on the last week of the history, from a fit without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import ThreadpoolController

from smartcity.domains.mobility.parking.forecast_features import (
    IntArray,
    KnownEvent,
    LocalClock,
    UsualOccupancy,
    build_features,
    last_known,
)
from smartcity.domains.mobility.parking.forecast_series import FloatArray, OccupancySeries

AHEAD: int = 0
"""The key of the model with the horizon as a feature."""


@dataclass(frozen=True, slots=True)
class TrainingOptions:
    """How the boosted models are trained (defaults: seconds on a laptop for a district)."""

    short_horizons: tuple[int, ...] = (15, 30, 60)
    """Minutes; each gets its own model."""
    ahead_hours: int = 8
    short_every: int = 15
    """Minutes between training origins of the short models."""
    ahead_every: int = 60
    calibration_days: int = 7
    quantiles: tuple[float, float] = (0.1, 0.9)
    max_iter: int = 200
    learning_rate: float = 0.08
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 40
    random_state: int = 0


@dataclass(slots=True)
class LotData:
    """A lot's series, its usual occupancy (from the training part) and its known events."""

    series: OccupancySeries
    usual: UsualOccupancy
    events: Sequence[KnownEvent] = ()


@dataclass(frozen=True, slots=True)
class Prediction:
    """Predicted shares of capacity with an interval, one per origin."""

    value: FloatArray
    low: FloatArray
    high: FloatArray


def _steps(series: OccupancySeries, minutes: int) -> int:
    return round(timedelta(minutes=minutes) / series.step)


class Persistence:
    """The last reading (at most 30 minutes old) holds."""

    name = "persistence"

    def predict(self, data: LotData, origins: IntArray, minutes: int) -> FloatArray:
        """Return the predicted share at origin + minutes."""
        return last_known(data.series.ratio, origins, _steps(data.series, 30))


class HistoricalAverage:
    """The mean share at the same weekday and time of day."""

    name = "historical-average"

    def __init__(self, clock: LocalClock) -> None:
        self.clock = clock

    def predict(self, data: LotData, origins: IntArray, minutes: int) -> FloatArray:
        """Return the predicted share at origin + minutes."""
        series = data.series
        targets = origins + _steps(series, minutes)
        minute, weekday, _ = self.clock.describe(series.start, series.step, targets)
        return data.usual.at(minute, weekday)


@dataclass(slots=True)
class _Rows:
    features: list[FloatArray] = field(default_factory=list)
    targets: list[FloatArray] = field(default_factory=list)
    lots: list[str] = field(default_factory=list)
    late: list[FloatArray] = field(default_factory=list)
    """1 where the origin lies in the calibration week."""

    def stack(self) -> tuple[FloatArray, FloatArray, np.ndarray, FloatArray]:
        lots = np.concatenate(
            [
                np.full(len(t), lot, dtype=object)
                for lot, t in zip(self.lots, self.targets, strict=True)
            ]
        )
        return (
            np.vstack(self.features),
            np.concatenate(self.targets),
            lots,
            np.concatenate(self.late),
        )


class BoostedForecaster:
    """Gradient-boosted trees over all lots of a tenant, a model per short horizon and one ahead."""

    name = "gradient-boosting"

    def __init__(self, clock: LocalClock, options: TrainingOptions | None = None) -> None:
        self.clock = clock
        self.options = options or TrainingOptions()
        self.models: dict[int, HistGradientBoostingRegressor] = {}
        self.spread: dict[tuple[str, int], tuple[float, float]] = {}
        """Per lot and model key: the error quantiles, in shares of capacity."""
        self.global_spread: dict[int, tuple[float, float]] = {}

    def _regressor(self) -> HistGradientBoostingRegressor:
        o = self.options
        return HistGradientBoostingRegressor(
            max_iter=o.max_iter,
            learning_rate=o.learning_rate,
            max_leaf_nodes=o.max_leaf_nodes,
            min_samples_leaf=o.min_samples_leaf,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=o.random_state,
        )

    def _fit(self, x: FloatArray, y: FloatArray) -> HistGradientBoostingRegressor:
        x = x.copy()
        x[:, np.isnan(x).all(axis=0)] = 0.0  # the trees cannot bin a column without a value
        # One thread: OpenMP threads that wait on each other crawl on a busy machine, and the
        # service trains in a worker thread beside the rest of the platform.
        with _threads().limit(limits=1):
            return self._regressor().fit(x, y)

    def _rows(self, lots: Sequence[LotData], key: int) -> _Rows:
        rows = _Rows()
        o = self.options
        for data in lots:
            series = data.series
            count = len(series.occupied)
            week = _steps(series, 7 * 24 * 60)
            every = _steps(series, o.ahead_every if key == AHEAD else o.short_every)
            horizons_min = [60 * h for h in range(1, o.ahead_hours + 1)] if key == AHEAD else [key]
            calibration = count - _steps(series, o.calibration_days * 24 * 60)
            for minutes in horizons_min:
                steps = _steps(series, minutes)
                origins = np.arange(min(week, count), count - steps, every, dtype=np.int64)
                if not len(origins):
                    continue
                features = build_features(
                    series, origins, np.full(len(origins), steps), data.usual, self.clock,
                    data.events,
                )  # fmt: skip
                truth = series.ratio[origins + steps]
                keep = ~np.isnan(truth) & ~np.isnan(features[:, 1])
                rows.features.append(features[keep])
                rows.targets.append(truth[keep] - features[keep, 1])
                rows.lots.append(series.lot.id)
                rows.late.append((origins[keep] + steps >= calibration).astype(np.float64))
        return rows

    def fit(self, lots: Sequence[LotData]) -> None:
        """Train every model on the lots' histories (deterministic for given data)."""
        low_q, high_q = self.options.quantiles
        for key in (*self.options.short_horizons, AHEAD):
            rows = self._rows(lots, key)
            if not rows.targets:
                continue
            x, y, lot_ids, late = rows.stack()
            early = late == 0
            if early.sum() > 100 and (~early).sum() > 20:
                probe = self._fit(x[early], y[early])
                errors = y[~early] - probe.predict(x[~early])
                held = lot_ids[~early]
                self.global_spread[key] = (
                    float(np.quantile(errors, low_q)),
                    float(np.quantile(errors, high_q)),
                )
                for lot in np.unique(held):
                    mine = errors[held == lot]
                    if len(mine) >= 20:
                        self.spread[(str(lot), key)] = (
                            float(np.quantile(mine, low_q)),
                            float(np.quantile(mine, high_q)),
                        )
            self.models[key] = self._fit(x, y)

    def trained(self, minutes: int) -> bool:
        """Tell whether the models answer this horizon (between short ones by interpolation)."""
        short = [h for h in self.models if h != AHEAD]
        if short and 0 < minutes <= max(short):
            return True
        return AHEAD in self.models and 60 <= minutes <= 60 * self.options.ahead_hours

    def predict(self, data: LotData, origins: IntArray, minutes: int) -> Prediction:
        """Return the predicted share at origin + minutes, with its interval."""
        series = data.series
        key = minutes if minutes in self.models else AHEAD
        steps = _steps(series, minutes)
        features = build_features(
            series, origins, np.full(len(origins), steps), data.usual, self.clock, data.events
        )
        now = features[:, 1]
        with _threads().limit(limits=1):
            change = self.models[key].predict(features)
        value = np.clip(now + change, 0.0, 1.0)
        low_q, high_q = self.spread.get(
            (series.lot.id, key), self.global_spread.get(key, (math.nan, math.nan))
        )
        return Prediction(
            value, np.clip(value + low_q, 0.0, 1.0), np.clip(value + high_q, 0.0, 1.0)
        )


@cache
def _threads() -> ThreadpoolController:
    """Return the process's thread-pool controller, found once.

    Finding the native libraries reads /proc/self/maps (about 10 ms): a limit made from a fresh
    `threadpool_limits` call on every prediction cost guidance most of its time.
    """
    return ThreadpoolController()
