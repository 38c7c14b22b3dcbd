"""A tenant with cameras around Seoul Arena and principals of every role, for the /ops tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.core.clock import ManualClock
from smartcity.platform import Platform, build_platform
from smartcity.web.app import create_app
from tests.web.access_city import City

TENANT = "dobong"
START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
ARENA = (127.0469, 37.6533)
ENTITIES = "/ngsi-ld/v1/entities"
INCIDENTS = "/ops/v1/incidents"


def camera_id(name: str) -> str:
    return f"urn:ngsi-ld:Camera:{name}"


CAMERAS = {
    # name: (metres north of the arena, view direction, stream URL)
    "gate-1": (40, 180.0, "demo:gate-1"),
    "gate-2": (150, 0.0, "demo:gate-2"),
    "plaza": (300, 180.0, "https://vms.example/streams/plaza"),
    "far": (900, 180.0, "demo:far"),
}


def camera(name: str) -> dict[str, Any]:
    north, view, url = CAMERAS[name]
    return {
        "id": camera_id(name),
        "type": "Camera",
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [ARENA[0], ARENA[1] + north / 111_200]},
        },
        "cameraName": {"type": "Property", "value": f"창동 방범 CCTV {name}"},
        "viewDirection": {"type": "Property", "value": view},
        "streamURL": {"type": "Property", "value": url},
    }


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def platform(settings: Settings, clock: ManualClock) -> Platform:
    return build_platform(settings.model_copy(update={"ops_enabled": False}), clock)


@pytest.fixture
def city(platform: Platform) -> Iterator[City]:
    with TestClient(create_app(platform)) as client:
        yield build_ops_city(platform, client)


def build_ops_city(platform: Platform, client: TestClient) -> City:
    """Fill the tenant with cameras and principals: admin, operator, analyst, police, fire."""
    city = City(platform, client, tenant=TENANT)
    for name, roles, tenant in (
        ("admin", ["admin"], TENANT),
        ("operator", ["operator"], TENANT),
        ("analyst", ["analyst"], TENANT),
        ("police", ["agency"], TENANT),
        ("fire", ["agency"], TENANT),
        ("intruder", ["admin"], "nowon"),
    ):
        created = platform.accounts.create_key(Caller.system(tenant), name, roles)
        city.headers[name] = {"Authorization": f"ApiKey {created.key}"}
    for name in CAMERAS:
        response = client.post(ENTITIES, json=camera(name), headers=city.as_("admin"))
        assert response.status_code == 201, response.text
    return city


def open_incident(city: City, **changes: Any) -> dict[str, Any]:
    """Open an incident at the arena as the operator; return it."""
    body: dict[str, Any] = {
        "type": "crime",
        "subtype": "assault",
        "severity": "high",
        "title": "서울아레나 앞 폭행",
        "location": {"type": "Point", "coordinates": list(ARENA)},
        "zone": "changdong-4",
    }
    body.update(changes)
    response = city.call("operator", "POST", INCIDENTS, body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
