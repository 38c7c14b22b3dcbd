"""The convergence engine plugged into the runtime: validation, tenants apart, alerts end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smartcity.auth.principal import Caller
from smartcity.platform import build_platform
from smartcity.rules.alerts import ALERT_VOCAB
from smartcity.rules.convergence import ConvergencePlug
from smartcity.rules.plug import engine_plug
from smartcity.rules.store import RuleRecord
from tests.bus.conftest import run
from tests.rules.support import eventually, reading_time, rules_settings, write_reading
from tests.rules.test_runtime import firing_kinds, running

HOT: dict[str, Any] = {
    "kind": "threshold",
    "severity": "high",
    "when": {"type": "WeatherObserved"},
    "value": "temperature",
    "raise": "> 30",
    "clear": "<= 25",
    "actions": [{"alert": {"category": "weather", "subCategory": "highTemperature"}}],
}


def record(tenant: str, rule_id: str, doc: dict[str, Any]) -> RuleRecord:
    return RuleRecord(tenant, rule_id, 1, True, doc, "2026-11-28T00:00:00Z", "test")


def test_the_platform_runs_the_convergence_engine_by_default() -> None:
    assert isinstance(engine_plug(), ConvergencePlug)


def test_a_rule_document_is_checked_with_where_and_what_to_fix() -> None:
    plug = ConvergencePlug()
    assert plug.validate("", "hot", HOT) == []
    no_threshold = {key: value for key, value in HOT.items() if key != "raise"}
    assert any("raise" in problem for problem in plug.validate("", "hot", no_threshold))
    bad_q = {**HOT, "when": {"type": "WeatherObserved", "q": "temperature>>"}}
    (problem,) = plug.validate("", "hot", bad_q)
    assert problem.startswith("when.q")
    unknown_zone = {**HOT, "when": {"type": "WeatherObserved", "inside": "atlantis"}}
    assert any("atlantis" in problem for problem in plug.validate("", "hot", unknown_zone))


def test_each_tenant_runs_its_own_rules_and_state_round_trips(tmp_path: Path) -> None:
    settings = rules_settings(f"sqlite:///{tmp_path / 'plug.db'}")
    platform = build_platform(settings)
    try:
        for tenant, value in (("dobong", 35.0), ("nowon", 35.0)):
            write_reading(platform, tenant, "urn:ngsi-ld:WeatherObserved:1", value, reading_time(0))
        changes = platform.store.changes_since(0, 10)
        engines = ConvergencePlug().build([record("dobong", "hot", HOT)])
        fired = [f for change in changes for f in engines.process(change)]
        fired += engines.advance(datetime(2026, 11, 28, tzinfo=UTC))
        assert [(f.tenant, f.rule_id, f.kind) for f in fired] == [("dobong", "hot", "raise")]
        again = ConvergencePlug().build([record("dobong", "hot", HOT)])
        again.restore(engines.snapshot())
        assert again.snapshot() == engines.snapshot()
    finally:
        platform.close()


def test_a_stored_rule_raises_and_clears_an_alert_through_the_workers(tmp_path: Path) -> None:
    platform = build_platform(rules_settings(f"sqlite:///{tmp_path / 'rules.db'}"))
    platform.rules.create(Caller.system(""), "hot", HOT)
    sensor = "urn:ngsi-ld:WeatherObserved:1"
    # Event time: the workers advance it with the platform's clock, less the allowed lateness
    # (60 s); readings 55 s old are placed at once and come due within about 5 s (a reading
    # older than the lateness would only update the engine's state).
    start = platform.clock.now().replace(microsecond=0) - timedelta(seconds=55)
    times = [f"{start + timedelta(seconds=step):%Y-%m-%dT%H:%M:%SZ}" for step in range(3)]

    async def scenario() -> None:
        async with running(platform):
            write_reading(platform, "", sensor, 20, times[0])
            write_reading(platform, "", sensor, 35, times[1])
            await eventually(lambda: len(firing_kinds(platform)) == 1, seconds=120)
            write_reading(platform, "", sensor, 22, times[2])
            await eventually(lambda: len(firing_kinds(platform)) == 2, seconds=120)

    try:
        run(scenario())
        assert firing_kinds(platform) == [(sensor, "clear", times[2]), (sensor, "raise", times[1])]
        (alert,) = platform.store.entities_of_type("", ALERT_VOCAB + "Alert")
        assert alert.attrs[ALERT_VOCAB + "validTo"][0]["value"]["@value"] == times[2]
    finally:
        platform.close()


def test_rules_lateness_sets_how_long_a_change_waits_for_late_readings(tmp_path: Path) -> None:
    settings = rules_settings(f"sqlite:///{tmp_path / 'late.db'}")
    platform = build_platform(settings.model_copy(update={"rules_lateness": 0.0}))
    try:
        assert isinstance(platform.rules.plug, ConvergencePlug)
        assert platform.rules.plug.lateness == 0.0
        write_reading(platform, "", "urn:ngsi-ld:WeatherObserved:1", 35.0, reading_time(0))
        (change,) = platform.store.changes_since(0, 10)
        waiting = ConvergencePlug().build([record("", "hot", HOT)])
        assert waiting.process(change) == []  # 60 s for late readings first
        at_once = platform.rules.plug.build([record("", "hot", HOT)])
        assert [f.kind for f in at_once.process(change)] == ["raise"]
    finally:
        platform.close()
