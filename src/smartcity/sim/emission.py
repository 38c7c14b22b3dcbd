"""An emission: one message a simulated device sends, and digests of many."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from smartcity.sim.catalog import DeviceKind
from smartcity.sim.devices import SimDevice


@dataclass(frozen=True, slots=True)
class Emission:
    """One message a device sends, at a simulated moment."""

    at: datetime
    device: SimDevice
    payload: bytes
    expect: str | None = None
    """The reason ingestion should refuse it (a faulty device), or None."""
    sequence: int = 0

    @property
    def kind(self) -> DeviceKind:
        """Return the device's kind."""
        return self.device.kind

    def record(self) -> bytes:
        """Return the emission as one line for digests: time, device, transport, payload."""
        head = f"{self.at.astimezone(UTC).isoformat()} {self.device.id} "
        head += f"{self.kind.transport.value}/{self.kind.protocol.value} "
        return head.encode() + self.payload


def digest(emissions: Iterable[Emission]) -> str:
    """Return a SHA-256 over the records of emissions, in order."""
    hasher = hashlib.sha256()
    for emission in emissions:
        hasher.update(emission.record())
        hasher.update(b"\n")
    return hasher.hexdigest()
