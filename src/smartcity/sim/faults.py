"""Device faults: stuck sensors, silent devices and devices that send malformed payloads.

A stuck device keeps sending the values of its first report in the fault's window (the time
moves on, the values do not) and none of its on-change reports; a silent device sends nothing;
a malformed one sends payloads the platform must refuse, alternately cut short or garbled
(`unparsable`) and with text where a number belongs (`conversion`). Each malformed emission
says which refusal it expects, so a test can count the dead letters exactly.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from smartcity.ingest.device_model import PayloadFormat
from smartcity.sim.catalog import BY_NAME
from smartcity.sim.devices import SimDevice
from smartcity.sim.emission import Emission
from smartcity.sim.scenario import DeviceFault, ScenarioError

UNPARSABLE: Final = "unparsable"
CONVERSION: Final = "conversion"
BAD_NUMBER: Final = "ERR"
NUMBERS: Final = frozenset({"number", "integer"})


class FaultPlan:
    """Which devices are faulty when, and what they send then."""

    def __init__(
        self, faults: Sequence[DeviceFault], devices: list[SimDevice], seed: int, source: str
    ) -> None:
        self.windows: dict[str, list[DeviceFault]] = {}
        self.stuck: dict[tuple[str, int], dict[str, Any]] = {}
        self.malformed: dict[str, int] = {}
        by_id = {device.id: device for device in devices}
        for number, fault in enumerate(faults):
            for device_id in self._devices(fault, number, devices, by_id, seed, source):
                self.windows.setdefault(device_id, []).append(fault)

    @staticmethod
    def _devices(
        fault: DeviceFault,
        number: int,
        devices: list[SimDevice],
        by_id: dict[str, SimDevice],
        seed: int,
        source: str,
    ) -> list[str]:
        chosen = []
        for device_id in fault.devices:
            if device_id not in by_id:
                sample = ", ".join(d.id for d in devices[:3])
                raise ScenarioError(
                    f"{source} line {fault.line}: devices: no simulated device {device_id!r}; "
                    f"device ids look like {sample}"
                )
            chosen.append(device_id)
        if fault.kind is not None:
            if fault.kind not in BY_NAME:
                raise ScenarioError(
                    f"{source} line {fault.line}: kind: no device kind {fault.kind!r}; write one "
                    f"of: {', '.join(BY_NAME)}"
                )
            of_kind = sorted(d.id for d in devices if d.kind.name == fault.kind)
            if fault.count > len(of_kind):
                raise ScenarioError(
                    f"{source} line {fault.line}: count: only {len(of_kind)} devices of kind "
                    f"{fault.kind}; write a count of at most {len(of_kind)}"
                )
            rng = random.Random(f"{seed}:fault:{number}")
            chosen += [d for d in rng.sample(of_kind, fault.count) if d not in chosen]
        return chosen

    def fault_at(self, device_id: str, moment: datetime) -> tuple[int, DeviceFault] | None:
        """Return the fault (and its number) a device has at a moment, if any."""
        for number, fault in enumerate(self.windows.get(device_id, ())):
            if fault.start <= moment and (fault.end is None or moment < fault.end):
                return number, fault
        return None

    @property
    def faulty(self) -> list[str]:
        """Return the ids of the devices with a fault at some time."""
        return sorted(self.windows)

    def apply(
        self,
        device: SimDevice,
        at: datetime,
        values: dict[str, Any],
        zone: ZoneInfo,
        sequence: int,
    ) -> Emission | None:
        """Return what a device sends for `values` at a moment, faults considered (or None)."""
        kind = device.kind
        found = self.fault_at(device.id, at)
        if found is None:
            return Emission(at, device, kind.encode(values, at, zone), None, sequence)
        number, fault = found
        if fault.fault == "silent":
            return None
        if fault.fault == "stuck":
            kept = self.stuck.setdefault((device.id, number), dict(values))
            if set(kept) != set(values):
                return None  # an on-change report: a stuck sensor notices no change
            return Emission(at, device, kind.encode(kept, at, zone), None, sequence)
        count = self.malformed.get(device.id, 0)
        self.malformed[device.id] = count + 1
        if count % 2 == 0:
            payload = kind.encode(values, at, zone)
            if kind.protocol == PayloadFormat.JSON:
                broken = payload[: max(1, len(payload) // 2)]
            else:
                broken = b"\xff\xfe" + payload[:12]
            return Emission(at, device, broken, UNPARSABLE, sequence)
        numeric = next(
            f.object_id
            for f in kind.fields
            if f.object_id in values and (f.scale is not None or f.value_type in NUMBERS)
        )
        wrong = {**values, numeric: BAD_NUMBER}
        return Emission(at, device, kind.encode(wrong, at, zone), CONVERSION, sequence)
