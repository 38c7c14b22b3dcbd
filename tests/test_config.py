"""Settings: sources in order, clear errors, refusal of insecure production settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smartcity.config import load_settings
from smartcity.core.errors import ConfigurationError


def test_file_then_environment_then_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "city.toml"
    config.write_text('port = 9000\nlog_level = "debug"\ndatabase_url = "sqlite:///x.db"\n')
    monkeypatch.setenv("SMARTCITY_LOG_LEVEL", "warning")
    settings = load_settings(config, database_url="sqlite:///y.db")
    assert settings.port == 9000
    assert settings.log_level == "warning"
    assert settings.database_url == "sqlite:///y.db"


def test_errors_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="port"):
        load_settings(port=70000)
    with pytest.raises(ConfigurationError, match="database_url"):
        load_settings(database_url="mysql://x")
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings(broken)
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


STRONG_SECRET = "a-production-secret-of-at-least-32-characters"


def test_production_refuses_fetching_any_context() -> None:
    with pytest.raises(ConfigurationError, match="server-side request forgery"):
        load_settings(environment="production", auth_secret=STRONG_SECRET)
    production: dict[str, Any] = {"environment": "production", "auth_secret": STRONG_SECRET}
    assert load_settings(**production, context_offline=True).context_offline
    allowed = load_settings(**production, context_allowed_hosts=["smartdatamodels.org"])
    assert allowed.context_allowed_hosts == ["smartdatamodels.org"]


def test_access_control_is_off_only_in_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCITY_AUTH", "off")
    assert load_settings().auth is False
    for environment in ("test", "production"):
        with pytest.raises(ConfigurationError, match="only be switched off"):
            load_settings(environment=environment, context_offline=True, auth_secret=STRONG_SECRET)
    monkeypatch.delenv("SMARTCITY_AUTH")
    assert load_settings().auth is True


def test_outside_development_the_token_secret_is_required_and_strong() -> None:
    for secret in (None, "short"):
        with pytest.raises(ConfigurationError, match="auth_secret"):
            load_settings(environment="production", context_offline=True, auth_secret=secret)
    settings = load_settings(environment="test", auth_secret=STRONG_SECRET)
    assert STRONG_SECRET not in repr(settings)
    assert STRONG_SECRET not in str(settings.model_dump())


def test_passwords_are_hidden_in_logs() -> None:
    settings = load_settings(database_url="postgresql://city:s3cret@db.example/smartcity")
    assert "s3cret" not in settings.redacted_database_url()
    assert settings.redacted_database_url() == "postgresql://city:***@db.example/smartcity"
