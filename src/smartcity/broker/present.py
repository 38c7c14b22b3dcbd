"""Show stored entities the way a request asked: representation, projection, GeoJSON."""

from __future__ import annotations

from typing import Any

from smartcity.broker.codec import render_entity
from smartcity.broker.contexts import ActiveContext
from smartcity.broker.params import RenderOptions
from smartcity.broker.render import render_feature_collection, render_geojson
from smartcity.core.entity import StoredEntity


def _projected(entity: StoredEntity, options: RenderOptions) -> StoredEntity:
    if not options.omit:
        return entity
    return StoredEntity(
        id=entity.id,
        types=entity.types,
        scopes=entity.scopes,
        created_at=entity.created_at,
        modified_at=entity.modified_at,
        attrs={k: v for k, v in entity.attrs.items() if k not in options.omit},
    )


def present(entity: StoredEntity, ctx: ActiveContext, options: RenderOptions) -> dict[str, Any]:
    """Render one entity as JSON(-LD)."""
    return render_entity(
        _projected(entity, options),
        ctx,
        form=options.form,
        sys_attrs=options.sys_attrs,
        attrs=options.attrs,
        lang=options.lang,
    )


def present_feature(
    entity: StoredEntity, ctx: ActiveContext, options: RenderOptions
) -> dict[str, Any]:
    """Render one entity as a GeoJSON Feature."""
    return render_geojson(
        _projected(entity, options),
        ctx,
        form=options.form,
        geoproperty=options.geoproperty,
        sys_attrs=options.sys_attrs,
        attrs=options.attrs,
        lang=options.lang,
    )


def present_features(
    entities: list[StoredEntity], ctx: ActiveContext, options: RenderOptions
) -> dict[str, Any]:
    """Render entities as a GeoJSON FeatureCollection."""
    return render_feature_collection([present_feature(e, ctx, options) for e in entities])
