"""ISO 8601 durations (``PT1H``, ``P7D``, ``P1DT12H``) as used by NGSI-LD and the settings."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

_DURATION: Final = re.compile(
    r"P(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?"
)
_CALENDAR: Final = re.compile(r"P(?:\d+Y)?(?:\d+M)?(?:\d+[WD])*(?:T.*)?")


def parse_duration(text: str) -> timedelta:
    """Return the length of an ISO 8601 duration in weeks, days, hours, minutes and seconds.

    Years and months have no fixed length, so they are refused rather than guessed.
    """
    if text == "0":
        return timedelta(0)
    match = _DURATION.fullmatch(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        if _CALENDAR.fullmatch(text) and ("Y" in text or "M" in text.split("T")[0]):
            raise ValueError(
                f"duration {text!r} uses years or months, which have no fixed length; "
                "give it in weeks, days, hours, minutes or seconds (e.g. P30D, PT1H)"
            )
        raise ValueError(
            f"{text!r} is not an ISO 8601 duration such as PT1H, P1D, PT15M or P1DT12H"
        )
    parts = {
        name: float(value.replace(",", ".")) for name, value in match.groupdict().items() if value
    }
    return timedelta(**parts)


def parse_retention(text: str | int | None) -> timedelta | None:
    """Return a retention period from days ("30", 30) or an ISO 8601 duration; None is forever.

    0 and an empty text also mean forever.
    """
    if text is None:
        return None
    raw = str(text).strip()
    if not raw:
        return None
    period = timedelta(days=int(raw)) if raw.isdigit() else parse_duration(raw)
    return period if period > timedelta(0) else None
