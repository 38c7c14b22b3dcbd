"""IoT agent benchmark: MQTT readings through the local Mosquitto to stored entities on SQLite.

One process holds the platform as `smartcity serve` runs it (SQLite in a temporary folder, the
in-process bus, the ingest writer, the history writer; notifications off) with the MQTT
southbound. The broker is a Mosquitto of the benchmark's own on a free local port, configured
as the platform needs (see MOSQUITTO_CONF): Mosquitto's default keeps at most 1,000 messages
queued per client and silently drops the rest for a subscriber that falls behind, which would
lose readings the broker had acknowledged. The devices (1,000 by default) are played by one
publisher process (`bench/iot_publisher.py`, QoS 1, up to 1,000 messages unacknowledged), round
robin, so each device reports in turn as in a district. Each device feeds its own
AirQualityObserved entity; the measures carry their time (TimeInstant).

Figures: readings/s through the agent (MQTT -> bus, or dead letter) and stored/s (MQTT -> entity
committed by the writer), from the first publish to the last one handled; then the same with a
share of malformed messages, counting that every bad one is a dead letter and every good one is
stored. `python -m bench.iot_agent --readings 20000 --malformed 0.1`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.ingest.writer import IngestWriter
from smartcity.logs import configure_logging
from smartcity.platform import Platform, build_platform
from smartcity.storage.deadletters import DeadLetterFilter

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "smart-data-models"
ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-air"
MAX_SECONDS = 300.0
MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
# Keep what arrives for a subscriber that falls behind (the default, 1000, drops the rest).
max_queued_messages 10000000
max_queued_bytes 0
"""


@contextmanager
def private_mosquitto(folder: Path) -> Iterator[int]:
    """Run a Mosquitto for this benchmark alone on a free local port; yield the port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = folder / "mosquitto.conf"
    config.write_text(MOSQUITTO_CONF.format(port=port))
    broker = subprocess.Popen(["mosquitto", "-c", str(config)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or broker.poll() is not None:
                raise SystemExit("the benchmark's Mosquitto did not start")
            time.sleep(0.05)
        yield port
    finally:
        broker.terminate()
        broker.wait(10)


@dataclass(frozen=True, slots=True)
class AgentRun:
    """One run's figures."""

    readings: int
    malformed: int
    publish_seconds: float
    agent_seconds: float
    stored_seconds: float
    stored: int
    dead_letters: int

    @property
    def agent_rate(self) -> float:
        """Messages handled per second (to the bus or the dead letters)."""
        return self.readings / self.agent_seconds

    @property
    def stored_rate(self) -> float:
        """Good readings stored per second, from the first publish."""
        return self.stored / self.stored_seconds


def _settings(folder: Path, token: str, port: int = 1883) -> Settings:
    schemas = [str(SHARED)] if SHARED.is_dir() else []
    return Settings(
        database_url=f"sqlite:///{folder / 'bench.db'}",
        context_offline=True,
        context_preload_smart_data_models=str(SHARED) if SHARED.is_dir() else None,
        auth_secret="bench-secret-for-signing-bearer-tokens-0123456789",
        notifications_enabled=False,
        log_level="warning",
        ingest_schema_dirs=schemas,
        ingest_mqtt_enabled=True,
        ingest_mqtt_url=f"mqtt://127.0.0.1:{port}",
        ingest_mqtt_client_id=f"bench-agent-{token}",
        ingest_mqtt_topic_prefix=f"/bench-{token}",
        ingest_mqtt_session_expiry=600,
        ingest_device_health_interval=3600,
    )


async def _run(
    platform: Platform, folder: Path, devices: int, per_device: int, malformed_every: int
) -> AgentRun:
    settings = platform.settings
    port = urlsplit(settings.ingest_mqtt_url).port or 1883
    writer = next(w for w in platform.workers if isinstance(w, IngestWriter))
    stop = asyncio.Event()
    workers = asyncio.create_task(platform.run_workers(stop))
    mqtt = platform.iot.mqtt
    assert mqtt is not None
    await asyncio.wait_for(mqtt.connected.wait(), 10)
    total = devices * per_device
    malformed = total // malformed_every if malformed_every else 0
    began = time.monotonic()
    publisher = subprocess.Popen(  # noqa: ASYNC220 - started, then polled
        [
            sys.executable, "-m", "bench.iot_publisher",
            "--port", str(port),
            "--prefix", settings.ingest_mqtt_topic_prefix,
            "--key", KEY,
            "--devices", str(devices),
            "--count", str(total),
            "--malformed-every", str(malformed_every),
        ],
        cwd=ROOT,
    )  # fmt: skip
    publishers = [publisher]
    agent = platform.iot.agent
    published_at = agent_at = stored_at = 0.0
    deadline = began + MAX_SECONDS
    good = total - malformed
    while time.monotonic() < deadline:
        now = time.monotonic()
        if not published_at and all(p.poll() is not None for p in publishers):
            published_at = now
        if not agent_at and agent.stats.received >= total:
            agent_at = now
        if not stored_at and writer.counts.stored >= good:
            stored_at = now
        if published_at and agent_at and stored_at:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await workers
    await platform.stop()
    letters = platform.deadletters.page(
        Caller.system(), DeadLetterFilter(reason="unparsable"), limit=1, count=True
    ).total
    return AgentRun(
        readings=total,
        malformed=malformed,
        publish_seconds=(published_at or deadline) - began,
        agent_seconds=(agent_at or deadline) - began,
        stored_seconds=(stored_at or deadline) - began,
        stored=writer.counts.stored,
        dead_letters=letters or 0,
    )


def run_agent(readings: int, devices: int, malformed: float) -> AgentRun:
    """Run one benchmark phase on a fresh platform."""
    if shutil.which("mosquitto_pub") is None:
        raise SystemExit("mosquitto_pub is needed (Debian package mosquitto-clients)")
    token = uuid.uuid4().hex[:10]
    with (
        tempfile.TemporaryDirectory(prefix="smartcity-bench-agent-") as name,
        private_mosquitto(Path(name)) as port,
    ):
        folder = Path(name)
        platform = build_platform(_settings(folder, token, port))
        try:
            bodies = [
                {
                    "id": f"air-{device}",
                    "apiKey": KEY,
                    "entity": {
                        "id": f"urn:ngsi-ld:AirQualityObserved:bench-{device}",
                        "type": "AirQualityObserved",
                    },
                    "attributes": [
                        {"objectId": "t", "name": "temperature", "unit": "CEL"},
                        {"objectId": "h", "name": "relativeHumidity", "scale": 0.01},
                    ],
                }
                for device in range(devices)
            ]
            report = platform.iot.devices.import_devices(Caller.system(), bodies)
            assert not report.failed, report.failed[:3]
            every = round(1 / malformed) if malformed > 0 else 0
            return asyncio.run(_run(platform, folder, devices, readings // devices, every))
        finally:
            platform.close()


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(prog="python -m bench.iot_agent", description=__doc__)
    parser.add_argument("--readings", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--malformed", type=float, default=0.1, help="share of bad messages")
    args = parser.parse_args()
    configure_logging("warning", "console")
    runs = [
        ("clean", run_agent(args.readings, args.devices, 0.0)),
        (f"{args.malformed:.0%} bad", run_agent(args.readings, args.devices, args.malformed)),
    ]
    table = Table(title="MQTT -> IoT agent -> bus -> ingest writer -> SQLite")
    for column in (
        "run",
        "messages",
        "publish s",
        "agent msg/s",
        "stored/s",
        "stored",
        "dead letters",
    ):
        table.add_column(column, justify="right")
    for name, run in runs:
        table.add_row(
            name,
            str(run.readings),
            f"{run.publish_seconds:.1f}",
            f"{run.agent_rate:,.0f}",
            f"{run.stored_rate:,.0f}",
            f"{run.stored}/{run.readings - run.malformed}",
            f"{run.dead_letters}/{run.malformed}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
