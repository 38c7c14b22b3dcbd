"""`python -m bench.standardize`: what standardizing one entity update costs, per update.

Each scenario standardizes fresh copies of realistic updates (the values vary, so nothing is
cached by value) through `SmartDataStandardizer` over the Smart Data Models schemas, on one
core; the figures are the median of several rounds. "jsonschema only" switches the fast
predicates off, to show what they save; "no schema" is normalization alone.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from smartcity.ingest.schemas import SchemaCatalog
from smartcity.ingest.standardize import SmartDataStandardizer

DEFAULT_SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "data" / "smart-data-models"
Update = Callable[[int], dict[str, Any]]


def air_quality(i: int) -> dict[str, Any]:
    """An air-quality station: five attributes, units to convert, a time, a place."""
    return {
        "temperature": {
            "type": "Property",
            "value": 60 + i % 20,
            "unitCode": "°F",
            "observedAt": "2026-11-28T10:00:00+09:00",
        },
        "relativeHumidity": {"type": "Property", "value": 30 + i % 50, "unitCode": "%"},
        "no2": {"type": "Property", "value": 20.5 + i % 7, "unitCode": "µg/m³"},
        "dateObserved": {"type": "Property", "value": 1764291600 + i},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [127.0477, 37.6531]},
        },
    }


def parking(i: int) -> dict[str, Any]:
    """A parking lot's occupancy: counts and a fraction."""
    return {
        "availableSpotNumber": {"type": "Property", "value": i % 120},
        "occupiedSpotNumber": {"type": "Property", "value": 120 - i % 120},
        "occupancy": {"type": "Property", "value": (120 - i % 120) / 120},
    }


def streetlight(i: int) -> dict[str, Any]:
    """A streetlight's state: an enum, a power reading and a time."""
    return {
        "powerState": {"type": "Property", "value": "on" if i % 2 else "off"},
        "powerConsumption": {"type": "Property", "value": 40 + i % 30, "unitCode": "W"},
        "dateLastSwitchingOn": {"type": "Property", "value": "2026-11-28T18:00:00+09:00"},
    }


SCENARIOS: list[tuple[str, str, Update]] = [
    ("AirQualityObserved, 5 attributes", "AirQualityObserved", air_quality),
    ("OffStreetParking, 3 attributes", "OffStreetParking", parking),
    ("Streetlight, 3 attributes", "Streetlight", streetlight),
]


def measure(standardizer: SmartDataStandardizer, entity_type: str, make: Update, n: int) -> float:
    """Return the median microseconds per update over five rounds of `n` updates."""
    updates = [make(i) for i in range(n)]
    standardizer.standardize("", entity_type, copy.deepcopy(updates[0]), [])  # compile the type
    rounds = []
    for _ in range(5):
        batch = copy.deepcopy(updates)
        started = time.perf_counter()
        for update in batch:
            standardizer.standardize("", entity_type, update, [])
        rounds.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(rounds)


def without_predicates(catalog: SchemaCatalog, entity_type: str) -> None:
    """Switch the fast predicates of one type off (jsonschema alone decides)."""
    shape = catalog.shape(entity_type)
    assert shape is not None
    for name, rule in shape.rules.items():
        shape.rules[name] = replace(rule, fast=None)


def main() -> None:
    """Print the cost per update of each scenario."""
    parser = argparse.ArgumentParser(prog="python -m bench.standardize", description=__doc__)
    parser.add_argument("--schemas", type=Path, default=DEFAULT_SCHEMAS)
    parser.add_argument("-n", type=int, default=5000, help="updates per round (default 5000)")
    args = parser.parse_args()
    started = time.perf_counter()
    catalog = SchemaCatalog([args.schemas])
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    for entity_type in catalog.types:
        catalog.shape(entity_type)
    compiled = time.perf_counter() - started
    print(
        f"catalog: {len(catalog.types)} types loaded in {loaded * 1000:.0f} ms, all compiled "
        f"in {compiled * 1000:.0f} ms ({compiled / len(catalog.types) * 1000:.1f} ms a type)"
    )
    fast = SmartDataStandardizer(catalog)
    bare = SmartDataStandardizer()
    print(f"{'scenario':<52}{'µs/update':>11}{'updates/s':>11}")
    for title, entity_type, make in SCENARIOS:
        for variant, standardizer in (("", fast), (" (no schema)", bare)):
            cost = measure(standardizer, entity_type, make, args.n)
            print(f"{title + variant:<52}{cost:>11.1f}{1e6 / cost:>11.0f}")
    slow = SchemaCatalog([args.schemas])
    for title, entity_type, make in SCENARIOS:
        without_predicates(slow, entity_type)
        cost = measure(SmartDataStandardizer(slow), entity_type, make, args.n)
        print(f"{title + ' (jsonschema only)':<52}{cost:>11.1f}{1e6 / cost:>11.0f}")


if __name__ == "__main__":
    main()
