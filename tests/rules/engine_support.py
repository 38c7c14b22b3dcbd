"""Build realistic changes for rule tests: entities expanded as the district's @context does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from smartcity.core.entity import StoredEntity
from smartcity.rules.engine import Engine
from smartcity.rules.firing import Firing
from smartcity.rules.loader import load_rule_set_text
from smartcity.storage.base import ChangeKind, ChangeRecord

_CONTEXT = json.loads(
    (resources.files("smartcity.sim") / "data" / "changdong-context.jsonld").read_text()
)["@context"]
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
"""19:00 in Seoul: after sunset in late November."""


def expand(name: str) -> str:
    """Return the IRI the district's @context gives a name (the NGSI-LD default vocabulary else)."""
    if name == "location" or (name.endswith("Zone") and name[0].islower()):
        return LOCATION if name == "location" else DEFAULT_VOCAB + name
    term = _CONTEXT.get(name)
    if isinstance(term, dict):
        term = term.get("@id")
    return term if isinstance(term, str) else DEFAULT_VOCAB + name


def iso(moment: datetime) -> str:
    """Return a moment as ISO 8601 UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def point(lon: float, lat: float) -> dict[str, Any]:
    """Return a GeoJSON point."""
    return {"type": "Point", "coordinates": [lon, lat]}


def instance(value: Any, observed: str | None) -> dict[str, Any]:
    """Return an attribute instance (Relationship for urn objects of ref* names)."""
    if isinstance(value, dict) and value.get("type") in ("Point", "Polygon", "MultiPolygon"):
        out: dict[str, Any] = {"type": "GeoProperty", "value": value}
    elif isinstance(value, Rel):
        out = {"type": "Relationship", "object": value.target}
    else:
        out = {"type": "Property", "value": value}
    if observed is not None:
        out["observedAt"] = observed
    return out


class Rel:
    """A relationship's object."""

    def __init__(self, target: str) -> None:
        self.target = target


def entity(
    entity_type: str, entity_id: str, observed: str | None = None, **attrs: Any
) -> StoredEntity:
    """Return an entity of a type with attributes (values, points, `Rel`s)."""
    return StoredEntity(
        id=entity_id,
        types=[expand(entity_type)],
        attrs={expand(name): [instance(value, observed)] for name, value in attrs.items()},
        modified_at=observed or "",
    )


class Feed:
    """Changes of entities over time, as the change log would hold them."""

    def __init__(self, tenant: str = "changdong") -> None:
        self.tenant = tenant
        self.seq = 0
        self.entities: dict[str, StoredEntity] = {}

    def change(self, entity_type: str, entity_id: str, at: datetime, **attrs: Any) -> ChangeRecord:
        """Return the change that sets attributes of an entity (created when new) at a time."""
        observed = iso(at)
        self.seq += 1
        old = self.entities.get(entity_id)
        fresh = entity(entity_type, entity_id, observed, **attrs)
        if old is None:
            current, kind = fresh, ChangeKind.CREATE
        else:
            current = StoredEntity(old.id, list(old.types), {**old.attrs, **fresh.attrs})
            current.modified_at = observed
            kind = ChangeKind.UPDATE
        self.entities[entity_id] = current
        return ChangeRecord(self.seq, self.tenant, kind, observed, current, list(fresh.attrs), {})


def engine_for(text: str, lateness: float = 0.0) -> Engine:
    """Return an engine with the rule set of a YAML text."""
    return Engine(load_rule_set_text(text), lateness=lateness)


def run(engine: Engine, changes: list[ChangeRecord], until: datetime | None = None) -> list[Firing]:
    """Feed changes, then move time on; return every firing."""
    fired: list[Firing] = []
    for change in changes:
        fired.extend(engine.process(change))
    fired.extend(engine.flush())
    if until is not None:
        fired.extend(engine.advance(until + timedelta(seconds=engine.lateness)))
    return fired


def brief(firings: list[Firing]) -> list[tuple[str, str, str, str]]:
    """Return firings as (rule, kind, key, at) for comparisons."""
    return [(f.rule_id, f.kind, f.key, f.at) for f in firings]
