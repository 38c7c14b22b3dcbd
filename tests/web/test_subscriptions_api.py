"""The /ngsi-ld/v1/subscriptions endpoints: shapes, status codes, validation, tenants."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from smartcity.auth.principal import Caller, PrincipalKind, Role
from smartcity.core.errors import Forbidden, Unauthorized
from smartcity.platform import Platform

SUBSCRIPTIONS = "/ngsi-ld/v1/subscriptions"
SDM = "https://smart-data-models.github.io/dataModel.Parking/context.jsonld"
LINK = f'<{SDM}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


def subscription(**members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "Subscription",
        "entities": [{"type": "ParkingSpot"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
    }
    body.update(members)
    return body


def test_create_retrieve_list_update_delete(client: TestClient) -> None:
    created = client.post(
        SUBSCRIPTIONS,
        json=subscription(id="urn:ngsi-ld:Subscription:one", watchedAttributes=["status"]),
        headers={"Link": LINK},
    )
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"{SUBSCRIPTIONS}/urn:ngsi-ld:Subscription:one"
    shown = client.get(created.headers["Location"])
    assert shown.status_code == 200
    body = shown.json()
    assert body["id"] == "urn:ngsi-ld:Subscription:one"
    assert body["status"] == "active"
    assert body["isActive"] is True
    assert body["watchedAttributes"] == ["status"]
    assert body["notification"]["timesSent"] == 0
    assert SDM in shown.headers["Link"]
    as_ld = client.get(created.headers["Location"], headers={"Accept": "application/ld+json"})
    assert as_ld.json()["@context"] == SDM

    again = client.post(
        SUBSCRIPTIONS, json=subscription(id="urn:ngsi-ld:Subscription:one"), headers={"Link": LINK}
    )
    assert again.status_code == 409

    client.post(SUBSCRIPTIONS, json=subscription(id="urn:ngsi-ld:Subscription:two"))
    listed = client.get(SUBSCRIPTIONS, params={"count": "true", "limit": "1"})
    assert listed.status_code == 200
    assert listed.headers["NGSILD-Results-Count"] == "2"
    assert [s["id"] for s in listed.json()] == ["urn:ngsi-ld:Subscription:one"]

    patched = client.patch(created.headers["Location"], json={"isActive": False, "throttling": 5})
    assert patched.status_code == 204, patched.text
    body = client.get(created.headers["Location"]).json()
    assert body["status"] == "paused"
    assert body["throttling"] == 5

    assert client.delete(created.headers["Location"]).status_code == 204
    assert client.get(created.headers["Location"]).status_code == 404
    assert client.delete(created.headers["Location"]).status_code == 404
    assert client.patch(created.headers["Location"], json={"q": "a>1"}).status_code == 404


def test_an_id_is_generated_when_none_is_given(client: TestClient) -> None:
    created = client.post(SUBSCRIPTIONS, json=subscription())
    assert created.status_code == 201
    assert created.headers["Location"].startswith(f"{SUBSCRIPTIONS}/urn:ngsi-ld:Subscription:")


def test_context_in_the_body(client: TestClient) -> None:
    created = client.post(
        SUBSCRIPTIONS,
        json={"@context": SDM, **subscription()},
        headers={"Content-Type": "application/ld+json"},
    )
    assert created.status_code == 201, created.text
    assert SDM in client.get(created.headers["Location"]).headers["Link"]


@pytest.mark.parametrize(
    ("members", "says"),
    [
        ({"type": "Sub"}, "Subscription"),
        ({"entities": []}, "entities"),
        ({"entities": [{"id": "urn:x:1"}]}, "type"),
        ({"entities": [{"type": "A", "idPatern": "x"}]}, "idPatern"),
        ({"q": "status=="}, "q"),
        ({"geoQ": {"georel": "near", "geometry": "Point"}}, "coordinates"),
        ({"notification": {}}, "endpoint"),
        ({"notification": {"endpoint": {"uri": "ftp://x/y"}}}, "http"),
        ({"notification": {"endpoint": {"uri": "mqtt://broker"}}}, "topic"),
        ({"notification": {"endpoint": {"uri": "http://x/", "accept": "text/csv"}}}, "accept"),
        ({"notification": {"format": "csv", "endpoint": {"uri": "http://x/"}}}, "format"),
        ({"timeInterval": 10, "watchedAttributes": ["a"]}, "together"),
        ({"throttling": -1}, "throttling"),
        ({"expiresAt": "2001-01-01T00:00:00Z"}, "future"),
        ({"notificationTrigger": ["entityExploded"]}, "notificationTrigger"),
        ({"entities": None, "watchedAttributes": None}, "entities"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_subscriptions_are_400_saying_what_to_fix(
    client: TestClient, members: dict[str, Any], says: str
) -> None:
    body = {k: v for k, v in subscription(**members).items() if v is not None}
    response = client.post(SUBSCRIPTIONS, json=body)
    assert response.status_code == 400, response.text
    assert says in response.json()["detail"]


def test_a_patch_that_breaks_the_subscription_changes_nothing(client: TestClient) -> None:
    location = client.post(SUBSCRIPTIONS, json=subscription()).headers["Location"]
    assert client.patch(location, json={"q": "((("}).status_code == 400
    assert "q" not in client.get(location).json()


def test_tenants_do_not_see_each_others_subscriptions(client: TestClient) -> None:
    platform: Platform = client.app.state.platform  # type: ignore[attr-defined]
    platform.accounts.grant(Caller.system("police"), "test-admin", ["admin"])
    police = {"NGSILD-Tenant": "police"}
    location = client.post(SUBSCRIPTIONS, json=subscription(), headers=police).headers["Location"]
    assert client.get(location).status_code == 404
    assert client.get(location, headers=police).status_code == 200
    assert client.get(SUBSCRIPTIONS).json() == []
    assert len(client.get(SUBSCRIPTIONS, headers=police).json()) == 1


def test_devices_and_the_public_may_not_manage_subscriptions(client: TestClient) -> None:
    platform: Platform = client.app.state.platform  # type: ignore[attr-defined]
    device = Caller("sensor-1", "", frozenset({Role.DEVICE}), PrincipalKind.DEVICE)
    analyst = Caller("kim", "", frozenset({Role.ANALYST}))
    core = platform.contexts.resolve(None)
    agency = Caller("police-1", "", frozenset({Role.AGENCY}))
    # Only roles that read every entity may subscribe: an agency sees only what is shared.
    for caller in (device, agency, Caller.anonymous()):
        expected = Forbidden if caller.authenticated else Unauthorized
        with pytest.raises(expected):
            platform.subscriptions.create(caller, subscription(), core, None)
        with pytest.raises(expected):
            platform.subscriptions.page(caller, 10, 0)
    assert platform.subscriptions.create(analyst, subscription(), core, None)
