"""What every compiled rule shares: its state by key, arming, firing and rendering actions."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

from smartcity.core.entity import StoredEntity, instance_value
from smartcity.rules.calendars import CompiledSchedule
from smartcity.rules.compile import CompiledFilter
from smartcity.rules.events import Env, Event, Keyer, Subject, Timer, state_key_of
from smartcity.rules.firing import ActionSpec, Evidence, Firing, FiringKind
from smartcity.rules.model import Action, Rule
from smartcity.rules.names import format_moment, local_name
from smartcity.rules.state import (
    CompiledJoin,
    Selection,
    compile_target,
)
from smartcity.rules.templates import render

TIME_ONE_IN: Final = 8
"""Changes are timed one in this many, picked by a fixed pseudo-random sequence (so that no
pattern in the changes is always or never timed): reading the clock around every rule cost
more than most rules' own evaluation."""


@dataclass(slots=True)
class RuleMetrics:
    """What one rule did since it was loaded."""

    events: int = 0
    """Changes of its entity types it looked at."""
    matches: int = 0
    """Changes that passed its filters."""
    firings: int = 0
    actions: int = 0
    suppressed: int = 0
    seconds: float = 0.0
    """Time spent evaluating it (wall time): each timer it took, and the changes it took
    estimated from a sample (one change in `TIME_ONE_IN`, counted that many times)."""

    def counters(self) -> dict[str, float]:
        """Return the counters by name (what the runtime keeps across restarts)."""
        return {
            "events": self.events,
            "matches": self.matches,
            "firings": self.firings,
            "actions": self.actions,
            "suppressed": self.suppressed,
            "seconds": self.seconds,
        }

    def as_dict(self) -> dict[str, Any]:
        """Return the metrics as JSON-ready data."""
        counters: dict[str, Any] = self.counters()
        counters["evaluationSeconds"] = round(counters.pop("seconds"), 6)
        return counters


class CompiledAction:
    """An action ready to render."""

    def __init__(self, action: Action) -> None:
        self.kind = action.kind
        self.body: dict[str, Any] = getattr(action, action.kind)
        default = ("raise", "clear", "fire") if self.kind == "alert" else ("raise", "fire")
        self.on = frozenset(action.on or default)
        self.target: str | Selection | None = None
        self.ids: list[str] = []
        self.limit = 50
        if isinstance(action.target, str):
            self.target = action.target
        elif action.target is not None:
            self.target = compile_target(action.target) if action.target.type else None
            self.ids = list(action.target.ids or [])
            self.limit = action.target.limit


class Callee:
    """What the index calls with a change that passed a gate: a rule, or a bank of thresholds.

    A base class (not a protocol), so that compiled code calls `on_event` directly.
    """

    metrics: RuleMetrics

    def on_event(self, role: str, event: Event) -> list[Firing] | None:
        """Take a change that passed the gate; return what fired (None: nothing, as for most
        changes: no empty list is made for them)."""
        raise NotImplementedError


class RuleRuntime(Callee):
    """The parts of a compiled rule every kind uses; kinds add `on_event` and `on_timer`."""

    def __init__(self, rule: Rule, version: int, env: Env, timer: Timer) -> None:
        self.rule = rule
        self.id = rule.id
        self.version = version
        self.env = env
        self.timer = timer
        self.keyer = Keyer(rule.key, env)
        self.joins = [CompiledJoin(join) for join in rule.require]
        self.schedule = (
            CompiledSchedule(rule.schedule, env.zone_info, env.sun, env.calendars)
            if rule.schedule
            else None
        )
        self.actions = [CompiledAction(action) for action in rule.actions]
        self.title = (
            rule.title
            if isinstance(rule.title, str)
            else rule.title.get("ko") or next(iter(rule.title.values()), "")
        )
        self.states: dict[str, dict[str, Any]] = {}
        self.metrics = RuleMetrics()
        self.tenants = frozenset(rule.tenants) if rule.tenants else None

    def triggers(self) -> list[tuple[str, CompiledFilter]]:
        """Return the filters changes reach this rule by, with the role each plays."""
        raise NotImplementedError

    def on_event(self, role: str, event: Event) -> list[Firing] | None:
        """Take a change that reached the rule; return what fired (None: nothing)."""
        raise NotImplementedError

    def on_timer(self, state_key: str, tag: str, due: float) -> list[Firing]:
        """Take a timer that came due; return what fired."""
        return []

    def prime(self, tenant: str, entity: StoredEntity, moment: float) -> None:
        """Learn of an entity that exists before the first change."""

    def forget(self, tenant: str, entity: StoredEntity) -> None:
        """Drop what is kept for an entity that was deleted (its own key's state)."""
        if self.keyer.kind == "entity":
            self.states.pop(state_key_of(tenant, entity.id), None)

    def state_at(self, state_key: str) -> dict[str, Any]:
        """Return the state kept under a state key (tenant and key; made when first asked)."""
        found = self.states.get(state_key)
        if found is None:
            found = self.states[state_key] = {}
        return found

    def state_for(self, event: Event, key: str) -> dict[str, Any]:
        """Return the state of a change's key (made when first asked)."""
        return self.state_at(event.state_key(key))

    def state(self, tenant: str, key: str) -> dict[str, Any]:
        """Return a key's state (made when first asked)."""
        return self.state_at(state_key_of(tenant, key))

    def armed(self, subject: Subject, moment: float) -> bool:
        """Tell whether the schedule and the joins hold for a subject at a moment."""
        if self.schedule is not None and not self.schedule.armed(moment):
            return False
        if not self.joins:
            return True
        entity, names = subject.entity, subject.names
        if entity is None and any(join.via is not None for join in self.joins):
            return False
        state, zones = self.env.state, self.env.zones
        return all(
            join.holds(state, zones, subject.tenant, entity, names, subject.point, moment)
            for join in self.joins
        )

    def emit(
        self,
        kind: FiringKind,
        subject: Subject,
        moment: float,
        values: dict[str, Any],
        state: dict[str, Any],
    ) -> Firing | None:
        """Return a firing with its actions rendered (None when suppressed)."""
        suppress = self.rule.suppress
        if kind != "clear" and suppress:
            last = state.get("fired")
            if last is not None and moment - last < suppress:
                self.metrics.suppressed += 1
                return None
            state["fired"] = moment
        at = format_moment(moment)
        location = subject.geometry
        if location is None and subject.point is not None:
            location = {"type": "Point", "coordinates": [subject.point[0], subject.point[1]]}
        evidence = tuple(
            Evidence(subject.tenant, item[2], item[3], item[1], format_moment(item[0]))
            for item in subject.evidence[-10:]
        )
        specs = []
        scope: dict[str, Any] | None = None
        for action in self.actions:
            if kind not in action.on:
                continue
            if scope is None:  # what templates see, made only for a firing with actions
                scope = {
                    "rule": {
                        "id": self.id,
                        "title": self.title,
                        "severity": self.rule.severity,
                        "version": self.version,
                    },
                    "key": subject.key,
                    "at": at,
                    "kind": kind,
                    "values": values,
                    "entity": _entity_scope(subject),
                    "targets": [],
                }
            targeted = action.target is not None or bool(action.ids)
            if targeted:  # later actions may name these targets too ({{ targets }})
                scope["targets"] = self._targets(action, subject)
            params = render(action.body, scope)
            if action.kind == "alert":
                params = _alert(params, self, subject, kind, evidence)
            if targeted:
                params["targets"] = scope["targets"]
            specs.append(ActionSpec(action.kind, params))  # type: ignore[arg-type]
        self.metrics.firings += 1
        self.metrics.actions += len(specs)
        return Firing(
            rule_id=self.id,
            rule_version=self.version,
            tenant=subject.tenant,
            key=subject.key,
            kind=kind,
            at=at,
            severity=self.rule.severity,
            actions=tuple(specs),
            evidence=evidence,
            values=dict(values),
            location=location,
        )

    def _targets(self, action: CompiledAction, subject: Subject) -> list[str]:
        if action.target == "entity":
            return [subject.entity.id] if subject.entity is not None else []
        if action.target == "key":
            return [subject.key]
        found = list(action.ids)
        if isinstance(action.target, Selection):
            selected = action.target.select(
                self.env.state, self.env.zones, subject.tenant, subject.point, action.limit
            )
            found.extend(entity.id for entity in selected)
        return found[: action.limit]

    def timed(self, started: float) -> None:
        """Add the time since `started` (perf_counter) to the rule's evaluation time."""
        self.metrics.seconds += time.perf_counter() - started


def _entity_scope(subject: Subject) -> dict[str, Any]:
    entity = subject.entity
    if entity is None:
        return {"id": subject.evidence[-1][2] if subject.evidence else None}
    scope: dict[str, Any] = {
        "id": entity.id,
        "type": local_name(entity.types[0]) if entity.types else None,
    }
    for iri, instances in entity.attrs.items():
        if instances:
            scope.setdefault(local_name(iri), instance_value(instances[0]))
    scope["id"] = entity.id
    return scope


def _alert(
    params: dict[str, Any],
    rule: RuleRuntime,
    subject: Subject,
    kind: FiringKind,
    evidence: tuple[Evidence, ...],
) -> dict[str, Any]:
    """Fill in a Smart Data Models Alert's fields the rule did not give."""
    entities = sorted({item.entity_id for item in evidence})
    params.setdefault("severity", rule.rule.severity)
    params.setdefault("name", rule.title)
    if subject.entity is not None:
        params.setdefault("alertSource", subject.entity.id)
    elif entities:
        params.setdefault("alertSource", entities[-1])
    params.setdefault("entities", entities)
    params["state"] = "cleared" if kind == "clear" else "raised"
    return params
