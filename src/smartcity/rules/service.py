"""Rules as a service: manage a tenant's rules, read their firings, validate and backtest.

Roles are checked here (not in the web layer): reading rules, firings, metrics, validating and
backtesting need `read-rules` (admin, operator, analyst); writing them needs `manage-rules`
(admin, operator). Every write is audited.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from smartcity.auth.policy import AccessControl, Permission, require
from smartcity.auth.principal import Caller
from smartcity.core.clock import Clock, isoformat
from smartcity.core.errors import (
    AlreadyExists,
    BadRequestData,
    ResourceNotFound,
)
from smartcity.rules.checkpoints import FiringRecord, SqlRuleState
from smartcity.rules.firing import Firing
from smartcity.rules.plug import EnginePlug
from smartcity.rules.replay import read_history, run_backtest
from smartcity.rules.store import RuleRecord, SqlRuleStore
from smartcity.storage.history import SqlHistoryStore

RULE_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_BACKTEST: Final = timedelta(days=31)


@dataclass(frozen=True, slots=True)
class Backtest:
    """What a backtest found."""

    rule: str
    start: str
    end: str
    changes: int
    firings: list[Firing]


class RuleService:
    """A tenant's rules, their firings, validation and backtests, for a caller."""

    def __init__(
        self,
        rules: SqlRuleStore,
        state: SqlRuleState,
        history: SqlHistoryStore,
        access: AccessControl,
        clock: Clock,
        plug: EnginePlug,
        *,
        max_limit: int = 1000,
    ) -> None:
        self.rules = rules
        self.state = state
        self.history = history
        self.access = access
        self.clock = clock
        self.plug = plug
        self.max_limit = max_limit

    # -- reading --------------------------------------------------------------------------------

    def list_rules(self, caller: Caller) -> list[RuleRecord]:
        """Return the caller's tenant's rules."""
        require(caller, Permission.READ_RULES)
        return self.rules.of_tenant(caller.tenant)

    def get(self, caller: Caller, rule_id: str) -> RuleRecord:
        """Return one rule of the caller's tenant."""
        require(caller, Permission.READ_RULES)
        record = self.rules.get(caller.tenant, rule_id)
        if record is None or record.deleted:
            raise ResourceNotFound(f"no rule {rule_id}", instance=rule_id)
        return record

    def validate(self, caller: Caller, rule_id: str, doc: Any) -> list[str]:
        """Return what is wrong with a rule document (empty when it may be stored)."""
        require(caller, Permission.READ_RULES)
        problems = []
        if not RULE_ID.match(rule_id):
            problems.append(
                f"rule id {rule_id!r}: 1-100 letters, digits, '_', '.', '-', starting with a "
                "letter or digit"
            )
        if not isinstance(doc, Mapping):
            return [*problems, "a rule is a JSON object (or a YAML mapping)"]
        return problems + self.plug.validate(caller.tenant, rule_id, doc)

    def firings(
        self,
        caller: Caller,
        *,
        rule_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[FiringRecord]:
        """Return the tenant's firings (of one rule, in a range), newest first."""
        require(caller, Permission.READ_RULES)
        if not 0 < limit <= self.max_limit or offset < 0:
            raise BadRequestData(f"limit must be 1-{self.max_limit} and offset at least 0")
        return self.state.firings(
            caller.tenant, rule_id=rule_id, since=since, until=until, limit=limit, offset=offset
        )

    def firing(self, caller: Caller, firing_id: str) -> FiringRecord:
        """Return one firing of the tenant."""
        require(caller, Permission.READ_RULES)
        found = self.state.firing(caller.tenant, firing_id)
        if found is None:
            raise ResourceNotFound(f"no firing {firing_id}", instance=firing_id)
        return found

    def metrics(self, caller: Caller) -> dict[str, Any]:
        """Return per-rule firing counts by status, and the rules' state."""
        require(caller, Permission.READ_RULES)
        rules = self.rules.of_tenant(caller.tenant)
        counts = self.state.counts(caller.tenant)
        engine = self.state.rule_metrics(caller.tenant)
        return {
            "rules": len(rules),
            "enabled": sum(1 for rule in rules if rule.enabled),
            "firings": {rule.id: counts.get(rule.id, {}) for rule in rules},
            "evaluation": {rule.id: _evaluation(engine.get(rule.id)) for rule in rules},
        }

    # -- writing --------------------------------------------------------------------------------

    def _checked(self, caller: Caller, rule_id: str, doc: Any) -> dict[str, Any]:
        problems = self.validate(caller, rule_id, doc)
        if problems:
            raise BadRequestData(f"rule {rule_id} is not valid: " + "; ".join(problems))
        return dict(doc)

    def create(self, caller: Caller, rule_id: str, doc: Any, *, enabled: bool = True) -> RuleRecord:
        """Store a new rule (version 1)."""
        require(caller, Permission.MANAGE_RULES)
        checked = self._checked(caller, rule_id, doc)
        existing = self.rules.get(caller.tenant, rule_id)
        if existing is not None and not existing.deleted:
            raise AlreadyExists(f"rule {rule_id} exists: update it instead", instance=rule_id)
        record = self.rules.put(
            caller.tenant, rule_id, checked, by=caller.subject, at=self._now(), enabled=enabled
        )
        self.access.record(caller, "rule.create", [(rule_id, "ok")])
        return record

    def update(self, caller: Caller, rule_id: str, doc: Any) -> RuleRecord:
        """Store a new version of an existing rule (enabled as it was)."""
        require(caller, Permission.MANAGE_RULES)
        current = self.get(caller, rule_id)
        checked = self._checked(caller, rule_id, doc)
        record = self.rules.put(
            caller.tenant,
            rule_id,
            checked,
            by=caller.subject,
            at=self._now(),
            enabled=current.enabled,
        )
        self.access.record(caller, "rule.update", [(rule_id, f"version {record.version}")])
        return record

    def apply(self, caller: Caller, rule_id: str, doc: Any) -> tuple[RuleRecord, bool]:
        """Create a rule or update it if its document differs; return it and whether it changed."""
        require(caller, Permission.MANAGE_RULES)
        current = self.rules.get(caller.tenant, rule_id)
        if current is None or current.deleted:
            return self.create(caller, rule_id, doc), True
        if current.doc == self._checked(caller, rule_id, doc):
            return current, False
        return self.update(caller, rule_id, doc), True

    def set_enabled(self, caller: Caller, rule_id: str, enabled: bool) -> RuleRecord:
        """Enable or disable a rule."""
        require(caller, Permission.MANAGE_RULES)
        if not self.rules.set_enabled(
            caller.tenant, rule_id, enabled, by=caller.subject, at=self._now()
        ):
            raise ResourceNotFound(f"no rule {rule_id}", instance=rule_id)
        action = "rule.enable" if enabled else "rule.disable"
        self.access.record(caller, action, [(rule_id, "ok")])
        return self.get(caller, rule_id)

    def delete(self, caller: Caller, rule_id: str) -> None:
        """Delete a rule (its versions and firings are kept)."""
        require(caller, Permission.MANAGE_RULES)
        if not self.rules.delete(caller.tenant, rule_id, by=caller.subject, at=self._now()):
            raise ResourceNotFound(f"no rule {rule_id}", instance=rule_id)
        self.access.record(caller, "rule.delete", [(rule_id, "ok")])

    def _now(self) -> str:
        return isoformat(self.clock.now())

    # -- backtests ------------------------------------------------------------------------------

    def backtest(
        self,
        caller: Caller,
        rule_id: str,
        start: datetime,
        end: datetime,
        *,
        doc: Any = None,
        types: Collection[str] | None = None,
    ) -> Backtest:
        """Run a stored rule (or `doc`, a draft of it) over the history of [start, end)."""
        require(caller, Permission.READ_RULES)
        require(caller, Permission.READ_HISTORY)
        if start.tzinfo is None or end.tzinfo is None or not start < end:
            raise BadRequestData("a backtest needs a start before its end, both with a time zone")
        if end - start > MAX_BACKTEST:
            raise BadRequestData(f"a backtest covers at most {MAX_BACKTEST.days} days")
        if doc is None:
            record = self.get(caller, rule_id)
        else:
            checked = self._checked(caller, rule_id, doc)
            record = RuleRecord(caller.tenant, rule_id, 0, True, checked, self._now(), "")
        replay = read_history(self.history, caller.tenant, start, end, types=types)
        fired = run_backtest(self.plug, [record], replay, end)
        return Backtest(rule_id, isoformat(start), isoformat(end), len(replay.changes), fired)


def _evaluation(saved: dict[str, Any] | None) -> dict[str, Any]:
    """Return a rule's engine counters as the API shows them ({} before its first checkpoint)."""
    if saved is None:
        return {}
    return {
        "events": int(saved.get("events", 0)),
        "matches": int(saved.get("matches", 0)),
        "firings": int(saved.get("firings", 0)),
        "actions": int(saved.get("actions", 0)),
        "suppressed": int(saved.get("suppressed", 0)),
        "evaluationSeconds": round(float(saved.get("seconds", 0.0)), 6),
        "asOf": saved.get("savedAt"),
    }
