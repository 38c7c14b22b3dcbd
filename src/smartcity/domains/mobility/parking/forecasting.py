"""Which forecast guidance uses: the trained model when it is there and fresh, else persistence.

`ModelForecast` is the module's default `ForecastSource`. The gradient-boosting forecaster
(`forecast.py`) is trained per tenant from the broker's history by `ForecastTraining`, a worker
that imports it (numpy, scikit-learn: seconds) and trains in a thread after the platform has
started, so nothing of it slows the start. Until a tenant's model exists, when it is older than
`max_age`, or when it cannot answer for a lot (too little history), the persistence forecast
answers; every answer names its model, and `status` says why the model was not used.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from smartcity.core.clock import Clock, isoformat
from smartcity.core.qlang import TypeName
from smartcity.storage.history import EntitySelection

if TYPE_CHECKING:
    from smartcity.domains.mobility.parking.directory import Directory
    from smartcity.domains.mobility.parking.forecast import ForecastOptions, ParkingForecaster
    from smartcity.domains.mobility.parking.forecast_features import KnownEvent
    from smartcity.storage.base import EntityStore
    from smartcity.storage.history import HistoryStore

log = structlog.get_logger(__name__)
PERSISTENCE = "persistence"
OFF_STREET = "https://smartdatamodels.org/dataModel.Parking/OffStreetParking"
REMEMBERED = 20_000
"""Forecasts kept at most (cleared beyond: they are only good for a minute anyway)."""
SAME_QUERY = 1.0
"""Seconds: reuse the snapshot a guidance query has just read, even without a cache."""


@dataclass(frozen=True, slots=True)
class ForecastPoint:
    """Free spaces expected at a moment, a likely range, and the model that said so."""

    value: float
    low: float
    high: float
    model: str


@dataclass(frozen=True, slots=True)
class ForecastStatus:
    """Which model a tenant's forecasts come from now, and why not the trained one."""

    model: str
    trained_at: datetime | None = None
    reason: str | None = None
    """'training' (not trained yet), 'too-little-history', 'model-stale' or None."""

    def as_json(self) -> dict[str, Any]:
        """Return the status as JSON (guidance answers carry it)."""
        return {
            "model": self.model,
            "trainedAt": None if self.trained_at is None else isoformat(self.trained_at),
            "reason": self.reason,
        }


class ForecastSource(Protocol):
    """Free spaces a site is expected to have at a later moment, and which model answers."""

    def free_spaces_at(
        self, tenant: str, lot_id: str, now: datetime, at: datetime
    ) -> ForecastPoint | None: ...

    def status(self, tenant: str, now: datetime) -> ForecastStatus: ...


class ModelForecast:
    """ForecastSource: the trained model when fresh, else `fallback` (persistence)."""

    def __init__(self, fallback: ForecastSource, max_age: timedelta, remember: bool = True) -> None:
        self.fallback = fallback
        self.max_age = max_age
        self.remember = remember
        """Keep each lot's forecast for the rest of the minute (see `free_spaces_at`)."""
        self._remembered: dict[tuple[str, str, datetime, datetime, int], ForecastPoint | None] = {}
        self.forecaster: ParkingForecaster | None = None
        """Set by `ForecastTraining` once the forecaster is imported and built."""
        self.tenants: set[str] = set()
        """Tenants to train: those configured, and every tenant asked about."""
        self.attempted: set[str] = set()
        """Tenants whose training has run at least once (so 'training' ends)."""

    def fresh(self, tenant: str, now: datetime) -> bool:
        """Tell whether the tenant has a model trained within `max_age`."""
        trained = self.forecaster.model(tenant) if self.forecaster is not None else None
        return trained is not None and now - trained.trained_at <= self.max_age

    def free_spaces_at(
        self, tenant: str, lot_id: str, now: datetime, at: datetime
    ) -> ForecastPoint | None:
        """Return the model's forecast when it is fresh and knows the lot, else the fallback's."""
        self.tenants.add(tenant)  # a tenant asked about gets trained
        forecaster = self.forecaster
        trained = forecaster.model(tenant) if forecaster is not None else None
        if (
            forecaster is not None
            and trained is not None
            and now - trained.trained_at <= self.max_age
        ):
            # The model works on a 5-minute grid: within a minute (which never straddles a
            # step) the same lot and horizon step give the same forecast, bar readings of the
            # current step. Many drivers ask about the same lots: each is worked out once.
            minutes = max(0, round((at - now) / timedelta(minutes=1)))  # as the model rounds
            steps = round(minutes / (forecaster.history.step / timedelta(minutes=1)))
            minute = now.replace(second=0, microsecond=0)
            key = (tenant, lot_id, trained.trained_at, minute, steps)
            if self.remember and key in self._remembered:
                point = self._remembered[key]
            else:
                point = forecaster.free_spaces_at(tenant, lot_id, now, at)
                if self.remember:
                    if len(self._remembered) > REMEMBERED:
                        self._remembered.clear()
                    self._remembered[key] = point
            if point is not None:
                return point
        return self.fallback.free_spaces_at(tenant, lot_id, now, at)

    def status(self, tenant: str, now: datetime) -> ForecastStatus:
        """Return the model in use for a tenant, and why not the trained one."""
        trained = self.forecaster.model(tenant) if self.forecaster is not None else None
        if trained is not None:
            if now - trained.trained_at <= self.max_age:
                return ForecastStatus(trained.model.name, trained.trained_at)
            return ForecastStatus(PERSISTENCE, trained.trained_at, "model-stale")
        reason = "too-little-history" if tenant in self.attempted else "training"
        return ForecastStatus(PERSISTENCE, None, reason)


@dataclass(frozen=True, slots=True)
class TrainingPlan:
    """Where the forecaster learns from, and how often."""

    history: HistoryStore
    entities: EntityStore
    clock: Clock
    tenants: tuple[str, ...]
    interval_seconds: float
    retry_seconds: float
    """Sooner than the interval while a tenant has no model (its history is still short)."""
    history_days: int
    zone: str


class ForecastTraining:
    """Worker: import and build the forecaster, then train every tenant and retrain on time."""

    name = "parking-forecast"

    def __init__(
        self, source: ModelForecast, plan: TrainingPlan, directory: Directory | None = None
    ) -> None:
        self.source = source
        self.plan = plan
        self.directory = directory
        source.tenants.update(plan.tenants)

    def build(self, options: ForecastOptions | None = None) -> ParkingForecaster:
        """Import the forecaster (numpy, scikit-learn) and build it over the history."""
        from smartcity.domains.mobility.parking.forecast import (
            ForecastOptions,
            ParkingForecaster,
        )
        from smartcity.domains.mobility.parking.forecast_series import OccupancyHistory

        plan = self.plan
        options = options or ForecastOptions(history_days=plan.history_days, timezone=plan.zone)
        events = EntityEvents(self.directory) if self.directory is not None else None
        return ParkingForecaster(
            OccupancyHistory(plan.history, plan.entities), plan.clock, events, options
        )

    def has_lot_history(self, tenant: str) -> bool:
        """Tell whether any parking lot of the tenant has a history to learn from."""
        selection = EntitySelection(tenant=tenant, types=TypeName(OFF_STREET), limit=1)
        found, _ = self.plan.history.entities(selection)
        return bool(found)

    def train_all(self) -> None:
        """Train every tenant with lot history (a failing tenant is logged; the others train).

        The forecaster is built (numpy and scikit-learn imported) only once a tenant has a
        lot history, so a platform without parking data never pays for it.
        """
        for tenant in sorted(list(self.source.tenants)):
            if self.has_lot_history(tenant):
                forecaster = self.source.forecaster
                if forecaster is None:
                    forecaster = self.source.forecaster = self.build()
                try:
                    forecaster.train(tenant)
                except Exception:  # one tenant's bad data must not stop the others' forecasts
                    log.exception("parking forecast training failed", tenant=tenant)
            self.source.attempted.add(tenant)

    async def run(self, stop: asyncio.Event) -> None:
        """Train every tenant, then wait (retry sooner while a tenant has no model)."""
        while not stop.is_set():
            await asyncio.to_thread(self.train_all)
            forecaster = self.source.forecaster
            missing = forecaster is None or any(
                forecaster.model(tenant) is None for tenant in self.source.tenants
            )
            wait = self.plan.retry_seconds if missing else self.plan.interval_seconds
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                continue


class EntityEvents:
    """EventCalendar over the tenant's `Event` entities (as the parking directory reads them)."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def events_between(self, tenant: str, start: datetime, end: datetime) -> list[KnownEvent]:
        """Return the tenant's events with an expected attendance that touch [start, end)."""
        from smartcity.domains.mobility.parking.entities import value
        from smartcity.domains.mobility.parking.forecast_features import KnownEvent

        found = []
        for event in self.directory.snapshot(tenant, max_age=SAME_QUERY).events:
            if not (event.start < end and event.end > start):
                continue
            visitors = value(event.entity, "expectedAttendance")
            if isinstance(visitors, bool) or not isinstance(visitors, int | float) or visitors <= 0:
                continue
            found.append(
                KnownEvent(event.position, event.start, event.end, int(visitors), name=event.name)
            )
        return found
