"""Load a district into the platform as NGSI-LD entities, idempotently.

Loading twice writes nothing the second time: each entity is compared with the stored one
(timestamps aside) and only new or changed entities are upserted, so a restart of the demo does
not flood the change log, the temporal history or the subscribers with copies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smartcity.auth.principal import Caller
from smartcity.broker.codec import parse_entity
from smartcity.core.entity import Attributes
from smartcity.platform import Platform
from smartcity.sim.district import load_district
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL, district_entities
from smartcity.sim.generate import generate_assets, read_assets
from smartcity.sim.model import District, DistrictError
from smartcity.sim.safety import safety_entities
from smartcity.sim.seed import data_path
from smartcity.storage.base import EntityQuery

Progress = Callable[[int, int], None]
"""Called with (entities done, entities in all) as the load goes."""

TIMESTAMPS = frozenset({"createdAt", "modifiedAt"})


@dataclass(slots=True)
class LoadReport:
    """What a district load did."""

    district: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        """Return how many entities the district has."""
        return self.created + self.updated + self.unchanged


def build_entities(district: District) -> list[dict[str, Any]]:
    """Return the district's entities: its curated places and its frozen or generated assets."""
    assets_file = district.root / "assets.geojson"
    assets = read_assets(assets_file) if assets_file.is_file() else generate_assets(district)
    return [*district_entities(district, assets), *safety_entities(district)]


def _comparable(attrs: Attributes) -> Attributes:
    return {
        name: [{k: v for k, v in instance.items() if k not in TIMESTAMPS} for instance in values]
        for name, values in attrs.items()
    }


def load_district_into(
    platform: Platform,
    district: District | None = None,
    *,
    caller: Caller | None = None,
    progress: Progress | None = None,
    batch_size: int = 250,
) -> LoadReport:
    """Upsert every entity of a district (default: Changdong); return what changed."""
    district = district or load_district()
    caller = caller or Caller.system()
    platform.contexts.preload_file(CHANGDONG_CONTEXT_URL, data_path("changdong-context.jsonld"))
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    entities = build_entities(district)
    report = LoadReport(district.id)
    # A batch is also one query by ids: no larger than the platform lets one query be.
    batch_size = max(1, min(batch_size, platform.settings.max_limit))
    for start in range(0, len(entities), batch_size):
        batch = entities[start : start + batch_size]
        wanted = [parse_entity(raw, ctx, "") for raw in batch]
        query = EntityQuery(ids=[entity.id for entity in wanted], limit=len(wanted))
        stored = {e.id: e for e in platform.entities.query(caller, query).entities}
        changed = []
        for raw, entity in zip(batch, wanted, strict=True):
            old = stored.get(entity.id)
            if (
                old is not None
                and old.types == entity.types
                and _comparable(old.attrs) == _comparable(entity.attrs)
            ):
                report.unchanged += 1
            else:
                changed.append(raw)
        if changed:
            result, created = platform.entities.batch_upsert(caller, changed, lambda _: ctx)
            if result.errors:
                problems = "; ".join(f"{e.entity_id}: {e.error.detail}" for e in result.errors[:5])
                raise DistrictError(f"district {district.id} has invalid entities: {problems}")
            report.created += len(created)
            report.updated += len(result.success) - len(created)
        if progress is not None:
            progress(min(start + batch_size, len(entities)), len(entities))
    return report
