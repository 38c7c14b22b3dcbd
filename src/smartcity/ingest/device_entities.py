"""Devices are entities too: a Smart Data Models `Device` entity each, written as the platform.

The entity says what the device measures (`controlledProperty`), which entity it feeds
(`controlledAsset`), its health (`deviceState`: unknown, ok, silent), when it last reported
(`dateLastValueReported`) and, per command, `<command>_status` and `<command>_info` as the FIWARE
IoT Agents show them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from importlib.resources import files
from typing import Any, Final

import orjson
import structlog

from smartcity.auth.principal import Caller
from smartcity.broker.contexts import ActiveContext, ContextResolver
from smartcity.broker.service import EntityService
from smartcity.core.errors import ResourceNotFound, SmartCityError
from smartcity.ingest.device_model import Device

DEVICE_CONTEXT_URL: Final = "urn:smartcity:context:iot-devices"
"""The @context of the Device entities (shipped with the platform; terms of Smart Data Models)."""
DEVICE_CONTEXT_FILE: Final = "device-context.jsonld"

log = structlog.get_logger(__name__)

Fragment = dict[str, Any]


def preload_device_context(contexts: ContextResolver) -> ActiveContext:
    """Make the Device entities' @context available offline; return it."""
    document = orjson.loads(
        files("smartcity.ingest").joinpath("data", DEVICE_CONTEXT_FILE).read_bytes()
    )
    contexts.preload_document(DEVICE_CONTEXT_URL, document)
    return contexts.resolve(DEVICE_CONTEXT_URL)


def _property(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


def _datetime(value: str) -> dict[str, Any]:
    return {"type": "Property", "value": {"@type": "DateTime", "@value": value}}


def registered(device: Device) -> Fragment:
    """The Device entity of a newly registered or changed device."""
    spec = device.spec
    measured = sorted({m.name for m in spec.attributes}) or ["other"]
    entity: Fragment = {
        "id": device.device_entity_id,
        "type": "Device",
        "controlledProperty": _property(measured),
        "controlledAsset": {"type": "Relationship", "object": spec.entity.id},
        "deviceCategory": _property(["sensor", "actuator"] if spec.commands else ["sensor"]),
        "deviceState": _property(device.health),
        "supportedProtocol": _property([f"{spec.protocol.value}/{spec.transport.value}"]),
    }
    if spec.name:
        entity["name"] = _property(spec.name)
    if device.last_seen:
        entity["dateLastValueReported"] = _datetime(device.last_seen)
    return entity


def state(device_entity_id: str, health: str | None, last_seen: str | None) -> Fragment:
    """A change of a device's health or last-seen time."""
    fragment: Fragment = {"id": device_entity_id, "type": "Device"}
    if health is not None:
        fragment["deviceState"] = _property(health)
    if last_seen is not None:
        fragment["dateLastValueReported"] = _datetime(last_seen)
    return fragment


def command_status(device_entity_id: str, name: str, status: str, info: Any) -> Fragment:
    """A command's status and info, as `<name>_status` and `<name>_info`."""
    fragment: Fragment = {
        "id": device_entity_id,
        "type": "Device",
        f"{name}_status": _property(status.upper()),
    }
    if info is not None:
        fragment[f"{name}_info"] = _property(info)
    return fragment


class DeviceEntities:
    """Writes Device entities (and devices' static attributes) through the entity service."""

    def __init__(self, entities: EntityService, contexts: ContextResolver) -> None:
        self.entities = entities
        self.contexts = contexts
        self.ctx = preload_device_context(contexts)

    def write(self, tenant: str, fragments: Iterable[Fragment]) -> list[str]:
        """Upsert Device fragments of one tenant; return the ids that failed (logged)."""
        body = list(fragments)
        if not body:
            return []
        result, _ = self.entities.batch_upsert(
            Caller.system(tenant), body, lambda _: self.ctx, mode="update"
        )
        for error in result.errors:
            log.error(
                "device entity not written",
                tenant=tenant,
                entity=error.entity_id,
                error=error.error.detail,
            )
        return [error.entity_id for error in result.errors]

    def write_many(self, fragments: Iterable[tuple[str, Fragment]]) -> None:
        """Upsert Device fragments of several tenants (one batch per tenant)."""
        by_tenant: dict[str, list[Fragment]] = defaultdict(list)
        for tenant, fragment in fragments:
            by_tenant[tenant].append(fragment)
        for tenant, body in by_tenant.items():
            self.write(tenant, body)

    def write_static(self, device: Device, attributes: dict[str, Any]) -> None:
        """Write a device's static attributes on the entity it feeds (created if absent)."""
        if not attributes:
            return
        target = device.spec.entity
        ctx = self.contexts.resolve(target.context or None)
        body = [{"id": target.id, "type": target.type, **attributes}]
        result, _ = self.entities.batch_upsert(
            Caller.system(device.tenant), body, lambda _: ctx, mode="update"
        )
        if result.errors:
            raise result.errors[0].error

    def delete(self, tenant: str, device_entity_id: str) -> None:
        """Delete a device's Device entity, if it is there."""
        try:
            self.entities.delete(Caller.system(tenant), device_entity_id)
        except ResourceNotFound:
            pass
        except SmartCityError as error:
            log.error("device entity not deleted", entity=device_entity_id, error=error.detail)
