"""The simulated device catalog: what each kind of device is, how it is registered, how it talks.

One table serves both ends: `registration` turns a kind and a device into the body the device
registry takes (entity type, protocol, transport, field mappings with units and conversions),
and `encode` writes the payload that kind of vendor device sends (JSON or UltraLight 2.0, with its
own field names, units and way of stamping the time). A field renamed here is renamed on both
sides, so provisioning and emission never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson

from smartcity.ingest.device_model import PayloadFormat, Transport

CONTEXT: Final = "urn:smartcity:context:changdong"
"""The @context the simulated devices' attributes are terms of (the district's)."""


class Stamp(StrEnum):
    """How a vendor's device writes the time of a measure."""

    LOCAL = "local"
    """ISO 8601 in the district's local time with its offset: 2026-11-27T19:01:05+09:00."""
    UTC = "utc"
    """ISO 8601 in UTC with a Z: 2026-11-27T10:01:05Z."""
    EPOCH = "epoch"
    """Whole seconds since 1970 (JSON only)."""


@dataclass(frozen=True, slots=True)
class Field:
    """One native field of a device's payload and the attribute it becomes."""

    object_id: str
    attribute: str
    unit: str | None = None
    scale: float | None = None
    value_type: str = "auto"
    expression: str | None = None

    def mapping(self) -> dict[str, Any]:
        """Return the field's mapping as the device registry takes it."""
        mapping: dict[str, Any] = {"objectId": self.object_id, "name": self.attribute}
        if self.value_type != "auto":
            mapping["valueType"] = self.value_type
        if self.unit is not None:
            mapping["unit"] = self.unit
        if self.scale is not None:
            mapping["scale"] = self.scale
        if self.expression is not None:
            mapping["expression"] = self.expression
        return mapping


@dataclass(frozen=True, slots=True)
class DeviceKind:
    """A kind of simulated device, as one vendor's product would behave."""

    name: str
    entity_type: str
    protocol: PayloadFormat
    transport: Transport
    fields: tuple[Field, ...]
    interval: int
    """Seconds between periodic reports (a heartbeat for devices that report on change)."""
    stamp: Stamp
    timestamp_field: str = "TimeInstant"
    """The JSON member holding the time (UltraLight leads each group with it)."""
    vendor: str = ""
    """What such a device is in the real world (for the docs and the Device entity's name)."""
    id_suffix: str = ""
    """Added to the asset id when one asset hosts several devices (air and noise)."""
    commands: tuple[str, ...] = ()
    """The commands the device obeys (sent by the platform over MQTT)."""
    field_names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "field_names", frozenset(f.object_id for f in self.fields))

    def registration(
        self,
        device_id: str,
        entity_id: str,
        api_key: str,
        static: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Return the device registry's body for one device of this kind."""
        body: dict[str, Any] = {
            "id": device_id,
            "apiKey": api_key,
            "entity": {"id": entity_id, "type": self.entity_type, "context": [CONTEXT]},
            "attributes": [f.mapping() for f in self.fields],
            "protocol": self.protocol.value,
            "transport": self.transport.value,
            "reportingInterval": self.interval,
            "timestampField": self.timestamp_field,
            "name": name or f"{self.vendor} {device_id}",
        }
        if self.commands:
            body["commands"] = list(self.commands)
        if static:
            body["staticAttributes"] = dict(static)
        return body

    def encode(self, values: Mapping[str, Any], observed: datetime, zone: ZoneInfo) -> bytes:
        """Return the payload this kind of device sends for `values` (by native field name).

        Fields are written in catalog order, so the same values give the same bytes.
        """
        unknown = set(values) - self.field_names
        if unknown:
            raise ValueError(f"{self.name} has no fields {sorted(unknown)}")
        ordered = [(f.object_id, values[f.object_id]) for f in self.fields if f.object_id in values]
        if self.protocol == PayloadFormat.ULTRALIGHT:
            parts = [stamp_text(observed, self.stamp, zone)]
            for name, value in ordered:
                parts.extend((name, ul_text(value)))
            return "|".join(parts).encode()
        document: dict[str, Any] = {self.timestamp_field: stamp_value(observed, self.stamp, zone)}
        document.update(ordered)
        return orjson.dumps(document)


def stamp_value(observed: datetime, stamp: Stamp, zone: ZoneInfo) -> str | int:
    """Return the time as a device of this stamp style writes it."""
    if stamp == Stamp.EPOCH:
        return int(observed.timestamp())
    return stamp_text(observed, stamp, zone)


def stamp_text(observed: datetime, stamp: Stamp, zone: ZoneInfo) -> str:
    """Return the time as ISO 8601 text (EPOCH is written as UTC text in UltraLight)."""
    if stamp == Stamp.LOCAL:
        return observed.astimezone(zone).isoformat(timespec="seconds")
    return observed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ul_text(value: Any) -> str:
    """Return a value as UltraLight text (booleans as 1/0, floats without noise)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


TRAFFIC_DETECTOR: Final = DeviceKind(
    name="traffic-detector",
    entity_type="TrafficFlowObserved",
    protocol=PayloadFormat.ULTRALIGHT,
    transport=Transport.MQTT,
    fields=(
        Field("vol", "intensity", value_type="integer"),
        Field("spd", "averageVehicleSpeed", unit="KMH", value_type="number"),
        Field("occ", "occupancy", scale=0.01),
        Field("jam", "congested", value_type="boolean"),
    ),
    interval=60,
    stamp=Stamp.LOCAL,
    vendor="Loop detector controller (VDS)",
)
CCTV_ANALYTICS: Final = DeviceKind(
    name="cctv-analytics",
    entity_type="CrowdFlowObserved",
    protocol=PayloadFormat.JSON,
    transport=Transport.MQTT,
    fields=(
        Field("people", "peopleCount", value_type="integer"),
        Field("density", "occupancy", value_type="number"),
        Field("crowded", "congested", value_type="boolean"),
        Field("event", "detectedEvent", value_type="text"),
        Field("confidence", "eventConfidence", value_type="number"),
    ),
    interval=300,
    stamp=Stamp.UTC,
    timestamp_field="ts",
    vendor="CCTV video analytics",
)
PARKING_LOT: Final = DeviceKind(
    name="parking-lot",
    entity_type="OffStreetParking",
    protocol=PayloadFormat.JSON,
    transport=Transport.HTTP,
    fields=(
        Field("free", "availableSpotNumber", value_type="integer"),
        Field("used", "occupiedSpotNumber", value_type="integer"),
        Field("rate", "occupancy", scale=0.01),
        Field("in", "vehicleEntranceCount", value_type="integer"),
        Field("out", "vehicleExitCount", value_type="integer"),
    ),
    interval=60,
    stamp=Stamp.LOCAL,
    vendor="Parking guidance server",
)
PARKING_SPOT: Final = DeviceKind(
    name="parking-spot",
    entity_type="ParkingSpot",
    protocol=PayloadFormat.ULTRALIGHT,
    transport=Transport.MQTT,
    fields=(
        Field(
            "st", "status", value_type="integer", expression="'occupied' if value == 1 else 'free'"
        ),
    ),
    interval=600,
    stamp=Stamp.UTC,
    vendor="Magnetic spot sensor (LoRaWAN)",
)
STREETLIGHT: Final = DeviceKind(
    name="streetlight",
    entity_type="Streetlight",
    protocol=PayloadFormat.JSON,
    transport=Transport.MQTT,
    fields=(
        Field("pwr", "powerState", value_type="text"),
        Field("dim", "illuminanceLevel", scale=0.01),
        Field("w", "powerConsumption", unit="WTT", value_type="number"),
        Field(
            "lamp",
            "status",
            value_type="integer",
            expression="'ok' if value == 0 else 'defectiveLamp'",
        ),
    ),
    interval=900,
    stamp=Stamp.EPOCH,
    timestamp_field="t",
    vendor="Smart lamp controller",
    commands=("brighten",),
)
FOOD_WASTE_BIN: Final = DeviceKind(
    name="food-waste-bin",
    entity_type="WasteContainer",
    protocol=PayloadFormat.ULTRALIGHT,
    transport=Transport.HTTP,
    fields=(
        Field("card", "disposalCard", value_type="text"),
        Field("kg", "disposedWeight", unit="KGM", value_type="number"),
        Field("tot", "cargoWeight", unit="KGM", value_type="number"),
        Field("fill", "fillingLevel", scale=0.01),
    ),
    interval=1800,
    stamp=Stamp.LOCAL,
    vendor="RFID food-waste weighing bin",
)
AIR_QUALITY: Final = DeviceKind(
    name="air-quality",
    entity_type="AirQualityObserved",
    protocol=PayloadFormat.ULTRALIGHT,
    transport=Transport.MQTT,
    fields=(
        Field("pm10", "pm10", unit="GQ", value_type="number"),
        Field("pm25", "pm25", unit="GQ", value_type="number"),
        Field("no2", "no2", unit="59", value_type="number"),
        Field("o3", "o3", unit="59", value_type="number"),
        Field("co", "co", unit="59", value_type="number"),
        Field("t", "temperature", unit="CEL", value_type="number"),
        Field("h", "relativeHumidity", scale=0.01),
    ),
    interval=300,
    stamp=Stamp.UTC,
    vendor="Air-quality sensor",
    id_suffix="-air",
)
NOISE: Final = DeviceKind(
    name="noise",
    entity_type="NoiseLevelObserved",
    protocol=PayloadFormat.JSON,
    transport=Transport.MQTT,
    fields=(
        Field("laeq", "LAeq", unit="2N", value_type="number"),
        Field("lamax", "LAmax", unit="2N", value_type="number"),
    ),
    interval=60,
    stamp=Stamp.UTC,
    vendor="Noise sensor",
    id_suffix="-noise",
)
BEACON: Final = DeviceKind(
    name="ble-beacon",
    entity_type="CrowdFlowObserved",
    protocol=PayloadFormat.ULTRALIGHT,
    transport=Transport.MQTT,
    fields=(Field("n", "peopleCount", value_type="integer"),),
    interval=300,
    stamp=Stamp.LOCAL,
    vendor="Bluetooth beacon gateway",
)

KINDS: Final = (
    TRAFFIC_DETECTOR,
    CCTV_ANALYTICS,
    PARKING_LOT,
    PARKING_SPOT,
    STREETLIGHT,
    FOOD_WASTE_BIN,
    AIR_QUALITY,
    NOISE,
    BEACON,
)
BY_NAME: Final = {kind.name: kind for kind in KINDS}
