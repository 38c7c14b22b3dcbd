"""Read an emission's payload back into its native fields (tests, the CLI's summaries)."""

from __future__ import annotations

from typing import Any

import orjson

from smartcity.ingest.codecs import decode_ul_measures
from smartcity.ingest.device_model import PayloadFormat
from smartcity.sim.emission import Emission
from smartcity.sim.faults import BAD_NUMBER


def fields_of(emission: Emission) -> dict[str, Any]:
    """Return the fields an emission carries (numbers as numbers; no timestamp)."""
    kind = emission.kind
    if kind.protocol == PayloadFormat.JSON:
        document: dict[str, Any] = orjson.loads(emission.payload)
        document.pop(kind.timestamp_field, None)
        return document
    (measure,) = decode_ul_measures(emission.payload)
    return {name: _number(value) for name, value in measure.fields.items()}


def _number(text: Any) -> Any:
    if not isinstance(text, str) or text == BAD_NUMBER:
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text else number
