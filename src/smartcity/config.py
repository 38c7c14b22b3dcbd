"""Settings of the platform, from SMARTCITY_* environment variables or a TOML file."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from smartcity.core.durations import parse_retention
from smartcity.core.errors import ConfigurationError

Environment = Literal["development", "test", "production"]


class Settings(BaseSettings):
    """Everything the platform can be told; one object passed down, never a global."""

    model_config = SettingsConfigDict(env_prefix="SMARTCITY_", extra="forbid")

    environment: Environment = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    database_url: str = "sqlite:///var/smartcity.db"
    database_schema: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
    public_url: str = ""

    # JSON-LD @context resolution
    context_allowed_hosts: list[str] | None = None
    context_offline: bool = False
    context_fetch_timeout: float = Field(default=3.0, gt=0, le=60)
    context_cache_ttl: float = Field(default=3600.0, ge=0)
    context_preload_files: dict[str, str] = Field(default_factory=dict)
    context_preload_smart_data_models: str | None = None

    # Query limits (NGSI-LD clause 6.3.10: a limit above the maximum is TooManyResults)
    default_limit: int = Field(default=20, ge=1)
    max_limit: int = Field(default=1000, ge=1)

    # Temporal history (NGSI-LD temporal API)
    temporal_retention: str | None = None
    """How long the history is kept: days ("30") or an ISO 8601 duration ("P30D", "PT12H");
    None or 0 keeps it forever."""
    temporal_keep_history_on_delete: bool = True
    temporal_instance_limit: int = Field(default=10_000, ge=1, le=1_000_000)
    """The most instances one temporal read returns per attribute of an entity (206 beyond)."""
    temporal_poll_interval: float = Field(default=1.0, gt=0, le=3600)
    """How often the history writer looks for changes made by other processes (seconds)."""
    temporal_prune_interval: float = Field(default=3600.0, gt=0)

    # The demo seed (real Changdong places) is loaded on start when true.
    seed_demo_data: bool = False

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError(
                "database_url must start with sqlite:/// or postgresql:// "
                f"(got {value.split(':', 1)[0]!r})"
            )
        return value

    @field_validator("temporal_retention")
    @classmethod
    def _retention(cls, value: str | None) -> str | None:
        parse_retention(value)  # a ValueError says what is wrong
        return value

    @model_validator(mode="after")
    def _secure_outside_development(self) -> Settings:
        insecure = not self.context_offline and self.context_allowed_hosts is None
        if self.environment == "production" and insecure:
            raise ValueError(
                "in production set context_allowed_hosts (the hosts a remote @context may "
                "come from) or context_offline=true: otherwise any client can make the "
                "broker fetch any URL (server-side request forgery)"
            )
        return self

    def redacted_database_url(self) -> str:
        """Return the database URL with any password hidden, for logs."""
        url = self.database_url
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            credentials, host = rest.rsplit("@", 1)
            user = credentials.split(":", 1)[0]
            return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
        return url


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from a TOML file (if any), the environment, then explicit overrides."""
    file_values: dict[str, Any] = {}
    path = config_file or (
        Path(os.environ["SMARTCITY_CONFIG"]) if os.environ.get("SMARTCITY_CONFIG") else None
    )
    if path is not None:
        try:
            with path.open("rb") as handle:
                file_values = tomllib.load(handle)
        except FileNotFoundError as error:
            raise ConfigurationError(f"configuration file {path} does not exist") from error
        except tomllib.TOMLDecodeError as error:
            raise ConfigurationError(
                f"configuration file {path} is not valid TOML: {error}"
            ) from error
    try:
        from_environment = Settings().model_dump(exclude_unset=True)
        # Environment variables win over the file, explicit overrides over both.
        explicit = {k: v for k, v in overrides.items() if v is not None}
        return Settings(**{**file_values, **from_environment, **explicit})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
            for e in error.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from error
