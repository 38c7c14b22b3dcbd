"""Weeks of parking history before a simulated run, so forecasts have something to learn from.

The live simulator writes history only from its start on; the parking forecaster needs at
least 8 days of each lot (a week back is one of its features). With `sim_parking_history_days`
set (`smartcity demo` sets it), the simulator writes that many days of its lots' counter
readings, simulated by `parking_history` up to the run's start, into the broker's history, and
the concerts of those days as `Event` entities (so the forecaster sees what made those evenings
busy). Nothing is written when the lots already have history from before the last day.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog

from smartcity.auth.principal import Caller
from smartcity.platform import Platform
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from smartcity.sim.events import concert_entities
from smartcity.sim.model import District
from smartcity.sim.parking_history import (
    PARKING,
    HistoryPlan,
    lot_entity_id,
    simulate_history,
    write_history,
)
from smartcity.storage.history_query import InstanceWindow
from smartcity.storage.history_rows import micros

log = structlog.get_logger(__name__)


def has_past_history(platform: Platform, tenant: str, district: District, before: datetime) -> bool:
    """Tell whether a lot of the district has counter readings from before `before`."""
    for lot in district.parking:
        header = platform.history.entity(tenant, lot_entity_id(lot.id))
        if header is None:
            continue
        window = InstanceWindow(attrs=[PARKING + "occupiedSpotNumber"])
        first = platform.history.first_time([header.key], window)
        if first is not None and first < micros(before.isoformat()):
            return True
    return False


def backfill_parking_history(
    platform: Platform, district: District, tenant: str, end: datetime, days: int, seed: int
) -> int:
    """Write `days` of simulated lot readings before `end` (unless there are some); return rows."""
    if days <= 0 or not district.parking:
        return 0
    if has_past_history(platform, tenant, district, end - timedelta(days=1)):
        log.info("parking history already there: no backfill", tenant=tenant)
        return 0
    zone = ZoneInfo(district.timezone)
    first_day = (end - timedelta(days=days)).astimezone(zone).date()
    plan = HistoryPlan(first_day, (end.astimezone(zone).date() - first_day).days + 1, seed)
    history = simulate_history(district, plan)
    keep = max(0, (end - history.start) // history.step)  # readings before `end` only
    for lot in history.lots:
        del lot.occupied[keep:]
    history = replace(history, concerts=[c for c in history.concerts if c.leave_until < end])
    rows = write_history(platform.history, tenant, history)
    events = concert_entities(history.concerts, district)
    if events:
        context = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
        result, _ = platform.entities.batch_upsert(Caller.system(tenant), events, lambda _: context)
        for error in result.errors:
            log.warning("a past concert was not written", id=error.entity_id, error=error.error)
    log.info(
        "parking history written", tenant=tenant, days=plan.days, rows=rows, concerts=len(events)
    )
    return rows
