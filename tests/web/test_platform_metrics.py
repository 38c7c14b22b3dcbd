"""/metrics: the platform's counts from the database beside the request metrics."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from smartcity.auth.principal import Caller
from smartcity.ingest.ports import RawInput, Rejected
from smartcity.operations.incidents import IncidentDraft
from smartcity.platform import Platform
from smartcity.rules.actions import ActionRunner
from smartcity.rules.firing import ActionSpec, Evidence, Firing
from smartcity.web.app import create_app
from tests.bus.conftest import run
from tests.iot_support import air_sensor

SENSOR = "urn:ngsi-ld:WeatherObserved:1"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of a scrape by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_the_scrape_counts_devices_dead_letters_incidents_firings_and_log_readers(
    platform: Platform,
) -> None:
    system, police = Caller.system(), Caller.system("police")
    platform.iot.devices.register(system, air_sensor("air-1", "metrics-key-0123456789"))
    platform.iot.devices.register(police, air_sensor("air-2", "metrics-key-9876543210"))
    raw = RawInput("", "mqtt", b"{broken", "2026-11-28T01:00:00Z", device_id="air-1")
    platform.deadletters.record(raw, Rejected("unparsable", "not JSON", stage="decode"))
    for severity in ("high", "high", "low"):
        platform.operations.incidents.create(system, IncidentDraft("crime", severity, "폭행"))
    assert platform.rules is not None
    platform.rules.create(system, "hot", {"kind": "match", "when": {"type": "WeatherObserved"}})
    firing = Firing(
        "hot",
        1,
        "",
        SENSOR,
        "fire",
        "2026-11-28T01:00:00Z",
        "high",
        (ActionSpec("webhook", {"url": "ftp://nowhere"}),),
        (Evidence("", SENSOR, "WeatherObserved", 3, "2026-11-28T01:00:00Z"),),
    )
    actions = ActionRunner(
        platform.rule_parts.state,
        platform.entities,
        platform.contexts.resolve,
        platform.bus,
        platform.clock,
    )
    run(actions.execute(firing))
    with TestClient(create_app(platform)) as client:
        scraped = samples(client.get("/metrics").text)
    assert scraped[("smartcity_devices", (("health", "unknown"), ("tenant", "")))] == 1
    assert scraped[("smartcity_devices", (("health", "unknown"), ("tenant", "police")))] == 1
    letters = (("source", "mqtt"), ("status", "new"), ("tenant", ""))
    assert scraped[("smartcity_dead_letters", letters)] == 1
    incidents = ("smartcity_incidents", (("severity", "high"), ("status", "new"), ("tenant", "")))
    assert scraped[incidents] == 2
    failed = (("rule", "hot"), ("status", "failed"), ("tenant", ""))
    assert scraped[("smartcity_rule_firings_total", failed)] == 1
    last = scraped[("smartcity_change_log_last_seq", ())]
    assert last > 0
    behind = {labels: value for (name, labels), value in scraped.items() if "behind" in name}
    assert {dict(labels)["reader"] for labels in behind} >= {"history", "notifications"}
    assert all(0 <= value <= last for value in behind.values())
