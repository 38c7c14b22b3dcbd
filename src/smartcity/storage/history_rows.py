"""Turn entity changes and temporal bodies into history rows: one row per attribute instance.

Times are kept as whole microseconds since the Unix epoch (UTC), so that both SQL backends can
compare them and cut them into aggregation periods with integer arithmetic.
"""

from __future__ import annotations

import functools
import itertools
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from smartcity.core.entity import Instance, instance_value
from smartcity.storage.base import ChangeKind, ChangeRecord

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INSTANCE_PREFIX = "urn:ngsi-ld:attribute-instance:"
DELETED_VALUE = "urn:ngsi-ld:null"


@functools.lru_cache(maxsize=4096)
def micros(text: str) -> int:
    """Return the microseconds since the epoch of an ISO 8601 date-time (UTC if no offset).

    Cached: the instances of one write share their createdAt/modifiedAt stamps.
    """
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1)


def instant(value: int) -> str:
    """Format microseconds since the epoch as an NGSI-LD UTC timestamp."""
    seconds, fraction = divmod(value, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:06d}Z"


_sequence = itertools.count()
_PROCESS = secrets.token_hex(8)


def new_instance_id() -> str:
    """Return a fresh instanceId (a URI, as NGSI-LD requires) that sorts in creation order.

    Instances with the same time are shown in the order of their ids, so ids begin with the
    time they were made (microseconds) and a counter; a random token per process keeps ids of
    several processes apart.
    """
    stamp = time.time_ns() // 1000
    serial = next(_sequence) % 0x100000000
    return f"{INSTANCE_PREFIX}{stamp:014x}-{serial:08x}-{_PROCESS}"


@dataclass(slots=True)
class HistoryRow:
    """One attribute instance kept in the history (or the record of its deletion)."""

    attr: str
    dataset_id: str
    """'' for the default instance."""
    kind: str
    """The attribute type (Property, Relationship, ...)."""
    instance_id: str
    observed_at: int
    """observedAt, or the time the instance was received when it has none."""
    created_at: int
    modified_at: int
    deleted_at: int | None
    num: float | None
    value: str | None
    """The value as canonical JSON (distinct counts compare it)."""
    doc: str
    """The instance in stored form (expanded names), as JSON."""


@dataclass(slots=True)
class EntityHeader:
    """What the history keeps of an entity besides its instances."""

    id: str
    types: list[str]
    scopes: list[str]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def instance_row(attr: str, instance: Instance, received: int, instance_id: str = "") -> HistoryRow:
    """Build the history row of one live attribute instance received at `received`."""
    observed = instance.get("observedAt")
    created = instance.get("createdAt")
    modified = instance.get("modifiedAt")
    modified_at = micros(modified) if isinstance(modified, str) else received
    value = instance_value(instance)
    return HistoryRow(
        attr=attr,
        dataset_id=str(instance.get("datasetId") or ""),
        kind=str(instance.get("type", "Property")),
        instance_id=instance_id or new_instance_id(),
        observed_at=micros(observed) if isinstance(observed, str) else modified_at,
        created_at=micros(created) if isinstance(created, str) else modified_at,
        modified_at=modified_at,
        deleted_at=None,
        num=_number(value) if instance.get("type", "Property") == "Property" else None,
        value=orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode(),
        doc=orjson.dumps(instance).decode(),
    )


def deletion_row(attr: str, instance: Instance, at: int) -> HistoryRow:
    """Build the row that records the deletion of an attribute instance at `at`."""
    kept = {"type": instance.get("type", "Property")}
    if "datasetId" in instance:
        kept["datasetId"] = instance["datasetId"]
    return HistoryRow(
        attr=attr,
        dataset_id=str(instance.get("datasetId") or ""),
        kind=str(kept["type"]),
        instance_id=new_instance_id(),
        observed_at=at,
        created_at=at,
        modified_at=at,
        deleted_at=at,
        num=None,
        value=None,
        doc=orjson.dumps(kept).decode(),
    )


def rows_of_change(change: ChangeRecord) -> list[HistoryRow]:
    """Return the history rows one logged change makes: new values, and deletions."""
    at = micros(change.at)
    rows: list[HistoryRow] = []
    if change.kind is ChangeKind.DELETE:
        for name, instances in change.entity.attrs.items():
            rows.extend(deletion_row(name, instance, at) for instance in instances)
        return rows
    for name in change.changed:
        now = change.entity.attrs.get(name, [])
        before = {str(i.get("datasetId") or ""): i for i in change.previous.get(name, [])}
        kept: set[str] = set()
        for instance in now:
            dataset = str(instance.get("datasetId") or "")
            kept.add(dataset)
            if before.get(dataset) != instance:
                rows.append(instance_row(name, instance, at))
        for dataset, instance in before.items():
            if dataset not in kept:
                rows.append(deletion_row(name, instance, at))
    return rows


def header_of(change: ChangeRecord) -> EntityHeader:
    """Return the entity header a change leaves."""
    return EntityHeader(change.entity.id, list(change.entity.types), list(change.entity.scopes))
