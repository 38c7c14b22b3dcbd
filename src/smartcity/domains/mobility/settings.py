"""The mobility module's settings: `Settings.module_settings["mobility"]` (docs/parking.md)."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from smartcity.domains.mobility.parking.availability import DEFAULT_STALE_AFTER


class MobilitySettings(BaseModel):
    """Parking guidance, availability freshness, reservations and guidance signs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parking_stale_after: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_STALE_AFTER))
    """Seconds after which each source's count is STALE: spot-sensors, counter, seoul-open-data."""
    parking_cache_seconds: float = Field(default=2.0, ge=0, le=300)
    """How long one read of a tenant's sites serves guidance queries."""
    parking_max_walk: float = Field(default=1200.0, gt=0, le=10_000)
    """Metres: sites farther from the destination on foot are not offered (but park-and-ride)."""
    parking_event_radius: float = Field(default=1500.0, gt=0)
    parking_event_avoid_radius: float = Field(default=700.0, ge=0)
    parking_event_before_hours: float = Field(default=3.0, ge=0, le=24)
    parking_event_after_hours: float = Field(default=1.0, ge=0, le=24)
    time_zone: str = "Asia/Seoul"
    """Where opening hours, shared windows and permit hours are told (IANA name)."""
    parking_holidays: list[date] = Field(default_factory=list)
    """Public holidays (공휴일), when 'PH' opening hours apply."""
    parking_forecast: str = "model"
    """'model' (trained from the history, persistence until then), 'persistence', or
    'package.module:factory' (called with the platform, returns a ForecastSource)."""
    parking_forecast_tenants: list[str] = Field(default_factory=lambda: [""])
    """Tenants trained at start (a tenant asked about is trained at the next retry too)."""
    parking_forecast_retrain_interval: float = Field(default=21_600.0, ge=60, le=7 * 86_400)
    """Seconds between two trainings of a tenant's models."""
    parking_forecast_retry_interval: float = Field(default=120.0, ge=10, le=86_400)
    """Seconds before training again while a tenant has no model (too little history)."""
    parking_forecast_max_age: float = Field(default=86_400.0, ge=60)
    """Seconds: a model older than this is not used (persistence answers, saying so)."""
    parking_forecast_history_days: int = Field(default=42, ge=8, le=366)
    """Days of history a model learns from (a lot needs at least 8)."""
    parking_reservation_grace_minutes: float = Field(default=15.0, ge=0, le=240)
    parking_reservation_max_hours: float = Field(default=12.0, gt=0, le=72)
    parking_reservation_horizon_days: int = Field(default=14, ge=1, le=90)
    parking_reservation_holder_limit: int = Field(default=3, ge=1, le=100)
    parking_release_interval: float = Field(default=60.0, gt=0, le=3600)
    parking_sign_command: str = Field(default="parkingGuidance", pattern=r"^[A-Za-z0-9_]{1,64}$")
    parking_sign_tenants: list[str] = Field(default_factory=lambda: [""])
    parking_sign_interval: float = Field(default=60.0, gt=0, le=3600)
    parking_gate_repeat_seconds: float = Field(default=60.0, ge=0, le=3600)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Seoul)") from None
        return value

    @field_validator("parking_stale_after")
    @classmethod
    def _known_sources(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(DEFAULT_STALE_AFTER)
        if unknown:
            known = sorted(DEFAULT_STALE_AFTER)
            raise ValueError(f"unknown sources {sorted(unknown)}; known: {known}")
        if any(seconds <= 0 for seconds in value.values()):
            raise ValueError("every threshold must be above 0 seconds")
        return {**DEFAULT_STALE_AFTER, **value}
