"""The simulator's MQTT link: one connection however many tasks need it at once."""

from __future__ import annotations

import asyncio
import uuid

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from smartcity.sim.transports import MqttSender
from tests.conftest import check_service


def _probe_mosquitto() -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex}")
    client.connect("127.0.0.1", 1883, keepalive=5)
    client.disconnect()


def test_tasks_connecting_at_once_share_one_client_and_stay_connected() -> None:
    check_service("Mosquitto", _probe_mosquitto)
    token = uuid.uuid4().hex[:10]
    sender = MqttSender(
        "mqtt://127.0.0.1:1883", {}, topic_prefix=f"/test-link-{token}", client_id=f"link-{token}"
    )

    async def scenario() -> None:
        try:
            # Two clients with one id: the broker would drop the first (the listener and the
            # first send used to race like this when a run started).
            first, second = await asyncio.gather(sender._connect(), sender._connect())
            assert first is second
            await asyncio.sleep(0.3)
            await first.publish(f"/test-link-{token}/probe", b"still here", qos=1)
        finally:
            await sender.close()

    asyncio.run(scenario())
