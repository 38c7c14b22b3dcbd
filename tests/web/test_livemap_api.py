"""The live map's page, files, style and district GeoJSON, and its per-caller layers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from smartcity.auth.policy import PUBLIC_MARK
from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.core.errors import ConfigurationError
from smartcity.platform import Platform, build_platform
from smartcity.sim.district import load_district
from smartcity.sim.entities import road_entities
from smartcity.sim.loader import load_district_into
from smartcity.sim.model import DistrictError
from smartcity.web.app import create_app
from smartcity.web.livemap.assets import map_assets, maplibre_folder
from smartcity.web.livemap.catalog import LAYERS

PARKING_TYPE = "https://smartdatamodels.org/dataModel.Parking/OffStreetParking"


def test_the_page_loads_maplibre_and_its_script(app_client: TestClient) -> None:
    page = app_client.get("/map")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    for src in ("maplibre-gl.js", "maplibre-gl.css", "livemap.js", "livemap.css"):
        assert f"/map/static/{src}" in html
    assert '<html lang="ko">' in html
    assert "Changdong live map" in html
    assert 'name="viewport"' in html


def test_the_home_page_links_to_the_map(app_client: TestClient) -> None:
    assert 'href="/map"' in app_client.get("/").text


def test_maplibre_is_served_from_the_installed_package(app_client: TestClient) -> None:
    folder = maplibre_folder()
    assert folder is not None
    for name, media in (("maplibre-gl.js", "text/javascript"), ("maplibre-gl.css", "text/css")):
        response = app_client.get(f"/map/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media)
        assert response.content == (folder / "srcjs" / name).read_bytes()
    assert "MapLibre GL JS" in app_client.get("/map/static/maplibre-gl.js").text[:200]


@pytest.mark.parametrize(
    "name", ["ipywidget.js", "..%2Fmap.py", "..%2F..%2Fpyproject.toml", "livemap.py"]
)
def test_only_the_pages_files_are_served(app_client: TestClient, name: str) -> None:
    assert app_client.get(f"/map/static/{name}").status_code == 404


def test_missing_maplibre_files_stop_the_start_with_a_fix(tmp_path: Path) -> None:
    (tmp_path / "srcjs").mkdir()
    (tmp_path / "srcjs" / "maplibre-gl.css").write_text("/* css */")
    with pytest.raises(ConfigurationError, match=r"maplibre-gl\.js.*pip install 'maplibre"):
        map_assets(tmp_path)
    assert set(map_assets().files) >= {"maplibre-gl.js", "maplibre-gl.css", "livemap.js"}


def test_an_unreadable_district_stops_the_start(platform: Platform, tmp_path: Path) -> None:
    platform.settings = platform.settings.model_copy(update={"map_district": str(tmp_path)})
    try:
        with pytest.raises(DistrictError, match=r"district\.yaml"):
            create_app(platform)
    finally:
        platform.close()


def test_the_style_draws_from_geojson_only(app_client: TestClient) -> None:
    style = app_client.get("/map/style.json").json()
    assert style["version"] == 8
    # Nothing to fetch from outside: no tiles, no sprite, no glyphs.
    assert "glyphs" not in style
    assert "sprite" not in style
    assert {source["type"] for source in style["sources"].values()} == {"geojson"}
    urls = [s["data"] for s in style["sources"].values() if isinstance(s["data"], str)]
    assert sorted(urls) == [
        f"http://testserver/map/district/{name}.geojson" for name in ("places", "roads", "zones")
    ]
    for url in urls:
        geojson = app_client.get(url.removeprefix("http://testserver"))
        assert geojson.status_code == 200
        assert geojson.headers["content-type"] == "application/geo+json"
    layer_ids = [layer["id"] for layer in style["layers"]]
    for layer in style["layers"]:
        assert layer["type"] == "background" or layer["source"] in style["sources"]
    assert {f"live-{layer.id}" for layer in LAYERS} <= set(layer_ids)
    assert layer_ids.index("roads") < layer_ids.index("live-cctv")
    metadata = style["metadata"]
    west, south, east, north = metadata["smartcity:bounds"]
    assert 127.0 < west < east < 127.1
    assert 37.6 < south < north < 37.7
    assert [layer["id"] for layer in metadata["smartcity:layers"]] == [x.id for x in LAYERS]
    assert metadata["smartcity:context"] == "urn:smartcity:context:changdong"


def test_the_style_uses_the_public_url_when_set(platform: Platform) -> None:
    platform.settings = platform.settings.model_copy(update={"public_url": "https://city.example/"})
    with TestClient(create_app(platform)) as client:
        style = client.get("/map/style.json").json()
    assert style["sources"]["roads"]["data"] == "https://city.example/map/district/roads.geojson"


def features(client: TestClient, name: str) -> list[dict[str, Any]]:
    body = client.get(f"/map/district/{name}.geojson").json()
    assert body["type"] == "FeatureCollection"
    found: list[dict[str, Any]] = body["features"]
    return found


def test_the_district_geojson_comes_from_its_own_files(app_client: TestClient) -> None:
    district = load_district()
    zones = features(app_client, "zones")
    assert [z["properties"]["name_ko"] for z in zones] == [z.name_ko for z in district.zones]
    assert {z["geometry"]["type"] for z in zones} == {"Polygon"}
    roads = features(app_client, "roads")
    assert len(roads) == len(district.links)
    dobong = next(r["properties"] for r in roads if r["properties"]["link"] == "dobong-1")
    assert dobong["class"] == "primary"
    assert dobong["lanes"] == 3
    assert dobong["total_lanes"] == 6
    assert dobong["speed_limit"] == 50
    assert dobong["name_en"] == "Dobong-ro"
    assert {r["properties"]["class"] for r in roads} >= {"motorway", "primary", "residential"}
    # A road's id is the id of the RoadSegment entity the district loader makes for its link.
    segments = {e["id"] for e in road_entities(district) if e["type"] == "RoadSegment"}
    assert {r["properties"]["id"] for r in roads} == segments
    places = features(app_client, "places")
    station = next(p["properties"] for p in places if p["properties"]["id"] == "changdong")
    assert station["name_ko"] == "창동역"
    assert station["labelled"] is True
    assert app_client.get("/map/district/buildings.geojson").status_code == 404


def test_the_layers_list_the_types_each_caller_may_see(
    platform: Platform, app_client: TestClient
) -> None:
    load_district_into(platform, batch_size=platform.settings.max_limit)
    platform.accounts.mark_type(Caller.system(), PARKING_TYPE, PUBLIC_MARK)
    anonymous = app_client.get("/map/layers").json()
    assert anonymous["authenticated"] is False
    assert anonymous["position"] == platform.store.last_change_seq()
    visible = {layer["id"]: layer["types"] for layer in anonymous["layers"] if layer["types"]}
    assert visible == {"parking": [PARKING_TYPE]}

    key = platform.accounts.create_key(Caller.system(), "map-admin", ["admin"]).key
    admin = app_client.get("/map/layers", headers={"X-API-Key": key}).json()
    assert admin["authenticated"] is True
    assert admin["pageSize"] == platform.settings.max_limit
    types = {layer["id"]: layer["types"] for layer in admin["layers"]}
    assert types["cctv"] == ["https://smartdatamodels.org/dataModel.Device/Camera"]
    assert types["traffic"] == types["air"] == types["beacons"]  # Devices, told apart by measures
    assert types["places"] == sorted(types["places"])
    assert len(types["places"]) == 2
    assert app_client.get("/map/layers", headers={"X-API-Key": "wrong"}).status_code == 401


def test_a_fresh_platform_builds_the_map_app(tmp_path: Path) -> None:
    from smartcity.config import Settings

    platform = build_platform(
        Settings(database_url=f"sqlite:///{tmp_path / 'fresh.db'}", context_offline=True)
    )
    with TestClient(create_app(platform)) as client:
        assert client.get("/map/district.json").json()["id"] == "changdong"


def test_a_configured_tile_server_is_drawn_under_the_district(platform: Platform) -> None:
    tiles = "https://tiles.dobong.example/{z}/{x}/{y}.png"
    platform.settings = platform.settings.model_copy(
        update={"map_tile_url": tiles, "map_tile_attribution": "© Dobong-gu"}
    )
    with TestClient(create_app(platform)) as client:
        style = client.get("/map/style.json").json()
    assert style["sources"]["basemap"] == {
        "type": "raster",
        "tiles": [tiles],
        "tileSize": 256,
        "maxzoom": 19,
        "attribution": "© Dobong-gu",
    }
    ids = [layer["id"] for layer in style["layers"]]
    assert ids[:3] == ["background", "basemap", "zones-fill"]  # under everything else
    fills = {layer["id"]: layer["paint"] for layer in style["layers"] if layer["type"] == "fill"}
    assert fills["zones-fill"]["fill-opacity"] == 0.25  # the tiles show through


def test_a_tile_url_must_be_a_template_of_this_or_another_server() -> None:
    with pytest.raises(ValidationError):
        Settings(map_tile_url="tiles.example/{z}/{x}/{y}.png")
    with pytest.raises(ValidationError):
        Settings(map_tile_url="https://tiles.example/tile.png")
    assert Settings(map_tile_url="/tiles/{z}/{x}/{y}.png").map_tile_url.startswith("/tiles")
