"""The landing page in a real headless Chromium: bilingual, lists what the broker holds."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.serving import running_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("SMARTCITY_SCREENSHOTS", "var/screenshots"))


def _require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = "Debian's chromium is not installed (apt-get install chromium)"
    if os.environ.get("SMARTCITY_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.slow
def test_home_page_in_chromium(tmp_path: Path) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with (
        running_server(f"sqlite:///{tmp_path / 'home.db'}", "--seed") as url,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(url + "/")
            assert "창동 스마트시티" in page.title()
            assert "Changdong Smart City Platform" in page.title()
            rows = page.locator("table tr td:first-child a").all_inner_texts()
            assert rows == ["OffStreetParking", "PointOfInterest", "TransportStation"]
            counts = page.locator("table tr td:nth-child(2)").all_inner_texts()
            assert counts == ["4", "3", "2"]
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "home.png"), full_page=True)
            page.click("text=OffStreetParking")
            page.wait_for_load_state()
            assert '"urn:ngsi-ld:OffStreetParking:changdong-station-public"' in page.content()
        finally:
            browser.close()
