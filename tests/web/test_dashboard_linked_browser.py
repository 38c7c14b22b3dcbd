"""The incident panel's linked services in headless Chromium: an operator sends the 119 site
package and a green wave, and the escape routes to 112; the routes are drawn on the map, and the
fire agency sees the package sent to it (and nothing to send)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from smartcity.auth.principal import Caller
from smartcity.sim.district import load_district
from smartcity.sim.safety import safety_entities
from tests.web.dashboard_city import dashboard_settings, database, district_platform
from tests.web.live_server import serving
from tests.web.test_dashboard_browser import shot, sign_in
from tests.web.test_home_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium

ALLEY_MARKET = (127.0448, 37.6521)
"""Changdong Alley Market (창동골목시장), a building with a fire-risk grade in the safety data."""


def open_incident(url: str, key: str, body: dict[str, Any]) -> str:
    """Open an incident as an operator would, through the API; return its id."""
    point = {"type": "Point", "coordinates": list(ALLEY_MARKET)}
    response = httpx.post(
        f"{url}/ops/v1/incidents",
        json={"severity": "high", "location": point, **body},
        headers={"X-API-Key": key},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def route_features(page: Any) -> dict[str, int]:
    """Count the routes drawn on the map, by role."""
    counts: dict[str, int] = page.evaluate(
        """() => {
            const source = window.livemap.state.map.getSource('incident-packages');
            const counts = {};
            for (const f of (source ? source._data.features : [])) {
                counts[f.properties.role] = (counts[f.properties.role] || 0) + 1;
            }
            return counts;
        }"""
    )
    return counts


@pytest.mark.slow
def test_an_operator_sends_the_site_package_a_green_wave_and_escape_routes(
    tmp_path: Path,
) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    platform, _cameras = district_platform(dashboard_settings(database(tmp_path)))
    system = Caller.system("")
    safety = safety_entities(load_district())
    result, _ = platform.entities.batch_upsert(
        system, safety, lambda _: platform.contexts.resolve(safety[0]["@context"])
    )
    assert not result.errors, result.errors[:3]
    key = platform.accounts.create_key(system, "linked-operator", ["operator"]).key
    with serving(platform, timeout=60) as url, sync_playwright() as pw:
        fire_body = {"type": "fire", "subtype": "building", "title": "시장 화재"}
        fire = open_incident(url, key, fire_body)
        crime = open_incident(url, key, {"type": "crime", "subtype": "robbery", "title": "강도"})
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            operator = browser.new_page(viewport={"width": 1440, "height": 900}, locale="ko-KR")
            errors: list[str] = []
            operator.on("pageerror", lambda error: errors.append(str(error)))
            sign_in(operator, url, "kim")
            operator.evaluate("(id) => window.dashboard.select(id)", fire)
            operator.click("button[data-package='fire-site']")
            sent = operator.wait_for_selector(".packages li[data-package='fire-site']")
            assert sent is not None
            assert "119" in sent.inner_text()
            assert "fire" in sent.inner_text()  # the agency it went to
            assert "소화전" in sent.inner_text()
            operator.wait_for_function(
                "() => (window.livemap.state.map.getSource('incident-packages')?._data.features"
                " || []).length > 0"
            )
            assert route_features(operator) == {"access": 1}
            operator.click("button[data-action='green-wave']")
            wave = operator.wait_for_selector(".packages .green-wave")
            assert wave is not None
            assert "긴급차량 우선신호 요청" in wave.inner_text()
            shot(operator, "linked-fire")

            operator.evaluate("(id) => window.dashboard.select(id)", crime)
            operator.click("button[data-package='escape-routes']")
            routes = operator.wait_for_selector(".packages li[data-package='escape-routes']")
            assert routes is not None
            assert "도주 경로" in routes.inner_text()
            operator.wait_for_function(
                "() => (window.livemap.state.map.getSource('incident-packages')?._data.features"
                " || []).some((f) => f.properties.role === 'escape')"
            )
            assert route_features(operator).get("escape", 0) >= 1
            assert "access" not in route_features(operator)  # only the selected incident's
            shot(operator, "linked-escape")
            assert errors == []

            agency = browser.new_page(viewport={"width": 1440, "height": 900}, locale="ko-KR")
            sign_in(agency, url, "fire")
            agency.evaluate("(id) => window.dashboard.select(id)", fire)
            package = agency.wait_for_selector(".packages li[data-package='fire-site']")
            assert package is not None
            assert agency.locator("button[data-package]").count() == 0  # nothing to send
            assert agency.locator("button[data-action='green-wave']").count() == 0
        finally:
            browser.close()
