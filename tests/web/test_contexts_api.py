"""The JSON-LD @context API over HTTP (/ngsi-ld/v1/jsonldContexts), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.platform import Platform, build_platform
from smartcity.web.app import create_app
from tests.serving import create_admin_key, running_server
from tests.web.conftest import admin_key

CONTEXTS = "/ngsi-ld/v1/jsonldContexts"
CONTEXT_REL = 'rel="http://www.w3.org/ns/json-ld#context"'
PARKING_URL = (
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld"
)
CITY = "https://changdong.example/ns/"
CITY_CONTEXT = {
    "Streetlight": CITY + "Streetlight",
    "illuminance": CITY + "illuminance",
    "powerState": CITY + "powerState",
    "refDistrict": {"@id": CITY + "refDistrict", "@type": "@id"},
}
LAMP: dict[str, Any] = {
    "id": "urn:ngsi-ld:Streetlight:changdong-001",
    "type": "Streetlight",
    "illuminance": {"type": "Property", "value": 42.5},
    "powerState": {"type": "Property", "value": "on"},
}


def host(client: TestClient, context: Any, tenant: str = "") -> str:
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    response = client.post(CONTEXTS, json={"@context": context}, headers=headers)
    assert response.status_code == 201, response.text
    location: str = response.headers["Location"]
    assert location.startswith(CONTEXTS + "/")
    return location


def link(url: str) -> dict[str, str]:
    return {"Link": f"<{url}>; {CONTEXT_REL}"}


def test_a_hosted_context_names_entities_in_and_out(client: TestClient) -> None:
    location = host(client, CITY_CONTEXT)
    served = client.get(location)
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "application/ld+json"
    assert served.json() == {"@context": CITY_CONTEXT}

    assert client.post("/ngsi-ld/v1/entities", json=LAMP, headers=link(location)).status_code == 201
    absolute = "http://testserver" + location
    found = client.get(
        "/ngsi-ld/v1/entities", params={"type": "Streetlight"}, headers=link(absolute)
    )
    assert found.status_code == 200, found.text
    assert found.json() == [LAMP]
    assert f"<{absolute}>" in found.headers["Link"]
    expanded = client.get("/ngsi-ld/v1/entities/" + LAMP["id"]).json()
    assert expanded["type"] == CITY + "Streetlight"
    assert CITY + "illuminance" in expanded

    body = {"@context": absolute, **LAMP, "id": "urn:ngsi-ld:Streetlight:changdong-002"}
    created = client.post(
        "/ngsi-ld/v1/entities", json=body, headers={"Content-Type": "application/ld+json"}
    )
    assert created.status_code == 201, created.text
    again = client.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:changdong-002",
        headers={"Accept": "application/ld+json", **link(location)},
    ).json()
    assert again["@context"] == location
    assert again["illuminance"] == {"type": "Property", "value": 42.5}


def test_listing_and_details(client: TestClient) -> None:
    location = host(client, CITY_CONTEXT)
    context_id = location.rsplit("/", 1)[1]
    hosted = client.get(CONTEXTS, params={"kind": "Hosted"})
    assert hosted.json() == ["http://testserver" + location]
    everything = client.get(CONTEXTS).json()
    assert "http://testserver" + location in everything
    assert PARKING_URL in everything  # preloaded Smart Data Models contexts are Cached
    details = client.get(CONTEXTS, params={"details": "true", "kind": "Hosted"}).json()
    assert details == [
        {
            "URL": "http://testserver" + location,
            "localId": context_id,
            "kind": "Hosted",
            "timestamp": details[0]["timestamp"],
            "extraInfo": {"createdBy": "test-admin"},
        }
    ]
    one = client.get(location, params={"details": "true"})
    assert one.status_code == 200
    assert one.json() == details[0]
    assert client.get(CONTEXTS, params={"kind": "ImplicitlyCreated"}).json() == []


def test_cached_contexts_are_described_evicted_and_reloaded(client: TestClient) -> None:
    client.get("/ngsi-ld/v1/entities", params={"type": "ParkingSpot"}, headers=link(PARKING_URL))
    by_url = CONTEXTS + "/" + quote(PARKING_URL, safe="")
    details = client.get(by_url, params={"details": "true"})
    assert details.status_code == 200, details.text
    body = details.json()
    assert body["kind"] == "Cached"
    assert body["URL"] == PARKING_URL
    assert body["numberOfHits"] >= 1
    assert body["extraInfo"] == {"origin": "preloaded"}
    by_id = CONTEXTS + "/" + body["localId"]
    assert client.get(by_id, params={"details": "true"}).json()["URL"] == PARKING_URL

    served = client.get(by_id)
    assert served.status_code == 422
    assert served.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/OperationNotSupported"
    refused = client.delete(by_id)
    assert refused.status_code == 400
    assert "reload=true reads its file again" in refused.json()["detail"]
    assert client.delete(by_id, params={"reload": "true"}).status_code == 204
    assert client.get(by_id, params={"details": "true"}).json()["numberOfHits"] == 0


def test_deleting_a_hosted_context(client: TestClient) -> None:
    location = host(client, CITY_CONTEXT)
    assert client.post("/ngsi-ld/v1/entities", json=LAMP, headers=link(location)).status_code == 201
    reload = client.delete(location, params={"reload": "true"})
    assert reload.status_code == 400
    assert client.delete(location).status_code == 204
    assert client.get(location).status_code == 404
    assert client.delete(location).status_code == 404
    gone = client.get("/ngsi-ld/v1/entities/" + LAMP["id"], headers=link(location))
    assert gone.status_code == 503
    assert gone.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable"
    # The entity keeps its full names.
    assert client.get("/ngsi-ld/v1/entities/" + LAMP["id"]).json()["type"] == CITY + "Streetlight"


def test_tenants_are_kept_apart(client: TestClient, platform: Platform) -> None:
    platform.accounts.grant(Caller.system("dobong"), "test-admin", ["admin"])
    location = host(client, CITY_CONTEXT, tenant="dobong")
    north = {"NGSILD-Tenant": "dobong"}
    assert client.get(CONTEXTS, params={"kind": "Hosted"}).json() == []
    assert client.get(CONTEXTS, params={"kind": "Hosted"}, headers=north).json() == [
        "http://testserver" + location
    ]
    assert client.get(location, params={"details": "true"}).status_code == 404
    assert client.delete(location).status_code == 404
    # Serving the document is public: other brokers fetch it by URL, without a tenant.
    assert client.get(location).json() == {"@context": CITY_CONTEXT}
    assert client.delete(location, headers=north).status_code == 204


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"context": {}}, 400, "JSON object with an @context member"),
        ({"@context": {"a": "https://x.example/a"}, "type": "X"}, 400, "remove type"),
        ({"@context": 3}, 400, "object, a URL, or a list"),
        ({"@context": {"@id": "x"}}, 400, "@id cannot appear in a @context"),
        ({"@context": "https://remote.example/c.jsonld"}, 400, "runs offline"),
        ({"@context": {"big": "x" * 1_100_000}}, 400, "at most 1048576"),
    ],
)
def test_bad_documents_get_a_clear_400(
    client: TestClient, body: Any, status: int, message: str
) -> None:
    response = client.post(CONTEXTS, json=body)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    assert message in response.json()["detail"]
    assert client.get(CONTEXTS, params={"kind": "Hosted"}).json() == []


def test_bad_requests(client: TestClient) -> None:
    raw = client.post(CONTEXTS, content=b"{not json", headers={"Content-Type": "application/json"})
    assert raw.status_code == 400
    assert "not valid JSON" in raw.json()["detail"]
    text = client.post(CONTEXTS, content=b"{}", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    kind = client.get(CONTEXTS, params={"kind": "Remote"})
    assert kind.status_code == 400
    assert "Hosted, Cached, ImplicitlyCreated" in kind.json()["detail"]
    assert client.get(CONTEXTS, params={"details": "yes"}).status_code == 400


def test_only_admins_and_operators_change_contexts(
    client: TestClient, app_client: TestClient, platform: Platform
) -> None:
    location = host(client, CITY_CONTEXT)
    analyst = {"X-API-Key": platform.accounts.create_key(Caller.system(), "kim", ["analyst"]).key}
    refused = client.post(CONTEXTS, json={"@context": CITY_CONTEXT}, headers=analyst)
    assert refused.status_code == 403
    assert "admin or an operator" in refused.json()["detail"]
    assert client.delete(location, headers=analyst).status_code == 403
    del app_client.headers["X-API-Key"]
    anonymous = app_client.post(CONTEXTS, json={"@context": CITY_CONTEXT})
    assert anonymous.status_code == 401
    assert app_client.delete(location).status_code == 401
    # Serving the document stays public.
    assert app_client.get(location).json() == {"@context": CITY_CONTEXT}


def authenticated(client: TestClient, platform: Platform, *tenants: str) -> TestClient:
    """Send an admin key of the default tenant that is also admin in `tenants`."""
    client.headers["X-API-Key"] = admin_key(platform)
    for tenant in tenants:
        platform.accounts.grant(Caller.system(tenant), "test-admin", ["admin"])
    return client


def test_hosted_contexts_outlive_a_restart(settings: Settings) -> None:
    first = build_platform(settings)
    with TestClient(create_app(first)) as client:
        key = authenticated(client, first).headers["X-API-Key"]
        location = host(client, CITY_CONTEXT)
    with TestClient(create_app(build_platform(settings))) as client:
        client.headers["X-API-Key"] = key
        assert client.get(location).json() == {"@context": CITY_CONTEXT}
        created = client.post("/ngsi-ld/v1/entities", json=LAMP, headers=link(location))
        assert created.status_code == 201, created.text


def test_two_processes_on_one_database_share_hosted_contexts(settings: Settings) -> None:
    one, two = build_platform(settings), build_platform(settings)
    with TestClient(create_app(one)) as first, TestClient(create_app(two)) as second:
        authenticated(first, one, "dobong")
        second.headers["X-API-Key"] = first.headers["X-API-Key"]
        location = host(first, CITY_CONTEXT, tenant="dobong")
        north = {"NGSILD-Tenant": "dobong"}
        created = second.post(
            "/ngsi-ld/v1/entities", json=LAMP, headers={**north, **link(location)}
        )
        assert created.status_code == 201, created.text
        listed = second.get(CONTEXTS, params={"kind": "Hosted"}, headers=north).json()
        assert listed == ["http://testserver" + location]
        assert second.delete(location, headers=north).status_code == 204
        assert first.get(location).status_code == 404


def test_another_broker_fetches_a_hosted_context_over_http(tmp_path: Path) -> None:
    first_db = f"sqlite:///{tmp_path / 'first.db'}"
    key = {"X-API-Key": create_admin_key(first_db)}
    with running_server(first_db) as first_url:
        response = httpx.post(first_url + CONTEXTS, json={"@context": CITY_CONTEXT}, headers=key)
        assert response.status_code == 201, response.text
        hosted_url = first_url + response.headers["Location"]
        served = httpx.get(hosted_url)
        assert served.headers["Content-Type"] == "application/ld+json"

        other = Settings(
            database_url=f"sqlite:///{tmp_path / 'other.db'}", context_allowed_hosts=["127.0.0.1"]
        )
        other_platform = build_platform(other)
        with TestClient(create_app(other_platform)) as client:
            authenticated(client, other_platform)
            created = client.post("/ngsi-ld/v1/entities", json=LAMP, headers=link(hosted_url))
            assert created.status_code == 201, created.text
            stored = client.get("/ngsi-ld/v1/entities/" + LAMP["id"]).json()
            assert stored["type"] == CITY + "Streetlight"
            cached = client.get(CONTEXTS, params={"kind": "Cached", "details": "true"}).json()
            fetched = [c["URL"] for c in cached if c["extraInfo"]["origin"] == "fetched"]
            assert fetched == [hosted_url]
            assert (
                client.delete(
                    CONTEXTS + "/" + cached[0]["localId"], params={"reload": "true"}
                ).status_code
                == 204
            )

            assert httpx.delete(hosted_url, headers=key).status_code == 204
            failed = client.delete(CONTEXTS + "/" + cached[0]["localId"], params={"reload": "true"})
            assert failed.status_code == 504
            assert "HTTP 404" in failed.json()["detail"]
            # The copy is kept until it expires or is deleted.
            assert (
                client.get("/ngsi-ld/v1/entities/" + LAMP["id"], headers=link(hosted_url)).json()
                == LAMP
            )
