"""The parking HTTP API and its page, over the Changdong city, with real credentials."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smartcity.auth.principal import Caller
from smartcity.core.clock import ManualClock
from smartcity.platform import Platform
from smartcity.web.app import create_app
from tests.domains.mobility.parking.city import ARENA, lot, make_parking_public

API = "/mobility/v1/parking"
NEAR = f"{ARENA[0]},{ARENA[1]}"
SCHOOL = lot("saesol-elementary-shared")
BRIDGE = lot("changdong-bridge-riverside")


@pytest.fixture
def client(city: Platform) -> Iterator[TestClient]:
    make_parking_public(city)
    with TestClient(create_app(city)) as test_client:
        yield test_client


def key(city: Platform, name: str, roles: list[str], ids: tuple[str, ...] = ()) -> dict[str, str]:
    created = city.accounts.create_key(Caller.system(), name, roles, list(ids))
    return {"X-API-Key": created.key}


def test_guidance_answers_anyone_for_public_sites(client: TestClient, clock: ManualClock) -> None:
    at = (clock.now() + timedelta(minutes=20)).isoformat()
    answer = client.get(f"{API}/guidance", params={"near": NEAR, "at": at, "duration": "90m"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["sites"]
    assert body["until"] == (clock.now() + timedelta(minutes=110)).isoformat()
    assert answer.headers["Cache-Control"] == "no-store"
    english = client.get(f"{API}/guidance", params={"near": NEAR, "lang": "en", "limit": 25})
    names = [site["name"] for site in english.json()["sites"]]
    assert "Seoul Arena Parking (planned)" in names


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"near": "127.05"}, "longitude,latitude"),
        ({"near": "37.65,127.05"}, "not a position"),
        ({"near": NEAR, "duration": "two hours"}, "duration"),
        ({"near": NEAR, "at": "tomorrow"}, "ISO 8601"),
        ({"near": NEAR, "lang": "ja"}, "lang"),
        ({"near": NEAR, "limit": "100"}, "limit"),
    ],
)
def test_bad_guidance_questions_get_problem_details(
    client: TestClient, params: dict[str, str], message: str
) -> None:
    answer = client.get(f"{API}/guidance", params=params)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert message in answer.text


def test_gate_reads_update_the_lot_for_its_gate_device_only(
    city: Platform, client: TestClient, clock: ManualClock
) -> None:
    gate = key(city, "bridge-gate", ["device"], (BRIDGE,))
    resident = key(city, "resident", ["public"])
    now = clock.now()
    again = (now + timedelta(seconds=1)).isoformat()
    reads = {
        "reads": [
            {"at": now.isoformat(), "direction": "entry", "plate": "12가 3456"},
            {"at": again, "direction": "entry", "plate": "12가3456"},
            {"at": now.isoformat(), "direction": "exit", "plate": "98러 7654"},
            {"at": now.isoformat(), "direction": "entry", "plate": "55다 1111"},
        ]
    }
    before = client.get(f"{API}/sites/{BRIDGE}/availability").json()
    assert client.post(f"{API}/sites/{BRIDGE}/gate-reads", json=reads).status_code == 401
    denied = client.post(f"{API}/sites/{BRIDGE}/gate-reads", json=reads, headers=resident)
    assert denied.status_code == 403
    other = client.post(f"{API}/sites/{SCHOOL}/gate-reads", json=reads, headers=gate)
    assert other.status_code == 403
    counted = client.post(f"{API}/sites/{BRIDGE}/gate-reads", json=reads, headers=gate)
    assert counted.status_code == 200, counted.text
    body = counted.json()
    assert (body["entries"], body["exits"], body["repeatsIgnored"]) == (2, 1, 1)
    assert body["free"] == before["free"] - 1
    after = client.get(f"{API}/sites/{BRIDGE}/availability").json()
    assert (after["state"], after["source"], after["free"]) == ("live", "counter", body["free"])
    bad = client.post(
        f"{API}/sites/{BRIDGE}/gate-reads", json={"reads": [{"at": "x"}]}, headers=gate
    )
    assert bad.status_code == 400


def test_reservations_over_http(city: Platform, client: TestClient, clock: ManualClock) -> None:
    kim, lee = key(city, "kim", ["public"]), key(city, "lee", ["public"])
    start = clock.now() + timedelta(minutes=30)
    body = {
        "site": SCHOOL,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=2)).isoformat(),
    }
    assert client.post(f"{API}/reservations", json=body).status_code == 401
    made = client.post(f"{API}/reservations", json=body, headers=kim)
    assert made.status_code == 201, made.text
    reservation: dict[str, Any] = made.json()
    assert made.headers["Location"] == f"{API}/reservations/{reservation['id']}"
    assert [r["id"] for r in client.get(f"{API}/reservations", headers=kim).json()] == [
        reservation["id"]
    ]
    assert client.get(f"{API}/reservations", headers=lee).json() == []
    path = f"{API}/reservations/{reservation['id']}"
    assert client.get(path, headers=lee).status_code == 404
    assert client.post(f"{path}/cancel", headers=lee).status_code == 404
    cancelled = client.post(f"{path}/cancel", headers=kim)
    assert cancelled.json()["status"] == "cancelled"
    assert client.post(f"{path}/cancel", headers=kim).status_code == 409
    naive = {**body, "start": datetime(2026, 11, 27, 19, 0).isoformat()}
    assert client.post(f"{API}/reservations", json=naive, headers=kim).status_code == 400


def test_the_guidance_page_and_its_files_are_served(client: TestClient) -> None:
    page = client.get("/mobility/parking")
    assert page.status_code == 200
    assert "/map/static/maplibre-gl.js" in page.text
    script = client.get("/mobility/parking/static/guidance.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert client.get("/mobility/parking/static/secret.py").status_code == 404
    assert "/mobility/v1/parking/guidance" in client.get("/openapi.json").json()["paths"]


def test_the_operator_overview_needs_a_parking_revenue_reader(
    client: TestClient, city: Platform
) -> None:
    path = f"{API}/operator/overview"
    assert client.get(path).status_code == 401
    terminal = key(city, "gate-terminal", ["parking-terminal"])
    assert client.get(path, headers=terminal).status_code == 403
    office = key(city, "city-office", ["operator"])
    answer = client.get(path, headers=office, params={"days": 3, "lang": "en"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["operators"] is None
    assert body["lots"] == []  # no lot registered for payment yet
    assert answer.headers["Cache-Control"] == "no-store"
    assert client.get(path, headers=office, params={"days": 0}).status_code == 400
    page = client.get("/mobility/parking/operator")
    assert page.status_code == 200
    assert "operator.js" in page.text
    assert client.get("/mobility/parking/static/operator.js").status_code == 200
