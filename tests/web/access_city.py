"""A small district with one principal of every role, for the access-control tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from smartcity.auth.principal import Caller
from smartcity.platform import Platform

TENANT = "dobong"
OTHER_TENANT = "nowon"
ENTITIES = "/ngsi-ld/v1/entities"
START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

PARKING = "urn:ngsi-ld:OffStreetParking:changdong-1"
CAMERA = "urn:ngsi-ld:Camera:arena-gate-3"
LAMP = "urn:ngsi-ld:Streetlight:lamp-7"
OTHER_LAMP = "urn:ngsi-ld:Streetlight:lamp-8"
ALERT = "urn:ngsi-ld:Alert:fire-1"
MISSING = "urn:ngsi-ld:Camera:does-not-exist"
ALL_IDS = [ALERT, CAMERA, PARKING, LAMP, OTHER_LAMP]


def entity(entity_id: str, **attributes: Any) -> dict[str, Any]:
    """Return an entity of the type its id names, with Property attributes."""
    body: dict[str, Any] = {"id": entity_id, "type": entity_id.split(":")[2]}
    for name, value in attributes.items():
        body[name] = {"type": "Property", "value": value}
    return body


SEED = [
    entity(PARKING, availableSpotNumber=40),
    entity(CAMERA, streamUrl="rtsp://10.0.0.3/secret", status="on"),
    entity(LAMP, powerState="on"),
    entity(OTHER_LAMP, powerState="off"),
    entity(ALERT, severity="high", description="fire near the arena"),
]


@dataclass
class City:
    """The platform, a client without credentials, and one credential header per principal."""

    platform: Platform
    client: TestClient
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    tenant: str = TENANT

    def as_(self, who: str, tenant: str | None = None) -> dict[str, str]:
        """Return the headers of a principal (or none for 'anonymous') in a tenant."""
        tenant = self.tenant if tenant is None else tenant
        tenant_header = {"NGSILD-Tenant": tenant} if tenant else {}
        return {**self.headers.get(who, {}), **tenant_header}

    def call(
        self, who: str, method: str, path: str, body: Any = None, tenant: str | None = None
    ) -> Any:
        """Send a request as a principal."""
        return self.client.request(method, path, json=body, headers=self.as_(who, tenant))


def build_city(platform: Platform, client: TestClient, tenant: str = TENANT) -> City:
    """Fill a tenant with entities, principals of every role, a share and type marks."""
    accounts = platform.accounts
    system = Caller.system(tenant)
    city = City(platform, client, tenant=tenant)

    def key(name: str, roles: list[str], other: bool = False, ids: tuple[str, ...] = ()) -> None:
        created = accounts.create_key(
            Caller.system(OTHER_TENANT if other else tenant), name, roles, list(ids)
        )
        city.headers[name] = {"Authorization": f"ApiKey {created.key}"}

    key("admin", ["admin"])
    key("operator", ["operator"])
    key("analyst", ["analyst"])
    key("police", ["agency"])
    key("lamp-7", ["device"], ids=(LAMP,))
    key("kiosk", ["public"])
    key("intruder", ["admin"], other=True)
    accounts.add_user(system, "kim", "correct horse battery", ["operator"])
    for body in SEED:
        response = client.post(ENTITIES, json=body, headers=city.as_("admin"))
        assert response.status_code == 201, response.text
    for mark, type_name in (("public", "OffStreetParking"), ("restricted", "Camera")):
        response = client.put(f"/auth/types/{mark}/{type_name}", headers=city.as_("admin"))
        assert response.status_code == 204, response.text
    accounts.share(system, "police", START + timedelta(hours=2), entity_id=ALERT)
    # The intruder's own tenant holds an entity with the same id as a secret of dobong.
    response = client.post(
        ENTITIES,
        json=entity(CAMERA, streamUrl="rtsp://nowon"),
        headers=city.as_("intruder", OTHER_TENANT),
    )
    assert response.status_code == 201, response.text
    return city
