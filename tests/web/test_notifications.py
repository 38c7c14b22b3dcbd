"""Notifications end to end: entity changes through the API reach a real HTTP sink."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.core.clock import isoformat
from smartcity.platform import build_platform
from tests.sink import Sink
from tests.web.conftest import admin_client

SUBSCRIPTIONS = "/ngsi-ld/v1/subscriptions"
ENTITIES = "/ngsi-ld/v1/entities"
LIGHT = "urn:ngsi-ld:Streetlight:"


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "notification_poll_interval": 0.05,
            "notification_timeout": 1.0,
            "notification_backoff_base": 0.05,
            "notification_backoff_cap": 0.2,
            "notification_max_attempts": 4,
            "auth_cache_seconds": 0.0,
        }
    )


@pytest.fixture
def client(fast: Settings) -> Iterator[TestClient]:
    with admin_client(build_platform(fast), "police") as test_client:
        yield test_client


def subscribe(
    client: TestClient, uri: str, headers: dict[str, str] | None = None, **members: Any
) -> str:
    notification = {"endpoint": {"uri": uri}, **members.pop("notification", {})}
    body = {"type": "Subscription", "entities": [{"type": "Streetlight"}], **members}
    response = client.post(
        SUBSCRIPTIONS, json={**body, "notification": notification}, headers=headers or {}
    )
    assert response.status_code == 201, response.text
    return str(response.headers["Location"])


def create_light(client: TestClient, number: int, power: str = "on", **headers: str) -> None:
    body = {"id": f"{LIGHT}{number}", "type": "Streetlight", "powerState": {"value": power}}
    assert client.post(ENTITIES, json=body, headers=headers).status_code == 201


def set_power(client: TestClient, number: int, power: str, **headers: str) -> None:
    response = client.patch(
        f"{ENTITIES}/{LIGHT}{number}/attrs", json={"powerState": {"value": power}}, headers=headers
    )
    assert response.status_code == 204, response.text


def values(bodies: list[Any]) -> list[Any]:
    return [entity["powerState"]["value"] for body in bodies for entity in body["data"]]


def test_changes_are_notified_in_order_with_their_content(client: TestClient, sink: Sink) -> None:
    location = subscribe(
        client,
        sink.url + "/n",
        notification={"showChanges": True},
        watchedAttributes=["powerState"],
    )
    create_light(client, 1)
    set_power(client, 1, "off")
    client.patch(f"{ENTITIES}/{LIGHT}1/attrs", json={"colour": {"value": "red"}})  # not watched
    set_power(client, 1, "dim")
    first, second, third = sink.wait_for("/n", 3)
    assert first["type"] == "Notification"
    assert first["id"].startswith("urn:ngsi-ld:Notification:")
    assert first["subscriptionId"] == location.rsplit("/", 1)[1]
    assert first["data"][0]["id"] == f"{LIGHT}1"
    assert values([first, second, third]) == ["on", "off", "dim"]
    assert second["data"][0]["powerState"]["previousValue"] == "on"
    time.sleep(0.2)
    assert len(sink.bodies("/n")) == 3
    status = client.get(location).json()
    assert status["notification"]["timesSent"] == 3
    assert status["notification"]["status"] == "ok"
    assert "lastSuccess" in status["notification"]
    headers = sink.received[0].headers
    assert headers["content-type"] == "application/json"
    assert "json-ld#context" in headers["link"]


def test_format_attributes_accept_and_receiver_info(client: TestClient, sink: Sink) -> None:
    subscribe(
        client,
        sink.url + "/kv",
        notification={
            "format": "keyValues",
            "attributes": ["powerState"],
            "endpoint": {
                "uri": sink.url + "/kv",
                "accept": "application/ld+json",
                "receiverInfo": [{"key": "X-Api-Key", "value": "s3cret"}],
            },
        },
    )
    body = {
        "id": f"{LIGHT}9",
        "type": "Streetlight",
        "powerState": {"value": "on"},
        "lampModel": {"value": "LED-40"},
    }
    client.post(ENTITIES, json=body)
    (notification,) = sink.wait_for("/kv")
    assert notification["data"] == [{"id": f"{LIGHT}9", "type": "Streetlight", "powerState": "on"}]
    assert "@context" in notification
    (received,) = [r for r in sink.received if r.path == "/kv"]
    assert received.headers["x-api-key"] == "s3cret"
    assert received.headers["content-type"] == "application/ld+json"


def test_q_and_triggers(client: TestClient, sink: Sink) -> None:
    subscribe(client, sink.url + "/off", q='powerState=="off"')
    subscribe(client, sink.url + "/gone", notificationTrigger=["entityDeleted"])
    create_light(client, 2, "on")
    set_power(client, 2, "off")
    assert client.delete(f"{ENTITIES}/{LIGHT}2").status_code == 204
    (off,) = sink.wait_for("/off")
    assert values([off]) == ["off"]
    (gone,) = sink.wait_for("/gone")
    assert gone["data"] == [
        {"id": f"{LIGHT}2", "type": "Streetlight", "deletedAt": gone["data"][0]["deletedAt"]}
    ]


def test_throttling_drops_notifications_that_come_too_soon(client: TestClient, sink: Sink) -> None:
    subscribe(client, sink.url + "/t", throttling=30)
    create_light(client, 3)
    set_power(client, 3, "off")
    sink.wait_for("/t")
    time.sleep(0.3)
    assert values(sink.bodies("/t")) == ["on"]


def test_paused_and_expired_subscriptions_do_not_notify(client: TestClient, sink: Sink) -> None:
    paused = subscribe(client, sink.url + "/p", isActive=False)
    expires = isoformat(datetime.now(UTC) + timedelta(seconds=1))
    expiring = subscribe(client, sink.url + "/e", expiresAt=expires)
    time.sleep(1.1)
    create_light(client, 4, "on")
    assert client.get(expiring).json()["status"] == "expired"
    assert client.patch(paused, json={"isActive": True}).status_code == 204
    set_power(client, 4, "off")
    assert values(sink.wait_for("/p")) == ["off"]
    time.sleep(0.2)
    assert sink.bodies("/e") == []


def test_periodic_notifications_carry_the_current_entities(client: TestClient, sink: Sink) -> None:
    create_light(client, 5, "on")
    subscribe(client, sink.url + "/every", timeInterval=0.5)
    first, *_ = sink.wait_for("/every", timeout=5)
    assert values([first]) == ["on"]


def test_tenants_are_notified_apart(client: TestClient, sink: Sink) -> None:
    subscribe(client, sink.url + "/police", headers={"NGSILD-Tenant": "police"})
    create_light(client, 6, "on")
    create_light(client, 6, "off", **{"NGSILD-Tenant": "police"})
    (notification,) = sink.wait_for("/police")
    assert values([notification]) == ["off"]
    time.sleep(0.2)
    assert len(sink.bodies("/police")) == 1
    assert sink.received[0].headers["ngsild-tenant"] == "police"


def test_a_dead_endpoint_does_not_delay_the_others(client: TestClient, sink: Sink) -> None:
    sink.hang.add("/dead")
    dead = subscribe(client, sink.url + "/dead")
    subscribe(client, sink.url + "/alive")
    create_light(client, 7, "on")
    started = time.monotonic()
    sink.wait_for("/alive")
    assert time.monotonic() - started < 0.8  # the dead endpoint's timeout is 1 s
    for power in ("off", "on", "off"):
        set_power(client, 7, power)
    sink.wait_for("/alive", 4, timeout=0.9)
    time.sleep(1.2)
    assert client.get(dead).json()["notification"]["timesFailed"] >= 1


@pytest.mark.parametrize("loss", ["role revoked", "principal disabled"])
def test_a_subscription_stops_when_its_owner_loses_the_right(
    client: TestClient, sink: Sink, loss: str
) -> None:
    platform = client.app.state.platform  # type: ignore[attr-defined]
    system = Caller.system()
    key = platform.accounts.create_key(system, "night-analyst", ["analyst"]).key
    subscribe(client, sink.url + "/owned", headers={"X-API-Key": key})
    subscribe(client, sink.url + "/control")  # the admin's: shows when changes were notified
    create_light(client, 8, "on")
    sink.wait_for("/owned")
    if loss == "role revoked":
        platform.accounts.revoke(system, "night-analyst", ["analyst"])
    else:
        platform.accounts.set_disabled(system, "night-analyst", True)
    set_power(client, 8, "off")
    sink.wait_for("/control", 2)
    time.sleep(0.2)
    assert values(sink.bodies("/owned")) == ["on"]


def test_a_failed_delivery_is_retried_until_it_succeeds(client: TestClient, sink: Sink) -> None:
    sink.statuses["/flaky"] = [503, 500]
    location = subscribe(client, sink.url + "/flaky")
    create_light(client, 8, "on")
    (notification,) = sink.wait_for("/flaky")
    retried = [r.body["id"] for r in sink.received if r.path == "/flaky"]
    assert retried == [notification["id"]] * 3  # the same notification, retried
    time.sleep(0.1)
    status = client.get(location).json()["notification"]
    assert (status["timesSent"], status["timesFailed"], status["status"]) == (3, 2, "ok")


def test_after_the_last_retry_a_notification_is_kept_as_failed(
    client: TestClient, sink: Sink
) -> None:
    sink.statuses["/down"] = [500] * 10
    location = subscribe(client, sink.url + "/down")
    create_light(client, 10, "on")
    deadline = time.monotonic() + 5
    while client.get(location).json()["notification"]["timesFailed"] < 4:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    platform = client.app.state.platform  # type: ignore[attr-defined]
    subscription_id = location.rsplit("/", 1)[1]
    store = platform.subscriptions.store
    assert store.queued("", subscription_id) == (0, 1)
    assert client.get(location).json()["notification"]["status"] == "failed"
