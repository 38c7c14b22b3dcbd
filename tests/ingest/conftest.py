"""Fixtures of the ingestion tests: the Smart Data Models schemas of the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcity.ingest.schemas import SchemaCatalog
from smartcity.ingest.standardize import SmartDataStandardizer


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
