"""Gate counts: plate-recognition events at a lot's gates folded into entries and exits.

A plate camera reads a passing car several times, and a car that backs out and re-enters is
read twice: a read of the same plate in the same direction within `repeat_seconds` of the last
one is the same passage. Plates are personal data: they are only hashed with a key that lives
in this process's memory, to recognise repeats, and never stored or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

REPEAT_SECONDS: Final = 60.0
MAX_REMEMBERED: Final = 100_000


class GateRead(BaseModel):
    """One plate read at a gate, as a gate controller reports it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: AwareDatetime
    direction: Literal["entry", "exit"]
    plate: str = Field(min_length=2, max_length=20)
    gate: str = Field(default="", max_length=64)


@dataclass(frozen=True, slots=True)
class GateTally:
    """Passages counted from a batch of reads."""

    entries: int
    exits: int
    repeats: int
    latest: datetime | None


class PlateDeduplicator:
    """Recognise repeated reads of one plate, per site and direction, without keeping plates."""

    def __init__(self, repeat_seconds: float = REPEAT_SECONDS) -> None:
        self.repeat_seconds = repeat_seconds
        self._key = secrets.token_bytes(32)
        self._seen: OrderedDict[bytes, datetime] = OrderedDict()
        self._lock = threading.Lock()

    def _token(self, site_id: str, read: GateRead) -> bytes:
        plate = "".join(read.plate.split()).upper()
        message = f"{site_id}\x00{read.direction}\x00{plate}".encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def tally(self, site_id: str, reads: Iterable[GateRead]) -> GateTally:
        """Count the passages in a batch of reads (in time order), dropping repeats."""
        entries = exits = repeats = 0
        latest: datetime | None = None
        with self._lock:
            for read in sorted(reads, key=lambda r: r.at):
                token = self._token(site_id, read)
                last = self._seen.get(token)
                latest = read.at if latest is None or read.at > latest else latest
                if last is not None and 0 <= (read.at - last).total_seconds() < self.repeat_seconds:
                    repeats += 1
                    continue
                self._seen[token] = read.at
                self._seen.move_to_end(token)
                while len(self._seen) > MAX_REMEMBERED:
                    self._seen.popitem(last=False)
                if read.direction == "entry":
                    entries += 1
                else:
                    exits += 1
        return GateTally(entries, exits, repeats, latest)
