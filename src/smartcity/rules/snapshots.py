"""The engine's state as JSON-ready data: changes waiting in the buffer, copies of rule state."""

from __future__ import annotations

from typing import Any

from smartcity.rules.state import entity_data, entity_from_data
from smartcity.storage.base import ChangeKind, ChangeRecord


def finite(value: float) -> float | None:
    """Return a moment, None for the infinities JSON cannot hold."""
    return value if value not in (float("inf"), float("-inf")) else None


def moment_or_never(value: float | None) -> float:
    """Return a moment that `finite` wrote (None: before everything)."""
    return float("-inf") if value is None else float(value)


def copy_data(value: Any) -> Any:
    """Return a deep copy of JSON-ready data."""
    if isinstance(value, dict):
        return {k: copy_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_data(v) for v in value]
    return value


def change_data(change: ChangeRecord) -> dict[str, Any]:
    """Return a change as JSON-ready data (without its previous values: rules do not read them)."""
    return {
        "seq": change.seq,
        "tenant": change.tenant,
        "kind": change.kind.value,
        "at": change.at,
        "entity": entity_data(change.entity),
        "changed": list(change.changed),
    }


def change_from(data: dict[str, Any]) -> ChangeRecord:
    """Return the change `change_data` wrote."""
    return ChangeRecord(
        seq=int(data["seq"]),
        tenant=data["tenant"],
        kind=ChangeKind(data["kind"]),
        at=data["at"],
        entity=entity_from_data(data["entity"]),
        changed=list(data["changed"]),
        previous={},
    )
