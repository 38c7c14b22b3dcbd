"""Incidents: lifecycle, illegal transitions, versions, SOP, alert merging, escalation, facts."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import orjson
import pytest

from smartcity.auth.principal import Caller
from smartcity.bus.memory import InProcessBus
from smartcity.core.clock import ManualClock
from smartcity.core.errors import BadRequestData, Conflict, Forbidden, ResourceNotFound
from smartcity.operations.alerts import AgencyReport, AlertFact
from smartcity.operations.facts import FactPublisher
from smartcity.operations.incidents import IncidentDraft
from smartcity.operations.sop import Procedures
from smartcity.platform import Platform
from smartcity.storage.incidents import IncidentFilter
from tests.operations.conftest import TENANT, analyst, operator, point

ARENA = (127.0469, 37.6533)


def draft(**changes: object) -> IncidentDraft:
    values: dict[str, object] = {
        "type": "crime",
        "subtype": "assault",
        "severity": "high",
        "title": "폭행 신고",
        "location": point(*ARENA),
        "zone": "changdong-1",
    }
    values.update(changes)
    return IncidentDraft(**values)  # type: ignore[arg-type]


def alert(alert_id: str, lon: float, lat: float, at: str, **changes: object) -> AlertFact:
    values: dict[str, object] = {
        "alert_id": alert_id,
        "rule_id": "violence-at-night",
        "category": "security",
        "sub_category": "violence",
        "severity": "medium",
        "observed_at": at,
        "location": point(lon, lat),
        "related": (f"urn:ngsi-ld:Camera:{alert_id}",),
    }
    values.update(changes)
    return AlertFact(**values)  # type: ignore[arg-type]


def test_lifecycle_records_every_step(platform: Platform) -> None:
    ops = platform.operations
    incident = ops.incidents.create(operator(), draft())
    assert incident.status == "new"
    assert incident.version == 1
    assert list(incident.sop) == [s.id for s in Procedures.load().checklist("crime", "assault")]
    for action, status in [
        ("acknowledge", "acknowledged"),
        ("start", "in-progress"),
        ("resolve", "resolved"),
        ("close", "closed"),
        ("reopen", "in-progress"),
    ]:
        incident = ops.transition(operator(), incident.id, action)
        assert incident.status == status
    ops.incidents.assign(operator(), incident.id, "순찰 2팀")
    ops.incidents.comment(operator(), incident.id, "현장 도착")
    ops.incidents.check_step(operator(), incident.id, "check-cameras", note="3 cameras")
    kinds = [e.kind for e in ops.incidents.timeline(operator(), incident.id)]
    assert kinds == [
        "created", "acknowledged", "started", "resolved", "closed", "reopened",
        "assigned", "commented", "sop-checked",
    ]  # fmt: skip
    assert all(e.actor == "kim" for e in ops.incidents.timeline(operator(), incident.id))
    stored = ops.incidents.get(analyst(), incident.id)
    assert stored.sop["check-cameras"].done
    assert stored.sop["check-cameras"].by == "kim"
    assert stored.assignee == "순찰 2팀"
    assert stored.version == 9


def test_illegal_transitions_say_what_is_allowed(platform: Platform) -> None:
    ops = platform.operations
    incident = ops.incidents.create(operator(), draft())
    with pytest.raises(Conflict) as caught:
        ops.transition(operator(), incident.id, "resolve")
    assert caught.value.extra["allowed"] == ["acknowledge", "start", "close"]
    with pytest.raises(BadRequestData, match="needs a note"):
        ops.transition(operator(), incident.id, "close")
    ops.transition(operator(), incident.id, "close", note="false alarm")
    with pytest.raises(Conflict, match="it is closed"):
        ops.transition(operator(), incident.id, "acknowledge")
    with pytest.raises(BadRequestData, match="unknown action"):
        ops.transition(operator(), incident.id, "explode")
    with pytest.raises(Forbidden):
        ops.transition(analyst(), incident.id, "reopen")


def test_a_stale_version_is_a_conflict(platform: Platform) -> None:
    ops = platform.operations
    incident = ops.incidents.create(operator(), draft())
    ops.incidents.assign(operator(), incident.id, "a", expected_version=1)
    with pytest.raises(Conflict, match="at version 2, not 1"):
        ops.transition(operator(), incident.id, "acknowledge", expected_version=1)


def test_two_operators_acknowledging_at_once_one_wins(platform: Platform) -> None:
    ops = platform.operations
    incident = ops.incidents.create(operator(), draft())
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def acknowledge(name: str) -> None:
        caller = Caller(name, TENANT, operator().roles)
        barrier.wait()
        try:
            ops.transition(caller, incident.id, "acknowledge", expected_version=1)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=acknowledge, args=(n,)) for n in ("kim", "park")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    events = ops.incidents.timeline(operator(), incident.id)
    assert [e.kind for e in events].count("acknowledged") == 1


def test_tenants_do_not_see_each_other(platform: Platform) -> None:
    ops = platform.operations
    incident = ops.incidents.create(operator(), draft())
    stranger = Caller("kim", "nowon", operator().roles)
    with pytest.raises(ResourceNotFound):
        ops.incidents.get(stranger, incident.id)
    assert ops.incidents.page(stranger, IncidentFilter(), 10, 0)[0] == []


def test_related_alerts_merge_and_duplicates_are_ignored(platform: Platform) -> None:
    intake = platform.operations.intake
    system = Caller.system(TENANT)
    first = intake.open_or_merge(system, alert("a1", *ARENA, "2026-11-27T09:00:00Z"))
    assert first.outcome == "created"
    assert first.incident.type == "crime"
    # 100 m north, 10 minutes later: the same incident, severity raised.
    near = alert("a2", ARENA[0], ARENA[1] + 0.0009, "2026-11-27T09:10:00Z", severity="critical")
    second = intake.open_or_merge(system, near)
    assert second.outcome == "merged"
    assert second.incident.id == first.incident.id
    assert second.incident.severity == "critical"
    assert second.incident.alerts == ("a1", "a2")
    again = intake.open_or_merge(system, near)
    assert again.outcome == "duplicate"
    assert again.incident.alerts == ("a1", "a2")
    # 2 km away, or an hour after the last alert, or another type: new incidents.
    far = intake.open_or_merge(system, alert("a3", ARENA[0] + 0.02, ARENA[1], "2026-11-27T09:11Z"))
    late = intake.open_or_merge(system, alert("a4", *ARENA, "2026-11-27T10:30:00Z"))
    fire = intake.open_or_merge(
        system, alert("a5", *ARENA, "2026-11-27T09:12:00Z", category="fire", sub_category="smoke")
    )
    ids = {far.incident.id, late.incident.id, fire.incident.id, first.incident.id}
    assert len(ids) == 4
    assert fire.incident.type == "fire"
    assert (first.incident.title, fire.incident.title) == ("violence", "smoke")
    titled = alert("a6", *ARENA, "2026-11-27T11:30:00Z", title="야간 폭행 · Assault at night")
    assert intake.open_or_merge(system, titled).incident.title == "야간 폭행 · Assault at night"
    kinds = [e.kind for e in platform.operations.store.timeline(TENANT, first.incident.id)]
    assert kinds == ["created", "alert-merged"]


def test_agency_reports_are_idempotent(platform: Platform) -> None:
    intake = platform.operations.intake
    police = Caller("police", TENANT, frozenset({"agency"}), principal_id="p-police")  # type: ignore[arg-type]
    report = AgencyReport("112", "2026-1127-0042", subtype="assault", location=point(*ARENA))
    first = intake.report(police, report)
    second = intake.report(police, report)
    assert first.outcome == "created"
    assert second.outcome == "duplicate"
    assert first.incident.id == second.incident.id
    assert first.incident.source == "112"
    assert platform.operations.incidents.get(police, first.incident.id).reported_by == "p-police"
    with pytest.raises(BadRequestData, match="channel"):
        intake.report(police, AgencyReport("113", "x", location=point(*ARENA)))
    with pytest.raises(Forbidden):
        intake.report(analyst(), report)


def test_unacknowledged_incidents_escalate(platform: Platform, clock: ManualClock) -> None:
    ops = platform.operations
    high = ops.incidents.create(operator(), draft(severity="high"))  # 5 minutes
    low = ops.incidents.create(operator(), draft(severity="low"))  # 60 minutes
    clock.advance(timedelta(minutes=4))
    assert ops.escalator.sweep() == 0
    clock.advance(timedelta(minutes=2))
    assert ops.escalator.sweep() == 1
    assert ops.escalator.sweep() == 0  # once per level
    clock.advance(timedelta(minutes=5))
    assert ops.escalator.sweep() == 1
    assert ops.incidents.get(operator(), high.id).escalation_level == 2
    assert ops.incidents.get(operator(), low.id).escalation_level == 0
    ops.transition(operator(), high.id, "acknowledge")
    clock.advance(timedelta(hours=2))
    assert ops.escalator.sweep() == 1  # the low one only; capped at 3 levels
    assert ops.incidents.get(operator(), low.id).escalation_level == 2
    events = [e for e in ops.store.timeline(TENANT, high.id) if e.kind == "escalated"]
    assert [e.details["level"] for e in events] == [1, 2]


def test_timeline_events_are_published_as_facts(platform: Platform, clock: ManualClock) -> None:
    ops = platform.operations
    incident = ops.incidents.create(operator(), draft(severity="critical"))
    clock.advance(timedelta(minutes=3))
    ops.escalator.sweep()

    async def run() -> list[tuple[str, dict[str, Any]]]:
        bus = InProcessBus()
        publisher = FactPublisher(ops.store, bus, 0.1)
        consumer = await bus.consumer("operations.incident.>", "test")
        assert await publisher.publish_pending() == 2
        assert await publisher.publish_pending() == 0  # the position is saved
        received = await consumer.fetch(10, 0.5)
        for message in received:
            await message.ack()
        return [(m.subject, orjson.loads(m.data)) for m in received]

    facts = asyncio.run(run())
    assert [subject for subject, _ in facts] == [
        "operations.incident.created.dobong",
        "operations.incident.escalated.dobong",
    ]
    body = facts[1][1]
    assert body["incidentId"] == incident.id
    assert body["details"]["level"] == 1
