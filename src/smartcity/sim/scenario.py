"""Scenarios: YAML files naming a day, its weather and its events at places of the district.

A scenario file is read strictly. Every problem is reported with the file, the line, the path
of the member in error and what to write instead, e.g. `concert-night.yaml line 14:
events[0].place: no place 'seoul-arina' in district changdong; places of this kind: seoul-arena`.
Times of day ("19:30") are local to the district and fall on the first such moment at or after
the scenario's start, so a scenario can be moved to another day with `start`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from yaml.nodes import MappingNode, Node, SequenceNode

from smartcity.core.durations import parse_duration
from smartcity.core.errors import BadRequestData, ResourceNotFound
from smartcity.sim.model import District

DAY_TYPES: Final = ("weekday", "saturday", "sunday")
FAULTS: Final = ("stuck", "silent", "malformed")
_SHORT_DURATION: Final = re.compile(r"^(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$")
_CLOCK: Final = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class ScenarioError(BadRequestData):
    """A scenario file is missing or invalid; the message says where and how to fix it."""

    title = "Scenario error"


def parse_length(text: str | int | float) -> timedelta:
    """Read a duration: "30m", "2h", "1h30m", "45s", "1d", a number of minutes, or ISO "PT30M"."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return timedelta(minutes=float(text))
    raw = str(text).strip().lower()
    if raw.upper().startswith("P"):
        return parse_duration(raw.upper())
    match = _SHORT_DURATION.match(raw)
    if not raw or match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration such as 30m, 2h, 1h30m or PT45M")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


# -- the file, as written ----------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Moment = Annotated[
    str,
    Field(description='a local time of day such as "19:30", or a date and time 2026-11-27T19:30'),
]
Length = Annotated[str | int, Field(description="a duration such as 30m, 2h or 1h30m")]


class Weather(_Strict):
    """The day's weather when it is not raining."""

    temperature: tuple[float, float] = Field(
        (4.0, 12.0), description="the night low and the day high in °C, e.g. [4, 12]"
    )
    humidity: float = Field(
        0.55, ge=0, le=1, description="the relative humidity as a fraction, e.g. 0.55"
    )


class ConcertEvent(_Strict):
    """A concert: visitors arrive over hours, stay for the show, then leave all at once."""

    type: Literal["concert"]
    place: str = Field(description="the id of the venue in places.geojson, e.g. seoul-arena")
    visitors: int = Field(gt=0, description="how many people come (a whole number, e.g. 18000)")
    arrive_from: Moment
    show_start: Moment
    show_end: Moment
    leave_within: Length = Field("30m", description="how long the crowd takes to leave, e.g. 30m")
    car_share: float = Field(
        0.2, ge=0, le=1, description="the share of visitors who come by car, e.g. 0.2"
    )
    transit_share: float = Field(
        0.65, ge=0, le=1, description="the share who come by subway, e.g. 0.65"
    )


class RainEvent(_Strict):
    """Rain: slower roads, more car trips, fewer people outside, particles washed out."""

    type: Literal["rain"]
    from_: Moment = Field(alias="from")
    until: Moment
    intensity: float = Field(gt=0, le=300, description="millimetres per hour, e.g. 30")


class FireEvent(_Strict):
    """A fire in a building: smoke seen by cameras and air sensors nearby, roads closed."""

    type: Literal["fire"]
    place: str = Field(description="the id of the burning place, e.g. changdong-jugong-19")
    at: Moment
    duration: Length = Field("90m", description="how long until it is out, e.g. 90m")


class AssaultEvent(_Strict):
    """An assault at night, seen by the nearest cameras, on a street with dark lamps."""

    type: Literal["assault"]
    place: str = Field(description="the id of the place it happens at, e.g. sinchang-market")
    at: Moment
    dark_streetlights: int = Field(
        0, ge=0, le=20, description="how many of the nearest streetlights are broken (0-20)"
    )


class MissingPersonEvent(_Strict):
    """A person with dementia wanders from home; cameras on the way report matches."""

    type: Literal["missing_person"]
    place: str = Field(description="the id of the home place, e.g. changdong-jugong-3")
    at: Moment
    found_at: Moment | None = None
    description: str = Field("", max_length=500, description="what the person looks like")


class DeviceFaultEvent(_Strict):
    """Devices that go wrong: stuck values, silence, or malformed payloads."""

    type: Literal["device_fault"]
    fault: Literal["stuck", "silent", "malformed"]
    devices: list[str] = Field(
        default_factory=list, description="device ids, e.g. [changdong-detector-0003]"
    )
    kind: str | None = Field(None, description="a device kind, e.g. traffic-detector")
    count: int = Field(0, ge=0, description="how many devices of the kind, chosen by the seed")
    from_: Moment = Field(alias="from")
    until: Moment | None = None


Event = Annotated[
    ConcertEvent | RainEvent | FireEvent | AssaultEvent | MissingPersonEvent | DeviceFaultEvent,
    Field(discriminator="type"),
]


class ScenarioFile(_Strict):
    """A scenario file as written."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="lowercase id, e.g. rain")
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    date: dt.date = Field(description="the local date it starts on, e.g. 2026-11-27")
    start: Moment = Field(description='the local time it starts at, e.g. "16:00"')
    duration: Length = Field(description="how long it lasts, e.g. 8h")
    day_type: Literal["weekday", "saturday", "sunday"] | None = None
    demand: float = Field(1.0, gt=0, le=10, description="a factor on the usual demand, e.g. 1.0")
    weather: Weather = Field(default_factory=Weather)
    events: list[Event] = Field(default_factory=list)

    @field_validator("duration")
    @classmethod
    def _length(cls, value: str | int) -> str | int:
        if parse_length(value) <= timedelta(0):
            raise ValueError("the duration must be longer than 0")
        return value


# -- the scenario, resolved against a district and a start -------------------------------------


@dataclass(frozen=True, slots=True)
class Concert:
    """A resolved concert."""

    place: str
    visitors: int
    arrive_from: datetime
    show_start: datetime
    show_end: datetime
    leave_until: datetime
    car_share: float
    transit_share: float


@dataclass(frozen=True, slots=True)
class Rain:
    """A resolved spell of rain."""

    start: datetime
    end: datetime
    intensity: float


@dataclass(frozen=True, slots=True)
class Fire:
    """A resolved fire."""

    place: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Assault:
    """A resolved assault."""

    place: str
    at: datetime
    dark_streetlights: int


@dataclass(frozen=True, slots=True)
class MissingPerson:
    """A resolved missing person."""

    place: str
    start: datetime
    end: datetime | None
    description: str


@dataclass(frozen=True, slots=True)
class DeviceFault:
    """A resolved device fault; `devices` is filled in by the simulation (by the seed)."""

    fault: str
    devices: tuple[str, ...]
    kind: str | None
    count: int
    start: datetime
    end: datetime | None
    line: int


@dataclass(frozen=True, slots=True)
class Scenario:
    """A scenario ready to simulate: its times are aware datetimes."""

    name: str
    title: str
    description: str
    start: datetime
    end: datetime
    day_type: str | None
    demand: float
    weather: Weather
    concerts: tuple[Concert, ...] = ()
    rains: tuple[Rain, ...] = ()
    fires: tuple[Fire, ...] = ()
    assaults: tuple[Assault, ...] = ()
    missing: tuple[MissingPerson, ...] = ()
    faults: tuple[DeviceFault, ...] = ()
    source: str = ""
    places: tuple[str, ...] = field(default=())

    def day_type_on(self, day: date) -> str:
        """Return the kind of day a date is: the scenario's `day_type`, else by the calendar."""
        if self.day_type is not None:
            return self.day_type
        weekday = day.weekday()
        return "weekday" if weekday < 5 else ("saturday" if weekday == 5 else "sunday")


# -- reading -------------------------------------------------------------------------------------


def scenarios_folder() -> Path:
    """Return the folder of the scenarios shipped with the package."""
    return Path(str(resources.files("smartcity.sim").joinpath("scenarios")))


def scenario_names(folder: Path | None = None) -> list[str]:
    """Return the names of the scenarios in a folder (default: the shipped ones)."""
    return sorted(path.stem for path in (folder or scenarios_folder()).glob("*.yaml"))


def scenario_path(name_or_path: str | Path, folder: Path | None = None) -> Path:
    """Return the file of a scenario given by name (shipped) or by path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise ScenarioError(f"{candidate} does not exist")
        return candidate
    path = (folder or scenarios_folder()) / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(scenario_names(folder))
        raise ResourceNotFound(f"no scenario {str(name_or_path)!r}; known scenarios: {known}")
    return path


def load_scenario(
    name_or_path: str | Path, district: District, *, start: datetime | None = None
) -> Scenario:
    """Read, check and resolve a scenario (by shipped name or file path) for a district.

    `start` moves the scenario: it begins then, and its times of day follow.
    """
    path = scenario_path(name_or_path)
    return parse_scenario(path.read_text(encoding="utf-8"), district, source=path.name, start=start)


def parse_scenario(
    text: str, district: District, *, source: str = "scenario", start: datetime | None = None
) -> Scenario:
    """Check and resolve a scenario's YAML text for a district (ScenarioError if invalid)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{source}{where}: not valid YAML: {error}") from None
    if root is None or not isinstance(document, dict):
        raise ScenarioError(f"{source} line 1: a scenario is a YAML mapping (key: value lines)")
    lines = _line_map(root)
    try:
        parsed = ScenarioFile.model_validate(document)
    except ValidationError as error:
        raise ScenarioError(_describe(error, lines, source)) from None
    return _Resolver(parsed, district, lines, source).resolve(start)


def _line_map(root: Node) -> dict[tuple[str | int, ...], int]:
    """Map each member's path (keys and list indexes) to its 1-based line in the file."""
    lines: dict[tuple[str | int, ...], int] = {(): root.start_mark.line + 1}

    def walk(node: Node, path: tuple[str | int, ...]) -> None:
        if isinstance(node, MappingNode):
            for key, value in node.value:
                here = (*path, str(key.value))
                lines[here] = key.start_mark.line + 1
                walk(value, here)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                here = (*path, index)
                lines[here] = item.start_mark.line + 1
                walk(item, here)

    walk(root, ())
    return lines


_EVENT_MODELS: Final[dict[str, type[_Strict]]] = {
    "concert": ConcertEvent,
    "rain": RainEvent,
    "fire": FireEvent,
    "assault": AssaultEvent,
    "missing_person": MissingPersonEvent,
    "device_fault": DeviceFaultEvent,
}


def _as_written(loc: tuple[str | int, ...]) -> list[str | int]:
    """Return a validation error's location as the file spells it (no union tags)."""
    shown: list[str | int] = []
    for index, part in enumerate(loc):
        after_event = index >= 2 and loc[index - 2] == "events" and isinstance(loc[index - 1], int)
        if after_event and part in _EVENT_MODELS:
            continue  # pydantic names the event type it tried; the file does not
        shown.append("from" if part == "from_" else part)
    return shown


def _dotted(path: list[str | int] | tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _locate(loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> tuple[int, str]:
    """Return the line of a validation error's location and its path as written."""
    shown = _as_written(loc)
    path: tuple[str | int, ...] = ()
    for part in shown:
        if (*path, part) not in lines:
            break  # a member the file lacks: point at what holds it
        path = (*path, part)
    return lines.get(path, 1), _dotted(shown)


def _hint(loc: tuple[str | int, ...]) -> str:
    """Return the description of the member a location names: what to write there."""
    model: Any = ScenarioFile
    hint = ""
    for part in loc:
        if isinstance(part, int):
            continue
        if part in _EVENT_MODELS:
            model = _EVENT_MODELS[str(part)]
            continue
        info = getattr(model, "model_fields", {}).get(part)
        if info is None:
            return hint
        hint = info.description or ""
        annotation = info.annotation
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation if is_model else None
    return hint


def _describe(error: ValidationError, lines: dict[tuple[str | int, ...], int], source: str) -> str:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        line, dotted = _locate(loc, lines)
        message = item["msg"]
        if item["type"] == "union_tag_invalid":
            message = f"unknown event type; write one of: {', '.join(_EVENT_MODELS)}"
        elif item["type"] == "union_tag_not_found":
            message = f"an event needs a type: {', '.join(_EVENT_MODELS)}"
        elif item["type"] == "extra_forbidden":
            message = "unknown member; remove it or check its spelling"
        hint = _hint(loc)
        fix = f"; write {hint}" if hint and item["type"] != "extra_forbidden" else ""
        problems.append(f"{source} line {line}: {dotted or 'scenario'}: {message}{fix}")
    return "\n".join(problems)


class _Resolver:
    """Turns a checked file into a Scenario: times resolved, places and devices checked."""

    def __init__(
        self,
        parsed: ScenarioFile,
        district: District,
        lines: dict[tuple[str | int, ...], int],
        source: str,
    ) -> None:
        self.parsed = parsed
        self.district = district
        self.lines = lines
        self.source = source
        self.zone = ZoneInfo(district.timezone)
        self.places = {place.id: place for place in district.places}
        self.start = datetime.min.replace(tzinfo=self.zone)

    def fail(self, path: tuple[str | int, ...], message: str) -> ScenarioError:
        line = self.lines.get(path, 1)
        return ScenarioError(f"{self.source} line {line}: {_dotted(path)}: {message}")

    def moment(self, text: str, path: tuple[str | int, ...]) -> datetime:
        """Resolve a time of day (first at or after the start) or a full date and time."""
        text = str(text).strip()
        clock = _CLOCK.match(text)
        if clock is not None:
            local_start = self.start.astimezone(self.zone)
            wanted = time(int(clock.group(1)), int(clock.group(2)))
            candidate = datetime.combine(local_start.date(), wanted, self.zone)
            if candidate < local_start:
                candidate = datetime.combine(
                    local_start.date() + timedelta(days=1), wanted, self.zone
                )
            return candidate
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(
                path, f'{text!r} is not a time; write "HH:MM" (e.g. "19:30") or 2026-11-27T19:30'
            ) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=self.zone)

    def length(self, value: str | int, path: tuple[str | int, ...]) -> timedelta:
        try:
            return parse_length(value)
        except ValueError as error:
            raise self.fail(path, f"{error}") from None

    def place(self, place_id: str, path: tuple[str | int, ...], kinds: tuple[str, ...]) -> str:
        if place_id in self.places and (not kinds or self.places[place_id].kind in kinds):
            return place_id
        fitting = sorted(p.id for p in self.district.places if not kinds or p.kind in kinds)
        what = "a place" if place_id not in self.places else f"a {'/'.join(kinds)} place"
        shown = ", ".join(fitting[:12]) + (", ..." if len(fitting) > 12 else "")
        raise self.fail(
            path,
            f"{place_id!r} is not {what} of district {self.district.id}; write one of: {shown}",
        )

    def resolve(self, start: datetime | None) -> Scenario:
        parsed = self.parsed
        if start is None:
            self.start = self.moment(f"{parsed.date.isoformat()}T{parsed.start}", ("start",))
            if _CLOCK.match(str(parsed.start).strip()) is None:
                raise self.fail(("start",), 'write a local time of day such as "16:00"')
        else:
            self.start = start if start.tzinfo else start.replace(tzinfo=self.zone)
        end = self.start + self.length(parsed.duration, ("duration",))
        events: dict[str, list[Any]] = {
            "concert": [],
            "rain": [],
            "fire": [],
            "assault": [],
            "missing_person": [],
            "device_fault": [],
        }
        for index, event in enumerate(parsed.events):
            events[event.type].append(getattr(self, f"_{event.type}")(event, ("events", index)))
        return Scenario(
            name=parsed.name,
            title=parsed.title,
            description=parsed.description.strip(),
            start=self.start,
            end=end,
            day_type=parsed.day_type,
            demand=parsed.demand,
            weather=parsed.weather,
            concerts=tuple(events["concert"]),
            rains=tuple(events["rain"]),
            fires=tuple(events["fire"]),
            assaults=tuple(events["assault"]),
            missing=tuple(events["missing_person"]),
            faults=tuple(events["device_fault"]),
            source=self.source,
        )

    def _ordered(
        self, first: datetime, then: datetime, path: tuple[str | int, ...], what: str
    ) -> None:
        if then <= first:
            raise self.fail(path, f"{what} must come after the time before it")

    def _concert(self, event: ConcertEvent, path: tuple[str | int, ...]) -> Concert:
        place = self.place(event.place, (*path, "place"), ("landmark", "culture"))
        arrive = self.moment(event.arrive_from, (*path, "arrive_from"))
        show_start = self.moment(event.show_start, (*path, "show_start"))
        show_end = self.moment(event.show_end, (*path, "show_end"))
        self._ordered(arrive, show_start, (*path, "show_start"), "show_start")
        self._ordered(show_start, show_end, (*path, "show_end"), "show_end")
        leave = self.length(event.leave_within, (*path, "leave_within"))
        if leave <= timedelta(0):
            raise self.fail((*path, "leave_within"), "write a duration longer than 0, e.g. 30m")
        if event.car_share + event.transit_share > 1:
            raise self.fail(
                (*path, "transit_share"), "car_share and transit_share add up to more than 1"
            )
        return Concert(
            place,
            event.visitors,
            arrive,
            show_start,
            show_end,
            show_end + leave,
            event.car_share,
            event.transit_share,
        )

    def _rain(self, event: RainEvent, path: tuple[str | int, ...]) -> Rain:
        start = self.moment(event.from_, (*path, "from"))
        end = self.moment(event.until, (*path, "until"))
        self._ordered(start, end, (*path, "until"), "until")
        return Rain(start, end, event.intensity)

    def _fire(self, event: FireEvent, path: tuple[str | int, ...]) -> Fire:
        place = self.place(event.place, (*path, "place"), ())
        start = self.moment(event.at, (*path, "at"))
        return Fire(place, start, start + self.length(event.duration, (*path, "duration")))

    def _assault(self, event: AssaultEvent, path: tuple[str | int, ...]) -> Assault:
        place = self.place(event.place, (*path, "place"), ())
        return Assault(place, self.moment(event.at, (*path, "at")), event.dark_streetlights)

    def _missing_person(
        self, event: MissingPersonEvent, path: tuple[str | int, ...]
    ) -> MissingPerson:
        place = self.place(event.place, (*path, "place"), ())
        start = self.moment(event.at, (*path, "at"))
        end = None
        if event.found_at is not None:
            end = self.moment(event.found_at, (*path, "found_at"))
            self._ordered(start, end, (*path, "found_at"), "found_at")
        return MissingPerson(place, start, end, event.description)

    def _device_fault(self, event: DeviceFaultEvent, path: tuple[str | int, ...]) -> DeviceFault:
        if not event.devices and (event.kind is None or event.count == 0):
            raise self.fail(path, "name the devices, or a kind and a count (e.g. count: 3)")
        start = self.moment(event.from_, (*path, "from"))
        end = None
        if event.until is not None:
            end = self.moment(event.until, (*path, "until"))
            self._ordered(start, end, (*path, "until"), "until")
        return DeviceFault(
            event.fault,
            tuple(event.devices),
            event.kind,
            event.count,
            start,
            end,
            self.lines.get(path, 1),
        )
