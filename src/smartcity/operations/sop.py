"""Standard operating procedures (표준운영절차): a checklist per incident type, from YAML.

The shipped file is `operations/data/sop.yaml`; the setting `ops_sop_file` replaces it. A
checklist is chosen by `type/subtype`, then `type`, then `default`. An incident keeps the ids
of the steps it was opened with, so changing the file later does not rewrite old incidents.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from smartcity.core.errors import ConfigurationError
from smartcity.operations.taxonomy import TYPES

SHIPPED = Path(__file__).parent / "data" / "sop.yaml"


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a checklist, named in Korean and English."""

    id: str
    ko: str
    en: str


class Procedures:
    """The checklists by key (`type/subtype`, `type` or `default`)."""

    def __init__(self, checklists: dict[str, tuple[Step, ...]]) -> None:
        if "default" not in checklists:
            raise ConfigurationError("the SOP file needs a `default` checklist")
        self.checklists = checklists

    @classmethod
    def load(cls, path: str | Path | None = None) -> Procedures:
        """Load the checklists of a YAML file (the shipped one when no path is given)."""
        source = Path(path) if path else SHIPPED
        try:
            text = source.read_text(encoding="utf-8")
            return cls(_parse_text(text, str(source)))
        except OSError as error:
            raise ConfigurationError(f"cannot read the SOP file {source}: {error}") from None

    def checklist(self, incident_type: str, subtype: str = "") -> tuple[Step, ...]:
        """Return the checklist for an incident type and subtype."""
        for key in (f"{incident_type}/{subtype}" if subtype else "", incident_type, "default"):
            if key and key in self.checklists:
                return self.checklists[key]
        return self.checklists["default"]

    def step(self, incident_type: str, subtype: str, step_id: str) -> Step | None:
        """Return one step of the checklist an incident type uses, if it has it."""
        return next((s for s in self.checklist(incident_type, subtype) if s.id == step_id), None)


def _parse(document: Any, source: Path) -> dict[str, tuple[Step, ...]]:
    def fail(message: str) -> ConfigurationError:
        return ConfigurationError(f"SOP file {source}: {message}")

    if not isinstance(document, dict) or not isinstance(document.get("procedures"), dict):
        raise fail("the top level needs a `procedures` mapping")
    checklists: dict[str, tuple[Step, ...]] = {}
    for key, steps in document["procedures"].items():
        incident_type = str(key).split("/", 1)[0]
        if key != "default" and incident_type not in TYPES:
            raise fail(f"{key!r} names no incident type of the taxonomy")
        if not isinstance(steps, list) or not steps:
            raise fail(f"{key!r} needs a list of steps")
        parsed: list[Step] = []
        for number, item in enumerate(steps, 1):
            if not isinstance(item, dict) or not all(
                isinstance(item.get(name), str) and item[name] for name in ("id", "ko", "en")
            ):
                raise fail(f"{key!r} step {number} needs text `id`, `ko` and `en`")
            parsed.append(Step(item["id"], item["ko"], item["en"]))
        if len({s.id for s in parsed}) != len(parsed):
            raise fail(f"{key!r} has two steps with the same id")
        checklists[str(key)] = tuple(parsed)
    return checklists


@functools.lru_cache(maxsize=8)
def _parse_text(text: str, source: str) -> dict[str, tuple[Step, ...]]:
    """Parse a SOP file's text (cached: every platform a process builds reads the same file)."""
    try:
        document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as error:
        raise ConfigurationError(f"cannot read the SOP file {source}: {error}") from None
    return _parse(document, Path(source))
