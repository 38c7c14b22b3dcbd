"""The mobility module's setup: build its services on the platform and name its workers."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from smartcity.core.errors import ConfigurationError
from smartcity.core.workers import Worker
from smartcity.domains.mobility.parking.directory import Directory
from smartcity.domains.mobility.parking.forecasting import (
    ForecastSource,
    ForecastTraining,
    ModelForecast,
    TrainingPlan,
)
from smartcity.domains.mobility.parking.gate import PlateDeduplicator
from smartcity.domains.mobility.parking.guidance import GuidanceOptions
from smartcity.domains.mobility.parking.operator_view import OperatorView
from smartcity.domains.mobility.parking.payment.service import PaymentService
from smartcity.domains.mobility.parking.persistence import PersistenceForecast
from smartcity.domains.mobility.parking.reservations import (
    NoShowReleaser,
    ReservationOptions,
    ReservationService,
)
from smartcity.domains.mobility.parking.service import ParkingService
from smartcity.domains.mobility.parking.signs import GuidanceSigns, SignUpdater
from smartcity.domains.mobility.parking.store import ReservationStore
from smartcity.domains.mobility.settings import MobilitySettings
from smartcity.modules import ModuleHost, Started


@dataclass
class MobilityService:
    """Everything the mobility module runs (parking for now)."""

    parking: ParkingService
    signs: GuidanceSigns
    payment: PaymentService
    """Transit-card and RFID parking payment: sessions, ledger, settlement."""
    operator: OperatorView
    """What lot operators see: occupancy trends and forecast, revenue, settlement."""


def setup(host: ModuleHost, settings: MobilitySettings | None) -> Started[MobilityService]:
    """Build the parking service and its workers: no-show releaser, signs, forecast training."""
    settings = settings or MobilitySettings()
    directory = Directory(host.store, settings.parking_cache_seconds)
    store = ReservationStore(host.store)
    holidays = frozenset(settings.parking_holidays)
    zone = ZoneInfo(settings.time_zone)
    reservations = ReservationService(
        store,
        directory,
        host.access,
        host.clock,
        ReservationOptions(
            grace=timedelta(minutes=settings.parking_reservation_grace_minutes),
            max_length=timedelta(hours=settings.parking_reservation_max_hours),
            horizon=timedelta(days=settings.parking_reservation_horizon_days),
            holder_limit=settings.parking_reservation_holder_limit,
            holidays=holidays,
            zone=zone,
        ),
    )
    options = GuidanceOptions(
        stale_after=settings.parking_stale_after,
        max_walk=settings.parking_max_walk,
        event_radius=settings.parking_event_radius,
        event_avoid_radius=settings.parking_event_avoid_radius,
        event_before=timedelta(hours=settings.parking_event_before_hours),
        event_after=timedelta(hours=settings.parking_event_after_hours),
        holidays=holidays,
        zone=zone,
    )
    persistence = PersistenceForecast(directory, settings.parking_stale_after)
    parking = ParkingService(
        host,
        directory,
        store,
        reservations,
        options,
        persistence,
        PlateDeduplicator(settings.parking_gate_repeat_seconds),
    )
    signs = GuidanceSigns(host.iot.devices, parking.sign_advice, settings.parking_sign_command)
    workers: list[Worker] = [
        NoShowReleaser(reservations, settings.parking_release_interval),
        SignUpdater(
            signs, host.clock, settings.parking_sign_tenants, settings.parking_sign_interval
        ),
    ]
    if settings.parking_forecast == "model":
        model = ModelForecast(persistence, timedelta(seconds=settings.parking_forecast_max_age))
        parking.forecast = model
        workers.append(ForecastTraining(model, training_plan(host, settings), directory))
    elif settings.parking_forecast != "persistence":
        parking.forecast = load_forecast(settings.parking_forecast, host)
    payment = PaymentService(host.store, host.access, host.clock)
    operator = OperatorView(parking, payment)
    return Started(MobilityService(parking, signs, payment, operator), tuple(workers))


def training_plan(host: ModuleHost, settings: MobilitySettings) -> TrainingPlan:
    """Return how the forecaster learns on this platform: its history, tenants and timing."""
    return TrainingPlan(
        history=host.history,
        entities=host.store,
        clock=host.clock,
        tenants=tuple(settings.parking_forecast_tenants),
        interval_seconds=settings.parking_forecast_retrain_interval,
        retry_seconds=settings.parking_forecast_retry_interval,
        history_days=settings.parking_forecast_history_days,
        zone=settings.time_zone,
    )


def load_forecast(reference: str, host: ModuleHost) -> ForecastSource:
    """Build the ForecastSource a 'package.module:factory' setting names."""
    module_path, _, attribute = reference.partition(":")
    if not attribute:
        raise ConfigurationError(
            f"parking_forecast {reference!r}: give 'model', 'persistence' or "
            "'package.module:factory'"
        )
    try:
        factory = getattr(importlib.import_module(module_path), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigurationError(f"parking_forecast {reference!r}: {error}") from None
    source: ForecastSource = factory(host)
    if not all(callable(getattr(source, name, None)) for name in ("free_spaces_at", "status")):
        raise ConfigurationError(
            f"parking_forecast {reference!r}: the factory must return an object with "
            "free_spaces_at(tenant, lot_id, now, at) and status(tenant, now)"
        )
    return source
