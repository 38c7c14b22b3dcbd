"""The shipped Mosquitto configuration: nothing queued for the platform is lost, devices stay apart.

A real Mosquitto runs with deploy/mosquitto/mosquitto.conf (its port, folders and password file
moved into the test's folder). The platform's persistent session is away while a device sends
more readings than Mosquitto's default queue (1,000) holds, and the broker restarts meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import check_service

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
PLATFORM = "smartcity-platform"
READINGS = 3_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Broker:
    """A Mosquitto process on the shipped configuration, in a folder of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        passwords = folder / "passwd"
        for user in (PLATFORM, "air-7", "air-8"):
            subprocess.run(
                [
                    "mosquitto_passwd",
                    "-b",
                    *(["-c"] if user == PLATFORM else []),
                    str(passwords),
                    user,
                    f"{user}-secret",
                ],
                check=True,
            )
        text = (DEPLOY / "mosquitto.conf").read_text()
        text = text.replace(
            "persistence_location /var/lib/mosquitto/", f"persistence_location {folder}/"
        )
        text = text.replace("listener 1883", f"listener {self.port} 127.0.0.1")
        text = text.replace("/etc/mosquitto/passwd", str(passwords))
        text = text.replace("/etc/mosquitto/acl", str(DEPLOY / "acl"))
        if os.geteuid() == 0:  # root: it would switch to the mosquitto user, who can't read here
            text += "\nuser root\n"
        self.config = folder / "mosquitto.conf"
        self.config.write_text(text)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)], stderr=subprocess.PIPE, cwd=self.folder
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not start with {self.config}")

    def stop(self) -> None:
        """Stop it as an operator does (SIGTERM: it saves its persistence file)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            if self.process.stderr is not None:
                self.process.stderr.close()
            self.process = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    check_service("mosquitto", _installed)
    running = Broker(tmp_path)
    running.start()
    yield running
    running.stop()


def _installed() -> None:
    for program in ("mosquitto", "mosquitto_passwd"):
        if shutil.which(program) is None:
            raise FileNotFoundError(f"{program} is not installed")


def _client(broker: Broker, user: str, *, session: bool = False) -> aiomqtt.Client:
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600 if session else 0
    return aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        identifier=user if session else None,
        username=user,
        password=f"{user}-secret",
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=not session,
        properties=properties,
    )


async def _receive(broker: Broker, expected: int, within: float = 20.0) -> list[str]:
    got: list[str] = []
    async with _client(broker, PLATFORM, session=True) as platform:

        async def collect() -> None:
            async for message in platform.messages:
                got.append(str(message.topic))
                if len(got) >= expected:
                    return

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collect(), timeout=within)
    return got


def test_readings_queued_for_the_platform_survive_a_broker_restart(broker: Broker) -> None:
    async def scenario() -> list[str]:
        async with _client(broker, PLATFORM, session=True) as platform:
            await platform.subscribe("/+/+/attrs", qos=1)
        async with _client(broker, "air-7") as device:
            for number in range(READINGS):
                await device.publish("/key/air-7/attrs", f'{{"t": {number}}}', qos=1)
        broker.stop()
        broker.start()
        return await _receive(broker, READINGS)

    topics = asyncio.run(scenario())
    assert len(topics) == READINGS


def test_a_device_publishes_only_under_its_own_id(broker: Broker) -> None:
    async def scenario() -> list[str]:
        async with _client(broker, PLATFORM, session=True) as platform:
            await platform.subscribe("/+/+/attrs", qos=1)
        # Someone else's id: the broker refuses it (Mosquitto 2 drops the MQTT 5 connection).
        with contextlib.suppress(aiomqtt.MqttError):
            async with _client(broker, "air-7") as device:
                await device.publish("/key/air-8/attrs", '{"t": 1}', qos=1, timeout=3)
        async with _client(broker, "air-7") as device:
            await device.publish("/key/air-7/attrs", '{"t": 2}', qos=1)
        return await _receive(broker, 2, within=2.0)

    assert asyncio.run(scenario()) == ["/key/air-7/attrs"]
