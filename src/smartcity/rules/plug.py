"""Where the rule engine is plugged into its runtime: the one place that knows the engine.

The runtime (workers, checkpoints, actions, the rule store, API and CLI) needs three things of
an engine, gathered in `EnginePlug`: build an engine for a set of stored rules and check a rule
document. `engine_plug` returns the plug the platform runs with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from smartcity.rules.firing import RuleEngine
from smartcity.rules.store import RuleRecord


class EnginePlug(Protocol):
    """What the runtime asks of the engine."""

    def build(self, rules: Sequence[RuleRecord]) -> RuleEngine:
        """Return a fresh engine that runs these rules (every tenant's, enabled ones)."""
        ...

    def validate(self, tenant: str, rule_id: str, doc: Mapping[str, Any]) -> list[str]:
        """Return what is wrong with a rule document (empty: it may be stored and run)."""
        ...


def engine_plug(lateness: float | None = None, clock_delay: float | None = None) -> EnginePlug:
    """Return the engine the platform runs: the convergence engine, one per tenant.

    `lateness` replaces the built-in rule sets' allowed lateness (`rules_lateness`);
    `clock_delay` sets apart how far the engines' time stays behind the clock
    (`rules_clock_delay`).
    """
    from smartcity.rules.convergence import ConvergencePlug

    return ConvergencePlug(lateness, clock_delay)
