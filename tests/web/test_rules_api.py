"""The rules API: rules with versions, roles, validation, firings, metrics and backtests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.platform import Platform, build_platform
from smartcity.rules.actions import ActionRunner
from smartcity.rules.firing import ActionSpec, Evidence, Firing
from smartcity.web.app import create_app
from tests.bus.conftest import run
from tests.rules.support import threshold_rule, write_reading
from tests.rules.threshold_engine import ThresholdPlug
from tests.web.conftest import admin_key

ALERT = {"kind": "alert", "params": {"category": "environment"}}


@pytest.fixture
def platform(settings: Settings) -> Platform:
    return build_platform(settings, rules_engine=ThresholdPlug())


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        test_client.headers["X-API-Key"] = admin_key(platform)
        yield test_client


def key_with(platform: Platform, role: str, tenant: str = "") -> str:
    """Create an API key with one role; return it."""
    return platform.accounts.create_key(Caller.system(tenant), f"k-{role}", [role]).key


def rule(rule_id: str = "hot", above: float = 30) -> dict[str, object]:
    """Return a threshold rule document with its id."""
    return {"id": rule_id, **threshold_rule(above, [ALERT])}


def test_a_rule_is_created_versioned_disabled_and_deleted(client: TestClient) -> None:
    created = client.post("/rules/v1/rules", json=rule())
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == "/rules/v1/rules/hot"
    assert created.json()["version"] == 1
    assert created.json()["enabled"] is True
    changed = client.put("/rules/v1/rules/hot", json=rule(above=33))
    assert changed.json()["version"] == 2
    assert changed.json()["rule"]["above"] == 33
    first = client.get("/rules/v1/rules/hot/versions/1")
    assert first.json()["rule"]["above"] == 30
    assert client.post("/rules/v1/rules/hot/disable").json()["enabled"] is False
    assert client.post("/rules/v1/rules/hot/enable").json()["enabled"] is True
    assert [r["id"] for r in client.get("/rules/v1/rules").json()] == ["hot"]
    assert client.post("/rules/v1/rules", json=rule()).status_code == 409
    assert client.delete("/rules/v1/rules/hot").status_code == 204
    gone = client.get("/rules/v1/rules/hot")
    assert gone.status_code == 404
    assert gone.headers["Content-Type"].startswith("application/problem+json")
    assert client.get("/rules/v1/rules").json() == []


def test_an_invalid_rule_is_refused_with_what_to_fix(client: TestClient) -> None:
    bad = {"id": "bad id!", "attribute": 3}
    checked = client.post("/rules/v1/validate", json=bad)
    assert checked.status_code == 200
    assert checked.json()["valid"] is False
    problems = " ".join(checked.json()["problems"])
    assert "rule id" in problems
    assert "`above` must be a number" in problems
    refused = client.post("/rules/v1/rules", json=bad)
    assert refused.status_code == 400
    assert "`above` must be a number" in refused.json()["detail"]
    assert client.post("/rules/v1/rules", content=b"{").status_code == 400
    assert client.put("/rules/v1/rules/other", json=rule("hot")).status_code == 400


def test_analysts_read_rules_operators_manage_them_anonymous_callers_neither(
    platform: Platform, client: TestClient
) -> None:
    assert client.post("/rules/v1/rules", json=rule()).status_code == 201
    analyst = {"X-API-Key": key_with(platform, "analyst")}
    operator = {"X-API-Key": key_with(platform, "operator")}
    agency = {"X-API-Key": key_with(platform, "agency")}
    assert client.get("/rules/v1/rules", headers=analyst).status_code == 200
    assert client.post("/rules/v1/rules/hot/disable", headers=analyst).status_code == 403
    assert client.post("/rules/v1/rules/hot/disable", headers=operator).status_code == 200
    assert client.get("/rules/v1/rules", headers=agency).status_code == 403
    client.headers.pop("X-API-Key")
    assert client.get("/rules/v1/rules").status_code == 401
    assert client.post("/rules/v1/rules", json=rule("x")).status_code == 401


def test_rules_of_one_tenant_are_invisible_in_another(
    platform: Platform, client: TestClient
) -> None:
    assert client.post("/rules/v1/rules", json=rule()).status_code == 201
    other = {"X-API-Key": admin_key(platform, "nowon", "nowon-admin"), "NGSILD-Tenant": "nowon"}
    assert client.get("/rules/v1/rules", headers=other).json() == []
    assert client.get("/rules/v1/rules/hot", headers=other).status_code == 404


def test_firings_and_metrics_show_what_fired_and_how_its_actions_ended(
    platform: Platform, client: TestClient
) -> None:
    assert client.post("/rules/v1/rules", json=rule()).status_code == 201
    firing = Firing(
        "hot",
        1,
        "",
        "urn:ngsi-ld:WeatherObserved:1",
        "raise",
        "2026-11-27T10:00:00Z",
        "high",
        (ActionSpec("webhook", {"url": "ftp://nowhere"}),),
        (Evidence("", "urn:ngsi-ld:WeatherObserved:1", "WeatherObserved", 3, "2026-11-27"),),
    )
    actions = ActionRunner(
        platform.rule_parts.state,
        platform.entities,
        platform.contexts.resolve,
        platform.bus,
        platform.clock,
    )
    run(actions.execute(firing))
    listed = client.get("/rules/v1/firings", params={"rule": "hot"}).json()
    assert [f["firingId"] for f in listed] == [firing.firing_id]
    assert listed[0]["status"] == "failed"
    assert listed[0]["outcomes"][0]["status"] == "error"
    shown = client.get(f"/rules/v1/firings/{firing.firing_id}").json()
    assert shown["evidence"][0]["seq"] == 3
    metrics = client.get("/rules/v1/metrics").json()
    assert metrics == {
        "rules": 1,
        "enabled": 1,
        "firings": {"hot": {"failed": 1}},
        "evaluation": {"hot": {}},  # no engine worker has checkpointed it
    }
    assert client.get("/rules/v1/firings", params={"limit": "x"}).status_code == 400


def test_a_backtest_replays_the_history_in_event_time(
    platform: Platform, client: TestClient
) -> None:
    assert client.post("/rules/v1/rules", json=rule()).status_code == 201
    sensor = "urn:ngsi-ld:WeatherObserved:1"
    for minute, value in enumerate([20, 35, 36, 25, 31]):
        write_reading(platform, "", sensor, value, f"2026-11-27T10:{minute:02d}:00Z")
    window = {"from": "2026-11-27T10:01:00Z", "to": "2026-11-27T10:10:00Z"}
    result = client.post("/rules/v1/rules/hot/backtest", json=window)
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["changes"] == 4
    assert [(f["kind"], f["at"]) for f in body["firings"]] == [
        ("raise", "2026-11-27T10:01:00Z"),
        ("clear", "2026-11-27T10:03:00Z"),
        ("raise", "2026-11-27T10:04:00Z"),
    ]
    assert body["firings"][0]["evidence"][0]["seq"] == 0
    draft = {**window, "rule": rule(above=35.5)}
    drafted = client.post("/rules/v1/rules/hot/backtest", json=draft).json()
    assert [f["kind"] for f in drafted["firings"]] == ["raise", "clear"]
    late = client.post(
        "/rules/v1/rules/hot/backtest", json={"from": "2026-11-27T10:03:00Z", "to": window["to"]}
    ).json()
    # Primed with the state before the range (36 above 30): the first change clears.
    assert [f["kind"] for f in late["firings"]] == ["clear", "raise"]
    assert client.post("/rules/v1/rules/hot/backtest", json={"from": "x"}).status_code == 400
