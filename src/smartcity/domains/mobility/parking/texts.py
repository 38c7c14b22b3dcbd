"""What guidance tells people, in Korean and English."""

from __future__ import annotations

from typing import Final, Literal

from smartcity.domains.mobility.parking.entities import Site

Lang = Literal["ko", "en"]
NOTES: Final[dict[str, tuple[str, str]]] = {
    "closes-during-stay": (
        "주차 시간 중에 운영이 끝납니다",
        "Closes before the end of your stay",
    ),
    "shared-window-ends": (
        "공유주차 개방 시간이 주차 시간 중에 끝납니다",
        "The shared-parking window ends during your stay",
    ),
    "no-forecast": (
        "도착 시각 예측이 없어 현재 빈자리를 보여 줍니다",
        "No forecast for your arrival: showing free spaces now",
    ),
    "stale": (
        "주차 현황이 갱신되지 않고 있습니다 (마지막 값만 표시)",
        "Availability has stopped updating (last known value only)",
    ),
    "event-congestion": (
        "행사로 주변이 혼잡합니다: 피하세요",
        "Congested by the event: avoid",
    ),
    "park-and-ride": (
        "환승주차: 대중교통이나 셔틀로 이어집니다",
        "Park and ride: continue by transit or shuttle",
    ),
    "event-mode": (
        "행사 중입니다. 공연장 주변 주차장 대신 환승주차장을 이용하세요.",
        "An event is on. Park at a park-and-ride site instead of near the venue.",
    ),
}


def note(code: str, lang: Lang) -> dict[str, str]:
    """Return a note by code, with its text in the language asked for."""
    ko, en = NOTES[code]
    return {"code": code, "text": ko if lang == "ko" else en}


def site_name(site: Site, lang: Lang) -> str:
    """Return a site's name in a language (Korean `name`, English `alternateName`)."""
    return site.name_ko if lang == "ko" else site.name_en
