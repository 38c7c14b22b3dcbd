"""The operations dashboard: its first load with 5,000+ devices, and 50 live clients.

`python -m bench.dashboard [--runs 5] [--clients 50] [--rate 100] [--seconds 20]
[--polls 1 0.25] [--write]`
starts the real server with the Changdong district on SQLite and adds devices until the map
holds more than 5,000, then:

1. **first load**: opens /ops in Debian's headless Chromium (a fresh browser context each run,
   signed in) and times, from navigation start, until every device is on the (clustered) map
   and the incident stream is live, then until the map has drawn them (MapLibre `idle`);
2. **live clients**: 50 clients each hold the dashboard's two streams (`/map/stream` and
   `/ops/v1/incidents/stream`) while readings (90 %) and incident comments (10 %) are written
   at the rate asked, and each event's lag (arrival less its observedAt / timeline time) is
   kept per client; once per `ops_stream_poll_interval` asked (a server each).

Not part of `python -m bench` (it needs Chromium). `--write` puts the tables into
docs/benchmarks.md (section `dashboard`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.cpu import process_cpu_seconds
from bench.livemap import CHROMIUM, CHROMIUM_ARGS, LINK, district_server
from bench.sections import write_section
from bench.server import create_bench_key

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
ADDED = 3_400
"""Devices the bench adds to the district's (about 2,100 with the parking spot sensors)."""
EXTRA_KINDS = (
    ("Streetlight", {"powerState": {"type": "Property", "value": "on"}}),
    ("WasteContainer", {"fillingLevel": {"type": "Property", "value": 0.4}}),
    ("Camera", {"on": {"type": "Property", "value": True}}),
    ("AirQualityObserved", {"pm10": {"type": "Property", "value": 35}}),
)
OPERATOR = ("bench-operator", "bench-operator-password-1")
LOAD_PAGE = """async () => {
  await window.dashboard.ready;
  await new Promise((resolve) => {
    const check = () => (window.livemap.loadedAt && window.dashboard.state.streamState === 'live'
      ? resolve() : setTimeout(check, 10));
    check();
  });
  const mark = (name) => performance.getEntriesByName(name, 'mark')[0]?.startTime ?? NaN;
  const loaded = Math.max(mark('livemap:loaded'), mark('dashboard:stream-open'));
  const map = window.livemap.state.map;
  await new Promise((resolve) => { map.once('idle', resolve); map.triggerRepaint(); });
  const counts = window.livemap.counts();
  const devices = Object.entries(counts).filter(([layer]) => layer !== 'places')
    .reduce((sum, [, n]) => sum + n, 0);
  return {loaded, drawn: performance.now(), devices};
}"""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def add_devices(url: str, key: str, count: int) -> None:
    """Add `count` devices (streetlights, bins, cameras, air sensors) spread over the district."""
    headers = {"X-API-Key": key, "Link": LINK}
    west, south, east, north = httpx.get(f"{url}/map/district.json", timeout=30).json()["bounds"]
    rng = random.Random(7)
    batch: list[dict[str, Any]] = []
    for n in range(count):
        kind, values = EXTRA_KINDS[n % len(EXTRA_KINDS)]
        point = [rng.uniform(west, east), rng.uniform(south, north)]
        batch.append(
            {
                "id": f"urn:ngsi-ld:{kind}:bench-{n:05d}",
                "type": kind,
                "location": {
                    "type": "GeoProperty",
                    "value": {"type": "Point", "coordinates": point},
                },
                **values,
            }
        )
        if len(batch) == 500:
            _create(url, headers, batch)
            batch = []
    if batch:
        _create(url, headers, batch)


def _create(url: str, headers: dict[str, str], batch: list[dict[str, Any]]) -> None:
    response = httpx.post(
        f"{url}/ngsi-ld/v1/entityOperations/upsert", json=batch, headers=headers, timeout=120
    )
    if response.status_code not in (200, 201, 204):
        raise RuntimeError(f"adding devices failed: {response.status_code} {response.text[:300]}")


def operator_token(url: str, key: str) -> str:
    """Create the operator (once) and return a bearer token for it."""
    name, password = OPERATOR
    httpx.post(
        f"{url}/auth/users",
        json={"name": name, "password": password, "roles": ["operator"]},
        headers={"X-API-Key": key},
        timeout=30,
    )
    login = httpx.post(f"{url}/auth/login", json={"name": name, "password": password}, timeout=30)
    login.raise_for_status()
    token: str = login.json()["accessToken"]
    return token


@dataclass(frozen=True)
class LoadRun:
    """One first load of the dashboard."""

    loaded_ms: float
    drawn_ms: float
    devices: int
    server_cpu_s: float


def first_loads(url: str, token: str, runs: int, server_pid: int) -> list[LoadRun]:
    """Open the dashboard `runs` times, each in a fresh browser context (cold cache)."""
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(runs):
                context = browser.new_context(viewport={"width": 1440, "height": 900})
                context.add_init_script(
                    "sessionStorage.setItem('smartcity.map.credential', "
                    f"JSON.stringify({{kind: 'bearer', secret: {orjson.dumps(token).decode()}}}))"
                )
                page = context.new_page()
                cpu = process_cpu_seconds(server_pid)
                page.goto(f"{url}/ops")
                figures = page.evaluate(LOAD_PAGE)
                results.append(
                    LoadRun(
                        figures["loaded"],
                        figures["drawn"],
                        figures["devices"],
                        process_cpu_seconds(server_pid) - cpu,
                    )
                )
                context.close()
        finally:
            browser.close()
    return results


@dataclass
class Client:
    """One live client: the lags of the events it received."""

    map_lags: list[float] = field(default_factory=list)
    incident_lags: list[float] = field(default_factory=list)
    incident_events: int = 0

    @property
    def worst(self) -> float:
        return max([*self.map_lags, *self.incident_lags], default=float("nan"))


def _lag(iso: str) -> float:
    return time.time() - datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def _follow(
    http: httpx.AsyncClient, path: str, token: str, client: Client, stop: asyncio.Event
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    async with http.stream("GET", path, headers=headers, timeout=None) as response:
        name, data = "", ""
        async for line in response.aiter_lines():
            if stop.is_set():
                return
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
            elif line == "" and data:
                _note(name, orjson.loads(data), client)
                name, data = "", ""


def _note(name: str, data: dict[str, Any], client: Client) -> None:
    if name == "incident":
        client.incident_events += 1
        client.incident_lags.append(_lag(data["at"]))
    elif name == "changes":
        for change in data["changes"]:
            power = change.get("entity", {}).get("powerState")
            if isinstance(power, dict) and "observedAt" in power:
                client.map_lags.append(_lag(power["observedAt"]))


async def _write(
    url: str, key: str, token: str, rate: int, seconds: float, lights: list[str]
) -> int:
    """Write readings (90 %) and comments (10 %) at `rate` events a second; return comments."""
    comments_per_second = max(rate // 10, 1)
    readings_per_tick = max((rate - comments_per_second) // 5, 1)
    operator = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        opened = await http.post(
            "/ops/v1/incidents",
            headers=operator,
            json={
                "type": "crime",
                "subtype": "disturbance",
                "severity": "medium",
                "title": "bench",
                "location": {"type": "Point", "coordinates": [127.0515, 37.6529]},
            },
        )
        opened.raise_for_status()
        incident = opened.json()["id"]
        started = time.monotonic()
        comments = 0
        states = ("on", "off", "low")
        ticks = int(seconds * 10)
        for tick in range(ticks):
            await asyncio.sleep(max(started + tick / 10 - time.monotonic(), 0))
            if tick % 2 == 0:  # 5 reading batches a second
                at = now_iso()
                body = [
                    {
                        "id": lights[(tick * readings_per_tick + n) % len(lights)],
                        "type": "Streetlight",
                        "powerState": {
                            "type": "Property",
                            "value": states[(tick + n) % 3],
                            "observedAt": at,
                        },
                    }
                    for n in range(readings_per_tick)
                ]
                await http.post(
                    "/ngsi-ld/v1/entityOperations/update",
                    json=body,
                    headers={"X-API-Key": key, "Link": LINK},
                )
            due = round((tick + 1) * comments_per_second / 10) - round(
                tick * comments_per_second / 10
            )
            for _ in range(due):
                await http.post(
                    f"/ops/v1/incidents/{incident}/comments", headers=operator, json={"text": "."}
                )
                comments += 1
    return comments


def streetlights(url: str, key: str) -> list[str]:
    """Return the ids of (up to 1,000) streetlights."""
    found = httpx.get(
        f"{url}/ngsi-ld/v1/entities",
        params={"type": "Streetlight", "limit": 1000, "pick": "id"},
        headers={"X-API-Key": key, "Link": LINK},
        timeout=30,
    ).json()
    return [entity["id"] for entity in found]


async def live_clients(
    url: str, key: str, token: str, clients: int, rate: int, seconds: float, lights: list[str]
) -> tuple[list[Client], int, float]:
    """Run the clients while the events are written; return them, the comments written and
    the bench process's CPU seconds."""
    stop = asyncio.Event()
    followers = [Client() for _ in range(clients)]
    cpu = time.process_time()
    limits = httpx.Limits(max_connections=clients * 2 + 10)
    async with httpx.AsyncClient(base_url=url, limits=limits) as http:
        tasks = [
            asyncio.create_task(_follow(http, path, token, client, stop))
            for client in followers
            for path in ("/map/stream", "/ops/v1/incidents/stream")
        ]
        await asyncio.sleep(3)  # every stream is open
        comments = await _write(url, key, token, rate, seconds, lights)
        await asyncio.sleep(3)  # the last events arrive
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return followers, comments, time.process_time() - cpu


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values) or [float("nan")]
    return ordered[min(int(len(ordered) * share), len(ordered) - 1)]


@dataclass(frozen=True)
class LiveRun:
    """The live clients against a server with one `ops_stream_poll_interval`."""

    poll: float
    followers: list[Client]
    comments: int
    server_cpu_s: float
    client_cpu_s: float


def load_lines(loads: list[LoadRun], load: tuple[float, float], added: int) -> list[str]:
    """Return the section's heading and the first load's table."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    loaded = [r.loaded_ms for r in loads]
    drawn = [r.drawn_ms for r in loads]
    return [
        "## Operations dashboard (issue 7)",
        "",
        f"Measured {when} by `python -m bench.dashboard` (bench/dashboard.py): the real server "
        "(`smartcity serve --district`, SQLite) and Debian's headless Chromium (software "
        f"WebGL) on this 2-core machine; load average {load[0]:.1f} before, {load[1]:.1f} after "
        f"(other helpers' work shares the cores). The district has {loads[0].devices - added:,} "
        f"devices on the map's layers; the bench adds {added:,} spread over it, "
        f"{loads[0].devices:,} in all.",
        "",
        f"**First load** ({len(loads)} runs, each a fresh browser context, signed in): from "
        "navigation start until every device is on the clustered map and the incident stream "
        "is live, then until MapLibre has drawn it (`idle`).",
        "",
        "| | median | max |",
        "| --- | ---: | ---: |",
        f"| devices loaded, stream live (ms) | {statistics.median(loaded):.0f} "
        f"| {max(loaded):.0f} |",
        f"| map drawn (ms) | {statistics.median(drawn):.0f} | {max(drawn):.0f} |",
        f"| server CPU per load (s) | {statistics.median(r.server_cpu_s for r in loads):.2f} "
        f"| {max(r.server_cpu_s for r in loads):.2f} |",
        "",
    ]


def live_lines(runs: list[LiveRun], args: argparse.Namespace) -> list[str]:
    """Return the live clients' tables, a row per poll interval."""
    lines = [
        f"**Live clients**: {args.clients} clients, each holding `/map/stream` and "
        f"`/ops/v1/incidents/stream`, for {args.seconds:g} s while {args.rate} events/s are "
        "written (90 % streetlight readings in 5 batches a second, 10 % incident comments); "
        "lag = arrival at the client less the event's observedAt (readings) or timeline time "
        "(incident events). One server per `ops_stream_poll_interval` (how often a stream reads "
        "again for other processes' writes; both streams wake on this process's commits and "
        "read at most every `stream_min_interval`, 0.25 s).",
        "",
        "| poll (s) | lag median (ms) | lag p99 (ms) | worst client's max lag (ms) "
        "| clients > 1 s behind | clients with every incident event | map stream p99 / max "
        "(ms) | incident stream p99 / max (ms) | server CPU (s) | bench clients' CPU (s) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        followers = run.followers
        worst = [c.worst for c in followers]
        map_lags = [lag for c in followers for lag in c.map_lags]
        incident_lags = [lag for c in followers for lag in c.incident_lags]
        every = map_lags + incident_lags
        behind = sum(1 for w in worst if w > 1.0)
        complete = sum(1 for c in followers if c.incident_events >= run.comments)
        lines.append(
            f"| {run.poll:g} | {1000 * statistics.median(every):.0f} "
            f"| {1000 * percentile(every, 0.99):.0f} | {1000 * max(worst):.0f} | {behind} "
            f"| {complete} / {len(followers)} "
            f"| {1000 * percentile(map_lags, 0.99):.0f} / {1000 * max(map_lags):.0f} "
            f"| {1000 * percentile(incident_lags, 0.99):.0f} / {1000 * max(incident_lags):.0f} "
            f"| {run.server_cpu_s:.1f} | {run.client_cpu_s:.1f} |"
        )
    return lines


def measure(
    args: argparse.Namespace, poll: float, loads_wanted: bool
) -> tuple[list[LoadRun], LiveRun]:
    """Start a server with this poll interval; measure the first loads (if wanted) and the
    live clients."""
    settings = {"SMARTCITY_OPS_STREAM_POLL_INTERVAL": str(poll)}
    with (
        tempfile.TemporaryDirectory(prefix="bench-dashboard-") as folder,
        district_server(Path(folder) / "ops.db", settings) as (url, process),
    ):
        key = create_bench_key(f"sqlite:///{Path(folder) / 'ops.db'}")
        add_devices(url, key, ADDED)
        token = operator_token(url, key)
        loads = first_loads(url, token, args.runs, process.pid) if loads_wanted else []
        cpu = process_cpu_seconds(process.pid)
        lights = streetlights(url, key)
        followers, comments, client_cpu = asyncio.run(
            live_clients(url, key, token, args.clients, args.rate, args.seconds, lights)
        )
        server_cpu = process_cpu_seconds(process.pid) - cpu
    return loads, LiveRun(poll, followers, comments, server_cpu, client_cpu)


def main() -> None:
    """Run both measurements, print them, and write them with --write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--polls", type=float, nargs="+", default=[1.0, 0.25], help="ops_stream_poll_interval"
    )
    parser.add_argument("--write", action="store_true", help="write the section into the docs")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    loads: list[LoadRun] = []
    runs = []
    for index, poll in enumerate(args.polls):
        measured, run = measure(args, poll, index == 0)
        loads = loads or measured
        runs.append(run)
    lines = load_lines(loads, (load_before, os.getloadavg()[0]), ADDED) + live_lines(runs, args)
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(DOCS, "dashboard", text)


if __name__ == "__main__":
    main()
