"""The parking operator page in headless Chromium: sign in, own lots only, Korean and English."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path

import pytest

from smartcity.auth.principal import Caller, Role
from smartcity.core.clock import SystemClock
from smartcity.domains.mobility.parking.operator_view import OperatorView
from smartcity.domains.mobility.parking.payment.access import OPERATOR
from smartcity.domains.mobility.parking.payment.model import CardKind
from smartcity.domains.mobility.parking.payment.settlement import settle_day
from smartcity.domains.mobility.parking.tariff import EXAMPLE_TARIFF, KST
from tests.domains.mobility.parking.city import city_platform, city_settings, write_lot_history
from tests.domains.mobility.parking.test_operator_view import ARENA_LOT, OFFICE_LOT, stay
from tests.domains.mobility.test_page_browser import shot
from tests.web.live_server import serving
from tests.web.test_home_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium

SYSTEM = Caller.system()
PASSWORD = "a long enough password 1"


@pytest.mark.slow
def test_a_lot_operator_signs_in_and_sees_its_own_lots(tmp_path: Path, shared_data: Path) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    clock = SystemClock()
    platform = city_platform(city_settings(tmp_path, shared_data), clock)
    view: OperatorView = platform.services["mobility"].operator
    payment = view.payment
    payment.register_lot(SYSTEM, ARENA_LOT, "op-arena", EXAMPLE_TARIFF)
    payment.register_lot(SYSTEM, OFFICE_LOT, "op-dobong", EXAMPLE_TARIFF)
    payment.issue_card(SYSTEM, "card-1", CardKind.POSTPAID)
    # Yesterday's stays at 10:00 and 12:00 in Seoul: whole within that business day whenever
    # the test runs (late in the evening a stay from 'now less a day' ends the next day).
    today = clock.now().astimezone(KST).date()
    yesterday = datetime.combine(today - timedelta(days=1), time(10, 0), KST)
    payment.submit(
        SYSTEM,
        [
            *stay("card-1", OFFICE_LOT, yesterday, 90, 1),
            *stay("card-1", ARENA_LOT, yesterday + timedelta(hours=2), 200, 3),
            *stay("card-1", OFFICE_LOT, clock.now() - timedelta(days=2), None, 5),
        ],
    )
    settle_day(payment, SYSTEM, yesterday.astimezone(KST).date())
    write_lot_history(platform, clock.now(), (OFFICE_LOT, ARENA_LOT), 2, live_at=clock.now())
    platform.accounts.add_user(SYSTEM, "dobong-staff", PASSWORD, [Role.PARKING_OPERATOR.value])
    payment.grants.grant(SYSTEM, "dobong-staff", OPERATOR, ["op-dobong"])
    platform.accounts.add_user(SYSTEM, "gate", PASSWORD, [Role.PARKING_TERMINAL.value])

    with serving(platform) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="ko-KR")
            outside: list[str] = []
            errors: list[str] = []
            page.on(
                "request",
                lambda r: None if r.url.startswith((url, "data:")) else outside.append(r.url),
            )
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{url}/mobility/parking/operator")
            page.wait_for_selector("#login:not([hidden])", timeout=15_000)
            assert page.locator("#board").is_hidden()

            # A terminal's account has no business here.
            page.fill("#name", "gate")
            page.fill("#password", PASSWORD)
            page.click("#login button[type=submit]")
            page.wait_for_function(
                "() => document.querySelector('#login-error').textContent.length > 0"
            )
            assert "parking-operator" in page.locator("#login-error").inner_text()

            page.fill("#name", "dobong-staff")
            page.fill("#password", PASSWORD)
            page.click("#login button[type=submit]")
            page.wait_for_function("() => document.body.dataset.state === 'ready'", timeout=20_000)
            lots = page.locator("#lots .lot")
            assert lots.count() == 1
            assert lots.first.get_attribute("data-lot") == OFFICE_LOT
            korean = platform.services["mobility"].parking.site_names("", "ko")[OFFICE_LOT]
            assert korean in lots.first.inner_text()
            assert page.locator("#lots .lot svg polyline.past").count() == 1
            assert page.locator("#lots .lot svg polyline.ahead").count() == 1
            assert "op-dobong" in page.locator("#status").inner_text()
            revenue = page.locator("#revenue").inner_text()
            assert "op-dobong" in revenue
            assert "op-arena" not in revenue
            assert "원" in revenue
            settlements = page.locator("#settlements").inner_text()
            assert "op-dobong" in settlements
            assert "op-arena" not in settlements
            assert "출차 없음" in page.locator("#incomplete").inner_text()

            # Flag the car that never left: reconciliation (scoped to op-dobong, server side).
            page.click("#reconcile button[type=submit]")
            page.wait_for_function(
                "() => document.querySelector('#reconcile-result').textContent.includes('1')"
            )
            page.wait_for_function(
                "() => document.querySelector('#incomplete').textContent.includes('대사 대상')"
            )
            assert "예측" in page.locator("#model").inner_text()
            # Settling yesterday again posts nothing new (idempotent): still one revision.
            page.click("#settle button[type=submit]")
            page.wait_for_function(
                "() => document.querySelector('#settle-result').textContent === '정산 1건'"
            )
            page.wait_for_function("() => document.body.dataset.state === 'ready'")
            assert page.locator("#settlements tbody tr").count() == 1
            shot(page, "operator-ko")

            page.click("#language")
            page.wait_for_function(
                "() => document.querySelector('#top h1').textContent === 'Parking operations'"
            )
            page.wait_for_function("() => document.body.dataset.state === 'ready'")
            page.wait_for_function(
                "() => /^[A-Za-z]/.test(document.querySelector('#lots .lot h3').textContent)"
            )
            assert "KRW" in page.locator("#revenue").inner_text()
            assert "flagged" in page.locator("#incomplete").inner_text()
            shot(page, "operator-en")

            page.click("#logout")
            page.wait_for_selector("#login:not([hidden])")
            assert outside == [], "the page fetched something from outside the platform"
            assert errors == []
        finally:
            browser.close()
            platform.close()
