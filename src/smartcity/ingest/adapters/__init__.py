"""Open-data adapters: scheduled pollers that turn Seoul's public APIs into readings.

`build_adapters(settings)` makes the adapters the settings enable (or name); `AdapterWorker`
(runner.py) polls them on their schedules and publishes what they read on the ingest bus.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import SecretStr

from smartcity.bus.base import EventBus
from smartcity.config import ADAPTER_KEYS, Settings
from smartcity.core.errors import ConfigurationError
from smartcity.ingest.adapters.base import Adapter
from smartcity.ingest.adapters.bus import BusAdapter
from smartcity.ingest.adapters.parking import ParkingAdapter
from smartcity.ingest.adapters.replay import AdapterReplayer
from smartcity.ingest.adapters.subway import SubwayAdapter
from smartcity.ingest.adapters.traffic import TrafficAdapter
from smartcity.ingest.ports import DeadLetterSink, Standardizer

ADAPTER_NAMES = ("parking", "subway", "bus", "traffic")


def build_adapters(settings: Settings, names: Iterable[str] | None = None) -> list[Adapter]:
    """Build the named adapters (default: the enabled ones); each needs its key."""
    return [build_adapter(settings, name) for name in (names or settings.adapters_enabled)]


def build_replayer(
    settings: Settings, standardizer: Standardizer, bus: EventBus, dead_letters: DeadLetterSink
) -> AdapterReplayer:
    """Build the replayer of the adapters' dead letters (every adapter, enabled or not: a
    replay maps again and sends no request, so it needs no key)."""
    adapters = {name: build_adapter(settings, name, require_key=False) for name in ADAPTER_NAMES}
    return AdapterReplayer(adapters, standardizer, bus, dead_letters)


def build_adapter(settings: Settings, name: str, *, require_key: bool = True) -> Adapter:
    """Build one adapter from the settings; ConfigurationError if it is unknown or has no key."""
    if not require_key and getattr(settings, ADAPTER_KEYS.get(name, ""), "") is None:
        settings = settings.model_copy(update={ADAPTER_KEYS[name]: SecretStr("unset")})
    tenant = settings.adapters_tenant
    if name == "parking":
        return ParkingAdapter(
            base_url=settings.seoul_open_api_url,
            key=_key(name, settings),
            districts=settings.adapter_parking_districts,
            lots=settings.adapter_parking_lots,
            interval=settings.adapter_parking_interval,
            page_size=settings.adapter_parking_page_size,
            tenant=tenant,
        )
    if name == "subway":
        return SubwayAdapter(
            base_url=settings.seoul_subway_api_url,
            key=_key(name, settings),
            stations=settings.adapter_subway_stations,
            interval=settings.adapter_subway_interval,
            tenant=tenant,
        )
    if name == "bus":
        return BusAdapter(
            base_url=settings.seoul_bus_api_url,
            key=_key(name, settings),
            stops=settings.adapter_bus_stops,
            interval=settings.adapter_bus_interval,
            tenant=tenant,
        )
    if name == "traffic":
        return TrafficAdapter(
            base_url=settings.seoul_open_api_url,
            key=_key(name, settings),
            links=settings.adapter_traffic_links,
            interval=settings.adapter_traffic_interval,
            tenant=tenant,
        )
    raise ConfigurationError(
        f"unknown adapter {name!r}; the adapters are {', '.join(ADAPTER_NAMES)}"
    )


def _key(adapter: str, settings: Settings) -> str:
    """Return the adapter's key from the setting ADAPTER_KEYS names for it."""
    setting = ADAPTER_KEYS[adapter]
    secret: SecretStr | None = getattr(settings, setting)
    if secret is None or not secret.get_secret_value():
        raise ConfigurationError(
            f"the {adapter} adapter needs its key: set {setting} (SMARTCITY_{setting.upper()})"
        )
    return secret.get_secret_value()
