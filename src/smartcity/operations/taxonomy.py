"""The incident taxonomy: types and subtypes with Korean and English names, severities, and how
an alert's Smart Data Models category and subCategory map to an incident type.

The types follow how Korean integrated operations centers (통합상황관제) sort their work and
how 112 and 119 reports arrive: crime (범죄), fire (화재), rescue and emergency medical
(구조·구급), traffic (교통), disaster (재난), vulnerable person (사회적 약자), facility fault
(시설물 장애), environment (환경).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from smartcity.core.errors import BadRequestData


@dataclass(frozen=True, slots=True)
class IncidentType:
    """One type of the taxonomy with its subtypes (id -> (Korean, English))."""

    id: str
    ko: str
    en: str
    subtypes: dict[str, tuple[str, str]]


TYPES: Final = {
    t.id: t
    for t in (
        IncidentType(
            "crime",
            "범죄",
            "Crime",
            {
                "assault": ("폭행", "Assault"),
                "robbery": ("강도", "Robbery"),
                "theft": ("절도", "Theft"),
                "kidnapping": ("납치·유괴", "Kidnapping"),
                "sexual-violence": ("성범죄", "Sexual violence"),
                "intrusion": ("침입", "Intrusion"),
                "disturbance": ("소란·난동", "Disturbance"),
            },
        ),
        IncidentType(
            "fire",
            "화재",
            "Fire",
            {
                "building": ("건물 화재", "Building fire"),
                "vehicle": ("차량 화재", "Vehicle fire"),
                "wildfire": ("산불", "Wildfire"),
                "arson": ("방화", "Arson"),
                "smoke": ("연기 감지", "Smoke detected"),
            },
        ),
        IncidentType(
            "rescue",
            "구조·구급",
            "Rescue and emergency medical",
            {
                "medical": ("응급 환자", "Medical emergency"),
                "fall": ("낙상", "Fall"),
                "trapped": ("갇힘", "Person trapped"),
                "water": ("수난 사고", "Water rescue"),
            },
        ),
        IncidentType(
            "traffic",
            "교통",
            "Traffic",
            {
                "accident": ("교통사고", "Traffic accident"),
                "congestion": ("정체", "Congestion"),
                "road-hazard": ("도로 위험물", "Road hazard"),
                "illegal-parking": ("불법 주정차", "Illegal parking"),
            },
        ),
        IncidentType(
            "disaster",
            "재난",
            "Disaster",
            {
                "flood": ("침수·홍수", "Flood"),
                "heavy-rain": ("호우", "Heavy rain"),
                "heavy-snow": ("대설", "Heavy snow"),
                "heat-wave": ("폭염", "Heat wave"),
                "earthquake": ("지진", "Earthquake"),
                "crowd-crush": ("인파 밀집 사고", "Crowd crush"),
                "gas-leak": ("가스 누출", "Gas leak"),
                "fine-dust": ("미세먼지", "Fine dust"),
            },
        ),
        IncidentType(
            "vulnerable-person",
            "사회적 약자",
            "Vulnerable person",
            {
                "missing-child": ("실종 아동", "Missing child"),
                "dementia-wandering": ("치매 노인 배회", "Person with dementia wandering"),
                "emergency-call": ("긴급 호출", "Emergency call (bell, wearable)"),
            },
        ),
        IncidentType(
            "facility",
            "시설물 장애",
            "Facility fault",
            {
                "streetlight": ("가로등 고장", "Streetlight fault"),
                "device-offline": ("장비 통신 두절", "Device offline"),
                "camera": ("CCTV 장애", "Camera fault"),
                "signal": ("신호기 고장", "Traffic signal fault"),
            },
        ),
        IncidentType(
            "environment",
            "환경",
            "Environment",
            {
                "air-quality": ("대기질 악화", "Poor air quality"),
                "noise": ("소음", "Noise"),
                "waste": ("쓰레기 넘침", "Overflowing waste"),
            },
        ),
        IncidentType("other", "기타", "Other", {}),
    )
}
"""Every incident type by id."""

SEVERITIES: Final = ("informational", "low", "medium", "high", "critical")
"""The Smart Data Models Alert severities, least to most severe."""

_BY_SUBCATEGORY: Final = {
    # security, as detectors and rules name it
    "assault": ("crime", "assault"),
    "violence": ("crime", "assault"),
    "fight": ("crime", "assault"),
    "robbery": ("crime", "robbery"),
    "theft": ("crime", "theft"),
    "kidnapping": ("crime", "kidnapping"),
    "intrusion": ("crime", "intrusion"),
    "suspiciousAction": ("crime", "disturbance"),
    # fire
    "fire": ("fire", "building"),
    "fireRisk": ("fire", "smoke"),
    "smoke": ("fire", "smoke"),
    "forestFire": ("fire", "wildfire"),
    "arson": ("fire", "arson"),
    # rescue
    "injuredBiker": ("rescue", "medical"),
    "fallDetected": ("rescue", "fall"),
    "medicalEmergency": ("rescue", "medical"),
    # traffic
    "carAccident": ("traffic", "accident"),
    "carWrongDirection": ("traffic", "road-hazard"),
    "trafficJam": ("traffic", "congestion"),
    "roadClosed": ("traffic", "road-hazard"),
    "illegalParking": ("traffic", "illegal-parking"),
    # disaster and weather
    "flood": ("disaster", "flood"),
    "heavyRain": ("disaster", "heavy-rain"),
    "fineDust": ("disaster", "fine-dust"),
    "snow": ("disaster", "heavy-snow"),
    "highTemperature": ("disaster", "heat-wave"),
    "earthquake": ("disaster", "earthquake"),
    "crowdCrush": ("disaster", "crowd-crush"),
    "overcrowding": ("disaster", "crowd-crush"),
    "gasLeak": ("disaster", "gas-leak"),
    # vulnerable persons
    "missingPerson": ("vulnerable-person", "missing-child"),
    "missingChild": ("vulnerable-person", "missing-child"),
    "wandering": ("vulnerable-person", "dementia-wandering"),
    "emergencyCall": ("vulnerable-person", "emergency-call"),
    # facilities
    "streetlightFault": ("facility", "streetlight"),
    "deviceSilent": ("facility", "device-offline"),
    "deviceOffline": ("facility", "device-offline"),
    "cameraFault": ("facility", "camera"),
    "signalFault": ("facility", "signal"),
    # environment
    "airPollution": ("environment", "air-quality"),
    "noisePollution": ("environment", "noise"),
    "wasteOverflow": ("environment", "waste"),
}
_BY_CATEGORY: Final = {
    "security": "crime",
    "fire": "fire",
    "health": "rescue",
    "traffic": "traffic",
    "naturalDisaster": "disaster",
    "weather": "disaster",
    "environment": "environment",
    "facility": "facility",
    "vulnerablePerson": "vulnerable-person",
}


def type_of_alert(category: str, sub_category: str) -> tuple[str, str]:
    """Return the (type, subtype) an alert's category and subCategory map to."""
    found = _BY_SUBCATEGORY.get(sub_category)
    if found is not None:
        return found
    return _BY_CATEGORY.get(category, "other"), ""


def check_type(incident_type: str, subtype: str = "") -> None:
    """Raise BadRequestData unless the type (and subtype, when given) is in the taxonomy."""
    known = TYPES.get(incident_type)
    if known is None:
        raise BadRequestData(
            f"unknown incident type {incident_type!r}; use one of " + ", ".join(TYPES)
        )
    if subtype and subtype not in known.subtypes:
        choices = ", ".join(known.subtypes) or "none"
        raise BadRequestData(
            f"unknown subtype {subtype!r} of {incident_type}; use one of {choices}"
        )


def check_severity(severity: str) -> None:
    """Raise BadRequestData unless the severity is one of the Alert severities."""
    if severity not in SEVERITIES:
        raise BadRequestData(f"unknown severity {severity!r}; use one of " + ", ".join(SEVERITIES))


def higher(a: str, b: str) -> str:
    """Return the more severe of two severities."""
    return a if SEVERITIES.index(a) >= SEVERITIES.index(b) else b


def qualifies(incident_type: str, subtype: str, patterns: list[str]) -> bool:
    """Tell whether a type matches one of the `type` or `type/subtype` patterns."""
    return incident_type in patterns or f"{incident_type}/{subtype}" in patterns


def as_json() -> list[dict[str, object]]:
    """Return the taxonomy for clients (the dashboard's pickers and labels)."""
    return [
        {
            "id": t.id,
            "name": {"ko": t.ko, "en": t.en},
            "subtypes": [
                {"id": sid, "name": {"ko": ko, "en": en}} for sid, (ko, en) in t.subtypes.items()
            ],
        }
        for t in TYPES.values()
    ]
