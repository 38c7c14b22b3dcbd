"""A platform for the dashboard tests: the Changdong district, rules on, a night-time clock.

The clock is the simulator's, running at the wall clock's pace from 22:00 in Seoul, so the
built-in night rules are armed whenever the test runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.platform import Platform, build_platform
from smartcity.rules.loader import builtin_rule_set
from smartcity.sim.clock import SimClock
from smartcity.sim.district import load_district
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL, district_entities
from smartcity.sim.generate import generate_assets
from smartcity.sim.roads import RoadGraph
from smartcity.sim.seed import data_path

NIGHT = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)
"""22:00 in Seoul."""
PASSWORDS = {"kim": "operator-password-1", "police": "police-password-1", "fire": "fire-password-1"}
ROLES = {"kim": "operator", "police": "agency", "fire": "agency"}
SECRET = "test-secret-for-signing-bearer-tokens-0123456789"


def dashboard_settings(database_url: str, **overrides: Any) -> Settings:
    """Return settings of a platform that runs rules and streams incidents promptly."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "context_offline": True,
        "auth_secret": SECRET,
        "rules_enabled": True,
        "rules_partitions": 2,
        "rules_lease_seconds": 2.0,
        "rules_checkpoint_seconds": 0.3,
        "rules_advance_interval": 0.2,
        "notifications_enabled": False,
        "ingest_enabled": False,
        "ops_stream_poll_interval": 0.2,
        "stream_heartbeat": 1.0,
        "stream_poll_interval": 0.5,
    }
    values.update(overrides)
    return Settings(**values)


def builtin_rule(rule_id: str) -> dict[str, Any]:
    """Return a built-in rule as the document a tenant stores."""
    rule = next(r for r in builtin_rule_set().rules if r.id == rule_id)
    doc: dict[str, Any] = rule.model_dump(mode="json", exclude_none=True, by_alias=True)
    doc.pop("id")
    return doc


def district_platform(settings: Settings) -> tuple[Platform, list[dict[str, Any]]]:
    """Build the platform at night with the Changdong district, the users and the assault rule.

    Return it with the district's cameras.
    """
    platform = build_platform(settings, SimClock(NIGHT))
    system = Caller.system("")
    district = load_district()
    entities = district_entities(district, generate_assets(district, RoadGraph(district)))
    platform.contexts.preload_file(CHANGDONG_CONTEXT_URL, data_path("changdong-context.jsonld"))
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    for start in range(0, len(entities), 1000):
        result, _ = platform.entities.batch_upsert(
            system, entities[start : start + 1000], lambda _: ctx
        )
        assert not result.errors, result.errors[:3]
    for name, password in PASSWORDS.items():
        platform.accounts.add_user(system, name, password, [ROLES[name]])
    platform.rules.create(system, "assault-at-night", builtin_rule("assault-at-night"))
    return platform, [e for e in entities if e["type"] == "Camera"]


def analytics_reading(camera: dict[str, Any], observed: datetime) -> dict[str, Any]:
    """Return a camera's video analytics reading that sees violence (NGSI-LD, core @context)."""
    name = camera["id"].rsplit(":", 1)[-1]
    at = observed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "id": f"urn:ngsi-ld:CrowdFlowObserved:{name}",
        "type": "CrowdFlowObserved",
        "location": {"type": "GeoProperty", "value": camera["location"]["value"]},
        "detectedEvent": {"type": "Property", "value": "violence", "observedAt": at},
        "eventConfidence": {"type": "Property", "value": 0.87, "observedAt": at},
        "peopleCount": {"type": "Property", "value": 6, "observedAt": at},
        "refDevice": {"type": "Relationship", "object": camera["id"]},
    }


def placed_at_once(platform: Platform) -> datetime:
    """Return an observation time the rule engine places at once: just inside its lateness.

    The engine holds a reading until the watermark (the clock less the rule set's lateness)
    passes it; a reading stamped that long ago comes due within the advance interval.
    """
    lateness = builtin_rule_set().lateness
    return platform.clock.now() - timedelta(seconds=lateness - 0.5)


def database(tmp_path: Path) -> str:
    """Return a fresh SQLite database URL in a test's folder."""
    return f"sqlite:///{tmp_path / 'dashboard.db'}"
