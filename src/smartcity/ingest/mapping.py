"""Turn a device's decoded measure into NGSI-LD attributes, as its registration says.

Each mapped field becomes an attribute of its kind (Property, GeoProperty, Relationship), its
value typed and converted (scale and offset, or a simpleeval expression — never `eval`), with
the unit as unitCode and the observation time as observedAt. A field without a mapping is kept
as a Property of the same name when the device allows unknown fields, else ignored and counted;
a measure of which nothing is kept is rejected as 'unmapped' so that fixing the mapping and
replaying the dead letter recovers it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from simpleeval import InvalidExpression, SimpleEval

from smartcity.ingest.codecs import Measure
from smartcity.ingest.device_model import (
    EXPRESSION_FUNCTIONS,
    AttributeKind,
    AttributeMapping,
    Device,
    ValueType,
    is_attribute_name,
)
from smartcity.ingest.ports import Rejected

_NUMBER: Final = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_URI: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
_TRUE: Final = frozenset({"true", "1", "on", "yes"})
_FALSE: Final = frozenset({"false", "0", "off", "no"})


@dataclass(slots=True)
class Mapped:
    """The attributes a measure becomes, and the fields that were ignored."""

    attributes: dict[str, Any]
    ignored: list[str] = field(default_factory=list)


def _conversion(message: str, path: str) -> Rejected:
    return Rejected("conversion", message, stage="map", path=path)


def map_measure(device: Device, measure: Measure, observed_at: str) -> Mapped:
    """Return the attributes of one measure of a device (Rejected if a value is unusable)."""
    result = Mapped({})
    for object_id, raw in measure.fields.items():
        mapping = device.mappings.get(object_id)
        if mapping is not None:
            value = convert(device, mapping, raw, measure.fields)
            result.attributes[mapping.name] = attribute(mapping, value, observed_at)
        elif device.spec.allow_unknown_fields and is_attribute_name(object_id):
            value = _finite(_auto(raw), object_id)
            result.attributes[object_id] = {
                "type": "Property",
                "value": value,
                "observedAt": observed_at,
            }
        else:
            result.ignored.append(object_id)
    if not result.attributes:
        mapped = ", ".join(device.mappings) or "none"
        raise Rejected(
            "unmapped",
            f"no field of the measure is mapped to an attribute of device {device.id}: it sent "
            f"{', '.join(sorted(measure.fields))}; mapped fields are {mapped}. Add mappings "
            "(or allow unknown fields), then replay this dead letter",
            stage="map",
        )
    return result


def convert(device: Device, mapping: AttributeMapping, raw: Any, fields: dict[str, Any]) -> Any:
    """Type one field's value and apply its conversion."""
    value = typed(raw, mapping.value_type, mapping.object_id)
    if mapping.scale is not None or mapping.offset is not None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _conversion(
                f"field {mapping.object_id!r} must be a number to scale, not {raw!r}",
                mapping.object_id,
            )
        scale = 1.0 if mapping.scale is None else mapping.scale
        # 12 significant digits: 41 x 0.01 is 0.41, not 0.41000000000000003.
        value = float(f"{value * scale + (mapping.offset or 0.0):.12g}")
    elif mapping.expression is not None:
        value = _evaluate(device, mapping, value, fields)
    return _finite(value, mapping.object_id)


def _evaluate(device: Device, mapping: AttributeMapping, value: Any, fields: dict[str, Any]) -> Any:
    names = {name: _auto(raw) for name, raw in fields.items() if name.isidentifier()}
    names["value"] = value
    evaluator = SimpleEval(names=names, functions=EXPRESSION_FUNCTIONS)
    try:
        result = evaluator.eval(
            mapping.expression, previously_parsed=device.parsed[mapping.object_id]
        )
    except (InvalidExpression, ArithmeticError, TypeError, ValueError) as error:
        raise _conversion(
            f"expression {mapping.expression!r} of field {mapping.object_id!r} failed on "
            f"value {value!r}: {error}",
            mapping.object_id,
        ) from None
    try:
        orjson.dumps(result)
    except TypeError:
        raise _conversion(
            f"expression {mapping.expression!r} gave {type(result).__name__}, not a JSON value",
            mapping.object_id,
        ) from None
    return result


def typed(raw: Any, value_type: ValueType, object_id: str) -> Any:
    """Read a raw field value (UltraLight sends text) as the mapping's type."""
    if value_type == ValueType.AUTO:
        return _auto(raw)
    if value_type == ValueType.TEXT:
        if isinstance(raw, dict | list):
            raise _conversion(f"field {object_id!r} must be text, not {raw!r}", object_id)
        return raw if isinstance(raw, str) else orjson.dumps(raw).decode()
    if value_type == ValueType.JSON:
        if isinstance(raw, str):
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                return raw
        return raw
    if value_type == ValueType.BOOLEAN:
        return _boolean(raw, object_id)
    number = _auto(raw)
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise _conversion(
            f"field {object_id!r} must be a number ({value_type.value}), not {raw!r}", object_id
        )
    if value_type == ValueType.INTEGER:
        if isinstance(number, float) and not number.is_integer():
            raise _conversion(f"field {object_id!r} must be a whole number, not {raw!r}", object_id)
        return int(number)
    return number


def _auto(raw: Any) -> Any:
    if isinstance(raw, str) and _NUMBER.match(raw.strip()):
        text = raw.strip()
        return int(text) if text.lstrip("+-").isdigit() else float(text)
    return raw


def _boolean(raw: Any, object_id: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _conversion(f"field {object_id!r} must be true or false, not {raw!r}", object_id)


def _finite(value: Any, object_id: str) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise _conversion(f"field {object_id!r} is {value}, which no JSON can hold", object_id)
    return value


def attribute(mapping: AttributeMapping, value: Any, observed_at: str) -> dict[str, Any]:
    """Build the NGSI-LD attribute of a converted value."""
    if mapping.kind == AttributeKind.RELATIONSHIP:
        if not isinstance(value, str) or not _URI.match(value):
            raise _conversion(
                f"field {mapping.object_id!r} must be an entity id (a URI) for relationship "
                f"{mapping.name}, not {value!r}",
                mapping.object_id,
            )
        return {"type": "Relationship", "object": value, "observedAt": observed_at}
    if mapping.kind == AttributeKind.GEO_PROPERTY:
        return {"type": "GeoProperty", "value": geometry(mapping, value), "observedAt": observed_at}
    built: dict[str, Any] = {"type": "Property", "value": value, "observedAt": observed_at}
    if mapping.unit is not None:
        built["unitCode"] = mapping.unit
    return built


def geometry(mapping: AttributeMapping, value: Any) -> dict[str, Any]:
    """Read a location: GeoJSON as is, or a point as 'a,b' text or an [a, b] pair."""
    if isinstance(value, dict) and "type" in value and "coordinates" in value:
        return value
    numbers: list[Any]
    if isinstance(value, str):
        numbers = [part.strip() for part in value.split(",")]
    elif isinstance(value, list):
        numbers = list(value)
    else:
        numbers = []
    try:
        pair = [float(number) for number in numbers]
    except (TypeError, ValueError):
        pair = []
    if len(pair) not in (2, 3) or not all(math.isfinite(n) for n in pair):
        raise _conversion(
            f"field {mapping.object_id!r} must be a point ('{mapping.coordinates}' text, a pair, "
            f"or GeoJSON), not {value!r}",
            mapping.object_id,
        )
    if mapping.coordinates == "lat,lon":
        pair[0], pair[1] = pair[1], pair[0]
    return {"type": "Point", "coordinates": pair}
