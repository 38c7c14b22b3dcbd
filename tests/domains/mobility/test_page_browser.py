"""The parking guidance page on a phone, in headless Chromium, in Korean and English."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from smartcity.core.clock import SystemClock
from tests.domains.mobility.parking.city import (
    add_concert,
    city_platform,
    city_settings,
    lot,
    make_parking_public,
    set_free,
)
from tests.web.live_server import serving
from tests.web.test_home_browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, _require_chromium


def shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"parking-{name}-{uuid.uuid4().hex[:8]}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


@pytest.mark.slow
def test_a_visitor_finds_parking_on_concert_night(tmp_path: Path, shared_data: Path) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    clock = SystemClock()
    platform = city_platform(city_settings(tmp_path, shared_data), clock)
    make_parking_public(platform)
    add_concert(platform, clock.now() + timedelta(hours=1))
    stale_lot = lot("changdong-bridge-riverside")
    set_free(platform, stale_lot, 33, clock.now() - timedelta(hours=2))
    with serving(platform) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(
                viewport={"width": 390, "height": 844}, is_mobile=True, locale="ko-KR"
            )
            outside: list[str] = []
            errors: list[str] = []
            page.on(
                "request",
                lambda r: (
                    None if r.url.startswith((url, "blob:", "data:")) else outside.append(r.url)
                ),
            )
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{url}/mobility/parking")
            page.wait_for_function("() => document.body.dataset.map === 'ready'", timeout=30_000)
            page.wait_for_selector("#results li", timeout=15_000)

            banner = page.locator("#event")
            assert banner.is_visible()
            assert "환승주차장" in banner.inner_text()
            first = page.locator("#results li").first
            assert "park-and-ride" in (first.get_attribute("class") or "")
            assert "환승" in first.inner_text()
            cards = page.locator("#results li").all_inner_texts()
            assert any("원" in text and "도보" in text for text in cards)
            page.wait_for_timeout(500)
            drawn = page.evaluate("() => document.querySelector('#map canvas') !== null")
            assert drawn
            shot(page, "ko")

            # A count that stopped updating says so, and never shows as free.
            page.select_option("#duration", "1h")
            page.click("#query button[type=submit]")
            page.wait_for_selector(f"#results li[data-site='{stale_lot}']", timeout=10_000)
            stale = page.locator(f"#results li[data-site='{stale_lot}']").inner_text()
            assert "갱신 중단" in stale
            assert "마지막 값 33" in stale

            page.click("#language")
            page.wait_for_function(
                "() => document.querySelector('#results li h2').textContent.match(/[A-Za-z]/)",
                timeout=10_000,
            )
            assert page.locator("#top h1").inner_text() == "Parking guidance"
            assert "park-and-ride" in page.locator("#event").inner_text()
            english = page.locator("#results").inner_text()
            assert "walk" in english
            assert "KRW" in english
            shot(page, "en")
            assert outside == [], "the page fetched something from outside the platform"
            assert errors == []
        finally:
            browser.close()
