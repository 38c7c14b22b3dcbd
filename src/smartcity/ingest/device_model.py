"""What a device is: its entity, how its fields map to attributes, how it talks, its health.

The API and the bulk import read a `DeviceSpec` (camelCase JSON, the IoT-Agent vocabulary where
one exists); the registry stores it without the key (only the key's hash) and the IoT agent uses
the `Device` built from the stored record, with its conversions compiled once.
"""

from __future__ import annotations

import ast
import functools
import re
import threading
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from simpleeval import InvalidExpression, SimpleEval

from smartcity.storage.devices import DeviceRecord

DEVICE_ID_PATTERN: Final = r"^[A-Za-z0-9_.:\-]{1,128}$"
"""Device ids go into MQTT topics: no '/', '+', '#', no spaces."""
FIELD_PATTERN: Final = r"^[^|#@/\s]{1,64}$"
"""A device field (object_id): no UltraLight separator and no topic separator."""
COMMAND_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$"
_NAME: Final = re.compile(r"^[^\s<>\"'=;()\\\x00-\x1f\x7f@][^\s<>\"'=;()\\\x00-\x1f\x7f]{0,255}$")
_URI: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
EXPRESSION_FUNCTIONS: Final = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
}
"""What a conversion expression may call; nothing else (simpleeval forbids attribute access)."""


class PayloadFormat(StrEnum):
    """How a device encodes measures and commands."""

    JSON = "json"
    ULTRALIGHT = "ul"


class Transport(StrEnum):
    """How a device reaches the platform."""

    MQTT = "mqtt"
    HTTP = "http"


class AttributeKind(StrEnum):
    """The NGSI-LD kind of attribute a device field becomes."""

    PROPERTY = "Property"
    GEO_PROPERTY = "GeoProperty"
    RELATIONSHIP = "Relationship"


class ValueType(StrEnum):
    """What a field's value is; UltraLight sends text, so 'auto' reads numbers as numbers."""

    AUTO = "auto"
    NUMBER = "number"
    INTEGER = "integer"
    TEXT = "text"
    BOOLEAN = "boolean"
    JSON = "json"


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True
    )


def is_attribute_name(name: str) -> bool:
    """Tell whether a text is usable as an NGSI-LD attribute name (a term or an IRI)."""
    return bool(_NAME.match(name)) and name not in ("id", "type")


_PARSING = threading.Lock()
"""One parse at a time: CPython 3.11's AST constructor keeps its recursion depth per
interpreter, not per thread, so two threads parsing at once can fail with `SystemError: AST
constructor recursion depth mismatch` (seen when the MQTT and HTTP agents loaded devices
together: a whole MQTT batch failed)."""


def parse_expression(expression: str) -> Any:
    """Parse a conversion expression once (ValueError with the reason if it is not one)."""
    return _parsed(expression)


@functools.lru_cache(maxsize=4096)
def _parsed(expression: str) -> Any:
    # The tree is only read when evaluated (simpleeval's `previously_parsed`): devices share it.
    with _PARSING:
        try:
            ast.parse(expression.strip(), mode="eval")  # one expression, not statements
            return SimpleEval(functions=EXPRESSION_FUNCTIONS).parse(expression)
        except (InvalidExpression, SyntaxError) as error:
            raise ValueError(f"expression {expression!r} is not valid: {error}") from None


class AttributeMapping(_Model):
    """One device field (`object_id`) and the attribute it becomes."""

    object_id: Annotated[str, StringConstraints(pattern=FIELD_PATTERN)]
    name: str
    """The attribute name, a term of the entity's @context (or an IRI)."""
    kind: AttributeKind = AttributeKind.PROPERTY
    value_type: ValueType = ValueType.AUTO
    unit: str | None = Field(default=None, min_length=1, max_length=32)
    """The unit the device measures in (a UN/CEFACT code such as CEL, or a symbol the
    standardizer knows); kept as the attribute's unitCode."""
    scale: float | None = None
    offset: float | None = None
    expression: str | None = Field(default=None, min_length=1, max_length=500)
    """A simpleeval expression over `value` and the measure's other fields by object_id,
    e.g. `value * 0.1` or `(value - 32) / 1.8`."""
    coordinates: Literal["lon,lat", "lat,lon"] = "lon,lat"
    """How a GeoProperty sent as text 'a,b' (or a pair) orders its numbers."""

    @field_validator("name")
    @classmethod
    def _attribute_name(cls, value: str) -> str:
        if not is_attribute_name(value):
            raise ValueError(
                f"{value!r} is not an attribute name: no spaces, quotes, < > = ; ( ) \\, "
                "not starting with '@', not 'id' or 'type'"
            )
        return value

    @field_validator("expression")
    @classmethod
    def _expression(cls, value: str | None) -> str | None:
        if value is not None:
            parse_expression(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AttributeMapping:
        numeric = self.scale is not None or self.offset is not None
        if self.expression is not None and numeric:
            raise ValueError(f"{self.object_id}: give an expression or scale/offset, not both")
        if self.kind != AttributeKind.PROPERTY and (numeric or self.unit is not None):
            raise ValueError(
                f"{self.object_id}: unit, scale and offset apply to a Property, "
                f"not a {self.kind.value}"
            )
        if numeric and self.value_type in (ValueType.TEXT, ValueType.BOOLEAN, ValueType.JSON):
            raise ValueError(
                f"{self.object_id}: scale and offset need a number, not {self.value_type.value}"
            )
        return self


class EntityTarget(_Model):
    """The entity a device feeds."""

    id: str = Field(max_length=512)
    type: str = Field(min_length=1, max_length=256)
    context: list[str] = Field(default_factory=list, max_length=10)
    """@context URLs its attribute names are terms of (empty: the NGSI-LD core context)."""

    @field_validator("id")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not _URI.match(value):
            raise ValueError(
                f"the entity id must be a URI such as urn:ngsi-ld:Type:id, not {value!r}"
            )
        return value

    @field_validator("context")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not _URI.match(url):
                raise ValueError(f"each @context must be a URL, not {url!r}")
        return value


class DeviceSpec(_Model):
    """A device as an operator registers it (API body, a line of an import)."""

    id: Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]
    api_key: SecretStr | None = None
    """The key the device sends (in its topics, or `k=` over HTTP); several devices may share
    one. Only its hash is stored; without it the registry makes one and shows it once."""
    entity: EntityTarget
    attributes: list[AttributeMapping] = Field(default_factory=list, max_length=500)
    static_attributes: dict[str, Any] = Field(default_factory=dict)
    """NGSI-LD attributes written on the entity when the device is registered (location, ...)."""
    protocol: PayloadFormat = PayloadFormat.JSON
    transport: Transport = Transport.MQTT
    commands: list[Annotated[str, StringConstraints(pattern=COMMAND_PATTERN)]] = Field(
        default_factory=list, max_length=100
    )
    reporting_interval: float | None = Field(default=None, gt=0, le=366 * 86400)
    """Seconds between reports the device promises; None: its silence is not watched."""
    timestamp_field: Annotated[str, StringConstraints(pattern=FIELD_PATTERN)] = "TimeInstant"
    """The measure field holding when it was observed (ISO 8601); else the receive time."""
    allow_unknown_fields: bool = False
    """Keep fields without a mapping as Properties of the same name (else they are ignored
    and counted)."""
    device_entity_id: str | None = Field(default=None, max_length=512)
    """The device's own Smart Data Models `Device` entity (default urn:ngsi-ld:Device:<id>)."""
    name: str | None = Field(default=None, max_length=200)

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(
            r"[A-Za-z0-9_.:\-]{4,128}", value.get_secret_value()
        ):
            raise ValueError(
                "the API key must be 4 to 128 letters, digits, '_', '.', ':' or '-' "
                "(it is part of MQTT topics)"
            )
        return value

    @field_validator("static_attributes")
    @classmethod
    def _static_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not is_attribute_name(name):
                raise ValueError(f"static attribute {name!r} is not an attribute name")
        return value

    @field_validator("device_entity_id")
    @classmethod
    def _device_entity_uri(cls, value: str | None) -> str | None:
        if value is not None and not _URI.match(value):
            raise ValueError(f"deviceEntityId must be a URI, not {value!r}")
        return value

    @model_validator(mode="after")
    def _unique(self) -> DeviceSpec:
        fields = [m.object_id for m in self.attributes]
        twice = sorted({f for f in fields if fields.count(f) > 1})
        if twice:
            raise ValueError(f"fields mapped twice: {', '.join(twice)}")
        if self.timestamp_field in fields:
            raise ValueError(f"{self.timestamp_field} is the timestamp field; it cannot be mapped")
        if len(set(self.commands)) != len(self.commands):
            raise ValueError("a command is listed twice")
        return self

    def stored_doc(self) -> dict[str, Any]:
        """The configuration as the registry keeps it: everything but the key."""
        return self.model_dump(mode="json", by_alias=True, exclude={"api_key"})


class Device:
    """A registered device as the IoT agent uses it (conversions parsed once)."""

    __slots__ = (
        "command_key",
        "created_at",
        "device_entity_id",
        "health",
        "health_since",
        "key_hash",
        "last_seen",
        "mappings",
        "modified_at",
        "parsed",
        "spec",
        "tenant",
    )

    def __init__(self, record: DeviceRecord) -> None:
        self.tenant = record.tenant
        self.key_hash = record.key_hash
        self.command_key = record.command_key
        self.spec = DeviceSpec.model_validate(record.doc)
        self.device_entity_id = self.spec.device_entity_id or default_device_entity_id(record.id)
        self.mappings = {m.object_id: m for m in self.spec.attributes}
        self.parsed = {
            m.object_id: parse_expression(m.expression)
            for m in self.spec.attributes
            if m.expression is not None
        }
        self.last_seen = record.last_seen
        self.health = record.health
        self.health_since = record.health_since
        self.created_at = record.created_at
        self.modified_at = record.modified_at

    @property
    def id(self) -> str:
        """The device id."""
        return self.spec.id

    def present(self) -> dict[str, Any]:
        """The device as the API shows it (never its key)."""
        return {
            **self.spec.stored_doc(),
            "deviceEntityId": self.device_entity_id,
            "lastSeen": self.last_seen,
            "health": self.health,
            "healthSince": self.health_since,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
        }


def default_device_entity_id(device_id: str) -> str:
    """The id of a device's own `Device` entity unless it names another."""
    return f"urn:ngsi-ld:Device:{device_id}"
