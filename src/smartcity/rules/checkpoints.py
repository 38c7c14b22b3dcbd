"""What the engine workers keep: each partition's checkpoint, and every firing with its outcomes.

A checkpoint is the engine's snapshot and the change-log sequence number it covers, written
only while the writer holds the partition's lease (fenced by its epoch). A firing is recorded
once, under its `firing_id`, before its actions run, and each action's outcome is written on
it as it ends: a worker that replays changes after a crash finds the firings it already
handled, and runs only the actions that had not ended.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from smartcity.rules.firing import ActionSpec, Evidence, Firing
from smartcity.storage.coordination import SqlCoordination
from smartcity.storage.sqlbase import SqlEntityStore

_DDL: Final = """
CREATE TABLE IF NOT EXISTS rule_checkpoints (
    partition_no INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    state TEXT NOT NULL,
    saved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_firings (
    firing_id {text} PRIMARY KEY,
    tenant {text} NOT NULL,
    rule_id {text} NOT NULL,
    rule_version INTEGER NOT NULL,
    rule_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    at {text} NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    firing TEXT NOT NULL,
    outcomes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_metrics (
    tenant {text} NOT NULL,
    rule_id {text} NOT NULL,
    partition_no INTEGER NOT NULL,
    counters TEXT NOT NULL,
    saved_at TEXT NOT NULL,
    PRIMARY KEY (tenant, rule_id)
);
CREATE INDEX IF NOT EXISTS rule_firings_rule ON rule_firings (tenant, rule_id, at);
CREATE INDEX IF NOT EXISTS rule_firings_at ON rule_firings (tenant, at)
"""
_TEXT: Final = {"sqlite": "TEXT", "postgresql": 'TEXT COLLATE "C"'}
_DDL_LOCK: Final = 0x736D63686B70  # "smchkp"
PENDING: Final = "pending"
DONE: Final = "done"
FAILED: Final = "failed"
"""Every action ended, at least one with an error."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A partition's engine state and the last change it covers."""

    partition: int
    seq: int
    epoch: int
    state: dict[str, Any]
    saved_at: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one action of a firing ended."""

    index: int
    kind: str
    status: str
    """`ok` or `error`."""
    detail: str = ""
    at: str = ""

    def doc(self) -> dict[str, Any]:
        """Return the outcome as JSON-ready data."""
        return {
            "index": self.index,
            "kind": self.kind,
            "status": self.status,
            "detail": self.detail,
            "at": self.at,
        }


@dataclass(frozen=True, slots=True)
class FiringRecord:
    """A recorded firing and what its actions did."""

    firing: Firing
    status: str
    recorded_at: str
    outcomes: list[Outcome] = field(default_factory=list)

    def ended(self, index: int) -> bool:
        """Tell whether action `index` has an outcome already."""
        return any(outcome.index == index for outcome in self.outcomes)


def firing_doc(firing: Firing) -> dict[str, Any]:
    """Return a firing as JSON-ready data."""
    return {
        "firingId": firing.firing_id,
        "ruleId": firing.rule_id,
        "ruleVersion": firing.rule_version,
        "tenant": firing.tenant,
        "key": firing.key,
        "kind": firing.kind,
        "at": firing.at,
        "severity": firing.severity,
        "actions": [{"kind": a.kind, "params": dict(a.params)} for a in firing.actions],
        "evidence": [
            {
                "tenant": e.tenant,
                "entityId": e.entity_id,
                "entityType": e.entity_type,
                "seq": e.seq,
                "observedAt": e.observed_at,
            }
            for e in firing.evidence
        ],
        "values": dict(firing.values),
        "location": dict(firing.location) if firing.location is not None else None,
    }


def firing_from_doc(doc: Mapping[str, Any]) -> Firing:
    """Return the firing `firing_doc` wrote."""
    return Firing(
        rule_id=doc["ruleId"],
        rule_version=int(doc["ruleVersion"]),
        tenant=doc["tenant"],
        key=doc["key"],
        kind=doc["kind"],
        at=doc["at"],
        severity=doc["severity"],
        actions=tuple(ActionSpec(a["kind"], a.get("params") or {}) for a in doc["actions"]),
        evidence=tuple(
            Evidence(e["tenant"], e["entityId"], e["entityType"], int(e["seq"]), e["observedAt"])
            for e in doc["evidence"]
        ),
        values=doc.get("values") or {},
        location=doc.get("location"),
    )


def _outcomes(text: str) -> list[Outcome]:
    return [
        Outcome(o["index"], o["kind"], o["status"], o.get("detail", ""), o.get("at", ""))
        for o in orjson.loads(text)
    ]


class SqlRuleState:
    """Checkpoints and firings on the platform's SQL database."""

    def __init__(self, store: SqlEntityStore, coordination: SqlCoordination) -> None:
        self._store = store
        self._coordination = coordination
        self._p = store.dialect.placeholder
        with store.writing() as cursor:
            if store.dialect.name == "postgresql":
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
            for statement in _DDL.format(text=_TEXT[store.dialect.name]).split(";"):
                cursor.execute(statement)

    # -- checkpoints ----------------------------------------------------------------------------

    def checkpoint(self, partition: int) -> Checkpoint | None:
        """Return a partition's last checkpoint, or None."""
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT partition_no, seq, epoch, state, saved_at FROM rule_checkpoints "
                f"WHERE partition_no = {self._p}",
                [partition],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        return Checkpoint(int(row[0]), int(row[1]), int(row[2]), orjson.loads(row[3]), row[4])

    def save_checkpoint(
        self,
        checkpoint: Checkpoint,
        *,
        lease: str,
        holder: str,
        metrics: Mapping[tuple[str, str], Mapping[str, float]] | None = None,
    ) -> bool:
        """Store a checkpoint if `holder` still holds `lease` in its epoch; return whether.

        `metrics` are the partition's rule counters up to the checkpoint (by tenant and rule),
        written in the same transaction so that a restart counts a replayed change once.
        """
        p = self._p
        state = orjson.dumps(checkpoint.state).decode()
        with self._store.writing() as cursor:
            if not self._coordination.fenced(cursor, lease, holder, checkpoint.epoch):
                return False
            for (tenant, rule_id), counters in sorted((metrics or {}).items()):
                cursor.execute(
                    "INSERT INTO rule_metrics (tenant, rule_id, partition_no, counters, saved_at) "
                    f"VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (tenant, rule_id) DO UPDATE "
                    "SET partition_no = excluded.partition_no, counters = excluded.counters, "
                    "saved_at = excluded.saved_at",
                    [
                        tenant,
                        rule_id,
                        checkpoint.partition,
                        orjson.dumps(dict(counters)).decode(),
                        checkpoint.saved_at,
                    ],
                )
            cursor.execute(
                "INSERT INTO rule_checkpoints (partition_no, seq, epoch, state, saved_at) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (partition_no) DO UPDATE SET "
                "seq = excluded.seq, epoch = excluded.epoch, state = excluded.state, "
                "saved_at = excluded.saved_at",
                [
                    checkpoint.partition,
                    checkpoint.seq,
                    checkpoint.epoch,
                    state,
                    checkpoint.saved_at,
                ],
            )
        return True

    def partition_metrics(self, partition: int) -> dict[tuple[str, str], dict[str, float]]:
        """Return the rule counters a partition saved with its last checkpoint."""
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT tenant, rule_id, counters FROM rule_metrics "
                f"WHERE partition_no = {self._p}",
                [partition],
            )
            rows = cursor.fetchall()
        return {(tenant, rule_id): orjson.loads(counters) for tenant, rule_id, counters in rows}

    def rule_metrics(self, tenant: str) -> dict[str, dict[str, Any]]:
        """Return a tenant's rule counters as of each rule's last checkpoint, by rule id."""
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT rule_id, counters, saved_at FROM rule_metrics WHERE tenant = {self._p}",
                [tenant],
            )
            rows = cursor.fetchall()
        return {
            rule_id: {**orjson.loads(counters), "savedAt": saved_at}
            for rule_id, counters, saved_at in rows
        }

    def all_counts(self) -> list[tuple[str, str, str, int]]:
        """Return how many firings each rule of every tenant has, by status (for metrics)."""
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT tenant, rule_id, status, COUNT(*) FROM rule_firings "
                "GROUP BY tenant, rule_id, status ORDER BY tenant, rule_id, status"
            )
            return [(str(t), str(r), str(s), int(n)) for t, r, s, n in cursor.fetchall()]

    def all_rule_metrics(self) -> list[tuple[str, str, dict[str, float]]]:
        """Return every rule's saved evaluation counters (for metrics)."""
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT tenant, rule_id, counters FROM rule_metrics ORDER BY tenant, rule_id"
            )
            return [(str(t), str(r), orjson.loads(c)) for t, r, c in cursor.fetchall()]

    def oldest_position(self, default: int) -> int:
        """Return the lowest sequence number a checkpoint covers (`default` without any)."""
        with self._store.reading() as cursor:
            cursor.execute("SELECT MIN(seq) FROM rule_checkpoints")
            row = cursor.fetchone()
        return default if row is None or row[0] is None else int(row[0])

    # -- firings --------------------------------------------------------------------------------

    def record(self, firing: Firing, at: str) -> FiringRecord:
        """Record a firing as pending, unless recorded before; return its record as stored."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                "INSERT INTO rule_firings (firing_id, tenant, rule_id, rule_version, rule_key, "
                "kind, at, severity, status, recorded_at, firing, outcomes) VALUES "
                f"({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, '[]') "
                "ON CONFLICT (firing_id) DO NOTHING",
                [
                    firing.firing_id,
                    firing.tenant,
                    firing.rule_id,
                    firing.rule_version,
                    firing.key,
                    firing.kind,
                    firing.at,
                    firing.severity,
                    PENDING,
                    at,
                    orjson.dumps(firing_doc(firing)).decode(),
                ],
            )
        found = self.firing(firing.tenant, firing.firing_id)
        assert found is not None
        return found

    def add_outcome(self, firing_id: str, outcome: Outcome, *, last: bool) -> None:
        """Write one action's outcome on a firing (and its final status after the last one)."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"SELECT outcomes FROM rule_firings WHERE firing_id = {p}{self._lock()}",
                [firing_id],
            )
            row = cursor.fetchone()
            if row is None:
                return
            outcomes = [o for o in _outcomes(row[0]) if o.index != outcome.index] + [outcome]
            outcomes.sort(key=lambda o: o.index)
            status = PENDING
            if last:
                status = DONE if all(o.status == "ok" for o in outcomes) else FAILED
            cursor.execute(
                f"UPDATE rule_firings SET outcomes = {p}, status = {p} WHERE firing_id = {p}",
                [orjson.dumps([o.doc() for o in outcomes]).decode(), status, firing_id],
            )

    def finish(self, firing_id: str) -> None:
        """Mark a firing done or failed from its outcomes (a firing without actions: done)."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(f"SELECT outcomes FROM rule_firings WHERE firing_id = {p}", [firing_id])
            row = cursor.fetchone()
            if row is None:
                return
            ok = all(o.status == "ok" for o in _outcomes(row[0]))
            cursor.execute(
                f"UPDATE rule_firings SET status = {p} WHERE firing_id = {p}",
                [DONE if ok else FAILED, firing_id],
            )

    def _lock(self) -> str:
        return " FOR UPDATE" if self._store.dialect.name == "postgresql" else ""

    def firing(self, tenant: str, firing_id: str) -> FiringRecord | None:
        """Return one firing of a tenant, or None."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT firing, status, recorded_at, outcomes FROM rule_firings "
                f"WHERE tenant = {p} AND firing_id = {p}",
                [tenant, firing_id],
            )
            row = cursor.fetchone()
        return None if row is None else _firing_record(row)

    def firings(
        self,
        tenant: str,
        *,
        rule_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[FiringRecord]:
        """Return a tenant's firings (of one rule, in a time range), newest first."""
        p = self._p
        conditions, params = [f"tenant = {p}"], [tenant]
        for condition, value in (
            (f"rule_id = {p}", rule_id),
            (f"at >= {p}", since),
            (f"at < {p}", until),
        ):
            if value is not None:
                conditions.append(condition)
                params.append(value)
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT firing, status, recorded_at, outcomes FROM rule_firings WHERE "
                + " AND ".join(conditions)
                + f" ORDER BY at DESC, firing_id LIMIT {p} OFFSET {p}",
                [*params, limit, offset],
            )
            return [_firing_record(row) for row in cursor.fetchall()]

    def counts(
        self, tenant: str, rule_ids: Sequence[str] | None = None
    ) -> dict[str, dict[str, int]]:
        """Return how many firings each rule of a tenant has, by status."""
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT rule_id, status, COUNT(*) FROM rule_firings "
                f"WHERE tenant = {self._p} GROUP BY rule_id, status",
                [tenant],
            )
            rows = cursor.fetchall()
        counts: dict[str, dict[str, int]] = {}
        for rule_id, status, count in rows:
            if rule_ids is None or rule_id in rule_ids:
                counts.setdefault(rule_id, {})[status] = int(count)
        return counts


def _firing_record(row: Sequence[Any]) -> FiringRecord:
    firing, status, recorded_at, outcomes = row
    return FiringRecord(
        firing_from_doc(orjson.loads(firing)), status, recorded_at, _outcomes(outcomes)
    )
