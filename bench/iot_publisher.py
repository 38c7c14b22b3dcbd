"""Devices for the IoT agent benchmark: one process publishing QoS 1 readings for many devices.

`python -m bench.iot_publisher --port P --prefix /bench-x --devices 1000 --count 20000
[--rate 2000] [--malformed-every 10]` publishes `count` messages round robin over the devices'
topics (`<prefix>/<key>/air-<n>/attrs`), up to 1,000 unacknowledged at a time: as fast as it
can (a flood), or at `rate` messages/s. Every `--malformed-every`-th message is cut short
(unparsable). Each good measure carries its send time in the device's timestamp field
(`TimeInstant`), which becomes the stored instance's observedAt: the bench reads each
reading's latency off the history (modifiedAt - observedAt). SIGTERM stops the publishing early
(the bench gives up on a rate the platform does not keep up with).

It prints one JSON line when it starts publishing, and one when the broker has acknowledged
every message it sent: how many it sent (and how many were malformed), the wall-clock times of
the first and last send and the CPU seconds it used while publishing.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from datetime import UTC, datetime

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.cpu import process_cpu_seconds
from smartcity.core.clock import isoformat

MALFORMED = b'{"t": '
SLEEP_MIN = 0.002
"""Shortest pause between sends of a paced run (shorter sleeps only cost CPU)."""


def payload(number: int, malformed_every: int) -> tuple[bytes, bool]:
    """The `number`-th message, stamped now: a JSON measure, or a malformed one (True)."""
    if malformed_every and number % malformed_every == malformed_every - 1:
        return MALFORMED, True
    moment = isoformat(datetime.now(UTC))
    return orjson.dumps({"t": 20 + number % 10, "h": 40, "TimeInstant": moment}), False


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser."""
    parser = argparse.ArgumentParser(prog="python -m bench.iot_publisher")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s (0: a flood)")
    parser.add_argument("--malformed-every", type=int, default=0)
    return parser


def main() -> None:
    """Publish, wait for every acknowledgement, print the summary, exit."""
    args = build_parser().parse_args()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    acknowledged = threading.Semaphore(0)

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-devices-{args.prefix[1:]}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_publish = lambda *_: acknowledged.release()
    client.connect("127.0.0.1", args.port)
    client.loop_start()
    print('{"ready": true}', flush=True)
    cpu = process_cpu_seconds(os.getpid())
    first = time.time()
    began = time.monotonic()
    sent = malformed = 0
    while sent < args.count and not stopping.is_set():
        due = args.count
        if args.rate:
            due = min(args.count, int((time.monotonic() - began) * args.rate) + 1)
        while sent < due:
            topic = f"{args.prefix}/{args.key}/air-{sent % args.devices}/attrs"
            body, bad = payload(sent, args.malformed_every)
            client.publish(topic, body, qos=1)
            sent += 1
            malformed += bad
        if args.rate and sent < args.count:
            delay = began + sent / args.rate - time.monotonic()
            time.sleep(max(delay, SLEEP_MIN))
    last = time.time()
    for _ in range(sent):
        acknowledged.acquire()
    summary = {
        "sent": sent,
        "malformed": malformed,
        "first": first,
        "last": last,
        "cpu": process_cpu_seconds(os.getpid()) - cpu,
    }
    # Said before stopping the client: paho's network loop may take a second to wind down.
    print(orjson.dumps(summary).decode(), flush=True)
    client.disconnect()
    client.loop_stop()


if __name__ == "__main__":
    main()
