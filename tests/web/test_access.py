"""Access control from the attacker's side: other tenants' ids and lower roles get 401/403/404
on every endpoint, and nothing leaks (not bodies, not counts); on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from smartcity.config import Settings
from smartcity.core.clock import ManualClock
from smartcity.platform import Platform, build_platform
from smartcity.web.app import create_app
from tests.web.access_city import (
    ALERT,
    ALL_IDS,
    CAMERA,
    ENTITIES,
    LAMP,
    MISSING,
    OTHER_LAMP,
    OTHER_TENANT,
    PARKING,
    START,
    City,
    build_city,
    entity,
)

ALL = set(ALL_IDS)
VISIBLE: dict[str, set[str]] = {
    "admin": ALL,
    "operator": ALL,
    "analyst": ALL,
    "police": {PARKING, ALERT},
    "lamp-7": {PARKING, LAMP},
    "kiosk": {PARKING},
    "anonymous": {PARKING},
    "intruder": {PARKING},
}
"""What each principal may read in tenant dobong (the intruder is an admin of another tenant)."""
READ_ONLY = ["analyst", "police", "kiosk", "anonymous", "intruder"]
TYPES = "Alert,Camera,OffStreetParking,Streetlight"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def platform(settings: Settings, clock: ManualClock) -> Platform:
    return build_platform(settings, clock)


@pytest.fixture
def city(platform: Platform) -> Iterator[City]:
    with TestClient(create_app(platform)) as client:
        yield build_city(platform, client)


def writes(target: str) -> list[tuple[str, str, Any]]:
    """Every single-entity write endpoint, aimed at one entity id."""
    attribute = {"status": {"type": "Property", "value": "hacked"}}
    return [
        ("POST", ENTITIES, entity(target, status="hacked")),
        ("POST", f"{ENTITIES}/{target}/attrs", attribute),
        ("PATCH", f"{ENTITIES}/{target}/attrs", attribute),
        ("PATCH", f"{ENTITIES}/{target}/attrs/status", {"value": "hacked"}),
        ("PUT", f"{ENTITIES}/{target}/attrs/status", {"type": "Property", "value": "hacked"}),
        ("DELETE", f"{ENTITIES}/{target}/attrs/status", None),
        ("PATCH", f"{ENTITIES}/{target}", attribute),
        ("PUT", f"{ENTITIES}/{target}", entity(target, status="hacked")),
        ("DELETE", f"{ENTITIES}/{target}", None),
    ]


def batches(targets: list[str]) -> list[tuple[str, Any]]:
    """Every batch write endpoint, aimed at some entity ids."""
    bodies = [entity(target, status="hacked") for target in targets]
    return [
        ("/ngsi-ld/v1/entityOperations/create", bodies),
        ("/ngsi-ld/v1/entityOperations/upsert", bodies),
        ("/ngsi-ld/v1/entityOperations/update", bodies),
        ("/ngsi-ld/v1/entityOperations/delete", targets),
    ]


def snapshot(city: City) -> list[Any]:
    """Return every entity of tenant dobong as the admin sees it."""
    response = city.call("admin", "GET", f"{ENTITIES}?type={TYPES}&limit=100")
    assert response.status_code == 200
    found: list[Any] = response.json()
    return found


def without(text: str, *ids: str) -> str:
    """Blank the entity ids out of a response body, to compare refusals of different ids."""
    for entity_id in ids:
        text = text.replace(entity_id, "ID")
    return text


# -- writes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", READ_ONLY)
def test_read_only_principals_cannot_write_anything(city: City, who: str) -> None:
    before = snapshot(city)
    expected = 401 if who == "anonymous" else 403
    for target in [*ALL_IDS, MISSING]:
        for (method, path, body), (_, missing_path, missing_body) in zip(
            writes(target), writes(MISSING), strict=True
        ):
            response = city.call(who, method, path, body)
            assert response.status_code == expected, (method, path, response.text)
            if expected == 401:
                assert "Bearer" in response.headers["WWW-Authenticate"]
            # A refusal reads the same whether the entity exists or not.
            refusal = city.call(who, method, missing_path, missing_body)
            assert without(response.text, target) == without(refusal.text, MISSING)
    for path, body in batches([*ALL_IDS, MISSING]):
        response = city.call(who, "POST", path, body)
        assert response.status_code == expected, (path, response.text)
    assert snapshot(city) == before


def test_a_device_writes_only_its_own_entities(city: City) -> None:
    before = [e for e in snapshot(city) if e["id"] != LAMP]
    for target in [CAMERA, OTHER_LAMP, PARKING, MISSING]:
        for method, path, body in writes(target):
            response = city.call("lamp-7", method, path, body)
            assert response.status_code == 403, (method, path, response.text)
    attribute = {"powerState": {"type": "Property", "value": "dim"}}
    assert city.call("lamp-7", "PATCH", f"{ENTITIES}/{LAMP}/attrs", attribute).status_code == 204
    for path, body in batches([LAMP, OTHER_LAMP, MISSING]):
        response = city.call("lamp-7", "POST", path, body)
        assert response.status_code == 207, (path, response.text)
        errors = {item["entityId"]: item["error"] for item in response.json()["errors"]}
        assert set(errors) >= {OTHER_LAMP, MISSING}
        assert errors[OTHER_LAMP]["status"] == errors[MISSING]["status"] == 403
        assert without(str(errors[OTHER_LAMP]), OTHER_LAMP) == without(
            str(errors[MISSING]), MISSING
        )
        assert LAMP not in errors or path.endswith("create")  # create: lamp-7 exists already
    assert [e for e in snapshot(city) if e["id"] != LAMP] == before


def test_an_operator_writes_and_an_intruder_writes_only_in_its_own_tenant(city: City) -> None:
    attribute = {"status": {"type": "Property", "value": "checked"}}
    assert city.call("operator", "POST", f"{ENTITIES}/{CAMERA}/attrs", attribute).status_code == 204
    response = city.call("intruder", "POST", f"{ENTITIES}/{CAMERA}/attrs", attribute, OTHER_TENANT)
    assert response.status_code == 204
    secret = city.call("admin", "GET", f"{ENTITIES}/{CAMERA}").json()
    assert secret["status"]["value"] == "checked"
    assert secret["streamUrl"]["value"] == "rtsp://10.0.0.3/secret"


# -- reads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", list(VISIBLE))
def test_each_principal_reads_only_what_it_may_see(city: City, who: str) -> None:
    visible = VISIBLE[who]
    missing = city.call(who, "GET", f"{ENTITIES}/{MISSING}")
    assert missing.status_code == 404
    for entity_id in ALL_IDS:
        response = city.call(who, "GET", f"{ENTITIES}/{entity_id}")
        if entity_id in visible:
            assert response.status_code == 200, (entity_id, response.text)
        else:
            assert response.status_code == 404, (entity_id, response.text)
            assert without(response.text, entity_id) == without(missing.text, MISSING)
    for query in (
        f"type={TYPES}",
        "idPattern=.*",
        f"type={TYPES}&q=status",
        "id=" + ",".join(ALL_IDS),
    ):
        response = city.call(who, "GET", f"{ENTITIES}?{query}&count=true&limit=100")
        assert response.status_code == 200, response.text
        expected = {i for i in visible if query != f"type={TYPES}&q=status" or i == CAMERA}
        assert {e["id"] for e in response.json()} == expected, query
        assert response.headers["NGSILD-Results-Count"] == str(len(expected))
    counted = city.call(who, "GET", f"{ENTITIES}?type={TYPES}&count=true&limit=0")
    assert counted.headers["NGSILD-Results-Count"] == str(len(visible))
    body = {"type": "Query", "entities": [{"type": t} for t in TYPES.split(",")]}
    response = city.call(who, "POST", "/ngsi-ld/v1/entityOperations/query?count=true", body)
    assert {e["id"] for e in response.json()} == visible
    assert response.headers["NGSILD-Results-Count"] == str(len(visible))


@pytest.mark.parametrize("who", list(VISIBLE))
def test_types_and_attributes_show_only_what_may_be_seen(city: City, who: str) -> None:
    visible = VISIBLE[who]
    types = {entity_id.split(":")[2] for entity_id in visible}
    listed = city.call(who, "GET", "/ngsi-ld/v1/types").json()["typeList"]
    assert set(listed) == types
    detailed = city.call(who, "GET", "/ngsi-ld/v1/types?details=true").json()
    assert {item["typeName"] for item in detailed} == types
    for type_name in ("Camera", "Alert", "Streetlight"):
        info = city.call(who, "GET", f"/ngsi-ld/v1/types/{type_name}")
        if type_name in types:
            count = len([i for i in visible if i.split(":")[2] == type_name])
            assert info.json()["entityCount"] == count
        else:
            assert info.status_code == 404
            assert without(info.text, type_name) == without(
                city.call(who, "GET", "/ngsi-ld/v1/types/Nothing").text, "Nothing"
            )
    attributes = set(city.call(who, "GET", "/ngsi-ld/v1/attributes").json()["attributeList"])
    assert ("streamUrl" in attributes) == (CAMERA in visible)
    assert ("description" in attributes) == (ALERT in visible)
    stream = city.call(who, "GET", "/ngsi-ld/v1/attributes/streamUrl")
    assert stream.status_code == (200 if CAMERA in visible else 404)
    if stream.status_code == 200:
        assert stream.json()["attributeCount"] == 1


def test_an_agency_share_ends_when_it_expires(city: City, clock: ManualClock) -> None:
    assert city.call("police", "GET", f"{ENTITIES}/{ALERT}").status_code == 200
    clock.advance(timedelta(hours=3))
    assert city.call("police", "GET", f"{ENTITIES}/{ALERT}").status_code == 404
    response = city.call("police", "GET", f"{ENTITIES}?type={TYPES}&count=true")
    assert response.headers["NGSILD-Results-Count"] == "1"


def test_another_tenants_ids_are_not_found_in_ones_own_tenant(city: City) -> None:
    for entity_id in [ALERT, PARKING, LAMP]:
        response = city.call("intruder", "GET", f"{ENTITIES}/{entity_id}", tenant=OTHER_TENANT)
        assert response.status_code == 404
    own = city.call("intruder", "GET", f"{ENTITIES}/{CAMERA}", tenant=OTHER_TENANT).json()
    assert own["streamUrl"]["value"] == "rtsp://nowon"
    listed = city.call(
        "intruder", "GET", f"{ENTITIES}?type={TYPES}&count=true", tenant=OTHER_TENANT
    )
    assert listed.headers["NGSILD-Results-Count"] == "1"


# -- credentials ----------------------------------------------------------------------------------


def test_bad_credentials_are_401_not_a_silent_downgrade(city: City) -> None:
    for headers in (
        {"X-API-Key": "sck_000000000000_forged"},
        {"Authorization": "ApiKey nonsense"},
        {"Authorization": "Bearer not.a.token"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
    ):
        response = city.client.get(f"{ENTITIES}/{PARKING}", headers=headers)
        assert response.status_code == 401, headers
        assert "WWW-Authenticate" in response.headers


def test_login_gives_a_token_that_expires(city: City, clock: ManualClock) -> None:
    wrong = city.client.post("/auth/login", json={"name": "kim", "password": "wrong password!"})
    nobody = city.client.post("/auth/login", json={"name": "nobody", "password": "wrong password!"})
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json()["detail"] == nobody.json()["detail"]
    login = city.client.post(
        "/auth/login", json={"name": "kim", "password": "correct horse battery"}
    )
    assert login.status_code == 200, login.text
    bearer = {"Authorization": f"Bearer {login.json()['accessToken']}"}
    me = city.client.get("/auth/me", headers={**bearer, "NGSILD-Tenant": "dobong"}).json()
    assert me["roles"] == ["operator"]
    # In a tenant where kim has no role, kim reads as the public and may not write.
    elsewhere = city.client.get("/auth/me", headers={**bearer, "NGSILD-Tenant": OTHER_TENANT})
    assert elsewhere.json()["roles"] == ["public"]
    response = city.client.delete(
        f"{ENTITIES}/{CAMERA}", headers={**bearer, "NGSILD-Tenant": OTHER_TENANT}
    )
    assert response.status_code == 403
    clock.advance(timedelta(hours=9))
    expired = city.client.get("/auth/me", headers={**bearer, "NGSILD-Tenant": "dobong"})
    assert expired.status_code == 401


def test_revoked_keys_and_disabled_principals_stop_working(city: City) -> None:
    keys = city.call("admin", "GET", "/auth/keys").json()
    prefix = next(key["prefix"] for key in keys if key["principal"] == "lamp-7")
    assert "key" not in keys[0]
    assert city.call("lamp-7", "GET", "/auth/me").status_code == 200
    assert city.call("admin", "DELETE", f"/auth/keys/{prefix}").status_code == 204
    assert city.call("lamp-7", "GET", "/auth/me").status_code == 401
    assert (
        city.call("admin", "PATCH", "/auth/principals/analyst", {"disabled": True}).status_code
        == 204
    )
    assert city.call("analyst", "GET", f"{ENTITIES}/{PARKING}").status_code == 401


# -- administration -------------------------------------------------------------------------------

ADMIN_ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", "/auth/principals", None),
    ("GET", "/auth/principals/kim", None),
    ("PATCH", "/auth/principals/kim", {"password": "a new password for kim"}),
    ("POST", "/auth/principals/kim/roles", {"roles": ["admin"]}),
    ("DELETE", "/auth/principals/kim/roles/operator", None),
    (
        "POST",
        "/auth/users",
        {"name": "mallory", "password": "mallory's password", "roles": ["admin"]},
    ),
    ("POST", "/auth/keys", {"name": "backdoor", "roles": ["admin"]}),
    ("GET", "/auth/keys", None),
    ("GET", "/auth/shares", None),
    (
        "POST",
        "/auth/shares",
        {"agency": "police", "entityType": "Camera", "expiresAt": "2030-01-01T00:00:00Z"},
    ),
    ("GET", "/auth/types/public", None),
    ("PUT", "/auth/types/public/Camera", None),
    ("DELETE", "/auth/types/restricted/Camera", None),
    ("GET", "/auth/audit", None),
]


@pytest.mark.parametrize(
    "who", ["operator", "analyst", "police", "lamp-7", "kiosk", "anonymous", "intruder"]
)
def test_only_an_admin_of_the_tenant_administers_it(city: City, who: str) -> None:
    expected = 401 if who == "anonymous" else 403
    for method, path, body in ADMIN_ENDPOINTS:
        response = city.call(who, method, path, body)
        assert response.status_code == expected, (method, path, response.text)
    assert city.call("kiosk", "GET", f"{ENTITIES}/{CAMERA}").status_code == 404
    assert city.call("admin", "GET", "/auth/principals/kim").json()["roles"] == ["operator"]


def test_an_admin_of_another_tenant_sees_and_takes_over_nothing(city: City) -> None:
    def intrude(method: str, path: str, body: Any = None) -> Any:
        return city.call("intruder", method, path, body, tenant=OTHER_TENANT)

    names = {p["name"] for p in intrude("GET", "/auth/principals").json()}
    assert names == {"intruder"}
    assert {k["principal"] for k in intrude("GET", "/auth/keys").json()} == {"intruder"}
    assert intrude("GET", "/auth/shares").json() == []
    audit = intrude("GET", "/auth/audit?limit=1000").json()
    assert audit
    assert all(record["principal"] in ("intruder", "system") for record in audit)
    assert all(
        CAMERA not in record["target"] or record["principal"] == "intruder" for record in audit
    )
    dobong_key = city.call("admin", "GET", "/auth/keys").json()[0]["prefix"]
    dobong_share = city.call("admin", "GET", "/auth/shares").json()[0]["id"]
    for method, path in (
        ("GET", "/auth/principals/kim"),
        ("DELETE", f"/auth/keys/{dobong_key}"),
        ("DELETE", f"/auth/shares/{dobong_share}"),
        ("DELETE", "/auth/principals/kim/roles/operator"),
    ):
        assert intrude(method, path).status_code == 404, path
    # Giving kim a role in its own tenant does not let the intruder change kim's password.
    assert intrude("POST", "/auth/principals/kim/roles", {"roles": ["public"]}).status_code == 200
    takeover = intrude("PATCH", "/auth/principals/kim", {"password": "the intruder's password"})
    assert takeover.status_code == 400
    assert (
        city.client.post(
            "/auth/login", json={"name": "kim", "password": "the intruder's password"}
        ).status_code
        == 401
    )
    key = intrude("POST", "/auth/keys", {"name": "kim", "roles": ["admin"]})
    assert key.status_code in (400, 409)
    assert city.call("admin", "GET", "/auth/keys").json()[0]["prefix"] == dobong_key


def test_writes_and_restricted_reads_are_audited(city: City) -> None:
    attribute = {"powerState": {"type": "Property", "value": "dim"}}
    city.call("lamp-7", "PATCH", f"{ENTITIES}/{LAMP}/attrs", attribute)
    city.call("kiosk", "DELETE", f"{ENTITIES}/{PARKING}")
    city.call("analyst", "GET", f"{ENTITIES}/{CAMERA}")
    city.call("analyst", "GET", f"{ENTITIES}?type=Camera")
    city.call("analyst", "GET", f"{ENTITIES}/{PARKING}")
    records = city.call("admin", "GET", "/auth/audit?limit=1000").json()
    seen = {(r["principal"], r["action"], r["target"], r["outcome"]) for r in records}
    assert ("lamp-7", "entity.update", LAMP, "ok") in seen
    assert ("kiosk", "entity.delete", PARKING, "failed: Forbidden") in seen
    assert ("analyst", "entity.read", CAMERA, "ok") in seen
    assert ("analyst", "entity.query", CAMERA, "ok") in seen
    assert not any(r["principal"] == "analyst" and r["target"] == PARKING for r in records)
    by_lamp = city.call("admin", "GET", "/auth/audit?principal=lamp-7").json()
    assert {r["principal"] for r in by_lamp} == {"lamp-7"}
    assert all(r["at"] >= "2026-11-27T09:00:00" for r in records)
    later = city.call("admin", "GET", "/auth/audit?since=2026-11-28T00:00:00Z").json()
    assert later == []


def test_the_landing_page_shows_visitors_only_public_types(
    platform: Platform, clock: ManualClock
) -> None:
    with TestClient(create_app(platform)) as client:
        build_city(platform, client, tenant="")
        page = client.get("/").text
    assert "OffStreetParking" in page
    for secret in ("Camera", "Alert", "Streetlight"):
        assert secret not in page


def test_switched_off_every_request_acts_as_the_platform(settings: Settings) -> None:
    with capture_logs() as logs:
        platform = build_platform(settings.model_copy(update={"auth": False}))
    assert any("ACCESS CONTROL IS OFF" in entry["event"] for entry in logs)
    assert any(entry["log_level"] == "warning" for entry in logs)
    with TestClient(create_app(platform)) as client:
        response = client.post(ENTITIES, json=entity(CAMERA, status="on"))
        assert response.status_code == 201
        assert client.get("/auth/me").json()["kind"] == "system"


def test_an_admin_shares_a_type_with_an_agency_over_http(city: City, clock: ManualClock) -> None:
    assert city.call("police", "GET", f"{ENTITIES}/{CAMERA}").status_code == 404
    naive = {"agency": "police", "entityType": "Camera", "expiresAt": "2026-11-27T12:00:00"}
    assert city.call("admin", "POST", "/auth/shares", naive).status_code == 400
    share = {**naive, "expiresAt": "2026-11-27T12:00:00Z"}
    created = city.call("admin", "POST", "/auth/shares", share)
    assert created.status_code == 201, created.text
    assert created.json()["agency"] == "police"
    assert city.call("police", "GET", f"{ENTITIES}/{CAMERA}").status_code == 200
    listed = city.call("admin", "GET", "/auth/shares").json()
    assert {(s["agency"], s.get("entityType", s.get("entityId"))) for s in listed} >= {
        ("police", "https://uri.etsi.org/ngsi-ld/default-context/Camera"),
        ("police", ALERT),
    }
    not_an_agency = {**share, "agency": "analyst"}
    assert city.call("admin", "POST", "/auth/shares", not_an_agency).status_code == 400
    share_id = created.json()["id"]
    assert city.call("admin", "DELETE", f"/auth/shares/{share_id}").status_code == 204
    assert city.call("police", "GET", f"{ENTITIES}/{CAMERA}").status_code == 404
    assert city.call("admin", "GET", "/auth/types/public").json() == ["OffStreetParking"]
    assert city.call("admin", "GET", "/auth/types/secret").status_code == 400
