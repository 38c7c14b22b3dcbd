"""A district's parking details: tariffs, hours and park-and-ride of its lots, and extra sites.

The optional `parking_details` file of a district (YAML) gives what the lots' CSV cannot: each
lot's tariff (by name from `tariffs`, the Tariff model of the mobility module), opening hours,
operator name and transit connections; and `sites`, the shared-parking sites (공유주차) and
resident-priority street zones (거주자우선주차) the simulator does not model as lots. Everything
is checked when the district loads, with the file and the member in error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from smartcity.domains.mobility.parking.hours import HoursError, parse_hours
from smartcity.domains.mobility.parking.tariff import Tariff
from smartcity.sim.model import DistrictError

LOT_KEYS: Final = frozenset({"tariff", "openingHours", "provider", "transitConnection"})
SITE_TYPES: Final = ("OffStreetParking", "OnStreetParking")
SITE_KEYS: Final = frozenset(
    {"id", "type", "name_ko", "name_en", "position", "total", "category", "tariff",
     "openingHours", "sharedParking", "permitActiveHours", "transitConnection"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ParkingDetails:
    """What the details file says, checked."""

    tariffs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Tariff name -> the Tariff as JSON."""
    lots: dict[str, dict[str, Any]] = field(default_factory=dict)
    sites: list[dict[str, Any]] = field(default_factory=list)


def read_parking_details(path: Path, lot_ids: set[str]) -> ParkingDetails:
    """Read and check a parking details file against the district's lot ids."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise DistrictError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise DistrictError(f"{path}: must be a mapping with tariffs, lots and sites")
    tariffs: dict[str, dict[str, Any]] = {}
    for name, raw in _mapping(document.get("tariffs", {}), path, "tariffs").items():
        try:
            tariffs[str(name)] = Tariff.model_validate(raw).model_dump(mode="json")
        except ValidationError as error:
            raise DistrictError(f"{path}: tariffs.{name}: {_first(error)}") from None
    lots: dict[str, dict[str, Any]] = {}
    for lot_id, raw in _mapping(document.get("lots", {}), path, "lots").items():
        where = f"lots.{lot_id}"
        if lot_id not in lot_ids:
            raise DistrictError(f"{path}: {where}: no lot {lot_id!r} in the parking file")
        lots[str(lot_id)] = _checked(_mapping(raw, path, where), LOT_KEYS, tariffs, path, where)
    sites: list[dict[str, Any]] = []
    for index, raw in enumerate(document.get("sites") or []):
        where = f"sites[{index}]"
        site = _checked(_mapping(raw, path, where), SITE_KEYS, tariffs, path, where)
        _check_site(site, path, where)
        sites.append(site)
    return ParkingDetails(tariffs, lots, sites)


def _mapping(raw: Any, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DistrictError(f"{path}: {where} must be a mapping")
    return raw


def _first(error: ValidationError) -> str:
    problem = error.errors()[0]
    return f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}"


def _checked(
    raw: dict[str, Any], keys: frozenset[str], tariffs: dict[str, Any], path: Path, where: str
) -> dict[str, Any]:
    unknown = sorted(set(raw) - keys)
    if unknown:
        raise DistrictError(f"{path}: {where}: unknown keys {unknown}; known: {sorted(keys)}")
    tariff = raw.get("tariff")
    if tariff is not None and tariff not in tariffs:
        raise DistrictError(f"{path}: {where}.tariff: no tariff {tariff!r} in tariffs")
    for name in ("openingHours", "permitActiveHours"):
        _hours(raw.get(name), path, f"{where}.{name}")
    shared = raw.get("sharedParking")
    if shared is not None:
        shared = _mapping(shared, path, f"{where}.sharedParking")
        if not isinstance(shared.get("spaces"), int) or shared["spaces"] < 0:
            raise DistrictError(f"{path}: {where}.sharedParking.spaces: a whole number >= 0")
        _hours(shared.get("windows"), path, f"{where}.sharedParking.windows", required=True)
    return raw


def _hours(text: Any, path: Path, where: str, *, required: bool = False) -> None:
    if text is None and not required:
        return
    try:
        parse_hours(str(text or ""))
    except HoursError as error:
        raise DistrictError(f"{path}: {where}: {error.detail}") from None


def _check_site(site: dict[str, Any], path: Path, where: str) -> None:
    for key in ("id", "type", "name_ko", "name_en", "position", "total"):
        if key not in site:
            raise DistrictError(f"{path}: {where}.{key} is missing")
    if site["type"] not in SITE_TYPES:
        raise DistrictError(f"{path}: {where}.type must be one of {list(SITE_TYPES)}")
    position = site["position"]
    if not (
        isinstance(position, list)
        and len(position) == 2
        and all(isinstance(x, int | float) for x in position)
    ):
        raise DistrictError(f"{path}: {where}.position must be [longitude, latitude]")
    if not isinstance(site["total"], int) or site["total"] < 0:
        raise DistrictError(f"{path}: {where}.total must be a whole number >= 0")


def detail_attributes(details: ParkingDetails, raw: dict[str, Any]) -> dict[str, Any]:
    """Return the NGSI-LD attributes of a lot's or site's details."""
    attributes: dict[str, Any] = {}
    tariff = raw.get("tariff")
    if tariff is not None:
        attributes["tariff"] = {"type": "JsonProperty", "json": details.tariffs[tariff]}
    if raw.get("openingHours") is not None:
        attributes["openingHours"] = {"type": "Property", "value": str(raw["openingHours"])}
    if raw.get("provider") is not None:  # schema.org provider: an organisation
        attributes["provider"] = {"type": "Property", "value": {"name": str(raw["provider"])}}
    if raw.get("transitConnection"):
        attributes["transitConnection"] = {
            "type": "Property",
            "value": [str(x) for x in raw["transitConnection"]],
        }
    if raw.get("sharedParking") is not None:
        attributes["sharedParking"] = {"type": "JsonProperty", "json": raw["sharedParking"]}
    if raw.get("permitActiveHours") is not None:
        attributes["requiredPermit"] = {"type": "Property", "value": ["residentPermit"]}
        attributes["permitActiveHours"] = {
            "type": "Property",
            "value": {"residentPermit": str(raw["permitActiveHours"])},
        }
    return attributes
