"""open_bus(settings): the bus backend the settings name."""

from __future__ import annotations

from smartcity.bus.base import EventBus
from smartcity.config import Settings


def open_bus(settings: Settings) -> EventBus:
    """Return the bus `bus_url` names (memory:// or nats://host:port), not yet started."""
    url = settings.bus_url
    if url.startswith("memory://"):
        from smartcity.bus.memory import InProcessBus

        return InProcessBus(settings.bus_subjects, duplicate_window=settings.bus_duplicate_window)
    if url.startswith(("nats://", "tls://")):
        from smartcity.bus.nats import NatsBus

        return NatsBus(
            url,
            settings.bus_stream,
            settings.bus_subjects,
            duplicate_window=settings.bus_duplicate_window,
            max_age=settings.bus_max_age_hours * 3600.0,
        )
    raise ValueError(f"unsupported bus URL {url.split('://', 1)[0]!r}: memory:// or nats://")
