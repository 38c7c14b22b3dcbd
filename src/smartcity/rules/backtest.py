"""Run rules over historical changes to see what they would have raised, before enabling them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from smartcity.core.entity import StoredEntity
from smartcity.rules.engine import Engine
from smartcity.rules.firing import Firing
from smartcity.rules.model import RuleSet
from smartcity.storage.base import ChangeRecord


@dataclass(slots=True)
class BacktestReport:
    """What a rule set would have done over a stretch of history."""

    changes: int = 0
    firings: list[Firing] = field(default_factory=list)
    too_late: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        """Return the firings per rule and kind (``{"waste-bin-full": {"raise": 3, ...}}``)."""
        out: dict[str, Counter[str]] = {}
        for firing in self.firings:
            out.setdefault(firing.rule_id, Counter())[firing.kind] += 1
        return {rule: dict(sorted(kinds.items())) for rule, kinds in sorted(out.items())}

    def per_key(self) -> dict[str, dict[str, int]]:
        """Return how many times each key raised or fired, per rule (the noisy keys first)."""
        out: dict[str, Counter[str]] = {}
        for firing in self.firings:
            if firing.kind != "clear":
                out.setdefault(firing.rule_id, Counter())[firing.key] += 1
        return {
            rule: dict(sorted(keys.items(), key=lambda item: (-item[1], item[0])))
            for rule, keys in sorted(out.items())
        }

    def summary(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (firings with their times, counts per key)."""
        return {
            "changes": self.changes,
            "tooLate": self.too_late,
            "counts": self.counts(),
            "perKey": self.per_key(),
            "firings": [
                {
                    "rule": f.rule_id,
                    "kind": f.kind,
                    "key": f.key,
                    "at": f.at,
                    "severity": f.severity,
                    "values": dict(f.values),
                }
                for f in self.firings
            ],
        }


def backtest(
    rule_set: RuleSet,
    changes: Iterable[ChangeRecord],
    *,
    rules: Iterable[str] | None = None,
    primed: Iterable[tuple[str, StoredEntity]] = (),
    until: datetime | None = None,
    lateness: float | None = None,
) -> BacktestReport:
    """Run (some of) a rule set over changes ordered by event time; report what fired.

    Disabled rules run too: a backtest is how one decides whether to enable them. `primed` is
    the state of the joined entities at the start, `until` the end of the stretch (timers due
    before it fire: a device that fell silent near the end is still reported).
    """
    wanted = set(rules) if rules is not None else None
    chosen = [
        rule.model_copy(update={"enabled": True})
        for rule in rule_set.rules
        if wanted is None or rule.id in wanted
    ]
    engine = Engine(rule_set.model_copy(update={"rules": chosen}), lateness=lateness)
    by_tenant: dict[str, list[StoredEntity]] = {}
    for tenant, entity in primed:
        by_tenant.setdefault(tenant, []).append(entity)
    for tenant, entities in sorted(by_tenant.items()):
        engine.prime(tenant, entities)
    report = BacktestReport()
    for change in changes:
        report.changes += 1
        report.firings.extend(engine.process(change))
    report.firings.extend(engine.flush())
    if until is not None:
        report.firings.extend(engine.advance(until))
    report.too_late = engine.too_late
    report.metrics = engine.metrics()
    return report
