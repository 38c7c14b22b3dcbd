"""The device side of ingestion in one place: registry, agent, commands, health and MQTT."""

from __future__ import annotations

from dataclasses import dataclass, field

from smartcity.auth.policy import AccessControl
from smartcity.broker.contexts import ContextResolver
from smartcity.broker.service import EntityService
from smartcity.bus.base import EventBus
from smartcity.core.clock import Clock
from smartcity.core.ratelimit import RateLimiter
from smartcity.core.workers import Worker
from smartcity.ingest.agent import IotAgent
from smartcity.ingest.commands import CommandBook, CommandExpiry
from smartcity.ingest.device_entities import DeviceEntities
from smartcity.ingest.devices import DeviceOptions, DeviceService
from smartcity.ingest.health import HealthWatch, Sightings
from smartcity.ingest.mqtt import MqttOptions, MqttSouthbound
from smartcity.ingest.ports import DeadLetterSink, Standardizer
from smartcity.storage.devices import SqlDeviceStore
from smartcity.storage.sqlbase import SqlEntityStore


@dataclass(frozen=True, slots=True)
class IotOptions:
    """Everything the device side is told (from Settings)."""

    mqtt: MqttOptions | None = None
    """None: no MQTT southbound in this process (the HTTP southbound is always there)."""
    devices: DeviceOptions = field(default_factory=DeviceOptions)
    command_timeout: float = 60.0
    command_expiry_interval: float = 5.0
    health_interval: float = 10.0
    sightings_interval: float = 2.0
    device_entity_interval: float = 60.0
    http_rate: float = 5.0
    """Requests a second one device may send to the HTTP southbound (0: no limit)."""
    http_burst: float = 20.0


@dataclass
class Iot:
    """The registry, the agent and their workers."""

    devices: DeviceService
    agent: IotAgent
    commands: CommandBook
    sightings: Sightings
    health: HealthWatch
    expiry: CommandExpiry
    mqtt: MqttSouthbound | None
    http_limiter: RateLimiter | None = None
    """Per device, in this process: a device posting faster is answered 429."""

    def workers(self) -> list[Worker]:
        """The loops to run beside the server (the MQTT southbound only when enabled)."""
        loops: list[Worker] = [self.sightings, self.health, self.expiry]
        if self.mqtt is not None:
            loops.append(self.mqtt)
        return loops


def build_iot(
    options: IotOptions,
    *,
    database: SqlEntityStore,
    entities: EntityService,
    contexts: ContextResolver,
    access: AccessControl,
    clock: Clock,
    bus: EventBus,
    standardizer: Standardizer,
    dead_letters: DeadLetterSink,
) -> Iot:
    """Wire the device side over the platform's parts."""
    store = SqlDeviceStore(database)
    device_entities = DeviceEntities(entities, contexts)
    commands = CommandBook(store, device_entities, clock, timeout=options.command_timeout)
    devices = DeviceService(
        store,
        device_entities,
        contexts,
        standardizer,
        commands,
        access,
        clock,
        options.devices,
    )
    sightings = Sightings(
        store,
        device_entities,
        bus,
        clock,
        tolerance=options.devices.silent_tolerance,
        interval=options.sightings_interval,
        entity_interval=options.device_entity_interval,
    )
    agent = IotAgent(devices, standardizer, dead_letters, bus, sightings, commands, clock)
    health = HealthWatch(store, device_entities, bus, clock, interval=options.health_interval)
    mqtt = None
    if options.mqtt is not None:
        mqtt = MqttSouthbound(agent, devices, commands, options.mqtt)
    return Iot(
        devices=devices,
        agent=agent,
        commands=commands,
        sightings=sightings,
        health=health,
        expiry=CommandExpiry(commands, options.command_expiry_interval),
        mqtt=mqtt,
        http_limiter=RateLimiter(options.http_rate, options.http_burst)
        if options.http_rate > 0
        else None,
    )
