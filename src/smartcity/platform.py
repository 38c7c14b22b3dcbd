"""Composition root: build the platform's parts from Settings, start and stop them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from smartcity.broker.contexts import ContextResolver
from smartcity.broker.service import EntityService
from smartcity.broker.temporal import TemporalService
from smartcity.broker.temporal_workers import HistoryRetention, HistoryWriter
from smartcity.config import Settings
from smartcity.core.clock import Clock, SystemClock
from smartcity.core.durations import parse_retention
from smartcity.core.workers import Worker
from smartcity.storage.history import SqlHistoryStore
from smartcity.storage.sqlbase import SqlEntityStore

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


def build_resolver(settings: Settings) -> ContextResolver:
    """Build the @context resolver the settings describe."""
    allowed: list[str] | None = [] if settings.context_offline else settings.context_allowed_hosts
    resolver = ContextResolver(
        allowed_hosts=allowed,
        timeout=settings.context_fetch_timeout,
        cache_ttl=settings.context_cache_ttl,
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
    history: SqlHistoryStore
    temporal: TemporalService
    workers: list[Worker] = field(default_factory=list)
    """Background loops that run while the platform serves (see `run_workers`)."""

    async def run_workers(self, stop: asyncio.Event) -> None:
        """Run every background worker until `stop` is set; a worker that fails is restarted."""
        await asyncio.gather(*(_supervise(worker, stop) for worker in self.workers))

    def close(self) -> None:
        """Release what the platform holds."""
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


def build_platform(settings: Settings, clock: Clock | None = None) -> Platform:
    """Build the platform from settings; nothing here reads the environment."""
    clock = clock or SystemClock()
    store = open_store(settings.database_url, settings.database_schema)
    log.info("store opened", database=settings.redacted_database_url())
    contexts = build_resolver(settings)
    history = SqlHistoryStore(store, keep_on_delete=settings.temporal_keep_history_on_delete)
    workers: list[Worker] = [HistoryWriter(history, store, settings.temporal_poll_interval)]
    retention = parse_retention(settings.temporal_retention)
    if retention is not None:
        workers.append(
            HistoryRetention(history, clock, retention, settings.temporal_prune_interval)
        )
    return Platform(
        settings=settings,
        clock=clock,
        store=store,
        contexts=contexts,
        entities=EntityService(store, clock, max_limit=settings.max_limit),
        history=history,
        temporal=TemporalService(
            history,
            store,
            clock,
            max_limit=settings.max_limit,
            instance_limit=settings.temporal_instance_limit,
        ),
        workers=workers,
    )
