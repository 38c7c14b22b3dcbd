"""Actions of firings: each runs once, records how it ended, and never stops the others."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from smartcity.auth.principal import Caller
from smartcity.core.causality import Context
from smartcity.platform import Platform
from smartcity.rules.actions import IDEMPOTENCY_HEADER, ActionRunner, WebhookOptions
from smartcity.rules.alerts import ALERT_VOCAB, alert_id
from smartcity.rules.checkpoints import DONE, FAILED, FiringRecord
from smartcity.rules.firing import ActionSpec, Evidence, Firing, FiringKind
from tests.bus.conftest import run
from tests.rules.support import TEMPERATURE, open_platform, rules_settings, write_reading
from tests.sink import Sink, running_sink

SENSOR = "urn:ngsi-ld:WeatherObserved:7"


def make_firing(
    *actions: ActionSpec, kind: FiringKind = "raise", at: str = "2026-11-27T10:00:00Z"
) -> Firing:
    """Return a firing of rule `hot` for the sensor, with these actions."""
    return Firing(
        rule_id="hot",
        rule_version=1,
        tenant="",
        key=SENSOR,
        kind=kind,
        at=at,
        severity="high",
        actions=actions,
        evidence=(Evidence("", SENSOR, "WeatherObserved", 12, at),),
        values={"value": 35},
        location={"type": "Point", "coordinates": [127.05, 37.65]},
    )


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    opened = open_platform(rules_settings(f"sqlite:///{tmp_path / 'actions.db'}"))
    yield opened
    opened.close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as running:
        yield running


def runner(platform: Platform, **webhook: Any) -> ActionRunner:
    """Return an action runner over the platform, with quick webhook retries."""
    options = WebhookOptions(**{"timeout": 1.0, "attempts": 3, "backoff": 0.05, **webhook})
    return ActionRunner(
        platform.rule_parts.state,
        platform.entities,
        platform.contexts.resolve,
        platform.bus,
        platform.clock,
        devices=platform.iot.devices,
        webhooks=options,
    )


def execute(platform: Platform, firing: Firing, **webhook: Any) -> FiringRecord:
    """Run a firing's actions; return its record."""

    async def scenario() -> FiringRecord:
        actions = runner(platform, **webhook)
        try:
            return await actions.execute(firing)
        finally:
            await actions.close()

    return run(scenario())


def webhook(sink: Sink, path: str = "/hook", **params: Any) -> ActionSpec:
    """Return a webhook action to the sink."""
    return ActionSpec("webhook", {"url": sink.url + path, **params})


def test_a_webhook_is_tried_again_with_back_off_and_carries_an_idempotency_key(
    platform: Platform, sink: Sink
) -> None:
    sink.statuses["/hook"] = [503, 500]
    firing = make_firing(webhook(sink))
    record = execute(platform, firing)
    assert record.status == DONE
    assert record.outcomes[0].status == "ok"
    assert "attempt 3" in record.outcomes[0].detail
    accepted = [r for r in sink.received if r.status == 204]
    assert len(accepted) == 1
    assert accepted[0].headers[IDEMPOTENCY_HEADER.lower()] == f"{firing.firing_id}:0"
    assert accepted[0].body["alertId"] == alert_id(firing)
    assert accepted[0].body["type"] == "alert.raised"


def test_a_dead_webhook_fails_in_bounded_time_and_the_other_actions_still_run(
    platform: Platform, sink: Sink
) -> None:
    sink.hang.add("/dead")
    alert = ActionSpec("alert", {"category": "environment"})
    firing = make_firing(webhook(sink, "/dead"), alert)
    started = time.monotonic()
    record = execute(platform, firing, timeout=0.3, attempts=2)
    assert time.monotonic() - started < 5
    assert record.status == FAILED
    assert [o.status for o in record.outcomes] == ["error", "ok"]
    assert "failed" in record.outcomes[0].detail
    assert platform.store.get("", alert_id(firing)) is not None


def test_a_refused_webhook_is_not_tried_again(platform: Platform, sink: Sink) -> None:
    sink.statuses["/hook"] = [422]
    record = execute(platform, make_firing(webhook(sink)))
    assert record.outcomes[0].status == "error"
    assert "HTTP 422" in record.outcomes[0].detail
    assert len(sink.received) == 1


def test_a_firing_executed_twice_acts_once(platform: Platform, sink: Sink) -> None:
    firing = make_firing(webhook(sink), ActionSpec("alert", {"category": "environment"}))
    first = execute(platform, firing)
    second = execute(platform, firing)
    assert first == second
    assert len(sink.received) == 1


def test_an_alert_raised_then_cleared_is_one_entity_with_its_evidence(platform: Platform) -> None:
    alert = ActionSpec("alert", {"category": "environment", "subCategory": "heatWave"})
    raised = make_firing(alert)
    execute(platform, raised)
    cleared = make_firing(alert, kind="clear", at="2026-11-27T10:05:00Z")
    record = execute(platform, cleared)
    assert record.outcomes[0].detail.startswith("cleared")
    stored = platform.store.get("", alert_id(raised))
    assert stored is not None
    attrs = stored.attrs
    assert attrs[ALERT_VOCAB + "severity"][0]["value"] == "high"
    assert attrs[ALERT_VOCAB + "validTo"][0]["value"]["@value"] == "2026-11-27T10:05:00Z"
    evidence = next(v for k, v in attrs.items() if k.endswith("/evidence"))
    assert evidence[0]["json"][0]["entityId"] == SENSOR
    related = next(v for k, v in attrs.items() if k.endswith("/relatedEntities"))
    assert related[0]["objectList"] == [SENSOR]


def test_a_clear_without_an_alert_changes_nothing(platform: Platform) -> None:
    firing = make_firing(ActionSpec("alert", {}), kind="clear")
    record = execute(platform, firing)
    assert record.status == DONE
    assert "no alert" in record.outcomes[0].detail
    assert platform.store.get("", alert_id(firing)) is None


def test_an_update_merges_attributes_into_an_entity_as_the_rule(platform: Platform) -> None:
    write_reading(platform, "", SENSOR, 35, "2026-11-27T10:00:00Z")
    update = ActionSpec(
        "update",
        {"entityId": SENSOR, "attributes": {"status": {"type": "Property", "value": "hot"}}},
    )
    missing = ActionSpec("update", {"entityId": "urn:ngsi-ld:Nothing:1", "attributes": {"a": 1}})
    record = execute(platform, make_firing(update, missing))
    assert [o.status for o in record.outcomes] == ["ok", "error"]
    stored = platform.store.get("", SENSOR)
    assert stored is not None
    assert any(k.endswith("/status") for k in stored.attrs)
    assert TEMPERATURE in stored.attrs


@pytest.mark.parametrize(
    "action",
    [
        ActionSpec("update", {}),
        ActionSpec("command", {"deviceId": "nope", "command": "dim"}),
        ActionSpec("webhook", {"url": "ftp://example.org/"}),
        ActionSpec("alert", {"category": "parking"}),
        ActionSpec("teleport", {}),  # type: ignore[arg-type]
    ],
)
def test_a_bad_action_is_an_error_outcome_not_a_crash(
    platform: Platform, action: ActionSpec
) -> None:
    record = execute(platform, make_firing(action))
    assert record.status == FAILED
    assert record.outcomes[0].status == "error"
    assert record.outcomes[0].detail


def test_an_incident_fact_is_published_with_its_causal_context(platform: Platform) -> None:
    firing = make_firing(ActionSpec("incident", {"category": "environment"}))
    parent = Context("change:db:12", None, "system:change-log")

    async def scenario() -> list[Any]:
        await platform.start()
        consumer = await platform.bus.consumer("rules.alerts.>", "operations")
        actions = runner(platform)
        await actions.execute(firing, parent)
        await actions.execute(firing, parent)
        received = await consumer.fetch(10, 0.5)
        for message in received:
            await message.ack()
        await platform.stop()
        return received

    received = run(scenario())
    assert len(received) == 1
    message = received[0]
    assert message.subject == "rules.alerts._"
    fact = orjson.loads(message.data)
    assert fact["type"] == "alert.raised"
    assert fact["firingId"] == firing.firing_id
    context = Context.from_headers(message.headers)
    assert context is not None
    assert context.actor == "rule:hot"
    assert context.parent_id == f"firing:{firing.firing_id}"
    record = platform.rule_parts.state.firing("", firing.firing_id)
    assert record is not None
    assert record.status == DONE


def lamp(device_id: str) -> dict[str, Any]:
    """A streetlight controller on MQTT that takes `brighten`, feeding its Streetlight entity."""
    return {
        "id": device_id,
        "apiKey": "lamp-key-0123456789",
        "entity": {"id": f"urn:ngsi-ld:Streetlight:{device_id}", "type": "Streetlight"},
        "attributes": [{"objectId": "dim", "name": "illuminanceLevel", "scale": 0.01}],
        "commands": ["brighten"],
        "reportingInterval": 600,
    }


def test_a_command_to_target_entities_reaches_the_devices_that_feed_them(
    platform: Platform,
) -> None:
    system = Caller.system()
    for device_id in ("lamp-1", "lamp-2"):
        platform.iot.devices.register(system, lamp(device_id))
    targets = ["urn:ngsi-ld:Streetlight:lamp-1", "urn:ngsi-ld:Streetlight:lamp-2"]
    brighten = {"command": "brighten", "illuminanceLevel": 1.0, "duration": "PT30M"}
    firing = make_firing(
        ActionSpec("command", {**brighten, "targets": targets}),
        ActionSpec("command", {**brighten, "targets": []}),
        ActionSpec("command", {**brighten, "targets": ["urn:ngsi-ld:Streetlight:nowhere"]}),
    )
    record = execute(platform, firing)
    (sent, empty, unfed) = record.outcomes
    assert sent.status == "ok"
    assert sent.detail.count("(brighten) queued for lamp-") == 2
    assert (empty.status, empty.detail) == ("ok", "no target entities: nothing to send")
    assert unfed.status == "error"
    assert "no registered device feeds urn:ngsi-ld:Streetlight:nowhere" in unfed.detail
    for device_id in ("lamp-1", "lamp-2"):
        (command,) = platform.iot.devices.command_history(system, device_id, 10)
        assert (command.name, command.params) == (
            "brighten",
            {"illuminanceLevel": 1.0, "duration": "PT30M"},
        )
    again = execute(platform, firing)  # a replayed firing sends nothing twice
    assert again.outcomes == record.outcomes
    assert len(platform.iot.devices.command_history(system, "lamp-1", 10)) == 1
