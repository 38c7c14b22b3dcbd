"""Render stored entities as NGSI-LD normalized, concise or keyValues JSON, or as GeoJSON."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Final, Literal

from smartcity.broker.contexts import ActiveContext
from smartcity.core.entity import LOCATION, RESERVED_MEMBERS, VALUE_MEMBER, Instance, StoredEntity
from smartcity.core.geo import GEOMETRY_TYPES as QUERY_GEOMETRY_TYPES

Form = Literal["normalized", "concise", "keyValues"]

# GeometryCollection is recognised as a geometry on input, though not usable in geo-queries.
GEOMETRY_TYPES: Final = frozenset({*QUERY_GEOMETRY_TYPES, "GeometryCollection"})
_SYSTEM_MEMBERS: Final = frozenset({"createdAt", "modifiedAt", "deletedAt"})


def looks_like_geometry(value: Any) -> bool:
    """Tell whether a value has the shape of a GeoJSON geometry (not whether it is valid)."""
    return (
        isinstance(value, dict)
        and value.get("type") in GEOMETRY_TYPES
        and ("coordinates" in value or "geometries" in value)
    )


def render_entity(
    entity: StoredEntity,
    ctx: ActiveContext,
    *,
    form: Form = "normalized",
    sys_attrs: bool = False,
    attrs: Collection[str] | None = None,
    lang: str | None = None,
) -> dict[str, Any]:
    """Render an entity under a @context; `attrs` are the expanded names to keep."""
    types = [ctx.compact(name) for name in entity.types]
    out: dict[str, Any] = {"id": entity.id, "type": types[0] if len(types) == 1 else types}
    if entity.scopes:
        out["scope"] = entity.scopes[0] if len(entity.scopes) == 1 else list(entity.scopes)
    renderer = _Renderer(ctx, sys_attrs, lang)
    for name, instances in entity.attrs.items():
        if not instances or (attrs is not None and name not in attrs):
            continue
        if form == "keyValues":
            out[ctx.compact(name)] = renderer.key_value(instances)
        elif form == "concise":
            if len(instances) == 1:
                out[ctx.compact(name)] = renderer.concise(instances[0], bare=True)
            else:
                out[ctx.compact(name)] = [renderer.concise(i, bare=False) for i in instances]
        elif len(instances) == 1:
            out[ctx.compact(name)] = renderer.normalized(instances[0])
        else:
            out[ctx.compact(name)] = [renderer.normalized(i) for i in instances]
    if sys_attrs:
        if entity.created_at:
            out["createdAt"] = entity.created_at
        if entity.modified_at:
            out["modifiedAt"] = entity.modified_at
    return out


def render_geojson(
    entity: StoredEntity,
    ctx: ActiveContext,
    *,
    form: Form = "normalized",
    geoproperty: str = LOCATION,
    sys_attrs: bool = False,
    attrs: Collection[str] | None = None,
    lang: str | None = None,
) -> dict[str, Any]:
    """Render an entity as a GeoJSON Feature whose geometry is one of its GeoProperties."""
    body = render_entity(entity, ctx, form=form, sys_attrs=sys_attrs, attrs=attrs, lang=lang)
    del body["id"]
    return {
        "id": entity.id,
        "type": "Feature",
        "geometry": _geometry(entity, geoproperty),
        "properties": body,
    }


def render_feature_collection(features: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Wrap GeoJSON Features into a FeatureCollection."""
    return {"type": "FeatureCollection", "features": list(features)}


def pick_language(language_map: dict[str, Any], lang: str) -> tuple[str, Any] | None:
    """Choose the entry of a languageMap that a `lang` preference list asks for."""
    if not language_map:
        return None
    wanted: list[tuple[float, int, str]] = []
    for position, part in enumerate(lang.split(",")):
        tag, _, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            weight = 0.0
        if tag and weight > 0:
            wanted.append((-weight, position, tag.strip()))
    lowered = {key.lower(): key for key in language_map}
    for _, _, tag in sorted(wanted):
        if tag == "*":
            break
        key = lowered.get(tag.lower())
        if key is None:
            primary = tag.lower().split("-")[0]
            key = lowered.get(primary) or next(
                (k for low, k in lowered.items() if low.split("-")[0] == primary), None
            )
        if key is not None:
            return key, language_map[key]
    key = "@none" if "@none" in language_map else next(iter(language_map))
    return key, language_map[key]


def _geometry(entity: StoredEntity, geoproperty: str) -> dict[str, Any] | None:
    instances = entity.attrs.get(geoproperty) or []
    geo = [i for i in instances if i.get("type") == "GeoProperty"]
    chosen = next((i for i in geo if "datasetId" not in i), geo[0] if geo else None)
    return chosen.get("value") if chosen is not None else None


class _Renderer:
    """Render attribute instances under one context and one set of options."""

    __slots__ = ("ctx", "lang", "sys_attrs")

    def __init__(self, ctx: ActiveContext, sys_attrs: bool, lang: str | None) -> None:
        self.ctx = ctx
        self.sys_attrs = sys_attrs
        self.lang = lang

    def normalized(self, instance: Instance) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self._members(instance):
            if key in RESERVED_MEMBERS:
                out[key] = value
            elif value is not None:
                out[self.ctx.compact(key)] = self.normalized(value)
        return out

    def concise(self, instance: Instance, *, bare: bool) -> Any:
        out: dict[str, Any] = {}
        kind = instance.get("type", "Property")
        for key, value in self._members(instance):
            if key in RESERVED_MEMBERS:
                out[key] = value
            elif value is not None:
                out[self.ctx.compact(key)] = self.concise(value, bare=True)
        if out.get("type") == "Property":
            value = out.get("value")
            if looks_like_geometry(value):
                return out
            del out["type"]
            if bare and len(out) == 1 and _bare_safe(value):
                return value
            return out
        if kind != "GeoProperty" or looks_like_geometry(out.get("value")):
            del out["type"]
        return out

    def key_value(self, instances: list[Instance]) -> Any:
        instance = next((i for i in instances if "datasetId" not in i), instances[0])
        kind = instance.get("type", "Property")
        value = instance.get(VALUE_MEMBER.get(kind, "value"))
        if kind == "LanguageProperty" and self.lang is not None and isinstance(value, dict):
            picked = pick_language(value, self.lang)
            return picked[1] if picked is not None else None
        if kind == "VocabProperty":
            return self._vocab(value)
        return value

    def _members(self, instance: Instance) -> Iterable[tuple[str, Any]]:
        kind = instance.get("type")
        if kind == "LanguageProperty" and self.lang is not None:
            picked = pick_language(instance.get("languageMap") or {}, self.lang)
            yield "type", "Property"
            if picked is not None:
                yield "value", picked[1]
                yield "lang", picked[0]
            skip = {"type", "languageMap"}
        else:
            skip = set()
        for key, value in instance.items():
            if key in skip or (key in _SYSTEM_MEMBERS and not self.sys_attrs):
                continue
            if key in ("vocab", "objectType"):
                yield key, self._vocab(value)
            else:
                yield key, value

    def _vocab(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.ctx.compact(value)
        if isinstance(value, list):
            return [self.ctx.compact(v) if isinstance(v, str) else v for v in value]
        return value


def _bare_safe(value: Any) -> bool:
    """Tell whether a concise Property value can stand alone and be read back the same."""
    if isinstance(value, dict):
        return False
    if isinstance(value, list):
        return not any(isinstance(item, dict) for item in value)
    return value is not None
