"""Helpers of the IoT tests: a device to register, and what the agent put on the bus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from smartcity.bus.base import EventBus
from smartcity.ingest.readings import Reading

DEVICE_CONTEXT_LINK = (
    '<urn:smartcity:context:iot-devices>; rel="http://www.w3.org/ns/json-ld#context"'
)


def air_sensor(device_id: str, api_key: str, **overrides: Any) -> dict[str, Any]:
    """An air-quality sensor as an operator registers it."""
    device: dict[str, Any] = {
        "id": device_id,
        "apiKey": api_key,
        "entity": {
            "id": f"urn:ngsi-ld:AirQualityObserved:{device_id}",
            "type": "AirQualityObserved",
        },
        "attributes": [
            {"objectId": "t", "name": "temperature", "unit": "CEL"},
            {"objectId": "h", "name": "relativeHumidity", "scale": 0.01},
            {"objectId": "f", "name": "temperatureF", "expression": "round((value - 32) / 1.8, 2)"},
        ],
        "reportingInterval": 60,
    }
    device.update(overrides)
    return device


class BusTap:
    """Reads what is published on the bus under a subject filter, as one consumer group."""

    def __init__(self, bus: EventBus, subjects: str, group: str) -> None:
        self.bus = bus
        self.subjects = subjects
        self.group = group
        self.seen: list[bytes] = []

    async def fetch(self, at_least: int, within: float = 10.0) -> list[bytes]:
        """Wait until at least `at_least` messages arrived in all; return all so far."""
        consumer = await self.bus.consumer(self.subjects, self.group)
        deadline = time.monotonic() + within
        try:
            while len(self.seen) < at_least and time.monotonic() < deadline:
                for message in await consumer.fetch(500, wait=0.2):
                    self.seen.append(message.data)
                    await message.ack()
        finally:
            await consumer.close()
        return list(self.seen)

    async def readings(self, at_least: int, within: float = 10.0) -> list[Reading]:
        """Like `fetch`, parsed as readings."""
        return [Reading.from_bytes(data) for data in await self.fetch(at_least, within)]


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until `check()` holds (AssertionError after `within` seconds)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(0.05)
