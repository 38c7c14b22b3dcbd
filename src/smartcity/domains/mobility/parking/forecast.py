"""Occupancy forecasts per lot: trained per tenant from the broker's history, cached, retrained.

`ParkingForecaster.train(tenant)` reads the last weeks of every OffStreetParking lot of a tenant
from the temporal history, fits the models of `forecast_models` and keeps them in memory;
`free_spaces_at(tenant, lot_id, now, at)` answers from the cached models with the lot's recent
readings, and says which model answered. `forecasting.ForecastTraining` is the worker that
trains every tenant and retrains it on a schedule. A lot the forecaster does not know (or a
tenant not trained yet) gets None, so guidance falls back to the persistence forecast.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import structlog

from smartcity.core.clock import Clock
from smartcity.domains.mobility.parking.forecast_features import (
    EventCalendar,
    KnownEvent,
    LocalClock,
    UsualOccupancy,
    last_known,
)
from smartcity.domains.mobility.parking.forecast_models import (
    AHEAD,
    BoostedForecaster,
    LotData,
    TrainingOptions,
)
from smartcity.domains.mobility.parking.forecast_series import (
    LotInfo,
    OccupancyHistory,
    OccupancySeries,
    align,
)
from smartcity.domains.mobility.parking.forecasting import ForecastPoint

log = structlog.get_logger(__name__)
EVENT_REACH = timedelta(hours=6)
"""Events this far before or after a moment still shape its features."""


@dataclass(frozen=True, slots=True)
class ForecastOptions:
    """How much history to learn from, and where the lots are."""

    history_days: int = 42
    timezone: str = "Asia/Seoul"
    country: str = "KR"
    """The country whose public holidays count as days off."""
    min_history_days: int = 8
    """A lot with less history than this is not forecast (a week back is a feature)."""
    training: TrainingOptions = field(default_factory=TrainingOptions)


@dataclass(slots=True)
class TenantModel:
    """The models of one tenant and the lots they know."""

    trained_at: datetime
    model: BoostedForecaster
    lots: dict[str, LotData]
    cpu_seconds: float
    wall_seconds: float


class NoEvents:
    """An event calendar with nothing in it."""

    def events_between(self, tenant: str, start: datetime, end: datetime) -> list[KnownEvent]:
        """Return no events."""
        return []


class ParkingForecaster:
    """Train per tenant, cache, and answer free spaces at a future moment for a lot."""

    def __init__(
        self,
        history: OccupancyHistory,
        clock: Clock,
        events: EventCalendar | None = None,
        options: ForecastOptions | None = None,
    ) -> None:
        self.history = history
        self.clock = clock
        self.events: EventCalendar = events or NoEvents()
        self.options = options or ForecastOptions()
        self.local = LocalClock(ZoneInfo(self.options.timezone), self.options.country)
        self._models: dict[str, TenantModel] = {}
        self._lock = threading.Lock()
        self.tenants: set[str] = set()
        """Tenants to retrain (those trained once, and those asked about)."""

    def model(self, tenant: str) -> TenantModel | None:
        """Return the tenant's cached models, if trained."""
        return self._models.get(tenant)

    def train(self, tenant: str, now: datetime | None = None) -> TenantModel | None:
        """Fit the tenant's models on the history before `now` (default: the clock's now)."""
        now = now or self.clock.now()
        self.tenants.add(tenant)
        started, cpu = time.perf_counter(), time.process_time()
        start = now - timedelta(days=self.options.history_days)
        events = self.events.events_between(tenant, start - EVENT_REACH, now + EVENT_REACH)
        lots: dict[str, LotData] = {}
        for lot_id in self.history.lot_ids(tenant):
            series = self.history.series(tenant, lot_id, start, now)
            if series is None:
                continue
            known = int(np.count_nonzero(~np.isnan(series.occupied)))
            if known * series.step < timedelta(days=self.options.min_history_days):
                continue
            usual = UsualOccupancy.fit(series, self.local)
            lots[lot_id] = LotData(series, usual, events)
        if not lots:
            return None
        model = BoostedForecaster(self.local, self.options.training)
        model.fit(list(lots.values()))
        trained = TenantModel(
            now, model, lots, time.process_time() - cpu, time.perf_counter() - started
        )
        with self._lock:
            self._models[tenant] = trained
        log.info(
            "parking forecast trained",
            tenant=tenant,
            lots=len(lots),
            cpu_seconds=round(trained.cpu_seconds, 2),
        )
        return trained

    def recent(
        self, tenant: str, lot: LotInfo, now: datetime, ahead: timedelta = timedelta(0)
    ) -> OccupancySeries | None:
        """Return a lot's grid over the last week and a bit, read only where features look.

        The features look at the last 90 minutes, and at the same hours yesterday and a week
        ago (up to `ahead` past them); the rest of the grid stays missing, unread.
        """
        step = self.history.step
        start = align(now - timedelta(days=7, hours=2), step)
        end = align(now, step) + step
        occupied = np.full((end - start) // step, np.nan)
        windows = [
            (now - timedelta(minutes=90), now + timedelta(microseconds=1)),
            (now - timedelta(days=1, minutes=30), now - timedelta(days=1) + ahead + step),
            (now - timedelta(days=7, minutes=90), now - timedelta(days=7) + ahead + step),
        ]
        for low, high in windows:
            part = self.history.series(tenant, lot.id, low, min(high, end), lot)
            if part is None:
                return None
            offset = (part.start - start) // step
            occupied[offset : offset + len(part.occupied)] = part.occupied
        return OccupancySeries(lot, start, step, occupied)

    def occupancy_at(
        self, tenant: str, lot_id: str, now: datetime, at: datetime
    ) -> tuple[float, float, float, str, int] | None:
        """Return (occupied, low, high, model, capacity) expected at `at`; None if unknown."""
        self.tenants.add(tenant)
        trained = self._models.get(tenant)
        known = trained.lots.get(lot_id) if trained else None
        if trained is None or known is None:
            return None
        lot = known.series.lot
        series = self.recent(tenant, lot, now, max(at - now, timedelta(0)))
        if series is None:
            return None
        origin = np.array([series.index_of(now)], dtype=np.int64)
        minutes = max(0, round((at - now) / timedelta(minutes=1)))
        events = self.events.events_between(tenant, now - EVENT_REACH, at + EVENT_REACH)
        data = LotData(series, known.usual, events)
        value, low, high, name = self._share(trained.model, data, origin, minutes)
        if math.isnan(value):
            return None
        capacity = lot.capacity
        return value * capacity, low * capacity, high * capacity, name, capacity

    def _share(
        self, model: BoostedForecaster, data: LotData, origin: np.ndarray, minutes: int
    ) -> tuple[float, float, float, str]:
        """Pick the model for a horizon; interpolate between the short horizons."""
        step = data.series.step / timedelta(minutes=1)
        steps = round(minutes / step)
        minutes = round(steps * step)
        current = float(last_known(data.series.ratio, origin, round(30 / step))[0])
        if not math.isnan(current) and minutes == 0:
            return current, current, current, "observed"
        if math.isnan(current) or not model.trained(minutes):
            usual = _usual(model, data, origin, steps)
            low_q, high_q = model.global_spread.get(AHEAD, (0.0, 0.0))
            return usual, max(0, usual + low_q), min(1, usual + high_q), "historical-average"
        if minutes in model.models or minutes > max(model.options.short_horizons):
            p = model.predict(data, origin, minutes)
            return float(p.value[0]), float(p.low[0]), float(p.high[0]), model.name
        below = max([0, *(h for h in model.models if h != AHEAD and h < minutes)])
        above = min(h for h in model.models if h != AHEAD and h > minutes)
        weight = (minutes - below) / (above - below)
        upper = model.predict(data, origin, above)
        if below == 0:
            lower_v = lower_l = lower_h = current
        else:
            lower = model.predict(data, origin, below)
            lower_v, lower_l, lower_h = (
                float(lower.value[0]), float(lower.low[0]), float(lower.high[0])
            )  # fmt: skip

        def mix(a: float, b: float) -> float:
            return a * (1 - weight) + b * weight

        return (
            mix(lower_v, float(upper.value[0])),
            mix(lower_l, float(upper.low[0])),
            mix(lower_h, float(upper.high[0])),
            model.name,
        )

    def free_spaces_at(
        self, tenant: str, lot_id: str, now: datetime, at: datetime
    ) -> ForecastPoint | None:
        """Return the free spaces expected at `at` in a lot; None for an unknown lot."""
        found = self.occupancy_at(tenant, lot_id, now, at)
        if found is None:
            return None
        occupied, low, high, name, capacity = found
        return ForecastPoint(
            value=round(capacity - occupied, 1),
            low=round(max(0.0, capacity - high), 1),
            high=round(min(float(capacity), capacity - low), 1),
            model=name,
        )


def _usual(model: BoostedForecaster, data: LotData, origin: np.ndarray, steps: int) -> float:
    series = data.series
    minute, weekday, _ = model.clock.describe(series.start, series.step, origin + steps)
    return float(data.usual.at(minute, weekday)[0])
