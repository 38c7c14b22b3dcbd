"""The device registry: register, change, list and delete devices, tenant by tenant.

Admins and operators manage devices, analysts read them; the platform itself (workers, the
CLI) may do everything. Every device keeps its Smart Data Models `Device` entity current. The IoT
agent authenticates each message here (`authenticate`), through a short cache, since it cannot
afford a database read per message.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from smartcity.auth.keys import key_hash
from smartcity.auth.policy import AccessControl, Permission, require
from smartcity.auth.principal import Caller
from smartcity.broker.contexts import ContextResolver
from smartcity.core.clock import Clock, isoformat
from smartcity.core.errors import (
    AlreadyExists,
    BadRequestData,
    OperationNotSupported,
    ResourceNotFound,
    SmartCityError,
)
from smartcity.ingest import device_entities
from smartcity.ingest.commands import CommandBook
from smartcity.ingest.device_entities import DeviceEntities
from smartcity.ingest.device_model import Device, DeviceSpec, PayloadFormat, Transport
from smartcity.ingest.health import silent_after
from smartcity.ingest.ports import Rejected, Standardizer
from smartcity.storage.devices import HEALTH_UNKNOWN, CommandRecord, DeviceRecord, SqlDeviceStore

GENERATED_KEY_BYTES = 24
IMPORT_BATCH = 250
"""Device entities written per transaction during an import."""


@dataclass(frozen=True, slots=True)
class DeviceOptions:
    """How the registry behaves (from Settings)."""

    silent_tolerance: float = 1.5
    """A device is silent after its reporting interval times this without a report."""
    cache_seconds: float = 5.0
    """How long the agent reuses what it read of a device; changes elsewhere wait this."""
    cache_size: int = 100_000


@dataclass(frozen=True, slots=True)
class Authentication:
    """What a device's credential proved: the device, or why not and in which tenant."""

    device: Device | None
    tenant: str
    """The tenant to file a dead letter in: the device's, or that of others with the key."""
    rejected: Rejected | None = None
    key_known: bool = False
    """The key belongs to some device (an unknown device with a known key is a 404, not 401)."""


@dataclass(slots=True)
class Registered:
    """A device just registered, with its key when the registry made it (shown once)."""

    device: Device
    generated_key: str | None = None


@dataclass(slots=True)
class ImportReport:
    """What a bulk import did, item by item."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    failed: list[tuple[int, str, str]] = field(default_factory=list)
    """(item number from 1, device id or '', what is wrong)."""
    generated_keys: dict[str, str] = field(default_factory=dict)


Progress = Callable[[int, int], None]


def spec_from(body: Any) -> DeviceSpec:
    """Validate a device description; BadRequestData says every problem and where."""
    try:
        return DeviceSpec.model_validate(body)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'device'}: {item['msg']}"
            for item in error.errors()
        )
        raise BadRequestData(f"invalid device: {problems}") from None


class DeviceService:
    """Devices of every tenant, as the caller's roles allow."""

    def __init__(
        self,
        store: SqlDeviceStore,
        entities: DeviceEntities,
        contexts: ContextResolver,
        standardizer: Standardizer,
        commands: CommandBook,
        access: AccessControl,
        clock: Clock,
        options: DeviceOptions | None = None,
    ) -> None:
        self.store = store
        self.commands = commands
        self.entities = entities
        self.contexts = contexts
        self.standardizer = standardizer
        self.access = access
        self.clock = clock
        self.options = options or DeviceOptions()
        self._cache: dict[tuple[str, str], tuple[float, Authentication]] = {}
        self._cache_lock = threading.Lock()

    def _now(self) -> datetime:
        return self.clock.now()

    def silent_after(self, interval: float | None, since: datetime) -> str | None:
        """When a device reporting every `interval` seconds counts as silent after `since`."""
        return silent_after(interval, since, self.options.silent_tolerance)

    # -- registration ---------------------------------------------------------------------

    def register(self, caller: Caller, body: Any) -> Registered:
        """Register one device; AlreadyExists if its id is taken in the tenant."""
        require(caller, Permission.MANAGE_DEVICES)
        registered = self._register(caller, body)
        self.entities.write(caller.tenant, [device_entities.registered(registered.device)])
        return registered

    def _register(self, caller: Caller, body: Any) -> Registered:
        """Register a device and write its static attributes (not yet its Device entity)."""
        spec = body if isinstance(body, DeviceSpec) else spec_from(body)
        generated = None
        if spec.api_key is None:
            generated = secrets.token_urlsafe(GENERATED_KEY_BYTES)
        key = generated or (spec.api_key.get_secret_value() if spec.api_key else "")
        static = self._checked_static(caller.tenant, spec)
        record = self._record(caller.tenant, spec, key_hash(key), key)
        problem = self.store.add(record)
        if problem is not None:
            self.access.record(caller, "device.create", [(spec.id, "failed: AlreadyExists")])
            raise _conflict(spec.id, problem)
        device = Device(record)
        try:
            self.entities.write_static(device, static)
        except SmartCityError:
            self.store.delete(caller.tenant, spec.id)
            raise
        self.access.record(caller, "device.create", [(spec.id, "ok")])
        self.forget(spec.id)
        return Registered(device, generated)

    def _record(
        self,
        tenant: str,
        spec: DeviceSpec,
        hashed: str,
        key: str | None,
        old: DeviceRecord | None = None,
    ) -> DeviceRecord:
        now = self._now()
        stamp = isoformat(now)
        since = now
        if old is not None and old.last_seen:
            since = datetime.fromisoformat(old.last_seen)
        return DeviceRecord(
            tenant=tenant,
            id=spec.id,
            key_hash=hashed,
            doc=spec.stored_doc(),
            entity_id=spec.entity.id,
            transport=spec.transport.value,
            reporting_interval=spec.reporting_interval,
            created_at=old.created_at if old else stamp,
            modified_at=stamp,
            last_seen=old.last_seen if old else None,
            health=old.health if old else HEALTH_UNKNOWN,
            health_since=old.health_since if old else None,
            silent_after=self.silent_after(spec.reporting_interval, since),
            command_key=key if spec.commands and spec.transport == Transport.MQTT else None,
        )

    def _checked_static(self, tenant: str, spec: DeviceSpec) -> dict[str, Any]:
        """Check the entity's @context and standardize the static attributes (400 if bad)."""
        target = spec.entity
        if target.context:
            self.contexts.check(target.context)
        if not spec.static_attributes:
            return {}
        attributes = {
            name: value if _is_attribute(value) else {"type": "Property", "value": value}
            for name, value in spec.static_attributes.items()
        }
        try:
            return self.standardizer.standardize(tenant, target.type, attributes, target.context)
        except Rejected as rejected:
            where = f" ({rejected.path})" if rejected.path else ""
            raise BadRequestData(f"static attributes{where}: {rejected.message}") from None

    def update(self, caller: Caller, device_id: str, changes: Any) -> Device:
        """Change members of a device (a key given replaces its key); return the device."""
        require(caller, Permission.MANAGE_DEVICES)
        device = self._update(caller, device_id, changes)
        self.entities.write(caller.tenant, [device_entities.registered(device)])
        return device

    def _update(self, caller: Caller, device_id: str, changes: Any) -> Device:
        if not isinstance(changes, dict):
            raise BadRequestData("the changes must be a JSON object of device members")
        if changes.get("id", device_id) != device_id:
            raise BadRequestData("a device's id cannot change; register a new device instead")
        old = self.store.get(caller.tenant, device_id)
        if old is None:
            raise ResourceNotFound(f"no device {device_id}", instance=device_id)
        spec = spec_from({**old.doc, **changes, "id": device_id})
        hashed = old.key_hash if spec.api_key is None else key_hash(spec.api_key.get_secret_value())
        if hashed != old.key_hash and any(
            other.tenant != caller.tenant and other.key_hash == hashed
            for other in self.store.with_id(device_id)
        ):
            raise _conflict(device_id, "key")
        static = self._checked_static(caller.tenant, spec) if "staticAttributes" in changes else {}
        key = spec.api_key.get_secret_value() if spec.api_key else old.command_key
        record = self._record(caller.tenant, spec, hashed, key, old)
        if not self.store.replace(record):
            raise ResourceNotFound(f"no device {device_id}", instance=device_id)
        device, before = Device(record), Device(old)
        self.entities.write_static(device, static)
        if device.device_entity_id != before.device_entity_id:
            self.entities.delete(caller.tenant, before.device_entity_id)
        self.access.record(caller, "device.update", [(device_id, "ok")])
        self.forget(device_id)
        return device

    def delete(self, caller: Caller, device_id: str) -> None:
        """Delete a device, its commands and its Device entity (the entity it fed stays)."""
        require(caller, Permission.MANAGE_DEVICES)
        old = self.store.get(caller.tenant, device_id)
        if old is None or not self.store.delete(caller.tenant, device_id):
            raise ResourceNotFound(f"no device {device_id}", instance=device_id)
        self.entities.delete(caller.tenant, Device(old).device_entity_id)
        self.access.record(caller, "device.delete", [(device_id, "ok")])
        self.forget(device_id)

    def import_devices(
        self,
        caller: Caller,
        items: Sequence[Any],
        *,
        replace: bool = False,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Register many devices; with `replace`, a device that exists is updated instead.

        Each item stands alone: a bad one is reported (with its number) and the others go on.
        """
        require(caller, Permission.MANAGE_DEVICES)
        report = ImportReport()
        fragments: list[dict[str, Any]] = []
        for number, item in enumerate(items, start=1):
            device_id = str(item.get("id", "")) if isinstance(item, dict) else ""
            try:
                if isinstance(item, SmartCityError):
                    raise item
                if replace and device_id and self.store.get(caller.tenant, device_id):
                    device = self._update(caller, device_id, item)
                    report.updated.append(device_id)
                else:
                    registered = self._register(caller, item)
                    device = registered.device
                    report.created.append(device.id)
                    if registered.generated_key is not None:
                        report.generated_keys[device.id] = registered.generated_key
                fragments.append(device_entities.registered(device))
            except SmartCityError as error:
                report.failed.append((number, device_id, error.detail))
            if len(fragments) >= IMPORT_BATCH:
                self.entities.write(caller.tenant, fragments)
                fragments = []
            if progress is not None:
                progress(number, len(items))
        self.entities.write(caller.tenant, fragments)
        return report

    # -- reading ----------------------------------------------------------------------------

    def get(self, caller: Caller, device_id: str) -> Device:
        """Return one device of the caller's tenant."""
        require(caller, Permission.READ_DEVICES)
        record = self.store.get(caller.tenant, device_id)
        if record is None:
            raise ResourceNotFound(f"no device {device_id}", instance=device_id)
        return Device(record)

    def feeding(self, caller: Caller, entity_id: str) -> list[Device]:
        """Return the caller's tenant's devices that feed an entity (a lamp's controller)."""
        require(caller, Permission.READ_DEVICES)
        return [Device(record) for record in self.store.feeding(caller.tenant, entity_id)]

    def page(self, caller: Caller, limit: int, offset: int) -> tuple[list[Device], int]:
        """Return a page of the tenant's devices in id order, and how many there are."""
        require(caller, Permission.READ_DEVICES)
        records, total = self.store.page(caller.tenant, limit, offset)
        return [Device(record) for record in records], total

    # -- commands ---------------------------------------------------------------------------

    def send_command(
        self, caller: Caller, device_id: str, name: str, params: Any = None
    ) -> CommandRecord:
        """Queue a command for a device (admins, operators and the platform only)."""
        require(caller, Permission.COMMAND_DEVICES)
        device = self.get(caller, device_id)
        spec = device.spec
        if name not in spec.commands:
            accepted = ", ".join(spec.commands) or "none"
            raise BadRequestData(
                f"device {device_id} does not accept command {name!r}; it accepts: {accepted}"
            )
        if spec.transport != Transport.MQTT:
            raise OperationNotSupported(
                f"device {device_id} reports over {spec.transport.value}; commands are sent "
                "over MQTT only"
            )
        if device.command_key is None:
            raise BadRequestData(
                f"device {device_id} got commands after its key was given, and only the key's "
                "hash was kept: give its apiKey again (PATCH) so commands can reach it"
            )
        _check_params(spec.protocol, params)
        command = self.commands.add(device, name, params, caller.subject)
        self.access.record(caller, "device.command", [(device_id, "ok")])
        return command

    def command_history(self, caller: Caller, device_id: str, limit: int) -> list[CommandRecord]:
        """Return a device's commands, newest first."""
        self.get(caller, device_id)
        return self.store.commands(caller.tenant, device_id, limit)

    # -- authentication (the IoT agent) ----------------------------------------------------

    def authenticate(self, api_key: str, device_id: str) -> Authentication:
        """Find the device a message claims to come from, if its key is right.

        Unknown device and wrong key are told apart only in the returned rejection (for the
        dead letter), never to the sender.
        """
        hashed = key_hash(api_key)
        cache_key = (hashed, device_id)
        now = time.monotonic()
        with self._cache_lock:
            cached = self._cache.get(cache_key)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = self._authenticate(hashed, device_id)
        with self._cache_lock:
            if len(self._cache) >= self.options.cache_size:
                self._cache.clear()
            self._cache[cache_key] = (now + self.options.cache_seconds, found)
        return found

    def _authenticate(self, hashed: str, device_id: str) -> Authentication:
        candidates = self.store.with_id(device_id)
        for record in candidates:
            if record.key_hash == hashed:
                return Authentication(Device(record), record.tenant, key_known=True)
        key_tenant = self.store.tenant_of_key(hashed)
        if candidates and key_tenant is None:
            return Authentication(
                None,
                candidates[0].tenant,
                Rejected(
                    "bad-key",
                    f"device {device_id} sent a key that is not its own; check the key it is "
                    "configured with (or change the registered one), then replay",
                    stage="authenticate",
                ),
            )
        return Authentication(
            None,
            key_tenant or "",
            Rejected(
                "unknown-device",
                f"no device {device_id} is registered"
                + (" with this key" if key_tenant is not None else "")
                + "; register it, then replay",
                stage="authenticate",
            ),
            key_known=key_tenant is not None,
        )

    def device_for_replay(self, tenant: str, device_id: str) -> Device | None:
        """Return a tenant's device as registered now (replay trusts the operator, not a key)."""
        record = self.store.get(tenant, device_id)
        return None if record is None else Device(record)

    def forget(self, device_id: str | None = None) -> None:
        """Drop cached authentications (of one device id, or all) after a change here."""
        with self._cache_lock:
            if device_id is None:
                self._cache.clear()
                return
            for key in [k for k in self._cache if k[1] == device_id]:
                del self._cache[key]

    def cached_devices(self) -> Iterable[Device]:
        """Return the devices the cache holds now (for tests and diagnostics)."""
        with self._cache_lock:
            entries = list(self._cache.values())
        return [entry.device for _, entry in entries if entry.device is not None]


def _is_attribute(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in (
        "Property",
        "GeoProperty",
        "Relationship",
        "LanguageProperty",
        "VocabProperty",
        "JsonProperty",
        "ListProperty",
        "ListRelationship",
    )


def _check_params(protocol: PayloadFormat, params: Any) -> None:
    """Refuse parameters the device's format cannot carry."""
    if protocol != PayloadFormat.ULTRALIGHT or params is None:
        return
    values = list(params.items()) if isinstance(params, dict) else params
    values = values if isinstance(values, list) else [values]
    for value in values:
        if isinstance(value, dict | list) and not isinstance(params, dict):
            raise BadRequestData("UltraLight command parameters are flat: text, numbers, k=v")
        if any(c in str(value) for c in "|#@"):
            raise BadRequestData(
                f"UltraLight cannot carry | # or @ in a command parameter ({value!r})"
            )


def _conflict(device_id: str, problem: str) -> AlreadyExists:
    if problem == "exists":
        return AlreadyExists(f"device {device_id} is registered already", instance=device_id)
    return AlreadyExists(
        f"a device {device_id} with the same key is registered in another tenant; the key "
        "would not tell them apart: give this device another key",
        instance=device_id,
    )
