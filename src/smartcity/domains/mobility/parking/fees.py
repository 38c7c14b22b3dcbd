"""A site's `tariff` attribute as a `Tariff`, and the fee estimate guidance shows for a stay.

Sites carry the tariff model of `tariff.py` as JSON; lots from the Seoul open-data adapter carry
the city's own fields (firstIntervalPrice per firstIntervalMinutes, additionalIntervalPrice per
additionalIntervalMinutes, dailyMaximum), read here as the same model. A lot whose
`chargeType` is ["free"] costs nothing; a tariff that cannot be read gives no estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from smartcity.domains.mobility.parking.tariff import Tariff, parking_fee

FREE = Tariff(base_minutes=1, base_fee=0, unit_minutes=60, unit_fee=0)


def read_tariff(raw: Mapping[str, Any] | None, charge_type: Any = None) -> Tariff | None:
    """Return the tariff an entity's `tariff` (and `chargeType`) describe, or None."""
    if charge_type == ["free"] or charge_type == "free":
        return FREE
    if raw is None:
        return None
    try:
        if "firstIntervalPrice" in raw:
            return _seoul(raw)
        return Tariff.model_validate(dict(raw))
    except (ValidationError, TypeError, ValueError):
        return None


def _seoul(raw: Mapping[str, Any]) -> Tariff:
    base_fee, base_minutes = int(raw["firstIntervalPrice"]), int(raw["firstIntervalMinutes"])
    unit_fee = int(raw.get("additionalIntervalPrice", base_fee))
    unit_minutes = int(raw.get("additionalIntervalMinutes", base_minutes))
    cap = raw.get("dailyMaximum")
    return Tariff(
        base_minutes=base_minutes,
        base_fee=base_fee,
        unit_minutes=unit_minutes,
        unit_fee=unit_fee,
        daily_cap=int(cap) if cap else None,
    )


def estimate_fee(tariff: Tariff | None, start: datetime, end: datetime) -> int | None:
    """Return the fee in won for a stay without discounts (None without a tariff)."""
    if tariff is None:
        return None
    return parking_fee(tariff, start, end).total
