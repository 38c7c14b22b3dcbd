"""Fixtures of the ingestion tests: Smart Data Models schemas, a platform with the in-process bus,
readings to publish and what the ingest writer hands to its dead-letter sink."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smartcity.auth.principal import Caller
from smartcity.broker.temporal_params import TemporalOptions
from smartcity.config import Settings
from smartcity.ingest.ports import RawInput, Rejected
from smartcity.ingest.readings import Reading
from smartcity.ingest.schemas import SchemaCatalog
from smartcity.ingest.standardize import SmartDataStandardizer
from smartcity.platform import Platform, build_platform
from tests.conftest import postgres_url


@pytest.fixture(scope="session")
def models_folder(shared_data: Path) -> Path:
    """Return the folder of the shared Smart Data Models (schemas and examples)."""
    return shared_data / "smart-data-models"


@pytest.fixture(scope="session")
def catalog(models_folder: Path) -> SchemaCatalog:
    """Return a catalog of every shared schema (compiled types are cached across tests)."""
    return SchemaCatalog([models_folder])


@pytest.fixture(scope="session")
def standardizer(catalog: SchemaCatalog) -> SmartDataStandardizer:
    """Return a standardizer over the shared schemas, reading offset-less times as UTC."""
    return SmartDataStandardizer(catalog)


_ids = itertools.count(1)


class RecordedDeadLetters:
    """Keeps what the writer hands to its DeadLetterSink, to assert on it (not a store)."""

    def __init__(self) -> None:
        self.items: list[tuple[RawInput, Rejected]] = []

    def record(self, raw: RawInput, rejected: Rejected) -> str:
        self.items.append((raw, rejected))
        return str(len(self.items))

    def record_many(self, items: list[tuple[RawInput, Rejected]]) -> list[str]:
        return [self.record(raw, rejected) for raw, rejected in items]

    def reasons(self) -> list[str]:
        return [rejected.reason for _, rejected in self.items]


@pytest.fixture
def dead_letters() -> RecordedDeadLetters:
    return RecordedDeadLetters()


def _settings(tmp_path: Path, shared_data: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'ingest.db'}",
        context_offline=True,
        context_preload_smart_data_models=str(shared_data / "smart-data-models"),
        notifications_enabled=False,
    )


@pytest.fixture
def platform(tmp_path: Path, shared_data: Path) -> Iterator[Platform]:
    """Yield a platform on a fresh SQLite file (in-process bus; no worker running)."""
    built = build_platform(_settings(tmp_path, shared_data))
    yield built
    built.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_platform(
    request: pytest.FixtureRequest, tmp_path: Path, shared_data: Path
) -> Iterator[Platform]:
    """Yield a platform on each database backend (in-process bus; no worker running)."""
    settings = _settings(tmp_path, shared_data)
    if request.param == "postgres":
        schema: str = request.getfixturevalue("postgres_schema")
        update = {"database_url": postgres_url(), "database_schema": schema}
        settings = settings.model_copy(update=update)
    built = build_platform(settings)
    yield built
    built.close()


def make_reading(
    entity: str,
    value: Any,
    *,
    tenant: str = "",
    attribute: str = "temperature",
    observed_at: str = "2026-11-28T01:00:00Z",
    context: list[str] | None = None,
    **attributes: Any,
) -> Reading:
    """Return a reading of one numbered AirQualityObserved entity."""
    body = {
        attribute: {"type": "Property", "value": value, "observedAt": observed_at},
        **attributes,
    }
    return Reading(
        id=f"reading-{next(_ids)}",
        tenant=tenant,
        entity_id=f"urn:ngsi-ld:AirQualityObserved:{entity}",
        entity_type="AirQualityObserved",
        attributes=body,
        received_at=observed_at,
        source="mqtt",
        device_id=f"device-{entity}",
        context=context or [],
    )


def history_values(platform: Platform, entity: str, tenant: str = "") -> list[Any]:
    """Return the temperatures in the history of one numbered entity, sorted."""
    platform.history.catch_up()
    page = platform.temporal.retrieve(
        Caller.system(tenant),
        f"urn:ngsi-ld:AirQualityObserved:{entity}",
        TemporalOptions(),
        platform.contexts.resolve(None),
    )
    instances = page.bodies[0]["temperature"]
    return sorted(instance["value"] for instance in instances)
