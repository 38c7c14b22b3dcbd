"""Guidance forecasts from the trained model once it exists and is fresh, else persistence."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from smartcity.auth.principal import Caller
from smartcity.core.clock import ManualClock
from smartcity.domains.mobility.parking.forecast import ForecastOptions
from smartcity.domains.mobility.parking.forecast_models import TrainingOptions
from smartcity.domains.mobility.parking.forecasting import ForecastTraining, ModelForecast
from smartcity.platform import Platform
from tests.domains.mobility.parking.city import ARENA, lot, parking, set_free, write_lot_history

SYSTEM = Caller.system()
DAYS = 10
SMALL = ForecastOptions(
    training=TrainingOptions(
        max_iter=20, short_horizons=(15, 30), ahead_hours=2, calibration_days=2
    )
)
TRAINED = (lot("seoul-arena"), lot("changdong-station-public"))
"""The lots given a history; every other lot has none."""


def training(platform: Platform) -> ForecastTraining:
    """Return the platform's forecast-training worker."""
    found = [w for w in platform.workers if isinstance(w, ForecastTraining)]
    assert len(found) == 1
    return found[0]


def by_id(answer: dict[str, Any], site_id: str) -> dict[str, Any]:
    return next(site for site in answer["sites"] if site["id"] == site_id)


def test_guidance_uses_the_model_once_trained_and_persistence_elsewhere(
    city: Platform, clock: ManualClock
) -> None:
    service = parking(city)
    worker = training(city)
    assert isinstance(service.forecast, ModelForecast)
    arrival = clock.now() + timedelta(minutes=30)
    before = service.guidance(SYSTEM, ARENA, at=arrival, limit=25)
    assert before["forecast"]["model"] == "persistence"
    assert before["forecast"]["reason"] == "training"
    assert by_id(before, TRAINED[0])["forecast"]["model"] == "persistence"

    write_lot_history(city, clock.now(), TRAINED, DAYS)
    worker.source.forecaster = worker.build(SMALL)
    worker.train_all()
    answer = service.guidance(SYSTEM, ARENA, at=arrival, limit=25)
    assert answer["forecast"]["model"] == "gradient-boosting"
    assert answer["forecast"]["trainedAt"] is not None
    for lot_id in TRAINED:
        site = by_id(answer, lot_id)
        forecast = site["forecast"]
        assert forecast["model"] == "gradient-boosting"
        assert 0 <= forecast["low"] <= forecast["free"] <= forecast["high"]
        assert forecast["high"] <= site["availability"]["total"]
    others = [s for s in answer["sites"] if s["id"] not in TRAINED and s["forecast"]]
    assert others
    assert {s["forecast"]["model"] for s in others} == {"persistence"}  # no history, no model

    soon = service.guidance(SYSTEM, ARENA, at=clock.now() + timedelta(minutes=2), limit=25)
    assert by_id(soon, TRAINED[0])["forecast"] is None  # arriving now: the live count only


def test_a_stale_model_gives_way_to_persistence_and_says_why(
    city: Platform, clock: ManualClock
) -> None:
    service = parking(city)
    worker = training(city)
    write_lot_history(city, clock.now(), TRAINED, DAYS)
    worker.source.forecaster = worker.build(SMALL)
    worker.train_all()
    clock.advance(timedelta(hours=25))  # the default max age is a day
    set_free(city, TRAINED[0], 40, clock.now())
    arrival = clock.now() + timedelta(minutes=30)
    answer = service.guidance(SYSTEM, ARENA, at=arrival, limit=25)
    assert answer["forecast"]["model"] == "persistence"
    assert answer["forecast"]["reason"] == "model-stale"
    assert by_id(answer, TRAINED[0])["forecast"]["model"] == "persistence"
    assert by_id(answer, TRAINED[0])["forecast"]["free"] == 40


def test_without_lot_history_the_worker_builds_nothing_and_retries(city: Platform) -> None:
    worker = training(city)
    assert worker.plan.tenants == ("",)
    worker.source.tenants = {"nowhere"}  # a tenant without parking lots

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        for _ in range(600):
            if "nowhere" in worker.source.attempted:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 30)

    asyncio.run(scenario())
    assert worker.source.forecaster is None  # numpy and scikit-learn never imported for it
    status = worker.source.status("nowhere", city.clock.now())
    assert (status.model, status.reason) == ("persistence", "too-little-history")

    worker.source.tenants = {""}  # lots with minutes of history: too little to learn from
    worker.train_all()
    assert worker.source.forecaster is not None
    assert worker.source.forecaster.model("") is None
    status = worker.source.status("", city.clock.now())
    assert (status.model, status.reason) == ("persistence", "too-little-history")


def test_the_worker_trains_in_the_background_and_stops(city: Platform, clock: ManualClock) -> None:
    worker = training(city)
    write_lot_history(city, clock.now(), TRAINED, DAYS)
    worker.source.forecaster = worker.build(SMALL)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        for _ in range(1200):
            if worker.source.fresh("", clock.now()):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 60)

    asyncio.run(scenario())
    trained = worker.source.forecaster.model("") if worker.source.forecaster else None
    assert trained is not None
    assert set(trained.lots) == set(TRAINED)
