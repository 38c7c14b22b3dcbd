"""The convergence engine plugged into the runtime: stored rules become one engine per tenant.

A stored rule is one rule of the engine's language (`rules/model.py`). Each tenant's enabled
rules run in an `Engine` of their own, so two tenants may use the same rule id and a rule never
sees another tenant's changes. Zones, calendars and the city's place and time zone come from the
built-in rule sets (the district's zones), so a stored rule can name them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

from pydantic import ValidationError

from smartcity.core.entity import StoredEntity
from smartcity.rules.compile import check_rule_set
from smartcity.rules.engine import Engine
from smartcity.rules.firing import Firing
from smartcity.rules.loader import builtin_rule_set, render_path
from smartcity.rules.model import Rule, RuleSet
from smartcity.rules.store import RuleRecord
from smartcity.storage.base import ChangeRecord

SNAPSHOT_FORMAT = "tenant-engines/1"


class TenantEngines:
    """A RuleEngine made of one convergence `Engine` per tenant."""

    def __init__(self, rule_sets: Mapping[str, RuleSet], clock_delay: float | None = None) -> None:
        self.engines = {
            tenant: Engine(rule_set, clock_delay=clock_delay)
            for tenant, rule_set in rule_sets.items()
        }

    def prime(self, tenant: str, entities: Iterable[StoredEntity]) -> None:
        """Load the current state of the tenant's entities its rules join with."""
        engine = self.engines.get(tenant)
        if engine is not None:
            engine.prime(tenant, entities)

    def process(self, change: ChangeRecord) -> list[Firing]:
        """Take one change to its tenant's engine."""
        engine = self.engines.get(change.tenant)
        return engine.process(change) if engine is not None else []

    def resume(self, now: datetime) -> None:
        """Note that every tenant's engine runs again from `now`."""
        for engine in self.engines.values():
            engine.resume(now)

    def advance(self, now: datetime) -> list[Firing]:
        """Move every tenant's engine to `now` (in tenant order: deterministic)."""
        fired: list[Firing] = []
        for tenant in sorted(self.engines):
            fired.extend(self.engines[tenant].advance(now))
        return fired

    def snapshot(self) -> dict[str, Any]:
        """Return every tenant engine's state."""
        return {
            "format": SNAPSHOT_FORMAT,
            "tenants": {tenant: self.engines[tenant].snapshot() for tenant in sorted(self.engines)},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a snapshot; a tenant without rules any more is dropped."""
        if state.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"not a snapshot of format {SNAPSHOT_FORMAT}")
        for tenant, saved in state["tenants"].items():
            engine = self.engines.get(tenant)
            if engine is not None:
                engine.restore(saved)

    def rule_metrics(self) -> dict[tuple[str, str], dict[str, float]]:
        """Return what each rule did since its engine was built, by (tenant, rule id)."""
        return {
            (tenant, rule_id): counters
            for tenant, engine in sorted(self.engines.items())
            for (_, rule_id), counters in engine.rule_metrics().items()
        }

    def metrics(self) -> dict[str, Any]:
        """Return each tenant engine's counters."""
        return {tenant: self.engines[tenant].metrics() for tenant in sorted(self.engines)}


class ConvergencePlug:
    """Builds tenant engines from stored rules and checks rule documents (the EnginePlug)."""

    def __init__(self, lateness: float | None = None, clock_delay: float | None = None) -> None:
        self.lateness = lateness
        """Seconds a change waits for late readings (None: the built-in rule sets' lateness)."""
        self.clock_delay = clock_delay
        """Seconds the engines' time stays behind the clock (None: the lateness)."""

    @cached_property
    def shared(self) -> RuleSet:
        """The built-in rule sets' zones, calendars, place and time zone (without their rules)."""
        shared = builtin_rule_set().model_copy(update={"rules": []})
        if self.lateness is not None:
            shared = shared.model_copy(update={"lateness": self.lateness})
        return shared

    def rule_set(self, rules: Sequence[Rule]) -> RuleSet:
        """Return the shared settings with these rules."""
        return self.shared.model_copy(update={"rules": list(rules)})

    def build(self, rules: Sequence[RuleRecord]) -> TenantEngines:
        """Return engines running the enabled rules, one engine per tenant."""
        by_tenant: dict[str, list[Rule]] = defaultdict(list)
        for record in sorted(rules, key=lambda r: (r.tenant, r.id)):
            if record.enabled and not record.deleted:
                by_tenant[record.tenant].append(_rule(record.id, record.doc))
        return TenantEngines(
            {tenant: self.rule_set(tenant_rules) for tenant, tenant_rules in by_tenant.items()},
            self.clock_delay,
        )

    def validate(self, tenant: str, rule_id: str, doc: Mapping[str, Any]) -> list[str]:
        """Return what is wrong with a rule document, each with where and how to fix it."""
        try:
            rule = _rule(rule_id, doc)
        except ValidationError as error:
            return [f"{render_path(tuple(item['loc']))}: {item['msg']}" for item in error.errors()]
        return [
            f"{render_path(path[2:] if path[:2] == ('rules', 0) else path)}: {message}"
            for path, message in check_rule_set(self.rule_set([rule]))
        ]


def _rule(rule_id: str, doc: Mapping[str, Any]) -> Rule:
    """Return the rule a stored document describes (its id is the stored one)."""
    return Rule.model_validate({**doc, "id": rule_id})
