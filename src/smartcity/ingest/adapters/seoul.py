"""What the Seoul open-data APIs have in common: envelopes, result codes, KST times, values.

The Seoul Open Data Plaza services (openapi.seoul.go.kr:8088/{KEY}/{json|xml}/{SERVICE}/{START}/
{END}/...) wrap their rows as `{"SERVICE": {"list_total_count": n, "RESULT": {"CODE": "INFO-000",
"MESSAGE": ...}, "row": [...]}}` (the same names as XML elements), and answer an error or an
empty result with only `{"RESULT": {"CODE": ..., "MESSAGE": ...}}`. INFO-000 is success and
INFO-200 "no data"; INFO-100 (bad key), ERROR-3xx (bad request: ERROR-336 asks more than 1,000
rows at once, ERROR-337 exceeds the daily quota) and ERROR-5xx/6xx (server) are errors.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final
from xml.etree.ElementTree import Element

import orjson
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from smartcity.core.clock import isoformat
from smartcity.ingest.adapters.base import ApiError, Malformed, refuse

OK: Final = "INFO-000"
NO_DATA: Final = "INFO-200"
KST: Final = timezone(timedelta(hours=9), "KST")
"""Korea Standard Time; Korea keeps no daylight saving time."""
SOURCE: Final = "https://data.seoul.go.kr"
PROVIDER: Final = "Seoul Metropolitan Government (서울 열린데이터 광장)"

_KST_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y%m%d%H%M%S")


@dataclass(frozen=True, slots=True)
class Page:
    """One page of rows and how many rows the whole result has."""

    total: int
    rows: list[dict[str, Any]]


def json_page(service: str, body: bytes) -> Page:
    """Read the JSON envelope of a Seoul Open Data Plaza service."""
    document = load_json(body)
    wrapper = document.get(service)
    result = wrapper.get("RESULT") if isinstance(wrapper, dict) else None
    _check_result(result if result is not None else document.get("RESULT"))
    if wrapper is None:
        # INFO-000 without rows: the answer of an empty page after the last one.
        return Page(0, [])
    if not isinstance(wrapper, dict):
        raise Malformed(f"{service} is not an object", path=service)
    rows = wrapper.get("row", [])
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise Malformed(f"{service}.row is not a list of records", path=f"{service}.row")
    return Page(_total(wrapper.get("list_total_count"), len(rows), service), rows)


def xml_page(service: str, body: bytes) -> Page:
    """Read the XML envelope of a Seoul Open Data Plaza service."""
    root = load_xml(body)
    if root.tag == "RESULT":
        _check_result(_children(root))
        return Page(0, [])
    if root.tag != service:
        raise Malformed(f"the answer is <{root.tag}>, not <{service}>", path=root.tag)
    result = root.find("RESULT")
    _check_result(_children(result) if result is not None else None)
    rows = [_children(row) for row in root.findall("row")]
    return Page(_total(root.findtext("list_total_count"), len(rows), service), rows)


def load_json(body: bytes) -> dict[str, Any]:
    """Parse a JSON object; Malformed if the body is not one."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Malformed(f"the answer is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise Malformed(f"the answer is a JSON {type(document).__name__}, not an object")
    return document


def load_xml(body: bytes) -> Element:
    """Parse XML safely (no entity expansion, no external entities); Malformed otherwise."""
    try:
        return fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as error:
        raise Malformed(f"the answer is not well-formed XML: {error}") from None


def _children(element: Element) -> dict[str, Any]:
    return {child.tag: (child.text or "").strip() for child in element}


def _check_result(result: Any) -> None:
    if result is None:
        raise Malformed("the answer has no RESULT", path="RESULT")
    if not isinstance(result, dict):
        raise Malformed("RESULT is not an object", path="RESULT")
    code = str(result.get("CODE", "")).strip()
    message = str(result.get("MESSAGE", "")).strip()
    if not code:
        raise Malformed("RESULT has no CODE", path="RESULT.CODE")
    if code not in (OK, NO_DATA):
        raise ApiError(code, message)


def _total(value: Any, rows: int, service: str) -> int:
    try:
        total = int(float(value)) if value not in (None, "") else rows
    except (TypeError, ValueError):
        raise Malformed(
            f"{service}.list_total_count is not a number: {value!r}",
            path=f"{service}.list_total_count",
        ) from None
    if total < 0:
        raise Malformed(f"{service}.list_total_count is negative", path="list_total_count")
    return total


# -- values inside records ------------------------------------------------------------------


def text(record: dict[str, Any], name: str) -> str:
    """Return a field as stripped text ('' when absent or null)."""
    value = record.get(name)
    return "" if value is None else str(value).strip()


def number(record: dict[str, Any], name: str, *, required: bool = False) -> float | None:
    """Return a numeric field (numbers may come as strings, '1260.0' or 1260.0)."""
    raw = text(record, name)
    if not raw:
        if required:
            raise refuse("unmapped", f"{name} is missing", name)
        return None
    try:
        value = float(raw)
    except ValueError:
        raise refuse("unparsable", f"{name} is not a number: {raw!r}", name) from None
    if not math.isfinite(value):
        raise refuse("out-of-range", f"{name} is not finite: {raw!r}", name)
    return value


def count(record: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    """Return a whole, non-negative number field."""
    value = number(record, name, required=required)
    if value is None:
        return None
    if value < 0 or value != int(value):
        raise refuse("out-of-range", f"{name} must be a whole number >= 0, not {value:g}", name)
    return int(value)


def kst_time(record: dict[str, Any], name: str) -> datetime | None:
    """Return a KST local time field ('2025-12-13 15:24:30', '...30.0', '20251213152430') as UTC."""
    raw = text(record, name)
    if not raw:
        return None
    cleaned = re.sub(r"\.\d+$", "", raw)
    for pattern in _KST_FORMATS:
        try:
            return datetime.strptime(cleaned, pattern).replace(tzinfo=KST).astimezone(UTC)
        except ValueError:
            continue
    raise refuse("unparsable", f"{name} is not a KST time (YYYY-MM-DD HH:MM:SS): {raw!r}", name)


def prop(value: Any, observed: datetime | None = None, unit: str | None = None) -> dict[str, Any]:
    """Return a normalized NGSI-LD Property (observedAt in UTC when given)."""
    attribute: dict[str, Any] = {"type": "Property", "value": value}
    if observed is not None:
        attribute["observedAt"] = isoformat(observed)
    if unit is not None:
        attribute["unitCode"] = unit
    return attribute


def rel(target: str, observed: datetime | None = None) -> dict[str, Any]:
    """Return a normalized NGSI-LD Relationship."""
    attribute: dict[str, Any] = {"type": "Relationship", "object": target}
    if observed is not None:
        attribute["observedAt"] = isoformat(observed)
    return attribute


def point(longitude: float, latitude: float) -> dict[str, Any]:
    """Return a GeoProperty Point at WGS84 [longitude, latitude]."""
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [longitude, latitude]}}


def provenance() -> dict[str, Any]:
    """Return the `source` and `dataProvider` attributes of every Seoul record."""
    return {"source": prop(SOURCE), "dataProvider": prop(PROVIDER)}


def entity_id(entity_type: str, configured: str) -> str:
    """Return the id of an entity a setting names by local id or by full URN."""
    if configured.startswith("urn:"):
        return configured
    return f"urn:ngsi-ld:{entity_type}:{configured}"


def iso_duration(seconds: int) -> str:
    """Return whole seconds as an ISO 8601 duration (195 -> 'PT3M15S', 0 -> 'PT0S')."""
    minutes, rest = divmod(max(0, seconds), 60)
    hours, minutes = divmod(minutes, 60)
    parts = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return f"PT{parts}{rest}S" if rest or not parts else f"PT{parts}"
