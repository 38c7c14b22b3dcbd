"""Guidance signs get event-mode advice as device commands, only when the advice changes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from smartcity.auth.principal import Caller
from smartcity.core.clock import ManualClock
from smartcity.domains.mobility.parking.signs import SignUpdater
from smartcity.platform import Platform
from tests.domains.mobility.parking.city import add_concert, lot

SYSTEM = Caller.system()


def register_sign(city: Platform, device_id: str, commands: list[str]) -> None:
    """Register a variable message sign that accepts JSON commands over MQTT."""
    city.iot.devices.register(
        SYSTEM,
        {
            "id": device_id,
            "apiKey": f"{device_id}-key",
            "entity": {"id": f"urn:ngsi-ld:Device:{device_id}", "type": "Device"},
            "attributes": [{"objectId": "m", "name": "displayedMessage", "valueType": "text"}],
            "protocol": "json",
            "transport": "mqtt",
            "commands": commands,
            "name": "창동역 앞 주차 안내 전광판",
        },
    )


def mobility(city: Platform) -> Any:
    return city.services["mobility"]


def commands(city: Platform, device_id: str) -> list[Any]:
    return city.iot.devices.command_history(SYSTEM, device_id, 10)


def test_signs_switch_to_park_and_ride_for_a_concert_and_back(
    city: Platform, clock: ManualClock
) -> None:
    register_sign(city, "vms-changdong-station", ["parkingGuidance"])
    register_sign(city, "vms-arena-gate", ["parkingGuidance", "reset"])
    register_sign(city, "lamp-1", ["dim"])  # not a sign
    signs = mobility(city).signs
    assert sorted(signs.signs("")) == ["vms-arena-gate", "vms-changdong-station"]
    assert signs.update("", clock.now()) == 2
    assert commands(city, "vms-arena-gate")[0].params == {"mode": "normal"}
    assert signs.update("", clock.now()) == 0  # nothing changed: nothing sent

    add_concert(city, clock.now() + timedelta(minutes=90))
    clock.advance(timedelta(minutes=1))
    assert signs.update("", clock.now()) == 2
    advice = commands(city, "vms-changdong-station")[0].params
    assert advice["mode"] == "event"
    assert advice["ko"].startswith("행사 중입니다")
    assert advice["en"].startswith("An event is on")
    shown = [site["id"] for site in advice["sites"]]
    assert shown
    assert lot("seoul-arena") not in shown
    assert set(shown) <= {
        lot("nowon-station-public"),
        lot("depot-site-temporary"),
        lot("dobong-gu-office"),
    }
    assert all(isinstance(site["free"], int) and site["en"] for site in advice["sites"])
    assert commands(city, "lamp-1") == []

    clock.advance(timedelta(hours=6))  # the show ended long ago
    updater = SignUpdater(signs, clock, [""], interval=0.01)
    stop = asyncio.Event()

    async def one_round() -> None:
        task = asyncio.create_task(updater.run(stop))
        await asyncio.sleep(0.3)
        stop.set()
        await task

    asyncio.run(one_round())
    assert commands(city, "vms-arena-gate")[0].params == {"mode": "normal"}
