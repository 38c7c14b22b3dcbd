"""The engine worker end to end: changes → relay → bus → engine → alerts, checkpoints, restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.ingest.schemas import SchemaCatalog
from smartcity.ingest.standardize import SmartDataStandardizer
from smartcity.platform import Platform
from smartcity.rules.alerts import ALERT_VOCAB, raised_alert
from smartcity.rules.checkpoints import DONE
from tests.bus.conftest import run
from tests.rules.support import eventually as wait_for
from tests.rules.support import (
    open_platform,
    postgres_settings,
    reading_time,
    rules_settings,
    threshold_rule,
    write_reading,
)
from tests.rules.threshold_engine import ThresholdPlug

SYSTEM = Caller.system("")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return rules_settings(f"sqlite:///{tmp_path / 'rules.db'}")
    schema: str = request.getfixturevalue("postgres_schema")
    return postgres_settings(schema)


@asynccontextmanager
async def running(platform: Platform) -> AsyncIterator[None]:
    """Run the platform's relay and engine worker while the block runs."""
    await platform.start()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop)) for worker in platform.rule_parts.workers]
    try:
        await wait_for(lambda: partitions_started(platform))
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await platform.stop()


def partitions_started(platform: Platform) -> bool:
    """Tell whether every partition of the rules has been taken once (has a checkpoint)."""
    state, count = platform.rule_parts.state, platform.settings.rules_partitions
    return all(state.checkpoint(partition) is not None for partition in range(count))


def firing_kinds(platform: Platform, tenant: str = "") -> list[tuple[str, str, str]]:
    """Return (entity, kind, at) of every firing, in event time."""
    records = platform.rule_parts.state.firings(tenant, limit=1000)
    return sorted((r.firing.key, r.firing.kind, r.firing.at) for r in records)


def test_a_reading_over_the_threshold_raises_an_alert_and_clears_it(
    settings: Settings, shared_data: Path
) -> None:
    platform = open_platform(settings)
    platform.rules.create(SYSTEM, "hot", threshold_rule(30))
    sensor = "urn:ngsi-ld:WeatherObserved:1"

    async def scenario() -> None:
        async with running(platform):
            write_reading(platform, "", sensor, 25, reading_time(0))
            write_reading(platform, "", sensor, 35, reading_time(1))
            await wait_for(lambda: len(firing_kinds(platform)) == 1)
            write_reading(platform, "", sensor, 20, reading_time(2))
            await wait_for(lambda: len(firing_kinds(platform)) == 2)

    try:
        run(scenario())
        assert firing_kinds(platform) == [
            (sensor, "clear", reading_time(2)),
            (sensor, "raise", reading_time(1)),
        ]
        records = platform.rule_parts.state.firings("", limit=10)
        assert all(r.status == DONE for r in records), records
        found = platform.store.entities_of_type("", ALERT_VOCAB + "Alert")
        assert len(found) == 1
        valid_to = found[0].attrs[ALERT_VOCAB + "validTo"][0]["value"]
        assert valid_to["@value"] == reading_time(2)
        raised = next(r.firing for r in records if r.firing.kind == "raise")
        alert = raised_alert(raised, dict(raised.actions[0].params))
        assert alert["id"] == found[0].id
        catalog = SchemaCatalog([shared_data / "smart-data-models"])
        standardizer = SmartDataStandardizer(catalog, require_schema=True)
        attributes = {k: v for k, v in alert.items() if k not in ("id", "type", "@context")}
        standardizer.standardize("", "Alert", attributes, [])
    finally:
        platform.close()


def reference_firings(platform: Platform) -> set[str]:
    """Return the ids of what one engine fires over the whole change log, uninterrupted."""
    engine = ThresholdPlug().build(platform.rule_parts.service.rules.enabled())
    fired: set[str] = set()
    for change in platform.store.changes_since(0, 1_000_000):
        fired.update(firing.firing_id for firing in engine.process(change))
    return fired


def recorded_firings(platform: Platform, tenants: tuple[str, ...] = ("",)) -> list[str]:
    """Return the ids of every recorded firing (a list: a double would show)."""
    state = platform.rule_parts.state
    return [r.firing.firing_id for t in tenants for r in state.firings(t, limit=10_000)]


def test_a_restart_restores_the_checkpoint_and_misses_nothing_from_the_change_log(
    tmp_path: Path,
) -> None:
    settings = rules_settings(f"sqlite:///{tmp_path / 'rules.db'}")
    first = open_platform(settings)
    first.rules.create(SYSTEM, "hot", threshold_rule(30))
    sensors = [f"urn:ngsi-ld:WeatherObserved:{n}" for n in range(3)]
    values = [20, 35, 40, 25, 36, 10, 31, 29]

    async def before_restart() -> None:
        async with running(first):
            for step, value in enumerate(values[:4]):
                for sensor in sensors:
                    write_reading(first, "", sensor, value, reading_time(step))
            await wait_for(lambda: len(recorded_firings(first)) == 2 * len(sensors))

    run(before_restart())
    # Written while no worker runs: the in-process bus of the next process never sees them.
    for step, value in enumerate(values[4:], start=4):
        for sensor in sensors:
            write_reading(first, "", sensor, value, reading_time(step))
    expected = reference_firings(first)
    first.close()
    second = open_platform(settings)

    async def after_restart() -> None:
        async with running(second):
            await wait_for(lambda: len(recorded_firings(second)) >= len(expected))
            await asyncio.sleep(0.5)  # anything doubled would show now

    try:
        run(after_restart())
        recorded = recorded_firings(second)
        assert sorted(recorded) == sorted(expected)
        assert len(expected) == 6 * len(sensors)
        # The rule's counters add up over both processes, each change counted once.
        counters = second.rules.metrics(SYSTEM)["evaluation"]["hot"]
        assert (counters["events"], counters["firings"]) == (
            len(values) * len(sensors),
            len(expected),
        )
    finally:
        second.close()
