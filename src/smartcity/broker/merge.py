"""Pure functions that combine stored attributes with incoming ones (append, update, merge)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smartcity.core.entity import Attributes, Instance

NGSI_LD_NULL = "urn:ngsi-ld:null"


@dataclass(slots=True)
class NotUpdated:
    """An attribute the operation left alone, and why."""

    attribute: str
    reason: str


@dataclass(slots=True)
class UpdateResult:
    """The attributes an operation changed and those it did not."""

    updated: list[str] = field(default_factory=list)
    not_updated: list[NotUpdated] = field(default_factory=list)


def _dataset(instance: Instance) -> str | None:
    value = instance.get("datasetId")
    return value if isinstance(value, str) else None


def _keep_created(new: Instance, old: Instance | None, now: str) -> Instance:
    new = dict(new)
    new["createdAt"] = old.get("createdAt", now) if old else now
    new["modifiedAt"] = now
    return new


def find_instance(instances: list[Instance], dataset_id: str | None) -> int | None:
    """Return the position of the instance with this datasetId, or None."""
    for position, instance in enumerate(instances):
        if _dataset(instance) == dataset_id:
            return position
    return None


def put_instances(
    current: Attributes,
    incoming: Attributes,
    now: str,
    *,
    overwrite: bool,
    only_existing: bool,
    result: UpdateResult,
    display: dict[str, str] | None = None,
) -> None:
    """Write incoming instances into `current` in place (append or update semantics)."""
    for name, instances in incoming.items():
        shown = (display or {}).get(name, name)
        existing = current.setdefault(name, [])
        changed = False
        for instance in instances:
            position = find_instance(existing, _dataset(instance))
            if position is None:
                if only_existing:
                    result.not_updated.append(NotUpdated(shown, "attribute does not exist"))
                    continue
                existing.append(_keep_created(instance, None, now))
                changed = True
            elif not overwrite:
                result.not_updated.append(
                    NotUpdated(shown, "attribute exists and noOverwrite was requested")
                )
            else:
                existing[position] = _keep_created(instance, existing[position], now)
                changed = True
        if not existing:
            del current[name]
        if changed and shown not in result.updated:
            result.updated.append(shown)


def merge_instance(old: Instance, fragment: dict[str, Any]) -> dict[str, Any]:
    """Return the raw attribute made of an old instance with the members of a fragment on top."""
    merged = {k: v for k, v in old.items() if k not in ("createdAt", "modifiedAt")}
    if "type" in fragment and fragment["type"] != old.get("type"):
        # A different attribute type replaces the whole value, not a member of it.
        merged = {k: v for k, v in merged.items() if k in ("datasetId",)}
    merged.update(fragment)
    return merged


def is_null(raw: Any) -> bool:
    """Tell whether a raw attribute in a merge-patch body asks to delete the attribute."""
    if raw == NGSI_LD_NULL:
        return True
    if isinstance(raw, dict):
        return NGSI_LD_NULL in (raw.get("value"), raw.get("object"), raw.get("languageMap"))
    return False
