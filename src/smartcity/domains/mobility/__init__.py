"""Mobility: traffic, transit, and shared parking with payment.

`MODULE` is what the platform loads (docs/modules.md); it imports nothing heavy: the service and
the routers are imported when the platform sets the module up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smartcity.domains.mobility.settings import MobilitySettings
from smartcity.modules import ModuleHost, ModuleSpec, Panel, Started, WebHooks

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fastapi import APIRouter

    from smartcity.domains.mobility.service import MobilityService


def _setup(host: ModuleHost, settings: Any) -> Started[MobilityService]:
    from smartcity.domains.mobility.service import setup

    return setup(host, settings)


def _routers(service: MobilityService, hooks: WebHooks) -> Sequence[APIRouter]:
    from smartcity.domains.mobility.api import routers

    return routers(service, hooks)


MODULE: ModuleSpec[MobilityService] = ModuleSpec(
    name="mobility",
    title_ko="교통·주차",
    title_en="Mobility and parking",
    entity_types=("OffStreetParking", "OnStreetParking", "ParkingGroup", "ParkingSpot", "Event"),
    settings_model=MobilitySettings,
    setup=_setup,
    routers=_routers,
    panels=(
        Panel(
            "parking-guidance",
            "주차 안내",
            "Parking guidance",
            "page",
            "/mobility/parking",
            ("OffStreetParking", "OnStreetParking", "ParkingGroup"),
        ),
        Panel(
            "parking-operator",
            "주차 운영",
            "Parking operations",
            "page",
            "/mobility/parking/operator",
            ("OffStreetParking",),
        ),
    ),
)
