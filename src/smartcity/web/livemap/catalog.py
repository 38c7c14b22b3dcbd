"""The live map's layers, as data: which entities each shows, and the states it colours.

The page sorts every entity into the first layer one of whose matches fits it (by local type
name, and for a generic `Device` by what it measures), works out its state from its latest
values, and colours it by the state's colour; the legend lists the same states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GREY = "#9ca3af"
GREEN = "#16a34a"
AMBER = "#f59e0b"
RED = "#dc2626"
BLUE = "#2563eb"


@dataclass(frozen=True, slots=True)
class Status:
    """A state a layer's entities can be in, with its colour and its name in both languages."""

    id: str
    ko: str
    en: str
    colour: str


@dataclass(frozen=True, slots=True)
class Match:
    """Entities of a type (local name), optionally only Devices measuring a property."""

    type: str
    measures: str | None = None
    """For a `Device`: a value of its `controlledProperty` (e.g. "trafficFlow")."""


@dataclass(frozen=True, slots=True)
class MapLayer:
    """One toggleable layer of the live map."""

    id: str
    ko: str
    en: str
    matches: tuple[Match, ...]
    statuses: tuple[Status, ...]
    radius: float = 5.0
    """Circle radius in pixels at zoom 15 (it grows and shrinks with the zoom)."""
    shown: bool = True
    """Whether the layer is on before the user chooses."""
    z: int = 0
    """Drawing order: higher is drawn above (big circles go below small ones)."""
    cluster: bool = True
    """Whether a clustered style (the dashboard's) gathers its points into clusters."""

    def as_json(self) -> dict[str, Any]:
        """Return the layer as the page reads it."""
        return {
            "id": self.id,
            "name": {"ko": self.ko, "en": self.en},
            "matches": [{"type": m.type, "measures": m.measures} for m in self.matches],
            "statuses": [
                {"id": s.id, "name": {"ko": s.ko, "en": s.en}, "colour": s.colour}
                for s in self.statuses
            ],
            "radius": self.radius,
            "shown": self.shown,
        }

    @property
    def types(self) -> frozenset[str]:
        """Return the local type names this layer shows."""
        return frozenset(match.type for match in self.matches)


UNKNOWN = Status("unknown", "측정값 없음", "no reading", GREY)
FAULT = Status("fault", "고장", "fault", RED)

LAYERS: tuple[MapLayer, ...] = (
    MapLayer(
        "traffic",
        "교통 검지기",
        "Traffic detectors",
        (Match("TrafficFlowObserved"), Match("Device", "trafficFlow")),
        (
            Status("smooth", "원활 (30 km/h 이상)", "smooth (30 km/h or more)", GREEN),
            Status("slow", "서행 (15–30 km/h)", "slow (15–30 km/h)", AMBER),
            Status("congested", "정체 (15 km/h 미만)", "congested (under 15 km/h)", RED),
            UNKNOWN,
        ),
        radius=5,
        z=8,
    ),
    MapLayer(
        "parking",
        "주차장",
        "Parking lots",
        (Match("OffStreetParking"), Match("OnStreetParking")),
        (
            Status("plenty", "여유 (빈 자리 30% 이상)", "spaces (30% or more free)", GREEN),
            Status("few", "혼잡 (30% 미만)", "filling up (under 30% free)", AMBER),
            Status("full", "만차", "full", RED),
            UNKNOWN,
        ),
        radius=9,
        z=0,
        cluster=False,
    ),
    MapLayer(
        "parking-spots",
        "주차면 센서",
        "Parking spot sensors",
        (Match("ParkingSpot"),),
        (
            Status("free", "빈 자리", "free", GREEN),
            Status("occupied", "주차 중", "occupied", RED),
            Status("closed", "폐쇄", "closed", "#6b7280"),
            UNKNOWN,
        ),
        radius=2.5,
        z=3,
        shown=False,
    ),
    MapLayer(
        "air",
        "대기질·소음",
        "Air quality and noise",
        (
            Match("AirQualityObserved"),
            Match("NoiseLevelObserved"),
            Match("Device", "airPollution"),
        ),
        (
            Status("good", "좋음 (PM10 ≤30, PM2.5 ≤15)", "good (PM10 ≤30, PM2.5 ≤15)", BLUE),
            Status(
                "moderate", "보통 (PM10 ≤80, PM2.5 ≤35)", "moderate (PM10 ≤80, PM2.5 ≤35)", GREEN
            ),
            Status("bad", "나쁨 (PM10 ≤150, PM2.5 ≤75)", "bad (PM10 ≤150, PM2.5 ≤75)", AMBER),
            Status("very-bad", "매우 나쁨", "very bad", RED),
            UNKNOWN,
        ),
        radius=8,
        z=1,
    ),
    MapLayer(
        "streetlights",
        "가로등",
        "Streetlights",
        (Match("Streetlight"),),
        (
            Status("on", "켜짐", "on", "#facc15"),
            Status("dimmed", "감광", "dimmed", "#a16207"),
            Status("off", "꺼짐", "off", "#475569"),
            FAULT,
            UNKNOWN,
        ),
        radius=2.5,
        z=2,
    ),
    MapLayer(
        "cctv",
        "CCTV",
        "CCTV cameras",
        (Match("Camera"),),
        (
            Status("on", "작동", "on", BLUE),
            Status("off", "꺼짐", "off", "#475569"),
            FAULT,
        ),
        radius=3.5,
        z=6,
    ),
    MapLayer(
        "waste",
        "음식물 종량기",
        "Food-waste bins",
        (Match("WasteContainer"),),
        (
            Status("low", "여유 (50% 미만)", "room (under 50% full)", GREEN),
            Status("filling", "보통 (50–80%)", "filling (50–80%)", AMBER),
            Status("nearly-full", "거의 참 (80% 이상)", "nearly full (80% or more)", RED),
            FAULT,
            UNKNOWN,
        ),
        radius=3.5,
        z=4,
    ),
    MapLayer(
        "beacons",
        "비콘",
        "Beacons",
        (Match("Device", "location"),),
        (Status("ok", "정상", "working", "#7c3aed"), FAULT),
        radius=3,
        z=5,
        shown=False,
    ),
    MapLayer(
        "places",
        "역·관심 장소",
        "Stations and points of interest",
        (Match("TransportStation"), Match("PointOfInterest")),
        (
            Status("station", "역", "station", "#0f766e"),
            Status("food", "음식점", "food", "#db2777"),
            Status("shopping", "쇼핑", "shopping", "#9333ea"),
            Status("culture", "문화", "culture", "#0891b2"),
            Status("other", "기타 장소", "other place", "#64748b"),
        ),
        radius=4,
        z=7,
        cluster=False,
    ),
)
"""Every layer, in the order the page lists them."""


def layer_types(layers: tuple[MapLayer, ...] = LAYERS) -> frozenset[str]:
    """Return the local type names some layer shows (the stream sends only those)."""
    return frozenset(t for layer in layers for t in layer.types)
