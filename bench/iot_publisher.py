"""Devices for the IoT agent benchmark: one process publishing QoS 1 readings for many devices.

`python -m bench.iot_publisher --port P --prefix /bench-x --devices 1000 --count 20000` publishes
`count` messages round-robin over the devices' topics (`<prefix>/<key>/air-<n>/attrs`), up to
1,000 unacknowledged at a time, and exits once the broker has acknowledged every one. Every
`--malformed-every`-th message is cut short (unparsable).
"""

from __future__ import annotations

import argparse
import threading
from datetime import UTC, datetime, timedelta

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from smartcity.core.clock import isoformat

START = datetime(2026, 11, 28, tzinfo=UTC)


def payload(number: int, devices: int, malformed_every: int) -> bytes:
    """The `number`-th message: a JSON measure with its time, or a malformed one."""
    if malformed_every and number % malformed_every == malformed_every - 1:
        return b'{"t": '
    moment = isoformat(START + timedelta(milliseconds=number // devices))
    return orjson.dumps({"t": 20 + number % 10, "h": 40, "TimeInstant": moment})


def main() -> None:
    """Publish, wait for every acknowledgement, exit."""
    parser = argparse.ArgumentParser(prog="python -m bench.iot_publisher")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--malformed-every", type=int, default=0)
    args = parser.parse_args()
    done = threading.Event()
    acknowledged = 0

    def on_publish(*_: object) -> None:
        nonlocal acknowledged
        acknowledged += 1
        if acknowledged >= args.count:
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-devices-{args.prefix[1:]}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", args.port)
    client.loop_start()
    for number in range(args.count):
        topic = f"{args.prefix}/{args.key}/air-{number % args.devices}/attrs"
        client.publish(topic, payload(number, args.devices, args.malformed_every), qos=1)
    done.wait()
    client.loop_stop()
    client.disconnect()


if __name__ == "__main__":
    main()
