"""Turn the NGSI-LD query parameters (URL or JSON body) into a store query and render options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from smartcity.broker.contexts import ActiveContext
from smartcity.core.entity import LOCATION
from smartcity.core.errors import BadRequestData, InvalidRequest
from smartcity.core.geo import GeoPredicate, GeoQuery, geo_query_from_json, parse_geo_query
from smartcity.core.patterns import compile_pattern
from smartcity.core.qlang import map_names, map_type_names, parse_q, parse_scope_q, parse_types
from smartcity.storage.base import EntityQuery

Form = Literal["normalized", "concise", "keyValues"]
MAX_PAGE_NUMBER = 1_000_000_000

READ_OPTIONS = frozenset({"keyValues", "simplified", "concise", "normalized", "sysAttrs", "count"})
NO_OVERWRITE = frozenset({"noOverwrite"})
UPSERT_OPTIONS = frozenset({"replace", "update"})
OPTIONS = READ_OPTIONS | NO_OVERWRITE | UPSERT_OPTIONS
FORMATS: dict[str, Form] = {
    "normalized": "normalized",
    "concise": "concise",
    "keyValues": "keyValues",
    "simplified": "keyValues",
}


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """How entities are shown: representation, system attributes, projection, language."""

    form: Form = "normalized"
    sys_attrs: bool = False
    attrs: frozenset[str] | None = None
    omit: frozenset[str] = frozenset()
    lang: str | None = None
    geoproperty: str = LOCATION


def split_list(value: str | None) -> list[str] | None:
    """Split a comma-separated parameter; None stays None, empty items are refused."""
    if value is None:
        return None
    items = [item.strip() for item in value.split(",")]
    if any(not item for item in items):
        raise BadRequestData(f"empty item in the list {value!r}")
    return items


def parse_options(
    options: str | None, format_: str | None = None, *, allowed: frozenset[str] = OPTIONS
) -> set[str]:
    """Return the set of `options` values, refusing those the endpoint does not take."""
    chosen = set(split_list(options) or [])
    unknown = chosen - allowed
    if unknown:
        raise BadRequestData(
            f"options {sorted(unknown)} do not apply here; this endpoint takes {sorted(allowed)}"
        )
    if format_ is not None:
        if format_ not in FORMATS:
            raise BadRequestData(f"format must be one of {sorted(FORMATS)}, not {format_!r}")
        chosen.add(format_)
    return chosen


def render_options(
    params: Mapping[str, str], ctx: ActiveContext, options: set[str] | None = None
) -> RenderOptions:
    """Build RenderOptions from options/format/attrs/pick/omit/lang/geometryProperty."""
    chosen = (
        options
        if options is not None
        else parse_options(params.get("options"), params.get("format"))
    )
    forms = [FORMATS[option] for option in chosen if option in FORMATS]
    if len(set(forms)) > 1:
        raise BadRequestData(f"choose one representation, not {sorted(set(forms))}")
    projection = split_list(params.get("pick")) or split_list(params.get("attrs"))
    omit = split_list(params.get("omit")) or []
    geoproperty = params.get("geometryProperty")
    return RenderOptions(
        form=forms[0] if forms else "normalized",
        sys_attrs="sysAttrs" in chosen,
        attrs=frozenset(ctx.expand(name) for name in projection) if projection else None,
        omit=frozenset(ctx.expand(name) for name in omit),
        lang=params.get("lang"),
        geoproperty=ctx.expand(geoproperty) if geoproperty else LOCATION,
    )


def _int_param(params: Mapping[str, Any], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadRequestData(f"{name} must be a whole number, not {raw!r}") from None
    if value < 0:
        raise BadRequestData(f"{name} must not be negative")
    if value > MAX_PAGE_NUMBER:
        raise BadRequestData(f"{name} must be at most {MAX_PAGE_NUMBER:,}")
    return value


def entity_query(
    tenant: str,
    params: Mapping[str, Any],
    ctx: ActiveContext,
    *,
    default_limit: int,
    geo_json: Mapping[str, Any] | None = None,
) -> EntityQuery:
    """Build the store query from GET /entities parameters (or the query body's members)."""
    ids = params.get("id")
    id_list = ids if isinstance(ids, list) else split_list(ids)
    type_text = params.get("type")
    types = parse_types(type_text) if type_text else None
    q_text = params.get("q")
    q = parse_q(q_text) if q_text else None
    scope_text = params.get("scopeQ")
    geoproperty = ctx.expand(str(params.get("geoproperty") or "location"))
    geo: GeoQuery | None
    if geo_json is not None:
        geo = geo_query_from_json(dict(geo_json), geoproperty)
        geo = replace(geo, geoproperty=ctx.expand(geo.geoproperty))
    else:
        geo = parse_geo_query(
            params.get("georel"), params.get("geometry"), params.get("coordinates"), geoproperty
        )
    id_pattern = params.get("idPattern")
    if id_pattern is not None:
        compile_pattern(id_pattern)
    attrs = split_list(params.get("attrs")) if isinstance(params.get("attrs"), str) else None
    if isinstance(params.get("attrs"), list):
        attrs = list(params["attrs"])
    count = params.get("count")
    if isinstance(count, str):
        if count not in ("true", "false"):
            raise BadRequestData(f"count must be true or false, not {count!r}")
        count_flag = count == "true"
    else:
        count_flag = bool(count)
    return EntityQuery(
        tenant=tenant,
        ids=id_list,
        id_pattern=id_pattern,
        types=map_type_names(types, ctx.expand) if types is not None else None,
        q=map_names(q, ctx.expand) if q is not None else None,
        scope_q=parse_scope_q(scope_text) if scope_text else None,
        geo=GeoPredicate(geo) if geo is not None else None,
        geoproperty=geo.geoproperty if geo is not None else None,
        attrs=[ctx.expand(name) for name in attrs] if attrs else None,
        limit=_int_param(params, "limit", default_limit),
        offset=_int_param(params, "offset", 0),
        count=count_flag,
    )


def require_filter(params: Mapping[str, Any]) -> None:
    """Refuse a query that names no parameter the broker knows (a likely typo)."""
    known = {
        "id",
        "type",
        "idPattern",
        "attrs",
        "pick",
        "omit",
        "q",
        "scopeQ",
        "georel",
        "geometry",
        "coordinates",
        "geoproperty",
        "geometryProperty",
        "options",
        "format",
        "limit",
        "offset",
        "count",
        "lang",
        "csf",
        "local",
        "datasetId",
        "entityMap",
        "join",
        "joinLevel",
        "containedBy",
        "collect",
        "via",
        "details",
    }
    unknown = sorted(set(params) - known)
    if unknown:
        raise InvalidRequest(f"unknown query parameter(s) {unknown}")
