"""The rule language as a typed model: rule sets, rules, filters, joins, windows and actions.

Rule authors write YAML (`loader.py`); this module says what is allowed and checks each rule's
parts on their own. References between parts (zones, calendars, aggregate names) are checked when
a rule set is compiled (`compile.py`), where every problem still gets the path it was found at.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from smartcity.core.durations import parse_duration

_SHORT: Final = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_THRESHOLD: Final = re.compile(r"\s*(>=|<=|>|<|==|!=)\s*(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*")
RULE_ID: Final = r"^[a-z0-9][a-z0-9_.-]{0,79}$"
KINDS: Final = ("match", "state", "threshold", "aggregate", "sequence", "absence")
SEVERITIES: Final = ("informational", "low", "medium", "high", "critical")
DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def to_seconds(value: Any) -> float:
    """Return a duration ("PT15M", "15m", "2h", "90s", 90) in seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a text like PT15M, 15m or 2h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip().upper().startswith("P"):
        seconds = parse_duration(value.strip().upper()).total_seconds()
    elif isinstance(value, str) and (match := _SHORT.fullmatch(value.strip())):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(
            f"{value!r} is not a duration: write PT15M, 15m, 2h, 30s, 1d or a number of seconds"
        )
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Seconds = Annotated[float, BeforeValidator(to_seconds)]


def parse_threshold(text: str) -> tuple[str, float]:
    """Return the operator and the number of a threshold such as ">= 0.9"."""
    match = _THRESHOLD.fullmatch(str(text))
    if match is None:
        raise ValueError(
            f"{text!r} is not a threshold: write an operator and a number, e.g. '>= 0.9'"
        )
    return match.group(1), float(match.group(2))


def _threshold(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"give the comparison too, e.g. '>= {value}'")
    parse_threshold(str(value))
    return str(value)


Threshold = Annotated[str, BeforeValidator(_threshold)]


def _names(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Names = Annotated[list[str], BeforeValidator(_names)]


class Strict(BaseModel):
    """A part of a rule: unknown keys are errors (a typo must not silently do nothing)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Filter(Strict):
    """Which changes count: entity type, id pattern, a q condition, where the entity is."""

    type: Names | None = None
    """Entity types (local names); required except in a state rule's condition."""
    id: str | None = None
    """A regular expression the entity id must match (whole id)."""
    q: str | None = None
    """An NGSI-LD query (``fillingLevel>=0.9;status=="ok"``) over the changed entity."""
    watch: Names | None = None
    """Attributes whose change counts; by default the ones the rule reads."""
    inside: str | None = None
    """A zone the entity must be in: a zone of the rule set or ``@attr``, its own GeoProperty."""
    outside: str | None = None
    """A zone the entity must not be in (same names as `inside`)."""


class Active(Strict):
    """An entity that is going on at the event's time (an event at the Arena, road works)."""

    start: str = "startDate"
    end: str = "endDate"
    before: Seconds = 0.0
    """It counts from this long before its start (people arrive early)."""
    after: Seconds = 0.0
    """And until this long after its end (they leave late)."""


class Join(Strict):
    """A condition on the current state of other entities (is a concert on, is it dark)."""

    type: Names = Field(min_length=1)
    id: str | None = None
    q: str | None = None
    near: float | None = Field(None, gt=0, le=50_000)
    """Within this many metres of the changed entity."""
    inside: str | None = None
    via: str | None = None
    """A relationship of the changed entity that names the joined entity (refParkingSite)."""
    active: Active | None = None
    count: Threshold = ">= 1"
    """How many such entities there must be (``== 0`` for none)."""


class Schedule(Strict):
    """When a rule is armed: days of the week, hours, night, a calendar of days."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = None
    hours: str | None = Field(None, pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")
    """Local hours ``HH:MM-HH:MM`` (may run past midnight, e.g. 22:00-06:00)."""
    night: bool | None = None
    """True: from sunset to sunrise at the rule set's location; False: daytime."""
    calendar: str | None = None
    """Only on the days of this calendar of the rule set."""
    not_calendar: str | None = None
    """Never on the days of this calendar."""


class Window(Strict):
    """The readings an aggregate is computed over, per key."""

    size: Seconds | None = Field(None, gt=0)
    count: int | None = Field(None, gt=0, le=100_000)
    tumbling: bool = False
    """Tumbling windows cut time (or readings) into blocks and report when a block closes;
    sliding ones report after every reading."""

    @model_validator(mode="after")
    def _one_measure(self) -> Window:
        if (self.size is None) == (self.count is None):
            raise ValueError("give a window either a size (a duration) or a count, not both")
        return self


class Sequence(Strict):
    """A followed by B within a time (or, `absent`, A not followed by B)."""

    first: Filter
    then: Filter
    within: Seconds = Field(gt=0)
    absent: bool = False
    distance: float | None = Field(None, gt=0, le=50_000)
    """B must be within this many metres of A (any key); otherwise B must have A's key."""


class Target(Strict):
    """Which entities an action is for, resolved from the engine's state when it fires."""

    type: Names | None = None
    near: float | None = Field(None, gt=0, le=50_000)
    q: str | None = None
    inside: str | None = None
    ids: list[str] | None = None
    limit: int = Field(50, gt=0, le=10_000)


ActionOn = Literal["raise", "clear", "fire"]


class Action(Strict):
    """One thing to do when a rule fires: exactly one of the action kinds, and when."""

    alert: dict[str, Any] | None = None
    update: dict[str, Any] | None = None
    command: dict[str, Any] | None = None
    webhook: dict[str, Any] | None = None
    incident: dict[str, Any] | None = None
    on: list[ActionOn] | None = None
    """When to act; by default on raise and fire (an alert also on clear, to close it)."""
    target: Literal["entity", "key"] | Target | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Action:
        given = [
            kind
            for kind in ("alert", "update", "command", "webhook", "incident")
            if getattr(self, kind) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "an action is one of alert, update, command, webhook or incident"
                + (f" (this one has {', '.join(given)})" if given else "")
            )
        return self

    @property
    def kind(self) -> str:
        """Return the action kind."""
        return next(
            k
            for k in ("alert", "update", "command", "webhook", "incident")
            if getattr(self, k) is not None
        )


class KeyBy(Strict):
    """What a rule's state is kept by, when not by entity."""

    relationship: str | None = None
    attribute: str | None = None
    zone: Names | None = None
    grid: float | None = Field(None, ge=10, le=100_000)
    """Square cells of this many metres."""

    @model_validator(mode="after")
    def _one_key(self) -> KeyBy:
        if (
            sum(x is not None for x in (self.relationship, self.attribute, self.zone, self.grid))
            != 1
        ):
            raise ValueError("key by one of: relationship, attribute, zone or grid")
        return self


class Rule(Strict):
    """One convergence rule."""

    id: str = Field(pattern=RULE_ID)
    title: str | dict[str, str] = ""
    description: str = ""
    enabled: bool = True
    severity: Literal["informational", "low", "medium", "high", "critical"] = "medium"
    kind: Literal["match", "state", "threshold", "aggregate", "sequence", "absence"]
    when: Filter | None = None
    key: Literal["entity", "global"] | KeyBy = "entity"
    condition: Filter | None = None
    """`state` rules: raised while the changed entity meets it, cleared when it stops."""
    value: str | None = None
    """`threshold` rules: an attribute or an aggregate (``avg(pm10)``)."""
    raise_: Threshold | None = Field(None, alias="raise")
    clear: Threshold | None = None
    for_: Seconds | None = Field(None, alias="for")
    """`threshold` rules: raise only once the condition has held this long."""
    window: Window | None = None
    aggregates: dict[str, str] = Field(default_factory=dict)
    having: str | None = None
    """`aggregate` rules: a q condition over the aggregates (``avg_speed<20;detectors>=2``)."""
    sequence: Sequence | None = None
    after: Seconds | None = Field(None, gt=0)
    """`absence` rules: silent this long."""
    require: list[Join] = Field(default_factory=list)
    schedule: Schedule | None = None
    suppress: Seconds | None = None
    """At most one firing per key within this time."""
    tenants: list[str] | None = None
    actions: list[Action] = Field(default_factory=list)

    @model_validator(mode="after")
    def _parts_of_kind(self) -> Rule:
        need: dict[str, tuple[str, ...]] = {
            "match": ("when",),
            "state": ("when", "condition"),
            "threshold": ("when", "value", "raise_"),
            "aggregate": ("when", "window", "having"),
            "sequence": ("sequence",),
            "absence": ("when", "after"),
        }
        missing = [name.rstrip("_") for name in need[self.kind] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} rule needs {' and '.join(missing)}")
        if self.kind == "sequence" and self.when is not None:
            raise ValueError(
                "a sequence rule takes its filters from sequence.first and sequence.then, not when"
            )
        return self


class RuleSet(Strict):
    """Rules and what they share: zones, calendars, the place and time zone of the city."""

    timezone: str = "Asia/Seoul"
    location: tuple[float, float] = (127.0477, 37.6531)
    """Where sunrise and sunset are computed for night schedules (longitude, latitude)."""
    lateness: Seconds = 60.0
    """How late a reading may arrive and still be placed by its event time."""
    zones: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """GeoJSON Polygon or MultiPolygon geometries by zone name."""
    calendars: dict[str, list[date]] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
