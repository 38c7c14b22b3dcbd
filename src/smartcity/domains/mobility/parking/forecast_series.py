"""A lot's occupancy on a regular grid, read from the broker's temporal history.

Readings are averaged per grid step in SQL (the history's aggregation). A step with no reading
stays missing (NaN): a counter that went silent is no evidence that the lot emptied, so nothing
is imputed as free. Occupied spaces come from `occupiedSpotNumber`, else from
`totalSpotNumber - availableSpotNumber`, else from `occupancy` (a share) times the capacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt

from smartcity.core.entity import instance_value
from smartcity.core.qlang import TypeName
from smartcity.storage.base import EntityStore
from smartcity.storage.history import EntitySelection, HistoryStore, InstanceWindow
from smartcity.storage.history_rows import EPOCH

PARKING: Final = "https://smartdatamodels.org/dataModel.Parking/"
OFF_STREET: Final = PARKING + "OffStreetParking"
OCCUPIED: Final = PARKING + "occupiedSpotNumber"
AVAILABLE: Final = PARKING + "availableSpotNumber"
TOTAL: Final = PARKING + "totalSpotNumber"
OCCUPANCY: Final = PARKING + "occupancy"
LOCATION: Final = "https://uri.etsi.org/ngsi-ld/location"
STEP: Final = timedelta(minutes=5)

FloatArray = npt.NDArray[np.float64]


def to_micros(moment: datetime) -> int:
    """Return the microseconds since the epoch of an aware datetime."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def align(moment: datetime, step: timedelta = STEP) -> datetime:
    """Return the start of the grid step that holds a moment (UTC)."""
    micros = to_micros(moment)
    size = step // timedelta(microseconds=1)
    return EPOCH + timedelta(microseconds=micros - micros % size)


@dataclass(frozen=True, slots=True)
class LotInfo:
    """What a forecast needs to know of a lot besides its history."""

    id: str
    capacity: int
    position: tuple[float, float] | None = None
    """Longitude, latitude."""


@dataclass(slots=True)
class OccupancySeries:
    """Occupied spaces of a lot at each grid step from `start` (NaN: no reading)."""

    lot: LotInfo
    start: datetime
    step: timedelta
    occupied: FloatArray

    @property
    def ratio(self) -> FloatArray:
        """Return the occupied share of the capacity at each step."""
        return self.occupied / max(self.lot.capacity, 1)

    @property
    def end(self) -> datetime:
        """Return the end of the last step."""
        return self.start + len(self.occupied) * self.step

    def index_of(self, moment: datetime) -> int:
        """Return the index of the step that holds a moment (may be out of range)."""
        return (moment.astimezone(UTC) - self.start) // self.step

    def times(self) -> list[datetime]:
        """Return the start of every step."""
        return [self.start + index * self.step for index in range(len(self.occupied))]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class OccupancyHistory:
    """Read lots and their occupancy from the temporal history of one store."""

    def __init__(
        self, history: HistoryStore, entities: EntityStore | None = None, step: timedelta = STEP
    ) -> None:
        self.history = history
        self.entities = entities
        self.step = step

    def lot_ids(self, tenant: str) -> list[str]:
        """Return the ids of the tenant's OffStreetParking entities that have a history."""
        found: list[str] = []
        page = 500
        while True:
            selection = EntitySelection(
                tenant=tenant, types=TypeName(OFF_STREET), limit=page, offset=len(found)
            )
            batch, _ = self.history.entities(selection)
            found.extend(entity.id for entity in batch if entity.deleted_at is None)
            if len(batch) < page:
                return found

    def lot_info(self, tenant: str, lot_id: str) -> LotInfo | None:
        """Return a lot's capacity and position (current state first, else its history)."""
        capacity: float | None = None
        position: tuple[float, float] | None = None
        if self.entities is not None:
            entity = self.entities.get(tenant, lot_id)
            if entity is not None:
                capacity = _latest_number(entity.attrs.get(TOTAL, []))
                position = _point(entity.attrs.get(LOCATION, []))
        if capacity is None or position is None:
            header = self.history.entity(tenant, lot_id)
            if header is None:
                return None
            window = InstanceWindow(attrs=[TOTAL, LOCATION], last_n=1)
            records = self.history.instances([header.key], window).get(header.key, [])
            for record in records:
                if record.attr == TOTAL and capacity is None:
                    capacity = _number(instance_value(record.instance))
                if record.attr == LOCATION and position is None:
                    position = _point([record.instance])
        if capacity is None or capacity <= 0:
            return None
        return LotInfo(lot_id, round(capacity), position)

    def series(
        self, tenant: str, lot_id: str, start: datetime, end: datetime, lot: LotInfo | None = None
    ) -> OccupancySeries | None:
        """Return a lot's occupancy on the grid over [start, end); None for an unknown lot."""
        lot = lot or self.lot_info(tenant, lot_id)
        header = self.history.entity(tenant, lot_id)
        if lot is None or header is None:
            return None
        first, last = align(start, self.step), align(end - timedelta(microseconds=1), self.step)
        count = (last - first) // self.step + 1
        window = InstanceWindow(
            attrs=[OCCUPIED, AVAILABLE, OCCUPANCY],
            lower=to_micros(first),
            upper=to_micros(first + count * self.step),
        )
        period = self.step // timedelta(microseconds=1)
        aggregates = self.history.aggregate(
            [header.key], window, to_micros(first), period, ("avg",)
        )
        columns = {name: np.full(count, np.nan) for name in (OCCUPIED, AVAILABLE, OCCUPANCY)}
        for aggregate in aggregates:
            if aggregate.avg is not None and 0 <= aggregate.bucket < count:
                columns[aggregate.attr][aggregate.bucket] = aggregate.avg
        occupied = columns[OCCUPIED]
        derived = np.where(np.isnan(occupied), lot.capacity - columns[AVAILABLE], occupied)
        derived = np.where(np.isnan(derived), columns[OCCUPANCY] * lot.capacity, derived)
        return OccupancySeries(lot, first, self.step, np.clip(derived, 0, lot.capacity))


def _latest_number(instances: list[dict[str, object]]) -> float | None:
    for instance in instances:
        value = _number(instance_value(instance))
        if value is not None:
            return value
    return None


def _point(instances: list[dict[str, object]]) -> tuple[float, float] | None:
    for instance in instances:
        value = instance.get("value")
        if isinstance(value, dict) and value.get("type") == "Point":
            coordinates = value.get("coordinates")
            if isinstance(coordinates, list) and len(coordinates) >= 2:
                return float(coordinates[0]), float(coordinates[1])
    return None
