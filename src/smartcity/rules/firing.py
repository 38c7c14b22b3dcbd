"""What the rule engine decides and hands to its actions: firings, their actions and evidence.

This is the seam between the engine (pure: changes in, firings out, deterministic for the same
input) and the runtime around it (the bus worker, the action executors, checkpoints, backtests).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from smartcity.core.entity import StoredEntity
from smartcity.storage.base import ChangeRecord

ActionKind = Literal["alert", "update", "command", "webhook", "incident"]
FiringKind = Literal["raise", "clear", "fire"]
"""`raise`/`clear` for conditions that hold for a while (thresholds, absence); `fire` for one-off
matches (a sequence completed, N occurrences)."""


# Firings and their parts are values: nothing changes them once made. They are not frozen
# dataclasses only because a frozen dataclass's __init__ sets each field through
# object.__setattr__, which made firing cost twice as much (compiled, `native.py`). Evidence
# and Firing write their own __init__ for the same reason: compiled, the one `dataclass` makes
# runs as interpreted code (it cost more than the rest of a firing's evidence).


@dataclass(slots=True, init=False)
class Evidence:
    """One entity change that contributed to a firing (a link of the causal chain)."""

    tenant: str
    entity_id: str
    entity_type: str
    """Local type name ("Camera"), not the expanded IRI."""
    seq: int
    """The change log's sequence number of the change; 0 when replayed from history."""
    observed_at: str
    """Event time of the change, ISO 8601 UTC."""

    def __init__(
        self, tenant: str, entity_id: str, entity_type: str, seq: int, observed_at: str
    ) -> None:
        self.tenant = tenant
        self.entity_id = entity_id
        self.entity_type = entity_type
        self.seq = seq
        self.observed_at = observed_at

    def __reduce__(self) -> tuple[Any, ...]:
        """Copy and pickle through __init__ (compiled, a class with its own __init__ cannot be
        made empty first, as copy and pickle otherwise do)."""
        return (
            Evidence,
            (self.tenant, self.entity_id, self.entity_type, self.seq, self.observed_at),
        )


@dataclass(slots=True)
class ActionSpec:
    """One action of a firing, with the rule's templates already rendered for it."""

    kind: ActionKind
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True, init=False)
class Firing:
    """A rule that matched (or stopped matching) for one key at one event time."""

    rule_id: str
    rule_version: int
    tenant: str
    key: str
    """What the rule's state is kept by: an entity id, a zone, a grid cell, a related entity."""
    kind: FiringKind
    at: str
    """Event time of the firing, ISO 8601 UTC (never the time it was computed)."""
    severity: str
    actions: tuple[ActionSpec, ...]
    evidence: tuple[Evidence, ...]
    """The changes behind the firing, oldest first."""
    values: Mapping[str, Any] = field(default_factory=dict)
    """Aggregates and matched values, for messages and the alert's description."""
    location: Mapping[str, Any] | None = None
    """A GeoJSON geometry for the firing (the entity's location, the zone, the cell)."""

    def __init__(
        self,
        rule_id: str,
        rule_version: int,
        tenant: str,
        key: str,
        kind: FiringKind,
        at: str,
        severity: str,
        actions: tuple[ActionSpec, ...],
        evidence: tuple[Evidence, ...],
        values: Mapping[str, Any] | None = None,
        location: Mapping[str, Any] | None = None,
    ) -> None:
        self.rule_id = rule_id
        self.rule_version = rule_version
        self.tenant = tenant
        self.key = key
        self.kind = kind
        self.at = at
        self.severity = severity
        self.actions = actions
        self.evidence = evidence
        self.values = values if values is not None else {}
        self.location = location

    def __reduce__(self) -> tuple[Any, ...]:
        """Copy and pickle through __init__ (as `Evidence` does)."""
        return (
            Firing,
            (
                self.rule_id,
                self.rule_version,
                self.tenant,
                self.key,
                self.kind,
                self.at,
                self.severity,
                self.actions,
                self.evidence,
                self.values,
                self.location,
            ),
        )

    @property
    def firing_id(self) -> str:
        """Return an id that is the same every time the same input produces this firing."""
        text = "\n".join(
            (self.rule_id, str(self.rule_version), self.tenant, self.key, self.kind, self.at)
        )
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def gathered(fired: list[Firing] | None, found: list[Firing]) -> list[Firing]:
    """Return what fired so far with `found` added (None so far: `found` itself, a list its
    maker hands over). Evaluations return None when nothing fired, as most do, so no list is
    made for them."""
    if fired is None:
        return found
    fired.extend(found)
    return fired


class RuleEngine(Protocol):
    """Changes in, firings out; deterministic for the same input and the same rules."""

    def prime(self, tenant: str, entities: Iterable[StoredEntity]) -> None:
        """Load the current state of entities the rules join with (run before the first change)."""
        ...

    def process(self, change: ChangeRecord) -> list[Firing]:
        """Take one committed change; return what fired because of it."""
        ...

    def advance(self, now: datetime) -> list[Firing]:
        """Move time to `now` (timers: absences, windows closing); return what fired."""
        ...

    def resume(self, now: datetime) -> None:
        """Note that the engine runs again from `now` after it did not (a worker started on a
        checkpoint or the current state, then caught up): silences from before are not counted
        against devices that report again now (see the engine's feed gaps)."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """Return the engine's state (windows, pending patterns) as JSON-ready data."""
        ...

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a state that `snapshot` returned."""
        ...

    def rule_metrics(self) -> dict[tuple[str, str], dict[str, float]]:
        """Return what each rule did since the engine was built, by (tenant, rule id).

        Counters by name (`events` seen, `matches`, `firings`, `actions`, `suppressed`,
        `seconds` of evaluation); the runtime adds them up across restarts.
        """
        ...
