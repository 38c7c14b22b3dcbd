"""Composition root: build the platform's parts from Settings, start and stop them."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from smartcity.auth.accounts import AccountService
from smartcity.auth.policy import AccessControl
from smartcity.auth.tokens import TokenIssuer, load_or_create_secret
from smartcity.broker.changefeed import ChangeFeed
from smartcity.broker.context_hosting import ContextHostingService, HostedContextLookup
from smartcity.broker.contexts import ContextResolver, LocalContexts
from smartcity.broker.delivery import Delivery, DeliveryOptions
from smartcity.broker.notifier import Notifier, OwnerCheck, SubscriptionCatalog
from smartcity.broker.service import EntityService
from smartcity.broker.subscriptions import SubscriptionService
from smartcity.broker.temporal import TemporalService
from smartcity.broker.temporal_workers import HistoryRetention, HistoryWriter
from smartcity.bus.base import EventBus
from smartcity.bus.factory import open_bus
from smartcity.config import Settings
from smartcity.core.clock import Clock, SystemClock
from smartcity.core.durations import parse_retention
from smartcity.core.workers import Periodic, Worker
from smartcity.ingest.adapters import build_adapters, build_replayer
from smartcity.ingest.deadletters import DeadLetterService
from smartcity.ingest.devices import DeviceOptions
from smartcity.ingest.iot import Iot, IotOptions, build_iot
from smartcity.ingest.mqtt import MqttOptions
from smartcity.ingest.schemas import SchemaCatalog
from smartcity.ingest.standardize import SmartDataStandardizer
from smartcity.ingest.writer import IngestWriter, WriterOptions
from smartcity.modules import LoadedModule, load_modules
from smartcity.operations.service import Operations, build_operations
from smartcity.rules.assembly import RuleParts, build_rules
from smartcity.rules.plug import EnginePlug, engine_plug
from smartcity.rules.service import RuleService
from smartcity.storage.changelog import ChangeLogPruner
from smartcity.storage.deadletters import SqlDeadLetterStore
from smartcity.storage.history import SqlHistoryStore
from smartcity.storage.hosted_contexts import SqlHostedContextStore
from smartcity.storage.sqlaccounts import SqlAccountStore
from smartcity.storage.sqlbase import SqlEntityStore
from smartcity.storage.sqlsubscriptions import SqlSubscriptionStore

log = structlog.get_logger(__name__)


def open_store(database_url: str, schema: str | None = None) -> SqlEntityStore:
    """Open the store a database URL names (sqlite:///path or postgresql://...)."""
    if database_url.startswith("sqlite:///"):
        from smartcity.storage.sqlite import SqliteEntityStore, sqlite_path

        return SqliteEntityStore(sqlite_path(database_url))
    if database_url.startswith(("postgresql://", "postgres://")):
        from smartcity.storage.postgres import PostgresEntityStore

        return PostgresEntityStore(database_url, schema=schema)
    raise ValueError(f"unsupported database URL {database_url!r}")


def build_resolver(
    settings: Settings, local: LocalContexts | None = None, clock: Clock | None = None
) -> ContextResolver:
    """Build the @context resolver the settings describe (`local` finds hosted contexts)."""
    allowed: list[str] | None = [] if settings.context_offline else settings.context_allowed_hosts
    resolver = ContextResolver(
        allowed_hosts=allowed,
        timeout=settings.context_fetch_timeout,
        cache_ttl=settings.context_cache_ttl,
        local=local,
        local_ttl=settings.context_hosted_cache_ttl,
        clock=clock,
    )
    for url, path in settings.context_preload_files.items():
        resolver.preload_file(url, Path(path))
    if settings.context_preload_smart_data_models:
        resolver.preload_smart_data_models(Path(settings.context_preload_smart_data_models))
    return resolver


@dataclass
class Platform:
    """Every long-lived part of a running platform."""

    settings: Settings
    clock: Clock
    store: SqlEntityStore
    contexts: ContextResolver
    entities: EntityService
    access: AccessControl
    """Visibility, permission data and the audit log: every service checks through it."""
    accounts: AccountService
    change_log: ChangeLogPruner
    """Readers of the change log register their position here, so it keeps what they need."""
    context_hosting: ContextHostingService
    subscriptions: SubscriptionService
    history: SqlHistoryStore
    temporal: TemporalService
    bus: EventBus
    """Facts between the parts (readings to the ingest writer, ...); started by `start`."""
    standardizer: SmartDataStandardizer
    """Normalizes and checks what ingestion accepts (the Standardizer port)."""
    deadletters: DeadLetterService
    """Keeps what ingestion refuses (the DeadLetterSink port); list, replay, discard."""
    changes: ChangeFeed
    """Live streams of entity changes for a caller (the map's server-sent events)."""
    workers: list[Worker] = field(default_factory=list)
    """Background loops that run while the platform serves (see `run_workers`)."""
    iot: Iot = field(init=False)
    """Devices: registry, IoT agent (MQTT and HTTP southbound), commands, health."""
    modules: list[LoadedModule] = field(default_factory=list)
    """The enabled domain modules, set up in this order."""
    services: dict[str, Any] = field(default_factory=dict)
    """Each set-up module's service, by module name (its routers are built over it)."""
    rules: RuleService = field(init=False)
    """Convergence-event rules: stored rules, firings, validation, backtests."""
    rule_parts: RuleParts = field(init=False)
    """The change relay and the engine worker (when `rules_enabled`), their state."""
    operations: Operations = field(init=False)
    """The operations center: incidents, SOPs, escalation, 112 emergency video support."""

    async def start(self) -> None:
        """Connect what needs an event loop (the bus); safe to call twice."""
        await self.bus.start()

    async def stop(self) -> None:
        """Disconnect what `start` connected (call after the workers have stopped)."""
        await self.bus.close()

    async def run_workers(self, stop: asyncio.Event) -> None:
        """Run every background worker until `stop` is set; a worker that fails is restarted."""
        await self.start()
        await asyncio.gather(*(_supervise(worker, stop) for worker in self.workers))

    def close(self) -> None:
        """Release what the platform holds (the modules' first, in reverse order)."""
        for module in reversed(self.modules):
            if module.spec.teardown is not None and module.spec.name in self.services:
                module.spec.teardown(self.services.pop(module.spec.name))
        self.contexts.close()
        self.store.close()


async def _supervise(worker: Worker, stop: asyncio.Event) -> None:
    """Run one worker, restarting it after an unexpected error (logged), until `stop`."""
    while not stop.is_set():
        try:
            await worker.run(stop)
        except Exception:
            log.exception("worker failed; restarting in 1 s", worker=worker.name)
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except TimeoutError:
                continue
        else:
            return


def build_platform(
    settings: Settings, clock: Clock | None = None, rules_engine: EnginePlug | None = None
) -> Platform:
    """Build the platform from settings; nothing here reads the environment.

    `rules_engine` runs the rules with another engine than the installed one (tests, benches).
    """
    clock = clock or SystemClock()
    store = open_store(settings.database_url, settings.database_schema)
    log.info("store opened", database=settings.redacted_database_url())
    pruner = ChangeLogPruner(
        store, clock, keep=timedelta(minutes=settings.change_log_retention_minutes)
    )
    access = AccessControl(SqlAccountStore(store), clock)
    if not settings.auth:
        log.warning(
            "ACCESS CONTROL IS OFF: every request acts as the platform itself, with every "
            "role in every tenant; never run like this with real data",
            environment=settings.environment,
        )
    hosted_contexts = SqlHostedContextStore(store)
    lookup = HostedContextLookup(hosted_contexts, settings.public_url)
    contexts = build_resolver(settings, lookup, clock)
    subscription_store = SqlSubscriptionStore(store)
    history = SqlHistoryStore(store, keep_on_delete=settings.temporal_keep_history_on_delete)
    workers: list[Worker] = [pruner, HistoryWriter(history, settings.temporal_poll_interval)]
    retention = parse_retention(settings.temporal_retention)
    if retention is not None:
        workers.append(
            HistoryRetention(history, clock, retention, settings.temporal_prune_interval)
        )
    platform = Platform(
        settings=settings,
        clock=clock,
        store=store,
        contexts=contexts,
        entities=EntityService(store, clock, access, max_limit=settings.max_limit),
        access=access,
        accounts=AccountService(
            access,
            build_token_issuer(settings, clock),
            cache_seconds=settings.auth_cache_seconds,
        ),
        change_log=pruner,
        context_hosting=ContextHostingService(
            hosted_contexts,
            contexts,
            lookup,
            clock,
            max_bytes=settings.context_hosted_max_bytes,
            max_per_tenant=settings.context_hosted_max_per_tenant,
        ),
        subscriptions=SubscriptionService(subscription_store, contexts.resolve, clock),
        history=history,
        temporal=TemporalService(
            history,
            store,
            clock,
            access,
            max_limit=settings.max_limit,
            instance_limit=settings.temporal_instance_limit,
        ),
        bus=open_bus(settings),
        standardizer=build_standardizer(settings),
        deadletters=build_deadletters(settings, store, clock),
        changes=ChangeFeed(
            store,
            access,
            batch=settings.stream_batch,
            min_interval=settings.stream_min_interval,
            poll_interval=settings.stream_poll_interval,
        ),
        workers=workers,
    )
    if settings.audit_retention_days > 0:
        keep = timedelta(days=settings.audit_retention_days)
        platform.workers.append(
            Periodic(
                "audit-retention", partial(access.prune_audit, keep), settings.audit_prune_interval
            )
        )
    platform.iot = build_device_side(platform)
    platform.workers.extend(platform.iot.workers())
    if platform.deadletters.retention is not None:
        platform.workers.append(
            Periodic(
                "dead-letter-retention",
                platform.deadletters.purge,
                settings.deadletter_purge_interval,
            )
        )
    platform.operations = build_operations(
        settings,
        store,
        access,
        clock,
        platform.bus,
        platform_secret(settings),
        platform.iot.devices,
        platform.history,
    )
    if settings.ops_enabled:
        platform.workers.extend(
            platform.operations.workers(settings, platform.bus, platform.deadletters, clock)
        )
    writer = ingest_writer(platform)
    if settings.ingest_enabled:
        platform.workers.append(writer)
    elif platform.bus.name == "memory":
        log.warning(
            "ingest_enabled is false with the in-process bus: readings published in this "
            "process are never stored (use a NATS bus_url to store them in another process)"
        )
    # The log keeps every change the history writer and the notifier have not consumed yet,
    # even while notifications run in another process (`smartcity workers`).
    pruner.register("history", history.position)
    pruner.register("notifications", subscription_store.position)
    if settings.notifications_enabled:
        platform.workers.extend(notification_workers(platform, subscription_store))
    if settings.adapters_enabled:
        platform.workers.append(adapter_worker(platform))
    platform.deadletters.register_replayer(
        "adapter:",
        build_replayer(settings, platform.standardizer, platform.bus, platform.deadletters),
    )
    if rules_engine is None:
        rules_engine = engine_plug(settings.rules_lateness, settings.rules_clock_delay)
    attach_rules(platform, rules_engine)
    set_up_modules(platform, load_modules(settings.modules, settings.module_settings))
    return platform


def freeze_startup_objects() -> None:
    """Keep what start-up built out of the garbage collector's full collections.

    About 150,000 objects live as long as the process (imported modules, preloaded contexts,
    the platform), and every full collection walks them all: 60-90 ms on this project's
    2-core machine, a pause any request meets when it comes (guidance with a snapshot read per
    query: p50 8 ms, p95 162 ms). Call once, after the platform is built and before serving;
    frozen objects are never collected (their garbage is collected first), so never in tests
    that build many platforms.
    """
    gc.collect()
    gc.freeze()
    collect_young_objects_less_often()


YOUNG_COLLECTION_THRESHOLD = 10_000
"""Allocations between collections of the youngest generation (CPython's default is 700)."""


def collect_young_objects_less_often() -> None:
    """Run the garbage collector's young collections every 10,000 allocations, not every 700.

    A serving process makes mostly short-lived, acyclic objects (a request's, a change's), freed
    by reference counting; the collector still walks the young generation every 700 allocations
    and the older ones every 7,000 and 70,000, which cost the rule engine 12 % of its time per
    change (`bench/rules.py` measures with the same setting). Cycles are still collected, a
    little later.
    """
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, 10, 10)


def set_up_modules(platform: Platform, modules: list[LoadedModule]) -> None:
    """Run each enabled module's setup on the built platform; keep its service and workers."""
    for module in modules:
        platform.modules.append(module)
        if module.spec.setup is None:
            continue
        started = module.spec.setup(platform, module.settings)
        platform.services[module.spec.name] = started.service
        platform.workers.extend(started.workers)
        log.info("module set up", module=module.spec.name, workers=len(started.workers))


def attach_rules(platform: Platform, plug: EnginePlug) -> None:
    """Build the rules' parts; with `rules_enabled`, run the relay and the engine worker here."""
    parts = build_rules(
        platform.settings,
        store=platform.store,
        entities=platform.entities,
        resolve=platform.contexts.resolve,
        bus=platform.bus,
        clock=platform.clock,
        history=platform.history,
        access=platform.access,
        devices=platform.iot.devices,
        plug=plug,
    )
    platform.rules, platform.rule_parts = parts.service, parts
    for reader, position in parts.positions.items():
        platform.change_log.register(reader, position)
    platform.workers.extend(parts.workers)


def adapter_worker(platform: Platform) -> Worker:
    """Build the worker that polls the enabled open-data adapters into the ingest bus."""
    from smartcity.ingest.adapters.runner import AdapterWorker

    settings = platform.settings
    adapters = build_adapters(settings)
    log.info("open-data adapters enabled", adapters=[adapter.name for adapter in adapters])
    if settings.workers > 1:
        log.warning(
            "every HTTP worker process polls the open-data adapters: each spends the APIs' "
            "quota; enable them only where `smartcity workers` runs",
            workers=settings.workers,
        )
    return AdapterWorker(
        adapters,
        platform.bus,
        platform.standardizer,
        platform.deadletters,
        platform.clock,
        tenant=settings.adapters_tenant,
        timeout=settings.adapters_timeout,
        backoff_cap=settings.adapters_backoff_cap,
    )


def build_device_side(platform: Platform) -> Iot:
    """Build the device registry and the IoT agent; register its dead-letter replayers."""
    settings = platform.settings
    mqtt = None
    if settings.ingest_mqtt_enabled:
        mqtt = MqttOptions(
            url=settings.ingest_mqtt_url,
            client_id=settings.ingest_mqtt_client_id,
            topic_prefix=settings.ingest_mqtt_topic_prefix,
            session_expiry=settings.ingest_mqtt_session_expiry,
            receive_maximum=settings.ingest_mqtt_receive_maximum,
            batch_size=settings.ingest_mqtt_batch_size,
        )
    options = IotOptions(
        mqtt=mqtt,
        devices=DeviceOptions(
            silent_tolerance=settings.ingest_device_silent_tolerance,
            cache_seconds=settings.ingest_device_cache_seconds,
        ),
        command_timeout=settings.ingest_command_timeout,
        health_interval=settings.ingest_device_health_interval,
        sightings_interval=settings.ingest_last_seen_interval,
        device_entity_interval=settings.ingest_device_entity_interval,
        http_rate=settings.ingest_http_rate,
        http_burst=settings.ingest_http_burst,
    )
    iot = build_iot(
        options,
        database=platform.store,
        entities=platform.entities,
        contexts=platform.contexts,
        access=platform.access,
        clock=platform.clock,
        bus=platform.bus,
        standardizer=platform.standardizer,
        dead_letters=platform.deadletters,
    )
    for source in ("mqtt", "http"):
        platform.deadletters.register_replayer(source, iot.agent.replay)
    return iot


def build_standardizer(settings: Settings) -> SmartDataStandardizer:
    """Build the standardizer over the configured Smart Data Models schema folders."""
    catalog = SchemaCatalog(settings.ingest_schema_dirs)
    if settings.ingest_schema_dirs:
        log.info("schemas loaded", types=len(catalog.types), unresolved=len(catalog.unresolved))
    return SmartDataStandardizer(
        catalog,
        naive_time_zone=settings.ingest_naive_time_zone,
        require_schema=settings.ingest_require_schema,
    )


def build_deadletters(settings: Settings, store: SqlEntityStore, clock: Clock) -> DeadLetterService:
    """Build the dead-letter service on the platform's database."""
    days = settings.deadletter_retention_days
    return DeadLetterService(
        SqlDeadLetterStore(store),
        clock,
        max_limit=settings.max_limit,
        retention=timedelta(days=days) if days else None,
    )


def ingest_writer(platform: Platform) -> IngestWriter:
    """Build the ingest writer (bus -> broker) and replay its dead letters through it."""
    settings = platform.settings
    options = WriterOptions(
        batch_size=settings.ingest_batch_size,
        batch_wait=settings.ingest_batch_wait_ms / 1000,
        ack_wait=settings.ingest_ack_wait,
        max_deliver=settings.ingest_max_deliver,
    )
    writer = IngestWriter(
        platform.bus,
        platform.entities,
        platform.contexts,
        platform.deadletters,
        platform.clock,
        options,
    )
    platform.deadletters.register_replayer("writer", writer.replay)
    return writer


def platform_secret(settings: Settings) -> str:
    """Return the platform's secret; in development a generated one is kept in a file."""
    if settings.auth_secret is not None:
        return settings.auth_secret.get_secret_value()
    return load_or_create_secret(Path(settings.auth_secret_file))


def build_token_issuer(settings: Settings, clock: Clock) -> TokenIssuer:
    """Build the token issuer; in development a generated secret is kept in a file."""
    secret = platform_secret(settings)
    lifetime = timedelta(minutes=settings.token_lifetime_minutes)
    return TokenIssuer(secret, clock, lifetime=lifetime)


def notification_workers(platform: Platform, store: SqlSubscriptionStore) -> list[Worker]:
    """Build the notifier (changes -> outbox) and the delivery worker (outbox -> endpoints)."""
    settings = platform.settings
    catalog = SubscriptionCatalog(store, platform.contexts.resolve)
    delivery = Delivery(
        store,
        catalog,
        platform.clock,
        DeliveryOptions(
            timeout=settings.notification_timeout,
            max_attempts=settings.notification_max_attempts,
            backoff_base=settings.notification_backoff_base,
            backoff_cap=settings.notification_backoff_cap,
            concurrency=settings.notification_concurrency,
            poll_interval=settings.notification_poll_interval,
        ),
    )
    notifier = Notifier(
        platform.store,
        store,
        catalog,
        platform.clock,
        OwnerCheck(platform.access, ttl=settings.auth_cache_seconds),
        batch=settings.notification_batch,
        poll_interval=settings.notification_poll_interval,
        max_periodic_entities=settings.max_limit,
        on_queued=delivery.wake,
    )
    return [notifier, delivery]
