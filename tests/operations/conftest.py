"""A platform with a ManualClock and principals of every role, for the operations tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smartcity.auth.principal import Caller, PrincipalKind, Role
from smartcity.config import Settings
from smartcity.core.clock import ManualClock
from smartcity.platform import Platform, build_platform
from tests.conftest import postgres_url

START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
TENANT = "dobong"
SECRET = "test-secret-for-signing-bearer-tokens-0123456789"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    common = Settings(
        database_url=f"sqlite:///{tmp_path / 'ops.db'}",
        context_offline=True,
        auth_secret=SECRET,
    )
    if request.param == "postgres":
        schema: str = request.getfixturevalue("postgres_schema")
        return common.model_copy(update={"database_url": postgres_url(), "database_schema": schema})
    return common


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def platform(settings: Settings, clock: ManualClock) -> Iterator[Platform]:
    built = build_platform(settings, clock)
    yield built
    built.close()


def operator() -> Caller:
    return Caller(
        "kim", TENANT, frozenset({Role.OPERATOR}), PrincipalKind.USER, principal_id="p-kim"
    )


def analyst() -> Caller:
    return Caller(
        "lee", TENANT, frozenset({Role.ANALYST}), PrincipalKind.USER, principal_id="p-lee"
    )


def point(lon: float, lat: float) -> dict[str, object]:
    return {"type": "Point", "coordinates": [lon, lat]}
