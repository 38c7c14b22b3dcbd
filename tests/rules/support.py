"""Helpers of the rules runtime tests: platforms with rules on, readings, threshold rules."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from smartcity.auth.principal import Caller
from smartcity.broker.jsonld import CORE
from smartcity.config import Settings
from smartcity.core.entity import DEFAULT_CONTEXT_VOCAB
from smartcity.platform import Platform, build_platform
from smartcity.rules.actions import ActionRunner
from smartcity.rules.firing import ActionSpec, Evidence, Firing
from smartcity.rules.plug import EnginePlug
from tests.conftest import postgres_url
from tests.rules.threshold_engine import ThresholdPlug

TEMPERATURE = DEFAULT_CONTEXT_VOCAB + "temperature"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def rules_settings(database_url: str, schema: str | None = None, **overrides: Any) -> Settings:
    """Return settings of a platform that runs rules, with short leases and intervals."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "database_schema": schema,
        "context_offline": True,
        "rules_enabled": True,
        "rules_partitions": 4,
        "rules_lease_seconds": 2.0,
        "rules_checkpoint_seconds": 0.3,
        "rules_advance_interval": 0.2,
        "notifications_enabled": False,
        "ingest_enabled": False,
        "auth_secret": "test-secret-for-signing-bearer-tokens-0123456789",
    }
    values.update(overrides)
    return Settings(**values)


def postgres_settings(schema: str, **overrides: Any) -> Settings:
    """Return rules settings on a PostgreSQL schema."""
    return rules_settings(postgres_url(), schema, **overrides)


def open_platform(settings: Settings, plug: EnginePlug | None = None) -> Platform:
    """Build a platform that runs rules with the threshold engine (or `plug`)."""
    return build_platform(settings, rules_engine=plug or ThresholdPlug())


HEAT_ALERT = {"kind": "alert", "params": {"category": "environment", "subCategory": "heatWave"}}


def threshold_rule(
    above: float = 30.0, actions: Sequence[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Return a threshold rule on `temperature` (raising an alert unless `actions` say)."""
    return {
        "attribute": TEMPERATURE,
        "above": above,
        "severity": "high",
        "actions": list(actions if actions is not None else [HEAT_ALERT]),
    }


def write_reading(platform: Platform, tenant: str, entity_id: str, value: float, at: str) -> None:
    """Store one temperature reading of an entity (created if new)."""
    body = {
        "id": entity_id,
        "type": "WeatherObserved",
        "temperature": {"type": "Property", "value": value, "observedAt": at},
    }
    result, _ = platform.entities.batch_upsert(
        Caller.system(tenant), [body], lambda raw: CORE, mode="update"
    )
    assert not result.errors, result.errors


def reading_time(step: int) -> str:
    """Return the observation time of the `step`-th reading of a series (one a second)."""
    minute, second = divmod(step, 60)
    hour, minute = divmod(minute, 60)
    return f"2026-11-27T{10 + hour:02d}:{minute:02d}:{second:02d}Z"


async def eventually(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    """Wait until `condition()` holds (checked every 50 ms), or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if await asyncio.to_thread(condition):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {seconds} s")


def record_failed_firing(platform: Platform, rule_id: str = "hot") -> Firing:
    """Run a firing of a rule whose only action fails (a webhook to ftp://); return it."""
    sensor = "urn:ngsi-ld:WeatherObserved:1"
    firing = Firing(
        rule_id,
        1,
        "",
        sensor,
        "raise",
        "2026-11-27T10:00:00Z",
        "high",
        (ActionSpec("webhook", {"url": "ftp://nowhere"}),),
        (Evidence("", sensor, "WeatherObserved", 3, "2026-11-27T10:00:00Z"),),
    )
    actions = ActionRunner(
        platform.rule_parts.state,
        platform.entities,
        platform.contexts.resolve,
        platform.bus,
        platform.clock,
    )
    asyncio.run(actions.execute(firing))
    return firing
