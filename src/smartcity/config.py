"""Settings of the platform, from SMARTCITY_* environment variables or a TOML file."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from smartcity.core.durations import parse_retention
from smartcity.core.errors import ConfigurationError

Environment = Literal["development", "test", "production"]
ADAPTER_KEYS = {
    "parking": "seoul_open_api_key",
    "traffic": "seoul_open_api_key",
    "subway": "seoul_subway_api_key",
    "bus": "seoul_bus_api_key",
}
"""The setting that holds each open-data adapter's key."""


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
    # @contexts users host through /ngsi-ld/v1/jsonldContexts
    context_hosted_max_bytes: int = Field(default=1024 * 1024, ge=1024, le=4 * 1024 * 1024)
    context_hosted_max_per_tenant: int = Field(default=1000, ge=1)
    context_hosted_cache_ttl: float = Field(default=60.0, ge=0)

    # Query limits (NGSI-LD clause 6.3.10: a limit above the maximum is TooManyResults)
    default_limit: int = Field(default=20, ge=1)
    max_limit: int = Field(default=1000, ge=1)

    # The change log (every entity change, read by history, subscriptions and the bus) is kept
    # this long after every reader has consumed it (a late reader or a replay can start there;
    # the durable history is the temporal store, the durable event stream is the bus).
    change_log_retention_minutes: float = Field(default=5.0, ge=0)

    # The Changdong district model (places, roads, devices) is loaded on start when true.
    # Subscriptions: notifications are queued in the database and delivered with retries.
    notifications_enabled: bool = True
    notification_timeout: float = Field(default=5.0, gt=0, le=120)
    notification_max_attempts: int = Field(default=6, ge=1, le=100)
    notification_backoff_base: float = Field(default=1.0, gt=0, le=3600)
    notification_backoff_cap: float = Field(default=300.0, gt=0, le=86400)
    notification_concurrency: int = Field(default=100, ge=1, le=10000)
    notification_poll_interval: float = Field(default=1.0, gt=0, le=60)
    notification_batch: int = Field(default=500, ge=1, le=100000)

    # Temporal history (NGSI-LD temporal API)
    temporal_retention: str | None = None
    """How long the history is kept: days ("30") or an ISO 8601 duration ("P30D", "PT12H");
    None or 0 keeps it forever."""
    temporal_keep_history_on_delete: bool = True
    temporal_instance_limit: int = Field(default=10_000, ge=1, le=1_000_000)
    """The most instances one temporal read returns per attribute of an entity (206 beyond)."""
    temporal_poll_interval: float = Field(default=1.0, gt=0, le=3600)
    """How often the history looks for changes logged without it, e.g. by a tool (seconds)."""
    temporal_prune_interval: float = Field(default=3600.0, gt=0)

    # The event bus: in this process (memory://, lost on restart) or NATS JetStream
    # (nats://host:port: one durable stream, consumer groups shared by processes).
    bus_url: str = "memory://"
    bus_stream: str = Field(default="SMARTCITY", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    bus_subjects: list[str] = Field(
        default_factory=lambda: ["ingest.>", "events.>", "entity.>", "rules.>", "operations.>"]
    )
    bus_duplicate_window: float = Field(default=120.0, gt=0, le=86400)
    """Seconds within which a second message with the same msg_id is dropped."""
    bus_max_age_hours: float = Field(default=168.0, gt=0)
    """How long NATS keeps a message in the stream, acknowledged or not."""

    # The ingest writer: readings from the bus -> entities, in batches.
    ingest_enabled: bool = True
    ingest_batch_size: int = Field(default=500, ge=1, le=10_000)
    ingest_batch_wait_ms: float = Field(default=50.0, ge=0, le=10_000)
    """How long the writer waits for a batch to fill once the first reading is there."""
    ingest_ack_wait: float = Field(default=30.0, gt=0, le=3600)
    ingest_max_deliver: int = Field(default=1000, ge=2)
    """Deliveries of a reading the database keeps failing before it becomes a dead letter."""

    seed_demo_data: bool = False

    # Domain modules (docs/modules.md): short names of built-ins or entry points, or dotted
    # paths; None enables the built-ins. Each module's own settings live under its name.
    modules: list[str] | None = None
    module_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)

    # Open-data adapters: pollers of Seoul's public APIs (docs/adapters.md). All are off until
    # named in adapters_enabled, and each needs its key; the defaults poll Changdong and Nowon.
    adapters_enabled: list[Literal["parking", "subway", "bus", "traffic"]] = Field(
        default_factory=list
    )
    adapters_tenant: str = ""
    adapters_timeout: float = Field(default=10.0, gt=0, le=120)
    adapters_backoff_cap: float = Field(default=900.0, gt=0, le=86400)
    """The longest wait between two polls of a failing adapter (seconds)."""
    seoul_open_api_key: SecretStr | None = None
    """Seoul Open Data Plaza key (parking, traffic)."""
    seoul_open_api_url: str = "http://openapi.seoul.go.kr:8088"
    seoul_subway_api_key: SecretStr | None = None
    """The real-time subway key (a separate key of the Open Data Plaza)."""
    seoul_subway_api_url: str = "http://swopenAPI.seoul.go.kr/api/subway"
    seoul_bus_api_key: SecretStr | None = None
    """data.go.kr service key of the Seoul bus arrival API (encoded or decoded form)."""
    seoul_bus_api_url: str = "http://ws.bus.go.kr/api/rest"
    adapter_parking_interval: float = Field(default=120.0, ge=1)
    adapter_parking_districts: list[str] = Field(default_factory=lambda: ["도봉구", "노원구"])
    adapter_parking_page_size: int = Field(default=1000, ge=1, le=1000)
    adapter_parking_lots: dict[str, str] = Field(default_factory=dict)
    """PKLT_CD -> the district's OffStreetParking (local id or URN) the lot updates."""
    adapter_subway_interval: float = Field(default=30.0, ge=1)
    adapter_subway_stations: dict[str, str] = Field(
        default_factory=lambda: {"창동": "changdong", "노원": "nowon"}
    )
    """Station name as the API spells it -> its TransportStation (local id or URN)."""
    adapter_bus_interval: float = Field(default=30.0, ge=1)
    adapter_bus_stops: dict[str, str] = Field(default_factory=dict)
    """ARS stop number -> its TransportStation ('' lets the adapter keep one of its own)."""
    adapter_traffic_interval: float = Field(default=300.0, ge=1)
    adapter_traffic_links: dict[str, str] = Field(default_factory=dict)
    """TOPIS link id -> the RoadSegment it measures (local id or URN; '' for none)."""
    # Ingestion: standardization and dead letters
    ingest_schema_dirs: list[str] = Field(default_factory=list)
    """Folders of Smart Data Models JSON Schemas (`*schema.json`, found by their `$id`);
    empty: readings are normalized (units, times, coordinates) but not checked by a schema."""
    ingest_require_schema: bool = False
    """Refuse readings of entity types that no schema folder describes."""
    ingest_naive_time_zone: str = "UTC"
    """The time zone of a timestamp sent without an offset (e.g. "Asia/Seoul")."""
    deadletter_retention_days: float = Field(default=30.0, ge=0)
    """Replayed and discarded dead letters are purged after this many days (0: never)."""
    deadletter_purge_interval: float = Field(default=3600.0, gt=0)

    # Devices and the IoT agent: the HTTP southbound (/iot/json, /iot/d) is always on; the MQTT
    # southbound (FIWARE IoT-Agent topics on a persistent session) when enabled. Run it in one
    # process only (`smartcity workers`) when servers run several: its client id is fixed.
    ingest_http_rate: float = Field(default=5.0, ge=0)
    """Requests a second one device may send to /iot/json and /iot/d, per process (0: no limit)."""
    ingest_http_burst: float = Field(default=20.0, ge=1)
    ingest_mqtt_enabled: bool = False
    ingest_mqtt_url: str = Field(default="mqtt://127.0.0.1:1883", pattern=r"^mqtts?://")
    """mqtt://[user:password@]host[:port], or mqtts:// for TLS."""
    ingest_mqtt_client_id: str = Field(
        default="smartcity-iot-agent", pattern=r"^[A-Za-z0-9_.:\-]{1,64}$"
    )
    ingest_mqtt_topic_prefix: str = Field(default="", pattern=r"^(/[^/+#\s]+)*$")
    """Put before every device topic ('' keeps the convention `/<apikey>/<deviceId>/attrs`)."""
    ingest_mqtt_session_expiry: int = Field(default=7 * 86400, ge=1)
    """Seconds the broker keeps what arrives for the agent while it is away."""
    ingest_mqtt_receive_maximum: int = Field(default=1000, ge=1, le=65535)
    ingest_mqtt_batch_size: int = Field(default=500, ge=1, le=10_000)
    ingest_command_timeout: float = Field(default=60.0, gt=0, le=86400)
    """Seconds a command waits for the device's answer before it is expired."""
    ingest_device_silent_tolerance: float = Field(default=1.5, ge=1.0, le=100)
    """A device is silent after its reporting interval times this without a report."""
    ingest_device_health_interval: float = Field(default=10.0, gt=0, le=3600)
    ingest_device_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    """How long the agent reuses a device's registration; changes elsewhere wait this."""
    ingest_last_seen_interval: float = Field(default=2.0, gt=0, le=300)
    """How often last-seen times are written (batched, never per reading)."""
    ingest_device_entity_interval: float = Field(default=60.0, ge=0, le=86400)
    """A device's entity gets its dateLastValueReported at most this often (seconds)."""

    # Live change streams (server-sent events of entity changes, read from the change log)
    # and the live map page (/map) that shows them over the district's own roads and zones.
    stream_batch: int = Field(default=2000, ge=1, le=100_000)
    """The most logged changes one read of a stream takes (the newest of each entity is sent)."""
    stream_min_interval: float = Field(default=0.25, ge=0, le=60)
    """The shortest time between two reads of one stream: a burst of changes goes as one."""
    stream_poll_interval: float = Field(default=2.0, gt=0, le=60)
    """How often a stream looks for changes other processes made (this one's wake it at once)."""
    stream_heartbeat: float = Field(default=15.0, gt=0, le=300)
    """Seconds between two events of an idle stream (keeps proxies from closing it)."""
    map_district: str = ""
    """The district folder whose zones, roads and places the map draws ('': Changdong)."""
    map_stale_minutes: float = Field(default=15.0, gt=0)
    """A reading observed longer ago than this is marked stale on the map."""
    map_tile_url: str = Field(default="", pattern=r"^$|^(https?://|/).*\{z\}.*")
    """A raster tile template (`{z}/{x}/{y}`) drawn under the district, e.g. the city's own
    tile server; '' (the default): no tiles, the district's GeoJSON only, nothing fetched."""
    map_tile_attribution: str = ""
    """The tiles' attribution, shown on the map (their licence usually requires it)."""

    # The simulator (docs/simulator.md): the district's simulated devices publish through the
    # real ingest path (MQTT to ingest_mqtt_url, the HTTP southbound). Never on a real city's
    # platform: simulated readings would mix with real ones. `smartcity demo` turns it on.
    sim_enabled: bool = False
    sim_autostart: bool = True
    """Start sim_scenario with the server (else it waits for POST /sim/v1/start)."""
    sim_scenario: str = "normal-weekday"
    """A shipped scenario's name (smartcity simulate --list) or a scenario file's path."""
    sim_speed: float = Field(default=1.0, gt=0)
    """Simulated seconds per wall second (60: an hour a minute; inf: as fast as it goes)."""
    sim_seed: int = 1
    sim_start: str = "now"
    """'scenario' (its own date), 'today' (its times, today), 'now' (today, from the current
    time of day) or an ISO 8601 date and time."""
    sim_tenant: str = ""
    sim_parking_history_days: int = Field(default=0, ge=0, le=366)
    """Days of simulated parking-lot history written before the run (so the parking forecast
    has weeks to learn from); 0: none. `smartcity demo` writes 28."""
    sim_max_backlog: int = Field(default=1000, ge=10, le=100_000)
    """Messages sent but not yet taken by the IoT agent before the simulator waits (an MQTT
    broker drops what it queues past its own limit, 1000 for Mosquitto by default)."""

    # Convergence-event rules (docs/rules-runtime.md): the relay publishes every entity change
    # on the bus (entity.changed.<tenant>); engine workers share the rules by partition, each
    # partition held through a lease, checkpointed, and act on what fires (alerts, updates,
    # device commands, webhooks, incident facts on rules.alerts.<tenant>).
    rules_enabled: bool = False
    """Run the change relay and an engine worker in this process (needs an installed engine)."""
    rules_partitions: int = Field(default=4, ge=1, le=256)
    """How many partitions the rules are split into; fixed for a database (checkpoints)."""
    rules_lease_seconds: float = Field(default=15.0, ge=1, le=600)
    """How long a dead worker's partitions (or the relay) wait before another takes them."""
    rules_checkpoint_events: int = Field(default=1000, ge=1)
    rules_checkpoint_seconds: float = Field(default=10.0, gt=0, le=3600)
    rules_advance_interval: float = Field(default=1.0, gt=0, le=3600)
    """How often the engine's time moves on without changes (absences, windows closing)."""
    rules_lateness: float | None = Field(default=None, ge=0, le=3600)
    """Seconds a reading may arrive late and still be placed by its event time; every change
    waits that long for the rules (None: the built-in rule sets' `lateness`, 60 s)."""
    rules_clock_delay: float | None = Field(default=None, ge=0, le=3600)
    """Seconds the engine's time stays behind the clock when it moves on without changes: how
    long a reading may take to reach the engine and still count (None: the lateness)."""
    rules_ack_wait: float = Field(default=60.0, gt=0, le=3600)
    rules_webhook_timeout: float = Field(default=5.0, gt=0, le=120)
    rules_webhook_attempts: int = Field(default=3, ge=1, le=10)
    rules_webhook_allow_hosts: list[str] | None = None
    """Hosts rule webhooks may call (None: any)."""

    # Access control: on unless switched off explicitly, which only development allows.
    auth: bool = True
    auth_secret: SecretStr | None = None
    """Signs bearer tokens; required (32+ characters) outside development."""
    auth_secret_file: str = "var/auth-secret"
    """Development only: where a generated secret is kept so restarts keep tokens valid."""
    token_lifetime_minutes: int = Field(default=480, ge=1, le=60 * 24 * 30)
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    """How long a process reuses what a credential grants; changes made elsewhere wait this."""
    audit_retention_days: float = Field(default=730.0, ge=0)
    """Audit records older than this are deleted (0: never). Korea's rules for systems that
    process personal information ask for access records kept at least one year (two for
    large ones): keep this at 365 or more."""
    audit_prune_interval: float = Field(default=3600.0, gt=0)

    # Operations center (통합상황관제): incidents, escalation, 112 emergency video support.
    ops_enabled: bool = True
    """Run the operations workers here (escalation, incident facts to the bus)."""
    ops_merge_distance: float = Field(default=300.0, ge=0, le=50_000)
    """Metres within which an alert joins an open incident of a compatible type."""
    ops_merge_minutes: float = Field(default=30.0, ge=0, le=24 * 60)
    """Minutes since an open incident's last alert within which a new alert joins it."""
    ops_escalation_minutes: dict[str, float] = Field(
        default_factory=lambda: {
            "critical": 2.0,
            "high": 5.0,
            "medium": 15.0,
            "low": 60.0,
            "informational": 0.0,
        }
    )
    """Per severity: minutes an incident may stay unacknowledged before it escalates (0: never);
    it escalates again after each further period, up to `ops_escalation_max_level`."""
    ops_escalation_max_level: int = Field(default=3, ge=1, le=20)
    ops_escalation_interval: float = Field(default=15.0, gt=0)
    """Seconds between two escalation sweeps."""
    ops_alert_subjects: str = "rules.alerts.>"
    """The bus subject filter of the rule engine's alert facts to open incidents from (empty:
    none); the bus must keep those subjects (`bus_subjects`)."""
    ops_sop_file: str | None = None
    """A YAML file of standard operating procedures replacing the shipped ones."""
    ops_video_types: list[str] = Field(
        default_factory=lambda: ["crime", "vulnerable-person", "fire/arson"]
    )
    """Incident types (`type` or `type/subtype`) that qualify for 112 emergency video support."""
    ops_video_radius: float = Field(default=500.0, gt=0, le=10_000)
    """Metres around an incident within which its cameras are listed."""
    ops_video_max_cameras: int = Field(default=20, ge=1, le=200)
    ops_video_share_minutes: float = Field(default=60.0, gt=0, le=24 * 60)
    """The default (and longest) time an agency may see an incident's shared cameras."""
    ops_video_link_seconds: float = Field(default=300.0, ge=10, le=3600)
    """How long one signed video link works (never past its share's end)."""
    ops_stream_poll_interval: float = Field(default=1.0, gt=0, le=60)
    """Seconds between two reads of the incident timeline by a live stream or the publisher."""
    ops_escape_distance: float = Field(default=1500.0, ge=100, le=10_000)
    """Metres along the roads from a scene to where a suspect's escape route ends (or sooner,
    where a road leaves the district's map)."""
    ops_escape_routes: int = Field(default=4, ge=1, le=10)
    """How many distinct escape routes a 112 dispatch package shows at most."""
    ops_route_camera_distance: float = Field(default=50.0, gt=0, le=500)
    """Metres from a route within which a camera counts as along it."""
    ops_hydrant_radius: float = Field(default=200.0, gt=0, le=2000)
    """Metres around a fire within which the 119 site package lists hydrants."""
    ops_violation_minutes: float = Field(default=120.0, gt=0, le=24 * 60)
    """Minutes an illegal-parking observation (TrafficViolation) counts as blocking a street."""
    ops_trail_minutes: float = Field(default=60.0, gt=0, le=24 * 60)
    """Minutes of a vulnerable person's location trail sent with an SOS."""
    ops_sos_agency: str = ""
    """The agency principal (the police) an SOS package goes to at once ('' or no such agency:
    kept for the operators to send)."""
    ops_timezone: str = "Asia/Seoul"
    """The time zone of the times in messages to residents (disaster texts)."""

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError(
                "database_url must start with sqlite:/// or postgresql:// "
                f"(got {value.split(':', 1)[0]!r})"
            )
        return value

    @field_validator("ops_escalation_minutes")
    @classmethod
    def _escalation(cls, value: dict[str, float]) -> dict[str, float]:
        severities = ("informational", "low", "medium", "high", "critical")
        unknown = sorted(set(value) - set(severities))
        if unknown:
            raise ValueError(
                f"unknown severities {unknown}: use {', '.join(severities)} (Alert severities)"
            )
        if any(minutes < 0 for minutes in value.values()):
            raise ValueError("escalation minutes must be 0 (never) or more")
        return value

    @field_validator("bus_url")
    @classmethod
    def _bus_scheme(cls, value: str) -> str:
        if not value.startswith(("memory://", "nats://", "tls://")):
            raise ValueError(
                f"bus_url must be memory:// or nats://host:port (got {value.split(':', 1)[0]!r})"
            )
        return value

    @field_validator("ingest_naive_time_zone", "ops_timezone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name such as 'Asia/Seoul' or 'UTC')"
            ) from error
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
        if not self.auth and self.environment != "development":
            raise ValueError(
                "access control can only be switched off (auth=off, --no-auth) in the "
                f"development environment, not in {self.environment}"
            )
        keys = {name: ADAPTER_KEYS[name] for name in self.adapters_enabled}
        missing = [
            f"the {name} adapter needs {key} (SMARTCITY_{key.upper()})"
            for name, key in keys.items()
            if not getattr(self, key)
        ]
        if missing:
            raise ValueError("; ".join(missing))
        if self.sim_enabled and self.workers > 1:
            raise ValueError(
                "sim_enabled runs the simulator in the server process: with workers > 1 each "
                "process would run its own; set workers=1"
            )
        secret = self.auth_secret.get_secret_value() if self.auth_secret else ""
        if self.environment != "development" and self.auth and len(secret) < 32:
            raise ValueError(
                f"in {self.environment} set auth_secret (SMARTCITY_AUTH_SECRET) to a random "
                "string of at least 32 characters: it signs the bearer tokens"
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
