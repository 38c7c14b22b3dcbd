"""The live map in a real headless Chromium over a server with the Changdong district loaded."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving import create_admin_key, running_server
from tests.web.test_home_browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, _require_chromium

LINK = '<urn:smartcity:context:changdong>; rel="http://www.w3.org/ns/json-ld#context"'
STATION_LOT = "urn:ngsi-ld:OffStreetParking:changdong-station-public"
DISTRICT_COUNTS = {
    "cctv": 300,
    "traffic": 150,
    "parking": 31,
    "streetlights": 844,
    "waste": 200,
    "air": 30,
    "beacons": 50,
}
"""What the Changdong model holds (district.yaml: 800 street lamps and 44 security lights by the
cameras inside places; parking.csv with its 25 lots and
parking_details.yaml with 4 shared sites and 2 resident-priority zones), by map layer."""


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def set_free_spaces(url: str, key: str, lot: str, free: int, observed: datetime) -> None:
    response = httpx.patch(
        f"{url}/ngsi-ld/v1/entities/{lot}/attrs",
        headers={"X-API-Key": key, "Link": LINK},
        json={
            "availableSpotNumber": {"type": "Property", "value": free, "observedAt": iso(observed)}
        },
        timeout=10,
    )
    assert response.status_code == 204, response.text


def shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"livemap-{name}-{uuid.uuid4().hex[:8]}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


@pytest.mark.slow
def test_the_live_map_shows_the_district_and_its_changes(tmp_path: Path) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    database = f"sqlite:///{tmp_path / 'map.db'}"
    with running_server(database, "--district", timeout=60) as url, sync_playwright() as pw:
        key = create_admin_key(database, name="map-admin")
        public = httpx.put(
            f"{url}/auth/types/public/OffStreetParking",
            headers={"X-API-Key": key, "Link": LINK},
            timeout=10,
        )
        assert public.status_code == 204
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860}, locale="ko-KR")
            outside: list[str] = []
            errors: list[str] = []
            page.on(
                "request",
                lambda r: (
                    None if r.url.startswith((url, "blob:", "data:")) else outside.append(r.url)
                ),
            )
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url + "/map")
            page.wait_for_function(
                "() => window.livemap && window.livemap.loadedAt", timeout=30_000
            )

            # Without a credential: the public types only.
            counts = page.evaluate("() => window.livemap.counts()")
            assert counts["parking"] == 29  # OffStreetParking is public, OnStreetParking not
            assert sum(counts.values()) == 29
            assert "공개된 유형만" in page.locator("#who").inner_text()

            # A key given once, kept for the tab (sessionStorage), shows everything.
            page.fill("#credential", key)
            page.click("#credential-form button[type=submit]")
            page.wait_for_function("() => window.livemap.counts().cctv === 300", timeout=30_000)
            counts = page.evaluate("() => window.livemap.counts()")
            assert {name: counts[name] for name in DISTRICT_COUNTS} == DISTRICT_COUNTS
            assert counts["places"] > 200
            assert counts["parking-spots"] > 0
            stored = page.evaluate("() => sessionStorage.getItem('smartcity.map.credential')")
            assert key in stored
            assert page.evaluate("() => localStorage.getItem('smartcity.map.credential')") is None
            toggles = page.locator("#layer-list li[data-layer=cctv] .count").inner_text()
            assert toggles == "300"

            # The layers are drawn: roads from the district's files, devices as circles.
            page.wait_for_timeout(500)
            drawn = page.evaluate(
                """() => {
                const map = window.livemap.state.map;
                const count = (id) => map.queryRenderedFeatures({layers: [id]}).length;
                return {roads: count('roads'), zones: count('zones-fill'),
                        cctv: count('live-cctv'), lights: count('live-streetlights'),
                        parking: count('live-parking')};
            }"""
            )
            assert drawn["roads"] > 30
            assert drawn["zones"] >= 5
            assert drawn["cctv"] > 200
            assert drawn["lights"] > 500
            assert drawn["parking"] > 20

            # A change made through the API is on the map within seconds.
            now = datetime.now(UTC)
            before = page.evaluate("(id) => window.livemap.entity(id).status", STATION_LOT)
            assert before != "full"
            started = time.monotonic()
            set_free_spaces(url, key, STATION_LOT, 0, now)
            page.wait_for_function(
                "(id) => window.livemap.entity(id).status === 'full'", arg=STATION_LOT, timeout=5000
            )
            print(f"change on the map after {time.monotonic() - started:.2f} s")
            page.wait_for_timeout(600)  # the next redraw of the layer
            point = page.evaluate(
                """(id) => {
                const map = window.livemap.state.map;
                const p = map.project(window.livemap.entity(id).position);
                const hit = map.queryRenderedFeatures(p, {layers: ['live-parking']});
                // The colour comes from the feature state, set as the entity changes.
                const drawn = hit.length ? (hit[0].state.status ?? hit[0].properties.status) : null;
                return {x: p.x, y: p.y, status: drawn};
            }""",
                STATION_LOT,
            )
            assert point["status"] == "full"
            page.mouse.click(point["x"], point["y"])
            popup = page.locator(".entity-popup")
            popup.wait_for(timeout=5000)
            text = popup.inner_text()
            assert "창동역 공영주차장" in text
            assert "만차" in text
            assert "빈 자리" in text

            # An old observation is marked stale.
            other = "urn:ngsi-ld:OffStreetParking:nowon-station-public"
            set_free_spaces(url, key, other, 40, now - timedelta(hours=2))
            page.wait_for_function(
                "(id) => window.livemap.entity(id).stale === true", arg=other, timeout=5000
            )
            shot(page, "ko")

            # English, switched on the page.
            page.click("#language")
            assert "Changdong live map" in page.title()
            names = page.locator("#layer-list .name").all_inner_texts()
            assert "CCTV cameras" in names
            assert "Parking lots" in names
            assert "Free spaces" in page.locator(".entity-popup").inner_text() or (
                "free spaces" in page.locator(".entity-popup").inner_text()
            )
            shot(page, "en")

            # A phone: the panel becomes a sheet at the bottom, the map stays usable above it.
            phone = browser.new_page(
                viewport={"width": 390, "height": 844}, is_mobile=True, locale="ko-KR"
            )
            phone.goto(f"{url}/map#key={key}")  # a link that signs in, as `smartcity demo` prints
            phone.wait_for_function(
                "() => window.livemap && window.livemap.loadedAt", timeout=30_000
            )
            assert phone.evaluate("() => window.livemap.counts().cctv") == 300
            assert phone.evaluate("() => location.hash") == ""
            panel = phone.locator("#panel").bounding_box()
            assert panel is not None
            assert panel["y"] > 844 * 0.45
            assert panel["width"] > 380
            shot(phone, "phone")
            assert outside == [], "the map fetched something from outside the platform"
            assert errors == []
        finally:
            browser.close()
