"""Match names the way the rest of the platform does: types and attributes by their local name.

The same Smart Data Models attribute is expanded to different IRIs by different @contexts (the
district's own, the Smart Data Models one, the NGSI-LD default vocabulary), so a rule written with
short names matches an attribute whose IRI ends in that name. A name that contains ``:`` is a full
IRI and matches only itself.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

from smartcity.core.entity import StoredEntity

_LOCAL_NAME: Final = re.compile(r"[^/#:]*$")
_MAX_CACHED: Final = 50_000

_locals: dict[str, str] = {}
_name_maps: dict[tuple[str, ...], NameMap] = {}
_moments: dict[str, float] = {}
_texts: dict[float, str] = {}


def local_name(iri: str) -> str:
    """Return the last segment of an IRI (".../dataModel.Parking/ParkingSpot" -> "ParkingSpot")."""
    found = _locals.get(iri)
    if found is None:
        match = _LOCAL_NAME.search(iri)
        found = match.group(0) if match else iri
        if len(_locals) > _MAX_CACHED:
            _locals.clear()
        _locals[iri] = found
    return found


class NameMap:
    """The attribute IRIs of one shape of entity, by the names rules use for them."""

    __slots__ = ("compiled", "iris")

    def __init__(self, attribute_iris: tuple[str, ...]) -> None:
        self.iris: dict[str, str] = {}
        for iri in sorted(attribute_iris):  # two vocabularies for one name: the first IRI wins
            self.iris.setdefault(local_name(iri), iri)
            self.iris[iri] = iri
        self.compiled: dict[int, object] = {}
        """Per-shape compiled forms of conditions (see `match.py`), by the condition's id."""

    def get(self, name: str) -> str | None:
        """Return the IRI an entity of this shape has for a name, None if it has none."""
        return self.iris.get(name)


def name_map(entity: StoredEntity) -> NameMap:
    """Return the name map of an entity's shape (cached: entities of a type share a few shapes)."""
    shape = tuple(entity.attrs)
    found = _name_maps.get(shape)
    if found is None:
        if len(_name_maps) > _MAX_CACHED // 10:
            _name_maps.clear()
        found = _name_maps[shape] = NameMap(shape)
    return found


def parse_moment(text: Any) -> float | None:
    """Return an ISO 8601 date-time as POSIX seconds (naive ones are UTC); None if not one."""
    if not isinstance(text, str):
        return None
    found = _moments.get(text)
    if found is None:
        try:
            moment = datetime.fromisoformat(text)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        found = moment.timestamp()
        if len(_moments) > _MAX_CACHED:
            _moments.clear()
        _moments[text] = found
    return found


def format_moment(seconds: float) -> str:
    """Return POSIX seconds as an ISO 8601 UTC text ending in Z (milliseconds when not whole).

    Remembered: a firing names the moments of its evidence, which the next firings name again.
    """
    found = _texts.get(seconds)
    if found is not None:
        return found
    moment = datetime.fromtimestamp(seconds, UTC)
    if moment.microsecond:
        found = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    else:
        found = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if len(_texts) > _MAX_CACHED:
        _texts.clear()
    _texts[seconds] = found
    return found


def event_time(entity: StoredEntity, changed: list[str], fallback: str) -> float:
    """Return when a change happened: the newest observedAt of its changed attributes.

    A change whose attributes carry no observedAt happened when it was committed (`fallback`).
    """
    newest: float | None = None
    attrs = entity.attrs
    last_text = None
    for name in changed:
        instances = attrs.get(name)
        if instances is None:
            continue
        for instance in instances:  # (a list, not `get(name, ())`: compiled, a list is faster)
            observed = instance.get("observedAt")
            if observed is None or observed == last_text:
                continue  # the attributes of one reading usually share their observedAt
            last_text = observed
            moment = parse_moment(observed)
            if moment is not None and (newest is None or moment > newest):
                newest = moment
    if newest is None:
        newest = parse_moment(fallback)
    return newest if newest is not None else 0.0
