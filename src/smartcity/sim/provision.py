"""Register the simulated devices in the device registry, with their keys and field mappings.

Devices of one kind share an API key, as a FIWARE service group does; the keys are drawn fresh
for each run (only their hashes are stored) and handed to the senders. Registering again
replaces what was there (`replace`), so a restart updates the keys and mappings in place.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from smartcity.auth.principal import Caller
from smartcity.core.errors import BadRequestData
from smartcity.ingest.devices import DeviceService, ImportReport
from smartcity.operations.vulnerable import PersonDraft
from smartcity.platform import Platform
from smartcity.sim.catalog import KINDS
from smartcity.sim.devices import SimDevice
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from smartcity.sim.model import District
from smartcity.sim.safety import wearables
from smartcity.sim.seed import data_path

Progress = Callable[[int, int], None]


def new_keys() -> dict[str, str]:
    """Return a fresh API key per device kind."""
    return {kind.name: f"sim-{kind.name}-{secrets.token_urlsafe(18)}" for kind in KINDS}


def registrations(devices: list[SimDevice], keys: dict[str, str]) -> list[dict[str, Any]]:
    """Return the device registry bodies of the simulated devices."""
    return [device.registration(keys[device.kind.name]) for device in devices]


def prepare_contexts(platform: Platform) -> None:
    """Make the district's @context known offline (the devices' attributes are its terms)."""
    platform.contexts.preload_file(CHANGDONG_CONTEXT_URL, data_path("changdong-context.jsonld"))


def provision(
    devices: DeviceService,
    caller: Caller,
    simulated: list[SimDevice],
    keys: dict[str, str],
    progress: Progress | None = None,
) -> ImportReport:
    """Register (or re-register) every simulated device; BadRequestData if any fails."""
    report = devices.import_devices(
        caller, registrations(simulated, keys), replace=True, progress=progress
    )
    if report.failed:
        shown = "; ".join(f"{device}: {why}" for _, device, why in report.failed[:5])
        raise BadRequestData(
            f"{len(report.failed)} simulated devices could not be registered: {shown}"
        )
    return report


def register_wearers(platform: Platform, district: District, tenant: str = "") -> int:
    """Register the district's fictional SOS wearers in the operations center (once); return
    how many were new."""
    caller = Caller.system(tenant)
    support = platform.operations.vulnerable
    added = 0
    for band in wearables(district):
        entity = f"urn:ngsi-ld:Device:{band['id']}"
        if support.persons.by_wearable(tenant, entity) is not None:
            continue
        draft = PersonDraft(
            kind=band["kind"],
            alias=band["alias"],
            wearable=entity,
            guardian_name=band["guardian"],
            guardian_phone=band["phone"],
            description="Fictional person of the simulated district.",
        )
        support.register(caller, draft)
        added += 1
    return added
