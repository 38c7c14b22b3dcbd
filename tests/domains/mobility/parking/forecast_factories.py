"""Small occupancy histories with a clear daily pattern, for the forecast tests."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np

from smartcity.core.clock import isoformat
from smartcity.domains.mobility.parking.forecast_series import (
    STEP,
    LotInfo,
    OccupancySeries,
)
from smartcity.storage.history import HistoryStore
from smartcity.storage.history_rows import EntityHeader, HistoryRow, instance_row

START = datetime(2026, 9, 7, 15, 0, tzinfo=UTC)  # Tuesday 00:00 in Seoul
PARKING = "https://smartdatamodels.org/dataModel.Parking/"


def daily_series(lot_id: str, capacity: int, days: int, seed: int) -> OccupancySeries:
    """Return a lot's occupancy: a daily wave, quieter weekends, a slow drift and noise."""
    rng = np.random.default_rng(seed)
    steps = days * 288
    hours = (np.arange(steps) % 288) / 12
    weekday = ((np.arange(steps) // 288) + 1) % 7
    wave = 0.15 + 0.65 * np.exp(-(((hours - 13) / 4) ** 2))
    wave = np.where(weekday >= 5, 0.6 * wave, wave)
    drift = np.zeros(steps)
    decay = math.exp(-1 / 24)
    for i in range(1, steps):
        drift[i] = drift[i - 1] * decay + rng.normal(0, 0.008)
    ratio = np.clip(wave + drift + rng.normal(0, 0.015, steps), 0, 1)
    occupied = np.round(ratio * capacity)
    return OccupancySeries(LotInfo(lot_id, capacity, (127.05, 37.65)), START, STEP, occupied)


def write_series(
    store: HistoryStore, tenant: str, series: OccupancySeries, *, available_only: bool = False
) -> None:
    """Write a series into a history store as a lot's counter would (NaN steps: no reading)."""
    received = 0
    first = isoformat(series.start)
    rows: list[HistoryRow] = [
        instance_row(
            PARKING + "totalSpotNumber",
            {"type": "Property", "value": series.lot.capacity, "observedAt": first},
            received,
        )
    ]
    for index, value in enumerate(series.occupied):
        if math.isnan(value):
            continue
        stamp = isoformat(series.start + index * timedelta(minutes=5))
        if not available_only:
            rows.append(
                instance_row(
                    PARKING + "occupiedSpotNumber",
                    {"type": "Property", "value": int(value), "observedAt": stamp},
                    received,
                )
            )
        rows.append(
            instance_row(
                PARKING + "availableSpotNumber",
                {
                    "type": "Property",
                    "value": series.lot.capacity - int(value),
                    "observedAt": stamp,
                },
                received,
            )
        )
    header = EntityHeader(series.lot.id, [PARKING + "OffStreetParking"], [])
    store.add_many(tenant, [(header, rows)])
