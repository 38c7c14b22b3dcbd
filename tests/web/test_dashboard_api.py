"""The dashboard's page and files, and what it asks of the live map: a clustered style, counts."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from smartcity.auth.principal import Caller
from smartcity.platform import Platform
from smartcity.web.dashboard.routes import FILES
from smartcity.web.livemap.catalog import LAYERS

CAMERA_TYPE = "https://uri.etsi.org/ngsi-ld/default-context/Camera"


def test_the_page_embeds_the_live_map_and_asks_for_a_sign_in(app_client: TestClient) -> None:
    page = app_client.get("/ops")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="ko">' in html
    assert "창동 통합상황관제" in html
    for src in ("/map/static/maplibre-gl.js", "/map/static/livemap.js", "/ops/static/dashboard.js"):
        assert f'src="{src}"' in html
    # The dashboard's script runs before the map's: it sets the options the map reads.
    assert html.index("/ops/static/dashboard.js") < html.index("/map/static/livemap.js")
    assert 'id="login-form"' in html
    assert 'type="password"' in html


def test_the_home_page_links_to_the_dashboard(app_client: TestClient) -> None:
    assert 'href="/ops"' in app_client.get("/").text


@pytest.mark.parametrize("name", FILES)
def test_the_dashboards_files_are_served(app_client: TestClient, name: str) -> None:
    response = app_client.get(f"/ops/static/{name}")
    assert response.status_code == 200
    kind = {"js": "text/javascript", "css": "text/css", "html": "text/html"}[name.rsplit(".")[-1]]
    assert response.headers["content-type"].startswith(kind)


@pytest.mark.parametrize("name", ["routes.py", "..%2Froutes.py", "livemap.js", "nope.js"])
def test_nothing_else_is_served_from_its_folder(app_client: TestClient, name: str) -> None:
    assert app_client.get(f"/ops/static/{name}").status_code == 404


def test_the_clustered_style_gathers_the_device_layers(app_client: TestClient) -> None:
    plain = app_client.get("/map/style.json").json()
    clustered = app_client.get("/map/style.json", params={"cluster": "true"}).json()
    assert not any(source.get("cluster") for source in plain["sources"].values())
    assert plain["metadata"]["smartcity:clustered"] == []
    names = {layer["id"] for layer in clustered["layers"]}
    for layer in LAYERS:
        source = clustered["sources"][f"live-{layer.id}"]
        assert source.get("cluster", False) is layer.cluster
        assert (f"live-{layer.id}-clusters" in names) is layer.cluster
    assert set(clustered["metadata"]["smartcity:clustered"]) == {
        layer.id for layer in LAYERS if layer.cluster
    }
    assert {"cctv", "streetlights", "waste"} <= set(clustered["metadata"]["smartcity:clustered"])
    assert "parking" not in clustered["metadata"]["smartcity:clustered"]
    points = next(layer for layer in clustered["layers"] if layer["id"] == "live-cctv")
    assert points["filter"] == ["!", ["has", "point_count"]]  # clusters are drawn apart


def test_the_layers_say_how_many_of_each_type_the_caller_may_see(
    platform: Platform, client: TestClient
) -> None:
    for n in range(3):
        camera = {
            "id": f"urn:ngsi-ld:Camera:c{n}",
            "type": "Camera",
            "location": {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [127, 37]},
            },
        }
        assert client.post("/ngsi-ld/v1/entities", json=camera).status_code == 201
    counts = client.get("/map/layers").json()["counts"]
    assert counts == {CAMERA_TYPE: 3}
    stranger = platform.accounts.create_key(Caller.system("nowon"), "other", ["admin"]).key
    other = client.get("/map/layers", headers={"X-API-Key": stranger, "NGSILD-Tenant": "nowon"})
    assert other.json()["counts"] == {}
