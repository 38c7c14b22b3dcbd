"""Match names the way the rest of the platform does: types and attributes by their local name.

The same Smart Data Models attribute is expanded to different IRIs by different @contexts (the
district's own, the Smart Data Models one, the NGSI-LD default vocabulary), so a rule written with
short names matches an attribute whose IRI ends in that name. A name that contains ``:`` is a full
IRI and matches only itself.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from typing import Any, Final

from smartcity.core.entity import StoredEntity

_LOCAL_NAME: Final = re.compile(r"[^/#:]*$")
_MAX_CACHED: Final = 50_000

# The caches are Final (never rebound, only filled and cleared): compiled, a Final module
# attribute is a static, where any other is looked up in the module's globals at each use.
_locals: Final[dict[str, str]] = {}
_name_maps: Final[dict[tuple[str, ...], NameMap]] = {}
_moments: Final[dict[str, float]] = {}
_texts: Final[dict[float, str]] = {}
_minutes: Final[dict[int, str]] = {}
_minute_starts: Final[dict[str, float]] = {}
_MINUTE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")
"""A moment's text up to its minute, in the form devices send (`_whole_second_utc`)."""
_YEAR_10000: Final = 253_402_300_800.0
"""POSIX seconds of 10000-01-01 (`format_moment` formats the years before it itself)."""
_TWO: Final = tuple(f"{n:02d}" for n in range(60))
_THREE: Final = tuple(f"{n:03d}" for n in range(1000))


def local_name(iri: str) -> str:
    """Return the last segment of an IRI (".../dataModel.Parking/ParkingSpot" -> "ParkingSpot").

    Interned, as are the names rules use (`compile.py`, `match.py`, `aggregates.py`), so that
    looking one up where the other is a key finds the very same text, without comparing it.
    """
    found = _locals.get(iri)
    if found is None:
        match = _LOCAL_NAME.search(iri)
        found = sys.intern(match.group(0) if match else iri)
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
    shape = tuple(list(entity.attrs.keys()))  # (compiled: the keys in one step, not iterated)
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
        found = _whole_second_utc(text)
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


def _whole_second_utc(text: str) -> float | None:
    """Return the seconds of a text of the form devices send (``2026-11-27T09:04:48Z``) as
    `datetime` reads it, exactly (a whole minute's start from `datetime`, remembered, plus the
    seconds); None if the text has another form. Readings bring new moments all the time, and
    each cost `fromisoformat` and `timestamp` several times this."""
    if len(text) != 20 or text[16] != ":" or text[19] != "Z":
        return None
    tens, ones = ord(text[17]) - 48, ord(text[18]) - 48
    if not (0 <= tens <= 5 and 0 <= ones <= 9):
        return None
    prefix = text[:16]
    start = _minute_starts.get(prefix)
    if start is None:
        if _MINUTE.fullmatch(prefix) is None:
            return None
        try:
            start = datetime.fromisoformat(prefix + ":00Z").timestamp()
        except ValueError:
            return None
        if len(_minute_starts) > _MAX_CACHED:
            _minute_starts.clear()
        _minute_starts[prefix] = start
    return start + (tens * 10 + ones)


def format_moment(seconds: float) -> str:
    """Return POSIX seconds as an ISO 8601 UTC text ending in Z (milliseconds when not whole).

    Remembered: a firing names the moments of its evidence, which the next firings name again.
    """
    found = _texts.get(seconds)
    if found is not None:
        return found
    if 0.0 <= seconds < _YEAR_10000:
        found = _format_since_1970(seconds)
    else:
        moment = datetime.fromtimestamp(seconds, UTC)
        if moment.microsecond:
            found = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        else:
            found = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if len(_texts) > _MAX_CACHED:
        _texts.clear()
    _texts[seconds] = found
    return found


def _format_since_1970(seconds: float) -> str:
    """Format a moment of the years 1970 to 9999 exactly as `format_moment` does through
    `datetime` (whose strftime cost ten times this): the microseconds rounded half to even as
    `datetime.fromtimestamp` rounds them, the text up to the minute from `datetime` itself
    (remembered: moments come a minute after another)."""
    whole = int(seconds)
    scaled = (seconds - whole) * 1e6
    micro = int(scaled)
    rest = scaled - micro
    if rest > 0.5 or (rest == 0.5 and micro % 2 == 1):
        micro += 1
        if micro == 1_000_000:
            micro = 0
            whole += 1
    minute = whole // 60
    prefix = _minutes.get(minute)
    if prefix is None:
        prefix = datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:")
        if len(_minutes) > _MAX_CACHED:
            _minutes.clear()
        _minutes[minute] = prefix
    second = _TWO[whole - minute * 60]
    return f"{prefix}{second}.{_THREE[micro // 1000]}Z" if micro else f"{prefix}{second}Z"


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
