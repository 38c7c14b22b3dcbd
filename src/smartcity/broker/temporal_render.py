"""Render temporal representations: normalized, simplified (temporalValues) and aggregated."""

from __future__ import annotations

import math
from typing import Any, Final

from smartcity.broker.contexts import ActiveContext
from smartcity.broker.render import render_entity
from smartcity.broker.temporal_params import TemporalOptions
from smartcity.core.entity import (
    RESERVED_MEMBERS,
    VALUE_MEMBER,
    Instance,
    StoredEntity,
    instance_value,
)
from smartcity.storage.history import Aggregate, HistoryEntity, InstanceRecord
from smartcity.storage.history_rows import DELETED_VALUE, instant

# The member that lists an attribute's values in the simplified temporal representation.
VALUES_MEMBER: Final = {
    "Property": "values",
    "GeoProperty": "values",
    "Relationship": "objects",
    "LanguageProperty": "languageMaps",
    "JsonProperty": "jsons",
    "VocabProperty": "vocabs",
    "ListProperty": "valueLists",
    "ListRelationship": "objectLists",
}


_SYSTEM_MEMBERS: Final = frozenset({"createdAt", "modifiedAt", "deletedAt"})
_NEEDS_CONTEXT: Final = frozenset({"VocabProperty", "LanguageProperty"})


def _header(entity: HistoryEntity, ctx: ActiveContext, sys_attrs: bool) -> dict[str, Any]:
    types = [ctx.compact(name) for name in entity.types]
    out: dict[str, Any] = {"id": entity.id, "type": types[0] if len(types) == 1 else types}
    if entity.scopes:
        out["scope"] = entity.scopes[0] if len(entity.scopes) == 1 else list(entity.scopes)
    if sys_attrs and entity.deleted_at is not None:
        out["deletedAt"] = instant(entity.deleted_at)
    return out


def _instance(record: InstanceRecord) -> Instance:
    """Return the instance as shown: with its instanceId, a deletion with its null value."""
    instance = dict(record.instance)
    instance["instanceId"] = record.instance_id
    if record.deleted_at is not None:
        kind = str(instance.get("type", "Property"))
        instance[VALUE_MEMBER.get(kind, "value")] = DELETED_VALUE
        instance["deletedAt"] = instant(record.deleted_at)
        instance.setdefault("createdAt", instant(record.created_at))
        instance.setdefault("modifiedAt", instant(record.modified_at))
    return instance


def _plain(instance: Instance, sys_attrs: bool) -> dict[str, Any] | None:
    """Render an instance made of reserved members only (most readings), else return None.

    The general renderer handles sub-attributes, vocabularies and languages; a day of readings
    is thousands of plain instances, so they take this short path.
    """
    if instance.get("type") in _NEEDS_CONTEXT:
        return None
    out: dict[str, Any] = {}
    for key, value in instance.items():
        if key not in RESERVED_MEMBERS or key == "objectType":
            return None
        if sys_attrs or key not in _SYSTEM_MEMBERS:
            out[key] = value
    return out


def render_normalized(
    entity: HistoryEntity,
    records: list[InstanceRecord],
    ctx: ActiveContext,
    options: TemporalOptions,
) -> dict[str, Any]:
    """Render an entity's history with every attribute an array of instances."""
    out = _header(entity, ctx, options.sys_attrs)
    general: dict[str, list[Instance]] = {}
    shown: dict[str, list[Any]] = {}
    for record in records:
        instance = _instance(record)
        plain = _plain(instance, options.sys_attrs) if options.lang is None else None
        if plain is None:
            general.setdefault(record.attr, []).append(instance)
            plain = {}  # a place kept in order, filled below
        shown.setdefault(record.attr, []).append(plain)
    rendered: dict[str, list[Any]] = {}
    if general:
        stored = StoredEntity(id=entity.id, types=entity.types, attrs=general)
        body = render_entity(stored, ctx, sys_attrs=options.sys_attrs, lang=options.lang)
        for name in general:
            value = body[ctx.compact(name)]
            rendered[name] = value if isinstance(value, list) else [value]
    for name, items in shown.items():
        pending = iter(rendered.get(name, []))
        out[ctx.compact(name)] = [item if item else next(pending) for item in items]
    return out


def _by_dataset(records: list[InstanceRecord]) -> dict[str, dict[str, list[InstanceRecord]]]:
    grouped: dict[str, dict[str, list[InstanceRecord]]] = {}
    for record in records:
        grouped.setdefault(record.attr, {}).setdefault(record.dataset_id, []).append(record)
    return grouped


def _one_or_list(items: list[dict[str, Any]]) -> Any:
    return items[0] if len(items) == 1 else items


def render_simplified(
    entity: HistoryEntity,
    records: list[InstanceRecord],
    ctx: ActiveContext,
    options: TemporalOptions,
) -> dict[str, Any]:
    """Render an entity's history as [value, time] pairs per attribute (temporalValues)."""
    out = _header(entity, ctx, options.sys_attrs)
    for attr, datasets in _by_dataset(records).items():
        shown: list[dict[str, Any]] = []
        for dataset, items in datasets.items():
            kind = str(items[-1].instance.get("type", "Property"))
            pairs = [
                [
                    DELETED_VALUE
                    if record.deleted_at is not None
                    else _compacted(kind, instance_value(record.instance), ctx),
                    instant(record.at),
                ]
                for record in items
            ]
            item: dict[str, Any] = {"type": kind, VALUES_MEMBER.get(kind, "values"): pairs}
            if dataset:
                item["datasetId"] = dataset
            shown.append(item)
        out[ctx.compact(attr)] = _one_or_list(shown)
    return out


def _compacted(kind: str, value: Any, ctx: ActiveContext) -> Any:
    if kind == "VocabProperty":
        if isinstance(value, str):
            return ctx.compact(value)
        if isinstance(value, list):
            return [ctx.compact(v) if isinstance(v, str) else v for v in value]
    return value


def _stddev(aggregate: Aggregate) -> float | None:
    """Return the sample standard deviation from the count, sum and sum of squares."""
    n = aggregate.numbers
    if n == 0 or aggregate.sum is None or aggregate.sumsq is None:
        return None
    if n == 1:
        return 0.0
    variance = (aggregate.sumsq - aggregate.sum * aggregate.sum / n) / (n - 1)
    return math.sqrt(max(variance, 0.0))


def aggregate_value(aggregate: Aggregate, method: str) -> Any:
    """Return one aggregation method's result for one period."""
    if method == "totalCount":
        return aggregate.total
    if method == "distinctCount":
        return aggregate.distinct
    if method == "stddev":
        return _stddev(aggregate)
    value: float | None = getattr(aggregate, method)
    return value


def render_aggregated(
    entity: HistoryEntity,
    aggregates: list[Aggregate],
    ctx: ActiveContext,
    options: TemporalOptions,
    start: int,
) -> dict[str, Any]:
    """Render per-period aggregates as [value, start, end] triples per method."""
    out = _header(entity, ctx, options.sys_attrs)
    grouped: dict[str, dict[str, list[Aggregate]]] = {}
    for aggregate in aggregates:
        grouped.setdefault(aggregate.attr, {}).setdefault(aggregate.dataset_id, []).append(
            aggregate
        )
    window = options.window(0)
    for attr, datasets in grouped.items():
        shown: list[dict[str, Any]] = []
        for dataset, periods in datasets.items():
            item: dict[str, Any] = {"type": periods[-1].kind}
            if dataset:
                item["datasetId"] = dataset
            for method in options.methods:
                triples = []
                for aggregate in periods:
                    if options.period > 0:
                        begin = start + aggregate.bucket * options.period
                        end = begin + options.period
                    else:
                        begin = window.lower if window.lower is not None else aggregate.first
                        end = window.upper if window.upper is not None else aggregate.last
                    value = aggregate_value(aggregate, method)
                    triples.append([value, instant(begin), instant(end)])
                item[method] = triples
            shown.append(item)
        out[ctx.compact(attr)] = _one_or_list(shown)
    return out
