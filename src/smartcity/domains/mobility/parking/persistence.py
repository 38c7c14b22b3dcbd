"""The persistence forecast: free spaces later = free spaces now, in a band that widens.

The simplest honest forecaster (what a driver assumes without one), and the baseline any model
must beat. It serves guidance until a better `ForecastSource` is wired in, and in tests. The
band grows with the square root of the horizon: ±`SPREAD` of the site's spaces an hour ahead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from smartcity.domains.mobility.parking.directory import Directory
from smartcity.domains.mobility.parking.forecasting import (
    PERSISTENCE,
    ForecastPoint,
    ForecastStatus,
)

SPREAD: Final = 0.15
SAME_QUERY: Final = 1.0
"""Seconds: reuse the snapshot the guidance query has just read, even without a cache."""


class PersistenceForecast:
    """ForecastSource: the last live count, with a band widening with the horizon."""

    def __init__(self, directory: Directory, stale_after: Mapping[str, float]) -> None:
        self.directory = directory
        self.stale_after = stale_after

    def free_spaces_at(
        self, tenant: str, lot_id: str, now: datetime, at: datetime
    ) -> ForecastPoint | None:
        """Return the free spaces expected at `at`, or None without a live count."""
        snapshot = self.directory.snapshot(tenant, max_age=SAME_QUERY)
        live = snapshot.availability(lot_id, now, self.stale_after)
        if live is None or live.free is None:
            return None
        total = live.total if live.total is not None else live.free
        hours = max(0.0, (at - now).total_seconds() / 3600)
        spread = SPREAD * total * math.sqrt(hours)
        value = float(live.free)
        return ForecastPoint(
            value, max(0.0, value - spread), min(float(total), value + spread), PERSISTENCE
        )

    def status(self, tenant: str, now: datetime) -> ForecastStatus:
        """Return that every forecast is the persistence one."""
        return ForecastStatus(PERSISTENCE)
