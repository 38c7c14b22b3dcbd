"""Alert facts from a real in-process bus: merged into incidents once; bad ones dead-lettered."""

from __future__ import annotations

import asyncio

import orjson

from smartcity.auth.principal import Caller
from smartcity.bus.memory import InProcessBus
from smartcity.operations.consumer import SOURCE, AlertConsumer
from smartcity.platform import Platform
from smartcity.storage.deadletters import DeadLetterFilter
from smartcity.storage.incidents import IncidentFilter

SUBJECT = "rules.alert.dobong"


def alert(alert_id: str, lon: float = 127.0469) -> bytes:
    return orjson.dumps(
        {
            "alertId": alert_id,
            "ruleId": "crowd-at-arena",
            "category": "security",
            "subCategory": "overcrowding",
            "severity": "high",
            "observedAt": "2026-11-27T09:00:00Z",
            "location": {"type": "Point", "coordinates": [lon, 37.6533]},
            "related": ["urn:ngsi-ld:Camera:gate-1"],
        }
    )


def test_alert_facts_become_incidents_once(platform: Platform) -> None:
    ops = platform.operations

    async def run() -> None:
        bus = InProcessBus(["rules.>"])
        consumer = AlertConsumer(
            bus, "rules.alert.>", ops.intake, platform.deadletters, platform.clock
        )
        for data in (alert("a1"), alert("a1"), alert("a2"), alert("a3", lon=127.1), b"{oops"):
            await bus.publish(SUBJECT, data)
        dire = {**orjson.loads(alert("a4")), "severity": "dire"}
        await bus.publish(SUBJECT, orjson.dumps(dire))
        clear = {"kind": "clear", "alertId": "a2", "observedAt": "2026-11-27T09:20:00Z"}
        await bus.publish(SUBJECT, orjson.dumps({**clear, "alertId": "never-seen"}))
        await bus.publish(SUBJECT, orjson.dumps(clear))
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        # Messages are taken in order: once the last one shows, every one was taken.
        for _ in range(200):
            await asyncio.sleep(0.05)
            if any(e.kind == "alert-cleared" for e in ops.store.events_after(0, 100)):
                break
        stop.set()
        await task

    asyncio.run(run())
    incidents, _ = ops.incidents.page(Caller.system("dobong"), IncidentFilter(), 10, 0)
    assert sorted(len(i.alerts) for i in incidents) == [1, 2]
    assert {i.type for i in incidents} == {"disaster"}
    letters = platform.deadletters.store.page("dobong", DeadLetterFilter(source=SOURCE), 10, 0)
    assert sorted(letter.reason for letter in letters) == ["invalid-alert", "unparsable"]
    assert any("severity" in letter.message for letter in letters)
    merged = next(i for i in incidents if len(i.alerts) == 2)
    kinds = [e.kind for e in ops.store.timeline("dobong", merged.id)]
    assert kinds == ["created", "alert-merged", "alert-cleared"]
    assert merged.status == "new"


def test_the_workers_follow_the_settings(platform: Platform) -> None:
    settings = platform.settings
    ops = platform.operations
    names = [
        w.name for w in ops.workers(settings, platform.bus, platform.deadletters, platform.clock)
    ]
    # By default the rule engine's alert facts open incidents.
    assert names == ["incident-escalation", "incident-facts", "incident-alerts"]
    unwired = settings.model_copy(update={"ops_alert_subjects": ""})
    names = [
        w.name for w in ops.workers(unwired, platform.bus, platform.deadletters, platform.clock)
    ]
    assert names == ["incident-escalation", "incident-facts"]
    assert platform.deadletters.replayer_for(SOURCE) is not None
    bare = settings.model_copy(update={"bus_subjects": ["ingest.>"], "ops_alert_subjects": ""})
    names = [w.name for w in ops.workers(bare, platform.bus, platform.deadletters, platform.clock)]
    assert names == ["incident-escalation"]
    assert "incident-facts" in [w.name for w in platform.workers]
