"""A small real rule engine for the runtime's tests: a numeric attribute above a threshold.

It stands in for the convergence engine (built elsewhere) behind the same `RuleEngine`
Protocol: deterministic, keyed by entity, with snapshot and restore. A rule document::

    {"attribute": "https://.../temperature", "above": 30, "severity": "high",
     "actions": [{"kind": "alert", "params": {...}}], "silentSeconds": 60}

raises when the attribute's value goes above the threshold and clears when it comes back to it
or below; with `silentSeconds`, `advance` fires once for an entity silent that long.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from smartcity.core.clock import isoformat
from smartcity.core.entity import StoredEntity, instance_value
from smartcity.rules.firing import ActionSpec, Evidence, Firing, FiringKind
from smartcity.rules.store import RuleRecord
from smartcity.storage.base import ChangeKind, ChangeRecord


def _local(iri: str) -> str:
    return iri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def _parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


class ThresholdEngine:
    """Raise while a numeric attribute is above a threshold; clear when it is not."""

    def __init__(self, rules: Sequence[RuleRecord]) -> None:
        self.rules = list(rules)
        self.raised: set[tuple[str, str, str]] = set()
        self.last_seen: dict[tuple[str, str, str], str] = {}
        self.silent_fired: set[tuple[str, str, str, str]] = set()
        self.counts: dict[tuple[str, str], dict[str, float]] = {}

    def prime(self, tenant: str, entities: Iterable[StoredEntity]) -> None:
        """Take the current values as the starting state (no firing for them)."""
        for entity in entities:
            for rule in self._rules(tenant):
                value = self._value(rule, entity)
                if value is not None and value > float(rule.doc["above"]):
                    self.raised.add((tenant, rule.id, entity.id))

    def _rules(self, tenant: str) -> list[RuleRecord]:
        return [rule for rule in self.rules if rule.tenant == tenant]

    @staticmethod
    def _observed(rule: RuleRecord, change: ChangeRecord) -> str:
        """Return the event time of a change: the attribute's observedAt, else the change's."""
        instances = change.entity.attrs.get(str(rule.doc["attribute"])) or []
        observed = instances[0].get("observedAt") if instances else None
        return str(observed) if observed else change.at

    @staticmethod
    def _value(rule: RuleRecord, entity: StoredEntity) -> float | None:
        instances = entity.attrs.get(str(rule.doc["attribute"])) or []
        value = instance_value(instances[0]) if instances else None
        return float(value) if isinstance(value, int | float) else None

    def process(self, change: ChangeRecord) -> list[Firing]:
        """Compare the changed value with each rule's threshold."""
        fired: list[Firing] = []
        for rule in self._rules(change.tenant):
            state = (change.tenant, rule.id, change.entity.id)
            value = None if change.kind == ChangeKind.DELETE else self._value(rule, change.entity)
            if value is None:
                continue
            counts = self.counts.setdefault((change.tenant, rule.id), {"events": 0, "firings": 0})
            counts["events"] += 1
            at = self._observed(rule, change)
            self.last_seen[state] = at
            above = value > float(rule.doc["above"])
            if above and state not in self.raised:
                self.raised.add(state)
                fired.append(self._firing(rule, change, "raise", value, at))
                counts["firings"] += 1
            elif not above and state in self.raised:
                self.raised.discard(state)
                fired.append(self._firing(rule, change, "clear", value, at))
                counts["firings"] += 1
        return fired

    def rule_metrics(self) -> dict[tuple[str, str], dict[str, float]]:
        """Return the changes each rule looked at and its firings on them."""
        return {key: dict(counts) for key, counts in self.counts.items()}

    def resume(self, now: datetime) -> None:
        """This engine counts a silence from the last reading, whatever stopped meanwhile."""

    def advance(self, now: datetime) -> list[Firing]:
        """Fire once for each entity silent longer than its rule's `silentSeconds`."""
        fired: list[Firing] = []
        for (tenant, rule_id, entity_id), seen in sorted(self.last_seen.items()):
            rule = next((r for r in self.rules if r.id == rule_id and r.tenant == tenant), None)
            if rule is None or "silentSeconds" not in rule.doc:
                continue
            deadline = _parse(seen) + timedelta(seconds=float(rule.doc["silentSeconds"]))
            mark = (tenant, rule_id, entity_id, seen)
            if deadline <= now and mark not in self.silent_fired:
                self.silent_fired.add(mark)
                fired.append(
                    Firing(
                        rule.id,
                        rule.version,
                        tenant,
                        entity_id,
                        "fire",
                        isoformat(deadline),
                        str(rule.doc.get("severity", "medium")),
                        self._actions(rule),
                        (),
                        {"silentSince": seen},
                    )
                )
        return fired

    @staticmethod
    def _actions(rule: RuleRecord) -> tuple[ActionSpec, ...]:
        return tuple(
            ActionSpec(a["kind"], a.get("params") or {}) for a in rule.doc.get("actions", [])
        )

    def _firing(
        self, rule: RuleRecord, change: ChangeRecord, kind: FiringKind, value: float, at: str
    ) -> Firing:
        entity = change.entity
        location = entity.attrs.get("https://uri.etsi.org/ngsi-ld/location")
        return Firing(
            rule_id=rule.id,
            rule_version=rule.version,
            tenant=change.tenant,
            key=entity.id,
            kind=kind,
            at=at,
            severity=str(rule.doc.get("severity", "medium")),
            actions=self._actions(rule),
            evidence=(
                Evidence(
                    change.tenant,
                    entity.id,
                    _local(entity.types[0]) if entity.types else "",
                    change.seq,
                    at,
                ),
            ),
            values={"value": value, "above": rule.doc["above"]},
            location=location[0]["value"] if location else None,
        )

    def snapshot(self) -> dict[str, Any]:
        """Return the raised keys and the last times seen."""
        return {
            "raised": sorted(list(key) for key in self.raised),
            "lastSeen": sorted([*key, at] for key, at in self.last_seen.items()),
            "silentFired": sorted(list(mark) for mark in self.silent_fired),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a snapshot."""
        self.raised = {(t, r, e) for t, r, e in state.get("raised", [])}
        self.last_seen = {(t, r, e): at for t, r, e, at in state.get("lastSeen", [])}
        self.silent_fired = {(t, r, e, s) for t, r, e, s in state.get("silentFired", [])}


class ThresholdPlug:
    """The EnginePlug of the threshold engine."""

    def build(self, rules: Sequence[RuleRecord]) -> ThresholdEngine:
        """Return an engine for these rules."""
        return ThresholdEngine(rules)

    def validate(self, tenant: str, rule_id: str, doc: Mapping[str, Any]) -> list[str]:
        """Return what is wrong with a threshold rule."""
        problems = []
        if not isinstance(doc.get("attribute"), str):
            problems.append("`attribute` must be an attribute's expanded name")
        if not isinstance(doc.get("above"), int | float):
            problems.append("`above` must be a number")
        for index, action in enumerate(doc.get("actions", [])):
            if not isinstance(action, dict) or action.get("kind") not in (
                "alert",
                "update",
                "command",
                "webhook",
                "incident",
            ):
                problems.append(f"actions[{index}].kind must be alert, update, command, ...")
        return problems
