"""Tests for the payment API, mounted on the platform's app, with real credentials."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.domains.mobility.parking.payment.api import PREFIX
from smartcity.platform import Platform, build_platform
from smartcity.web.app import create_app
from tests.web.conftest import TEST_SECRET, admin_key

TARIFF = {
    "base_minutes": 30,
    "base_fee": 1000,
    "unit_minutes": 10,
    "unit_fee": 500,
    "daily_cap": 20000,
    "discounts": {"light-car": 50},
}


@pytest.fixture
def platform(tmp_path: Any, shared_data: Any) -> Platform:
    return build_platform(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'broker.db'}",
            context_offline=True,
            context_preload_smart_data_models=str(shared_data / "smart-data-models"),
            auth_secret=TEST_SECRET,
        )
    )


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    app = create_app(platform)
    with TestClient(app) as test_client:
        test_client.headers["X-API-Key"] = admin_key(platform)
        yield test_client


def terminal(platform: Platform, client: TestClient, name: str, lots: list[str]) -> dict[str, str]:
    key = platform.accounts.create_key(Caller.system(""), name, ["parking-terminal"]).key
    response = client.post(
        f"{PREFIX}/grants", json={"principal": name, "scope": "lot", "ids": lots}
    )
    assert response.status_code == 204, response.text
    return {"X-API-Key": key}


def item(kind: str, counter: int, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "lotId": "lot-changdong",
        "terminalId": "gate-1",
        "counter": counter,
        "at": at,
        "cardId": "1010-2020-3030-4040",
        **extra,
    }


def set_up(client: TestClient) -> None:
    for lot, operator in (("lot-changdong", "op-dobong"), ("lot-arena", "op-arena")):
        response = client.put(
            f"{PREFIX}/lots/{lot}", json={"operatorId": operator, "tariff": TARIFF}
        )
        assert response.status_code == 200, response.text
    response = client.post(
        f"{PREFIX}/cards", json={"cardId": "1010-2020-3030-4040", "kind": "prepaid"}
    )
    assert response.status_code == 201, response.text


def test_offline_batch_with_duplicates_then_receipt_and_settlement(
    platform: Platform, client: TestClient
) -> None:
    set_up(client)
    gate = terminal(platform, client, "gate-changdong", ["lot-changdong"])
    topup = item("topup", 1, "2026-11-27T08:00:00+09:00", terminalId="kiosk", amount=10000)
    assert client.post(f"{PREFIX}/topups", json=topup, headers=gate).status_code == 200
    batch = [
        item("exit", 11, "2026-11-27T09:55:00+09:00"),
        item("entry", 10, "2026-11-27T09:00:00+09:00"),
        item("exit", 11, "2026-11-27T09:55:00+09:00"),
        {"kind": "exit", "counter": "twelve"},
        item("entry", 12, "2026-11-27T09:00:00+09:00", lotId="lot-arena"),
    ]
    response = client.post(f"{PREFIX}/transactions", json={"transactions": batch}, headers=gate)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == [
        "accepted",
        "accepted",
        "duplicate",
        "refused",
        "refused",
    ]
    assert results[0]["fee"] == 2500
    assert results[0]["balance"] == 7500
    assert "counter" in results[3]["detail"]
    assert "lot-arena" in results[4]["detail"]
    session_id = results[0]["sessionId"]
    text = client.get(f"{PREFIX}/sessions/{session_id}/receipt", params={"format": "text"})
    assert "주차요금 영수증 Parking receipt" in text.text
    assert client.get(f"{PREFIX}/sessions/{session_id}/receipt", headers=gate).status_code == 403
    settled = client.post(f"{PREFIX}/settlements", json={"businessDay": "2026-11-27"}).json()
    assert settled["settlements"][0]["net"] == 2500
    check = client.get(f"{PREFIX}/ledger/check").json()
    assert (check["sum"], check["unbalancedJournals"], check["cardMismatches"]) == (0, [], [])


def test_online_exit_refusal_is_a_problem_with_the_fee(
    platform: Platform, client: TestClient
) -> None:
    set_up(client)
    gate = terminal(platform, client, "gate-changdong", ["lot-changdong"])
    entry = item("entry", 1, "2026-11-27T09:00:00+09:00")
    assert client.post(f"{PREFIX}/entries", json=entry, headers=gate).status_code == 200
    exit_tap = item("exit", 2, "2026-11-27T09:55:00+09:00")
    response = client.post(f"{PREFIX}/exits", json=exit_tap, headers=gate)
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"].endswith("InsufficientBalance")
    assert (problem["fee"], problem["balance"]) == (2500, 0)


def test_writes_need_a_credential_and_the_right_role(
    platform: Platform, client: TestClient
) -> None:
    set_up(client)
    entry = item("entry", 1, "2026-11-27T09:00:00+09:00")
    anonymous = {"X-API-Key": ""}
    assert client.post(f"{PREFIX}/entries", json=entry, headers=anonymous).status_code == 401
    gate = terminal(platform, client, "gate-changdong", ["lot-changdong"])
    assert (
        client.put(
            f"{PREFIX}/lots/lot-x", json={"operatorId": "op", "tariff": TARIFF}, headers=gate
        ).status_code
        == 403
    )
    bad_tariff = {"operatorId": "op", "tariff": {**TARIFF, "unit_fee": 505.5}}
    assert client.put(f"{PREFIX}/lots/lot-x", json=bad_tariff).status_code == 400
