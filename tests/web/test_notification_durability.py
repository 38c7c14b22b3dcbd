"""Nothing is lost or sent twice across restarts; MQTT endpoints get notifications too."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable

import aiomqtt
import orjson
import pytest
from fastapi.testclient import TestClient

from smartcity.config import Settings
from smartcity.platform import build_platform
from tests.sink import Sink
from tests.web.conftest import admin_client
from tests.web.test_notifications import create_light, set_power, subscribe, values


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "notification_poll_interval": 0.05,
            "notification_timeout": 1.0,
            "notification_backoff_base": 0.05,
            "notification_backoff_cap": 0.1,
            "notification_max_attempts": 100,
        }
    )


def serve(settings: Settings) -> TestClient:
    return admin_client(build_platform(settings))


def test_changes_made_while_no_notifier_ran_are_notified_once(fast: Settings, sink: Sink) -> None:
    with serve(fast.model_copy(update={"notifications_enabled": False})) as client:
        subscribe(client, sink.url + "/later")
        create_light(client, 1, "on")
        set_power(client, 1, "off")
        time.sleep(0.2)
        assert sink.received == []
    with serve(fast):
        assert values(sink.wait_for("/later", 2)) == ["on", "off"]
        time.sleep(0.2)
    with serve(fast):
        time.sleep(0.5)
    assert len(sink.bodies("/later")) == 2


def test_undelivered_notifications_are_delivered_after_a_restart(
    fast: Settings, sink: Sink
) -> None:
    sink.statuses["/r"] = [503] * 1000
    with serve(fast) as client:
        subscribe(client, sink.url + "/r")
        create_light(client, 2, "on")
        set_power(client, 2, "off")
        deadline = time.monotonic() + 5
        while len([r for r in sink.received if r.path == "/r"]) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert sink.bodies("/r") == []
    sink.statuses["/r"] = []  # the endpoint is back
    with serve(fast):
        delivered = sink.wait_for("/r", 2)
        time.sleep(0.3)
    assert values(delivered) == ["on", "off"]
    assert len(sink.bodies("/r")) == 2
    assert len({body["id"] for body in delivered}) == 2


def _check_mosquitto() -> None:
    socket.create_connection(("127.0.0.1", 1883), timeout=2).close()


def test_mqtt_endpoints_receive_notifications(
    fast: Settings, require_service: Callable[[str, Callable[[], object]], None]
) -> None:
    require_service("mosquitto", _check_mosquitto)
    topic = f"smartcity-test/{uuid.uuid4().hex}/notifications"

    async def scenario(client: TestClient) -> list[dict[str, object]]:
        async with aiomqtt.Client("127.0.0.1", 1883) as listener:
            await listener.subscribe(topic, qos=1)
            await asyncio.to_thread(
                subscribe,
                client,
                f"mqtt://127.0.0.1:1883/{topic}",
                notification={
                    "endpoint": {
                        "uri": f"mqtt://127.0.0.1:1883/{topic}",
                        "notifierInfo": [{"key": "MQTT-QoS", "value": "1"}],
                        "receiverInfo": [{"key": "X-Source", "value": "changdong"}],
                    }
                },
            )
            await asyncio.to_thread(create_light, client, 3, "on")
            async with asyncio.timeout(10):
                async for message in listener.messages:
                    assert isinstance(message.payload, bytes)
                    return [orjson.loads(message.payload)]
        return []

    with serve(fast) as client:
        (message,) = asyncio.run(scenario(client))
    metadata, body = message["metadata"], message["body"]
    assert isinstance(metadata, dict)
    assert isinstance(body, dict)
    assert metadata["X-Source"] == "changdong"
    assert metadata["Content-Type"] == "application/json"
    assert body["type"] == "Notification"
    assert values([body]) == ["on"]
