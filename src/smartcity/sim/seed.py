"""The seed set of real Changdong places (coordinates approximate) loaded by `make demo`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from smartcity.auth.policy import PUBLIC_MARK
from smartcity.auth.principal import Caller
from smartcity.platform import Platform

CHANGDONG_CONTEXT_URL = "urn:smartcity:context:changdong"


def data_path(name: str) -> Path:
    """Return the path of a data file shipped in smartcity.sim.data."""
    return Path(str(resources.files("smartcity.sim").joinpath("data", name)))


def seed_entities() -> list[dict[str, Any]]:
    """Return the seed entities, each with its @context (application/ld+json form)."""
    loaded: list[dict[str, Any]] = orjson.loads(data_path("seed.jsonld").read_bytes())
    return loaded


def load_seed(platform: Platform) -> int:
    """Upsert the seed places into the default tenant, their types public; return how many."""
    platform.contexts.preload_file(CHANGDONG_CONTEXT_URL, data_path("changdong-context.jsonld"))
    system = Caller.system()
    result, _ = platform.entities.batch_upsert(
        system, seed_entities(), lambda raw: platform.contexts.resolve(raw.get("@context"))
    )
    if result.errors:
        problems = "; ".join(f"{e.entity_id}: {e.error.detail}" for e in result.errors)
        raise RuntimeError(f"the seed data is invalid: {problems}")
    # Places anyone may look up: parking lots, points of interest, stations.
    types = {t for i in result.success for t in platform.entities.retrieve(system, i).types}
    for type_iri in sorted(types):
        platform.accounts.mark_type(system, type_iri, PUBLIC_MARK)
    return len(result.success)
