"""What the parts of ingestion expect of each other: standardization and dead letters.

The IoT agent (MQTT and HTTP southbound), the open-data adapters and the ingest writer all hand
what they cannot accept to a `DeadLetterSink`, and pass what they decoded through a
`Standardizer` before it becomes a `Reading`. Both are implemented in `ingest/` (schemas,
normalization, the dead-letter service); this module only names the contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Rejected(Exception):
    """Input that ingestion cannot accept; it goes to the dead letters with this reason."""

    def __init__(self, reason: str, message: str, *, stage: str, path: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        """A short code: unknown-device, bad-key, unparsable, unmapped, out-of-range, unit,
        schema, broker (the broker refused the write), ..."""
        self.message = message
        """What was wrong and how to fix it, for an operator."""
        self.stage = stage
        """Where it failed: authenticate, decode, map, normalize, validate, store."""
        self.path = path
        """The attribute or field at fault, if one is."""


@dataclass(frozen=True, slots=True)
class RawInput:
    """Input exactly as it arrived, kept so that a dead letter can be fixed and replayed."""

    tenant: str
    source: str
    """'mqtt', 'http', 'adapter:<name>', 'writer' (refused by the broker)."""
    payload: bytes
    received_at: str
    """UTC ISO 8601 with a Z."""
    device_id: str | None = None
    topic: str | None = None
    """The MQTT topic, HTTP path or adapter URL (without credentials) it came on."""
    content_type: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    """Anything else replay needs (the adapter's entity type, the HTTP query, ...); no secrets."""


class DeadLetterSink(Protocol):
    """Keeps what ingestion could not accept, with the reason; never loses one."""

    def record(self, raw: RawInput, rejected: Rejected) -> str:
        """Store one dead letter durably; return its id."""
        ...

    def record_many(self, items: list[tuple[RawInput, Rejected]]) -> list[str]:
        """Store many in one transaction; return their ids in order."""
        ...


class Standardizer(Protocol):
    """Normalizes and validates the attributes of one entity update."""

    def standardize(
        self, tenant: str, entity_type: str, attributes: dict[str, Any], context: list[str]
    ) -> dict[str, Any]:
        """Return the attributes with units as UN/CEFACT codes, times as UTC ISO 8601 (Z) and
        coordinates as WGS84 [lon, lat], checked against the type's Smart Data Models schema
        (only the attributes present: an update is partial); raise Rejected otherwise."""
        ...
