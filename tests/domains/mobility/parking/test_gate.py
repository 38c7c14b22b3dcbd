"""Plate reads at a lot's gates folded into counts; plates are never kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from smartcity.domains.mobility.parking.gate import GateRead, PlateDeduplicator

T0 = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)


def read(seconds: float, direction: str, plate: str) -> GateRead:
    return GateRead.model_validate(
        {"at": T0 + timedelta(seconds=seconds), "direction": direction, "plate": plate}
    )


def test_repeated_reads_of_one_passage_count_once() -> None:
    plates = PlateDeduplicator(repeat_seconds=60)
    tally = plates.tally(
        "lot-1",
        [read(0, "entry", "12가 3456"), read(2, "entry", "12가3456"), read(3, "entry", "34나 5678"),
         read(30, "exit", "12가 3456"), read(200, "entry", "12가 3456")],
    )  # fmt: skip
    assert (tally.entries, tally.exits, tally.repeats) == (3, 1, 1)
    assert tally.latest == T0 + timedelta(seconds=200)
    again = plates.tally("lot-1", [read(210, "entry", "12가 3456")])
    assert (again.entries, again.repeats) == (0, 1)
    elsewhere = plates.tally("lot-2", [read(210, "entry", "12가 3456")])
    assert elsewhere.entries == 1


def test_plates_are_not_kept_in_clear() -> None:
    plates = PlateDeduplicator()
    plates.tally("lot-1", [read(0, "entry", "12가 3456")])
    kept = repr(plates.__dict__) + repr(list(plates._seen))
    assert "3456" not in kept


def test_a_read_must_say_when_and_which_way() -> None:
    with pytest.raises(ValidationError):
        GateRead.model_validate({"at": "2026-11-27T18:00:00", "direction": "entry", "plate": "1"})
    with pytest.raises(ValidationError):
        GateRead.model_validate({"at": T0, "direction": "sideways", "plate": "12가3456"})
