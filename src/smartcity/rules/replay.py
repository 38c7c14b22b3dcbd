"""Backtests: replay the temporal history of a time range through an engine, in event time.

The history keeps every attribute instance with its `observedAt`; a backtest rebuilds from it
the changes the entities went through: each entity starts as it was just before the range (its
latest instance of each attribute) and changes at each distinct observation time in the range,
all entities' changes merged in event-time order (ties by entity id). The engine is primed with
the starting states, fed the changes with its time advanced to each one, then to the end.
Replayed changes have the sequence number 0, as their firings' evidence says.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from smartcity.core.entity import StoredEntity
from smartcity.core.errors import TooManyResults
from smartcity.core.qlang import Or, TypeName
from smartcity.rules.firing import Firing
from smartcity.rules.plug import EnginePlug
from smartcity.rules.store import RuleRecord
from smartcity.storage.base import ChangeKind, ChangeRecord
from smartcity.storage.history import SqlHistoryStore
from smartcity.storage.history_query import (
    EntitySelection,
    HistoryEntity,
    InstanceRecord,
    InstanceWindow,
)
from smartcity.storage.history_rows import instant

PAGE = 200


@dataclass(slots=True)
class HistoryReplay:
    """What a time range of history replays as: starting states and changes in event time."""

    tenant: str
    initial: list[StoredEntity] = field(default_factory=list)
    changes: list[ChangeRecord] = field(default_factory=list)


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _entity_of(header: HistoryEntity) -> StoredEntity:
    return StoredEntity(id=header.id, types=list(header.types), attrs={}, scopes=header.scopes)


def _put(entity: StoredEntity, record: InstanceRecord) -> None:
    """Set one instance on an entity, replacing the one of the same dataset."""
    dataset = record.dataset_id or None
    kept = [i for i in entity.attrs.get(record.attr, []) if i.get("datasetId") != dataset]
    if record.deleted_at is None:
        kept.append(record.instance)
    if kept:
        entity.attrs[record.attr] = kept
    else:
        entity.attrs.pop(record.attr, None)


def _headers(
    history: SqlHistoryStore, tenant: str, types: Collection[str] | None
) -> list[HistoryEntity]:
    selection_types = Or(tuple(TypeName(t) for t in types)) if types else None
    found: list[HistoryEntity] = []
    offset = 0
    while True:
        page, _ = history.entities(
            EntitySelection(tenant=tenant, types=selection_types, limit=PAGE, offset=offset)
        )
        found.extend(page)
        if len(page) < PAGE:
            return found
        offset += PAGE


def read_history(
    history: SqlHistoryStore,
    tenant: str,
    start: datetime,
    end: datetime,
    *,
    types: Collection[str] | None = None,
    max_changes: int = 200_000,
) -> HistoryReplay:
    """Return the starting states and the changes of a tenant's entities in [start, end).

    `types` (expanded IRIs) narrows the entities read; more than `max_changes` changes is
    TooManyResults (narrow the range or the types).
    """
    replay = HistoryReplay(tenant)
    lower, upper = _micros(start), _micros(end)
    before = InstanceWindow(upper=lower, last_n=1)
    during = InstanceWindow(lower=lower, upper=upper, limit=max_changes)
    headers = _headers(history, tenant, types)
    for offset in range(0, len(headers), PAGE):
        page = headers[offset : offset + PAGE]
        keys = [h.key for h in page]
        starting = history.instances(keys, before)
        within = history.instances(keys, during)
        for header in page:
            entity = _entity_of(header)
            for record in starting.get(header.key, []):
                _put(entity, record)
            if entity.attrs:
                replay.initial.append(copy.deepcopy(entity))
            _changes_of(replay, entity, within.get(header.key, []))
            if len(replay.changes) > max_changes:
                raise TooManyResults(
                    f"the range holds more than {max_changes} changes: narrow it or the types"
                )
    replay.changes.sort(key=lambda change: (change.at, change.entity.id))
    return replay


def _changes_of(replay: HistoryReplay, entity: StoredEntity, records: list[InstanceRecord]) -> None:
    """Append one change per distinct observation time of one entity's instances."""
    by_time: dict[int, list[InstanceRecord]] = {}
    for record in records:
        by_time.setdefault(record.at, []).append(record)
    existed = bool(entity.attrs)
    for at in sorted(by_time):
        group = by_time[at]
        previous = {r.attr: copy.deepcopy(entity.attrs.get(r.attr, [])) for r in group}
        for record in group:
            _put(entity, record)
        moment = instant(at)
        entity.modified_at = moment
        replay.changes.append(
            ChangeRecord(
                seq=0,
                tenant=replay.tenant,
                kind=ChangeKind.UPDATE if existed else ChangeKind.CREATE,
                at=moment,
                entity=copy.deepcopy(entity),
                changed=sorted({r.attr for r in group}),
                previous={k: v for k, v in previous.items() if v},
            )
        )
        existed = True


def run_backtest(
    plug: EnginePlug, rules: Sequence[RuleRecord], replay: HistoryReplay, end: datetime
) -> list[Firing]:
    """Run rules over a replayed range; return what they would have fired, in order."""
    engine = plug.build(rules)
    engine.prime(replay.tenant, replay.initial)
    fired: list[Firing] = []
    for change in replay.changes:
        fired.extend(engine.advance(datetime.fromisoformat(change.at.replace("Z", "+00:00"))))
        fired.extend(engine.process(change))
    fired.extend(engine.advance(end))
    return fired
