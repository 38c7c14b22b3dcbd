"""Figure 4: temporal reads over a large history, through the HTTP API of a real server.

The history is loaded in bulk through the storage API (`SqlHistoryStore.add_many`), minute by
minute across every sensor, as a live feed would have written it; then one client times one
request at a time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import httpx
import orjson
import psycopg

from bench.cpu import wait_for_quiet
from bench.server import auth_headers
from smartcity.broker.core_context import CORE_VOCAB
from smartcity.core.clock import isoformat
from smartcity.platform import open_store
from smartcity.storage.history import SqlHistoryStore
from smartcity.storage.history_rows import EntityHeader, HistoryRow, micros, new_instance_id

if TYPE_CHECKING:
    from bench.scenarios import Session

START = datetime(2026, 11, 1, tzinfo=UTC)
SENSOR_TYPE = CORE_VOCAB + "TemperatureSensor"
TEMPERATURE = CORE_VOCAB + "temperature"
BLOCK_MINUTES = 100
DAY_GOAL = 0.050
AGGREGATE_GOAL = 0.100


def sensor_id(number: int) -> str:
    """Return the id of one bench sensor."""
    return f"urn:ngsi-ld:TemperatureSensor:bench-{number:04d}"


@dataclass
class TemporalLine:
    """One kind of temporal request, sent sequentially."""

    name: str
    example: str
    latencies: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    """Instances (or periods) in each response: checks the server answered the whole range."""
    failures: list[str] = field(default_factory=list)


@dataclass
class TemporalResult:
    """Figure 4: the history loaded, and the requests timed over it."""

    sensors: int
    readings: int
    load_wall: float
    vacuumed: bool = False
    lines: list[TemporalLine] = field(default_factory=list)

    @property
    def stored(self) -> int:
        """Return how many instances the history holds."""
        return self.sensors * self.readings

    @property
    def load_rate(self) -> float:
        """Return instances loaded per second."""
        return self.stored / self.load_wall

    def line(self, name: str) -> TemporalLine | None:
        """Return the line of one kind of request."""
        return next((line for line in self.lines if line.name == name), None)


def _rows(number: int, first: int, count: int) -> list[HistoryRow]:
    """Return one sensor's readings for minutes [first, first + count)."""
    rows = []
    rng = random.Random(number * 1_000_003 + first)
    for minute in range(first, first + count):
        moment = START + timedelta(minutes=minute)
        at = isoformat(moment)
        value = round(15 + 10 * rng.random(), 2)
        instance = {
            "type": "Property",
            "value": value,
            "observedAt": at,
            "unitCode": "CEL",
            "createdAt": isoformat(START),
            "modifiedAt": at,
        }
        stamp = micros(at)
        rows.append(
            HistoryRow(
                attr=TEMPERATURE,
                dataset_id="",
                kind="Property",
                instance_id=new_instance_id(),
                observed_at=stamp,
                created_at=micros(isoformat(START)),
                modified_at=stamp,
                deleted_at=None,
                num=value,
                value=orjson.dumps(value).decode(),
                doc=orjson.dumps(instance).decode(),
            )
        )
    return rows


def load_history(
    database_url: str, sensors: int, readings: int, advance: Callable[[int], None]
) -> float:
    """Write `readings` one-a-minute temperatures of each sensor; return the seconds it took."""
    store = open_store(database_url)
    try:
        history = SqlHistoryStore(store)
        headers = [EntityHeader(sensor_id(n), [SENSOR_TYPE], []) for n in range(sensors)]
        wall = 0.0
        for first in range(0, readings, BLOCK_MINUTES):
            count = min(BLOCK_MINUTES, readings - first)
            entries = [(header, _rows(n, first, count)) for n, header in enumerate(headers)]
            started = time.perf_counter()
            history.add_many("", entries)
            wall += time.perf_counter() - started
            advance(count * sensors)
        return wall
    finally:
        store.close()


def _path(entity: str, params: dict[str, str]) -> str:
    return f"/ngsi-ld/v1/temporal/entities/{quote(entity, safe=':')}?" + urlencode(params)


def temporal_paths(sensors: int, readings: int, count: int, seed: int = 11) -> dict[str, list[str]]:
    """Return, per kind of request, `count` paths on random sensors (and days)."""
    rng = random.Random(seed)
    days = max(1, readings // 1440)

    def day() -> str:
        start = START + timedelta(days=rng.randrange(days))
        return _path(
            sensor_id(rng.randrange(sensors)),
            {
                "attrs": "temperature",
                "timerel": "between",
                "timeAt": isoformat(start),
                "endTimeAt": isoformat(start + timedelta(days=1)),
            },
        )

    def hourly() -> str:
        return _path(
            sensor_id(rng.randrange(sensors)),
            {
                "attrs": "temperature",
                "format": "aggregatedValues",
                "aggrMethods": "avg",
                "aggrPeriodDuration": "PT1H",
                "timerel": "between",
                "timeAt": isoformat(START),
                "endTimeAt": isoformat(START + timedelta(minutes=readings)),
            },
        )

    def day_simplified() -> str:
        return day() + "&format=temporalValues"

    makers: dict[str, Callable[[], str]] = {
        "day": day,
        "hourly avg": hourly,
        "day (temporalValues)": day_simplified,
    }
    return {name: [make() for _ in range(count)] for name, make in makers.items()}


def _size(name: str, body: dict[str, object]) -> int:
    """Return how many instances (or periods) a response holds."""
    temperature = body.get("temperature")
    if isinstance(temperature, list):
        return len(temperature)
    if isinstance(temperature, dict):
        series = temperature.get("avg") or temperature.get("values") or []
        return len(series) if isinstance(series, list) else 0
    return 0


def time_requests(
    base_url: str, name: str, paths: Sequence[str], warmup: int, advance: Callable[[int], None]
) -> TemporalLine:
    """GET each path in turn after `warmup` untimed requests."""
    line = TemporalLine(name, paths[0].split("?", 1)[1] if paths else "")
    with httpx.Client(base_url=base_url, timeout=120, headers=auth_headers()) as client:
        for path in paths[:warmup]:
            client.get(path)
        for path in paths:
            started = time.perf_counter()
            response = client.get(path)
            elapsed = time.perf_counter() - started
            advance(1)
            if response.status_code != 200:
                line.failures.append(f"{response.status_code}: {response.text[:300]}")
                continue
            line.latencies.append(elapsed)
            line.sizes.append(_size(name, orjson.loads(response.content)))
    return line


def measure_temporal(session: Session, *, analyze: bool) -> TemporalResult:
    """Figure 4: load the history in bulk, then time each kind of temporal request.

    With `analyze` (PostgreSQL with autovacuum off) the history is vacuumed after the load.
    """
    sizes = session.sizes
    sensors, readings = sizes.temporal_sensors, sizes.temporal_readings
    total = sensors * readings
    with session.tracker.phase(f"{session.backend}: loading {total:,} instances", total) as step:
        wall = load_history(session.database_url, sensors, readings, step)
    if analyze:
        # What autovacuum does after a bulk insert (insert threshold): statistics, and the
        # visibility map that lets aggregations read the index alone.
        with psycopg.connect(session.database_url, autocommit=True) as connection:
            connection.execute("VACUUM (ANALYZE) history_instances")
            connection.execute("ANALYZE")
    result = TemporalResult(sensors, readings, wall, vacuumed=analyze)
    requests = sizes.temporal_requests
    for name, paths in temporal_paths(sensors, readings, requests).items():
        wait_for_quiet(max_wait=sizes.quiet_wait)
        with session.tracker.phase(f"{session.backend}: temporal {name}", requests) as advance:
            result.lines.append(
                time_requests(session.server.base_url, name, paths, sizes.temporal_warmup, advance)
            )
    return result
