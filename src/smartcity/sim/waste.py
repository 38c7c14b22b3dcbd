"""RFID food-waste bins: households tag their card and pay by the weight they put in.

Each bin serves the households of its apartment complex (the complex's households split over
its bins); a household disposes about every other day, mostly after dinner. A weighing adds to
the bin's load; a full bin refuses more (the resident goes to the next one); the collection
truck empties every bin once a day in the early morning.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from smartcity.sim.parking import poisson
from smartcity.sim.patterns import FOOD_WASTE, hourly

DISPOSALS_PER_HOUSEHOLD_DAY = 0.55
BIN_LOAD_KG = 50.0
"""What a 60-litre bin holds when full."""
MEAN_KG = 0.9
_PROFILE_SUM = sum(FOOD_WASTE)
COLLECTION_HOUR = 5
"""Local hour the collection round starts; each bin is emptied within two hours of it."""


@dataclass(frozen=True, slots=True)
class Weighing:
    """One disposal: who (a pseudonymous card), how much, and the bin after it."""

    bin_id: str
    second: int
    """Second within the minute."""
    card: str
    kilograms: float
    total: float
    fill: int
    """Percent of the bin's capacity."""


@dataclass(slots=True)
class BinState:
    """One bin during the simulation."""

    id: str
    households: int
    card_prefix: str
    collection: timedelta
    """When after COLLECTION_HOUR the truck empties it."""
    total: float = 0.0
    emptied: list[int] = field(default_factory=list)

    @property
    def fill(self) -> int:
        """Return the fill level in percent."""
        return min(100, round(self.total / BIN_LOAD_KG * 100))

    def values(self) -> dict[str, object]:
        """Return the heartbeat's native fields (load and fill, no disposal)."""
        return {"tot": round(self.total, 2), "fill": self.fill}


def make_bins(bins: list[tuple[str, str, int, int]], seed: int) -> list[BinState]:
    """Return bins from (id, complex id, households of the complex, bins in the complex)."""
    states = []
    for bin_id, complex_id, households, count in bins:
        rng = random.Random(f"{seed}:bin:{bin_id}")
        prefix = f"{zlib.crc32(complex_id.encode()) % 9000 + 1000}"
        collection = timedelta(seconds=round(rng.uniform(0, 7200)))
        states.append(BinState(bin_id, max(1, households // max(count, 1)), prefix, collection))
    return states


def daily_rate(state: BinState) -> float:
    """Return the disposals a bin expects in a day."""
    return state.households * DISPOSALS_PER_HOUSEHOLD_DAY


def settle(states: list[BinState], local: datetime) -> None:
    """Load every bin with what it would hold since its last collection."""
    for state in states:
        collected = local.replace(hour=COLLECTION_HOUR, minute=0, second=0, microsecond=0)
        collected += state.collection
        if collected > local:
            collected -= timedelta(days=1)
        hours = (local - collected).total_seconds() / 3600
        share = min(1.0, hours / 24)
        state.total = min(BIN_LOAD_KG * 0.95, daily_rate(state) * MEAN_KG * share)


def step(
    states: list[BinState], rng: random.Random, local: datetime, demand: float
) -> tuple[list[Weighing], list[tuple[str, int]]]:
    """Move one minute on: return the weighings and the bins emptied (id, second)."""
    weighings: list[Weighing] = []
    emptied: list[tuple[str, int]] = []
    share = hourly(FOOD_WASTE, local) / _PROFILE_SUM / 60
    minute_start = local.replace(second=0, microsecond=0)
    for state in states:
        collect_at = minute_start.replace(hour=COLLECTION_HOUR, minute=0) + state.collection
        if minute_start <= collect_at < minute_start + timedelta(minutes=1):
            state.total = 0.0
            emptied.append((state.id, collect_at.second))
        count = min(60, poisson(rng, daily_rate(state) * share * demand))
        for second in sorted(rng.sample(range(60), count)):
            kilograms = round(
                min(4.0, max(0.1, rng.lognormvariate(math.log(MEAN_KG) - 0.08, 0.4))), 2
            )
            if state.total + kilograms > BIN_LOAD_KG:
                continue
            state.total = round(state.total + kilograms, 2)
            card = f"{state.card_prefix}-{rng.randrange(state.households) + 1:04d}"
            weighings.append(Weighing(state.id, second, card, kilograms, state.total, state.fill))
    return weighings, emptied
