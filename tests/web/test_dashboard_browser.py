"""The operations dashboard end to end in headless Chromium, over the Changdong district.

A camera's analytics reading goes through the real path (broker → change log → rule engine's
built-in assault rule → alert fact → incident intake → incident stream) onto the operator's
map; the operator acknowledges it and shares two cameras with the police, who see exactly
those two; closing the incident ends the share.
"""

from __future__ import annotations

import math
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from smartcity.auth.principal import Caller
from tests.web.dashboard_city import (
    PASSWORDS,
    analytics_reading,
    dashboard_settings,
    database,
    district_platform,
    placed_at_once,
)
from tests.web.live_server import serving
from tests.web.test_home_browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, _require_chromium

ARENA = (127.0515, 37.6529)
STATION_LOT = "urn:ngsi-ld:OffStreetParking:changdong-station-public"
LINK = '<urn:smartcity:context:changdong>; rel="http://www.w3.org/ns/json-ld#context"'


def shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"dashboard-{name}-{uuid.uuid4().hex[:8]}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def nearest(cameras: list[dict[str, Any]], lon: float, lat: float) -> dict[str, Any]:
    def distance(camera: dict[str, Any]) -> float:
        x, y = camera["location"]["value"]["coordinates"]
        return math.hypot((x - lon) * math.cos(math.radians(lat)), y - lat)

    return min(cameras, key=distance)


def sign_in(page: Any, url: str, name: str, screenshot: bool = False) -> None:
    page.goto(url + "/ops")
    assert page.locator("#login").is_visible()
    if screenshot:
        shot(page, "login")
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORDS[name])
    page.click("#login-form button[type=submit]")
    page.wait_for_function("() => window.livemap && window.livemap.loadedAt", timeout=30_000)
    page.wait_for_function("() => window.dashboard.state.streamState === 'live'", timeout=10_000)


def link_status(page: Any, incident: str, camera: str) -> int:
    """Ask for a video link from the page, with its credential; return the HTTP status."""
    status: int = page.evaluate(
        """async ([incident, camera]) => {
            const kept = JSON.parse(sessionStorage.getItem('smartcity.map.credential'));
            const response = await fetch(
                `/ops/v1/incidents/${encodeURIComponent(incident)}/cameras/${encodeURIComponent(camera)}/link`,
                {method: 'POST', headers: {Authorization: `Bearer ${kept.secret}`}});
            return response.status;
        }""",
        [incident, camera],
    )
    return status


@pytest.mark.slow
def test_an_assault_reaches_the_map_and_the_police_see_only_the_shared_cameras(
    tmp_path: Path,
) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    platform, cameras = district_platform(dashboard_settings(database(tmp_path)))
    admin = platform.accounts.create_key(Caller.system(""), "dashboard-admin", ["admin"]).key
    camera = nearest(cameras, *ARENA)
    with serving(platform, timeout=60) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            operator = browser.new_page(viewport={"width": 1440, "height": 900}, locale="ko-KR")
            outside: list[str] = []
            errors: list[str] = []
            for page in (operator,):
                page.on(
                    "request",
                    lambda r: (
                        None if r.url.startswith((url, "blob:", "data:")) else outside.append(r.url)
                    ),
                )
                page.on("pageerror", lambda error: errors.append(str(error)))
            sign_in(operator, url, "kim", screenshot=True)
            assert "창동 통합상황관제" in operator.title()  # Korean by default
            assert operator.evaluate("() => window.livemap.counts().cctv") == 300
            assert "kim" in operator.locator("#user").inner_text()
            assert operator.locator("#incident-list li.empty").count() == 1

            # The camera's analytics see violence at night: the reading goes to the broker.
            reading = analytics_reading(camera, placed_at_once(platform))
            started = time.monotonic()
            response = httpx.post(
                f"{url}/ngsi-ld/v1/entities", json=reading, headers={"X-API-Key": admin}
            )
            assert response.status_code == 201, response.text
            operator.wait_for_selector(".incident-marker", timeout=15_000)
            print(f"the assault on the map {time.monotonic() - started:.2f} s after the reading")
            incident = operator.evaluate("() => [...window.dashboard.state.incidents.values()][0]")
            assert (incident["type"], incident["subtype"]) == ("crime", "assault")
            assert incident["severity"] == "critical"
            assert incident["status"] == "new"
            marker = operator.locator(f".incident-marker[data-incident='{incident['id']}']")
            assert "new" in (marker.get_attribute("class") or "")
            assert operator.locator("#kpi-open .value").inner_text() == "1"

            # The operator opens it, acknowledges it and ticks the first step of the SOP.
            operator.click(f"#incident-list li[data-incident='{incident['id']}']")
            operator.click("#detail .actions button[data-action=acknowledge]")
            operator.wait_for_selector("#detail .status.acknowledged", timeout=10_000)
            first_step = operator.locator("#detail .sop li").first
            first_step.locator("input").check()
            operator.wait_for_selector("#detail .sop li.done", timeout=10_000)
            operator.wait_for_function(
                "() => document.querySelector('#kpi-ack .value').textContent !== '–'"
            )

            # Cameras near it; two are shared with the police.
            operator.wait_for_selector("#detail ul.cameras li", timeout=10_000)
            near = operator.locator("#detail ul.cameras li").evaluate_all(
                "(items) => items.map((item) => item.dataset.camera)"
            )
            assert len(near) >= 3
            shared, unshared = near[:2], near[2]
            for camera_id in shared:
                operator.locator(f"#detail ul.cameras li[data-camera='{camera_id}'] input").check()
            operator.fill("#share-agency", "police")
            operator.click("#share-button")
            operator.wait_for_selector("#detail ul.shares li", timeout=10_000)
            assert "police" in operator.locator("#detail ul.shares li").inner_text()
            kinds = operator.locator("#detail .timeline li").all_inner_texts()
            assert any("영상 공유" in kind for kind in kinds)
            # (The panel is drawn again as events come: scroll with whatever is there now.)
            operator.evaluate("() => document.querySelector('#detail ul.shares').scrollIntoView()")
            shot(operator, "operator-ko")

            # A parking lot's last hours, from the temporal API, drawn when it is clicked.
            now = platform.clock.now()
            for minutes, free in ((50, 120), (35, 80), (20, 41), (5, 12)):
                at = (now - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
                patched = httpx.patch(
                    f"{url}/ngsi-ld/v1/entities/{STATION_LOT}/attrs",
                    headers={"X-API-Key": admin, "Link": LINK},
                    json={
                        "availableSpotNumber": {"type": "Property", "value": free, "observedAt": at}
                    },
                )
                assert patched.status_code == 204, patched.text
            operator.wait_for_function(
                "(id) => window.livemap.entity(id)?.attributes.availableSpotNumber?.value === 12",
                arg=STATION_LOT,
                timeout=10_000,
            )
            operator.evaluate(
                "(id) => window.livemap.state.map.jumpTo("
                "{center: window.livemap.entity(id).position})",
                STATION_LOT,
            )
            operator.wait_for_timeout(800)
            point = operator.evaluate(
                "(id) => window.livemap.state.map.project(window.livemap.entity(id).position)",
                STATION_LOT,
            )
            box = operator.locator("#map").bounding_box()
            assert box is not None
            operator.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
            operator.wait_for_selector("#chart svg path.line", timeout=10_000)
            assert "availableSpotNumber" in operator.locator("#trend-title").inner_text()
            assert operator.locator("#chart svg text.axis").count() > 3
            operator.evaluate("() => document.querySelector('#trend').scrollIntoView()")
            shot(operator, "operator-chart")

            # The police: exactly the incident and the two cameras shared with them.
            police = browser.new_context(
                viewport={"width": 1440, "height": 900}, locale="ko-KR"
            ).new_page()
            police.on("pageerror", lambda error: errors.append(str(error)))
            sign_in(police, url, "police")
            police.wait_for_function("() => window.dashboard.state.incidents.size === 1")
            assert police.evaluate("() => [...window.dashboard.state.incidents.keys()]") == [
                incident["id"]
            ]
            assert police.evaluate("() => window.livemap.counts().cctv") == 2
            police.click(f"#incident-list li[data-incident='{incident['id']}']")
            police.wait_for_selector("#detail ul.shares li", timeout=10_000)
            listed = police.locator("#detail ul.shares li").evaluate_all(
                "(items) => items.map((item) => item.dataset.camera)"
            )
            assert sorted(listed) == sorted(shared)
            assert police.locator("#detail .actions").count() == 0  # no lifecycle for agencies
            assert police.locator("#detail ul.cameras").count() == 0
            police.locator(f"#detail ul.shares li[data-camera='{shared[0]}'] button").click()
            police.wait_for_function(
                "() => { const i = document.querySelector('#detail .viewer img');"
                " return i && i.complete && i.naturalWidth > 0; }",
                timeout=10_000,
            )
            video = police.evaluate("() => document.querySelector('#detail .viewer img').src")
            # A third camera, however its id is guessed, is not there for the police.
            assert link_status(police, incident["id"], unshared) == 404
            assert link_status(police, incident["id"], "urn:ngsi-ld:Camera:nope") == 404
            shot(police, "police-ko")

            # Closing the incident ends the share: gone from the police's view, links dead.
            operator.fill("#action-note", "용의자 검거, 상황 종료")
            operator.click("#detail .actions button[data-action=close]")
            operator.wait_for_selector(".incident-marker", state="detached", timeout=10_000)
            assert operator.locator("#incident-list li.empty").count() == 1
            police.wait_for_function(
                "() => window.dashboard.state.incidents.size === 0", timeout=15_000
            )
            assert link_status(police, incident["id"], shared[0]) == 404
            assert httpx.get(video).status_code == 403
            police.wait_for_function("() => window.livemap.counts().cctv === 0", timeout=15_000)

            # English, switched on the page.
            operator.click("#lang-toggle")
            assert "Changdong Operations Center" in operator.title()
            assert operator.locator("#kpi-open .label").text_content() == "Open incidents"
            shot(operator, "operator-en")

            # A phone: the map on top, the incidents below it; no KPI tiles.
            phone = browser.new_context(
                viewport={"width": 390, "height": 844}, is_mobile=True, locale="ko-KR"
            ).new_page()
            phone.on("pageerror", lambda error: errors.append(str(error)))
            sign_in(phone, url, "kim")
            drawn = phone.locator("#map").bounding_box()
            sheet = phone.locator("#ops").bounding_box()
            assert drawn is not None
            assert sheet is not None
            assert drawn["height"] > 300
            assert sheet["y"] >= drawn["y"] + drawn["height"] - 1
            assert not phone.locator("#kpis").is_visible()
            shot(phone, "phone")
            assert outside == [], "the dashboard fetched something from outside the platform"
            assert errors == []
        finally:
            browser.close()
