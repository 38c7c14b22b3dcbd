"""A reading: one accepted, standardized update of one entity, as it travels on the bus.

The IoT agent, the HTTP southbound and the open-data adapters turn what they receive into
readings (decoded, mapped to attributes, units and times normalized, validated); they publish
each on `ingest.readings.<tenant>`, and the ingest writer stores them through the broker in
batches. The bus message id is the reading's id, so a reading published twice is stored once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import orjson

SUBJECT_PREFIX: Final = "ingest.readings"


def subject_for(tenant: str) -> str:
    """The bus subject of a tenant's readings (the default tenant is `_`)."""
    return f"{SUBJECT_PREFIX}.{tenant or '_'}"


@dataclass(frozen=True, slots=True)
class Reading:
    """One entity update ready to store."""

    id: str
    """Unique id (also the bus message id, for deduplication)."""
    tenant: str
    entity_id: str
    entity_type: str
    attributes: dict[str, Any]
    """NGSI-LD attributes in the normalized form, e.g.
    `{"temperature": {"type": "Property", "value": 21.5, "unitCode": "CEL",
    "observedAt": "2026-11-28T01:00:00Z"}}`; names are terms of `context`."""
    received_at: str
    """When the platform received it, UTC ISO 8601 with a Z."""
    source: str
    """Where it came from: 'mqtt', 'http', 'adapter:<name>' or 'replay'."""
    device_id: str | None = None
    context: list[str] = field(default_factory=list)
    """@context URLs the attribute names are terms of; empty means the NGSI-LD core context."""

    def to_bytes(self) -> bytes:
        """Serialize for the bus."""
        return orjson.dumps(
            {
                "id": self.id,
                "tenant": self.tenant,
                "entityId": self.entity_id,
                "entityType": self.entity_type,
                "attributes": self.attributes,
                "receivedAt": self.received_at,
                "source": self.source,
                "deviceId": self.device_id,
                "context": self.context,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Reading:
        """Parse what `to_bytes` wrote; ValueError if it is not a reading."""
        try:
            raw = orjson.loads(data)
            return cls(
                id=str(raw["id"]),
                tenant=str(raw["tenant"]),
                entity_id=str(raw["entityId"]),
                entity_type=str(raw["entityType"]),
                attributes=dict(raw["attributes"]),
                received_at=str(raw["receivedAt"]),
                source=str(raw["source"]),
                device_id=None if raw.get("deviceId") is None else str(raw["deviceId"]),
                context=[str(url) for url in raw.get("context") or []],
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a reading: {error}") from error

    def entity(self) -> dict[str, Any]:
        """The reading as an NGSI-LD entity fragment for a batch upsert in update mode."""
        return {"id": self.entity_id, "type": self.entity_type, **self.attributes}
