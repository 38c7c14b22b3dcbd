"""An app over a fresh SQLite platform, with the Smart Data Models contexts preloaded offline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from smartcity.config import Settings
from smartcity.platform import build_platform
from smartcity.web.app import create_app
from tests.conftest import postgres_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path, shared_data: Path) -> Settings:
    common = Settings(
        database_url=f"sqlite:///{tmp_path / 'broker.db'}",
        context_offline=True,
        context_preload_smart_data_models=str(shared_data / "smart-data-models"),
        max_limit=100,
    )
    if request.param == "postgres":
        schema: str = request.getfixturevalue("postgres_schema")
        return common.model_copy(update={"database_url": postgres_url(), "database_schema": schema})
    return common


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(build_platform(settings))) as test_client:
        yield test_client
