"""The demo's parking history: weeks before the run, for the forecast that guidance uses."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from smartcity.auth.principal import Caller
from smartcity.core.clock import ManualClock
from smartcity.domains.mobility.parking.forecast import ForecastOptions
from smartcity.domains.mobility.parking.forecast_models import TrainingOptions
from smartcity.domains.mobility.parking.forecasting import ForecastTraining
from smartcity.domains.mobility.parking.tariff import KST
from smartcity.sim.district import load_district
from smartcity.sim.parking_backfill import backfill_parking_history
from smartcity.sim.parking_history import lot_entity_id
from tests.domains.mobility.parking.city import ARENA, city_platform, city_settings, parking

NOW = datetime(2026, 11, 27, 17, 0, tzinfo=KST)
SMALL = ForecastOptions(
    training=TrainingOptions(
        max_iter=20, short_horizons=(15, 30), ahead_hours=2, calibration_days=2
    )
)


def test_the_demo_history_trains_the_forecast_that_guidance_then_uses(
    tmp_path: Path, shared_data: Path
) -> None:
    clock = ManualClock(NOW)
    platform = city_platform(city_settings(tmp_path, shared_data), clock)
    district = load_district()
    try:
        rows = backfill_parking_history(platform, district, "", NOW, 9, seed=3)
        assert rows > 25 * 9 * 288  # two readings a step, a few silent hours
        again = backfill_parking_history(platform, district, "", NOW, 9, seed=3)
        assert again == 0  # the lots have their past already
        header = platform.history.entity("", lot_entity_id(district.parking[0].id))
        assert header is not None
        events = parking(platform).directory.snapshot("").events
        assert events, "the concerts of the past weeks are Event entities"
        assert all(event.end < NOW for event in events)

        worker = next(w for w in platform.workers if isinstance(w, ForecastTraining))
        worker.source.forecaster = worker.build(SMALL)
        worker.train_all()
        trained = worker.source.forecaster.model("")
        assert trained is not None
        assert len(trained.lots) == len(district.parking)
        answer = parking(platform).guidance(
            Caller.system(), ARENA, at=NOW + timedelta(minutes=30), limit=5
        )
        assert answer["forecast"]["model"] == "gradient-boosting"
        models = {site["forecast"]["model"] for site in answer["sites"] if site["forecast"]}
        assert "gradient-boosting" in models
    finally:
        platform.close()
