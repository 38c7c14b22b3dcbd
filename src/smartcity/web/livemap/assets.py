"""The files the map page loads: MapLibre GL JS from the `maplibre` package, and our own."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from smartcity.core.errors import ConfigurationError

MAPLIBRE_FILES = ("maplibre-gl.js", "maplibre-gl.css")
"""What the page needs from the `maplibre` PyPI package (kept in its `srcjs` folder)."""
OWN_FILES = ("livemap.html", "livemap.js", "livemap.css")


@dataclass(frozen=True, slots=True)
class MapAssets:
    """Where each file the map page serves is, by the name it is served under."""

    files: dict[str, Path]

    def path(self, name: str) -> Path | None:
        """Return the file served as `name`, or None for a name that is not served."""
        return self.files.get(name)


def maplibre_folder() -> Path | None:
    """Return the folder of the installed `maplibre` package, without importing it."""
    spec = importlib.util.find_spec("maplibre")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def map_assets(maplibre: Path | None = None) -> MapAssets:
    """Find every file of the map page; raise ConfigurationError naming what is missing.

    `maplibre` is the installed package's folder (found when not given).
    """
    folder = maplibre if maplibre is not None else maplibre_folder()
    files: dict[str, Path] = {}
    missing: list[str] = []
    for name in MAPLIBRE_FILES:
        path = folder / "srcjs" / name if folder is not None else None
        if path is None or not path.is_file():
            missing.append(str(path) if path is not None else f"maplibre/srcjs/{name}")
        else:
            files[name] = path
    if missing:
        raise ConfigurationError(
            "the live map needs MapLibre GL JS from the 'maplibre' Python package, and "
            f"{', '.join(missing)} is not there: install it with pip install 'maplibre>=0.3.6' "
            "(it is a dependency of smartcity: reinstall the platform)"
        )
    own = resources.files("smartcity.web.livemap").joinpath("static")
    for name in OWN_FILES:
        files[name] = Path(str(own.joinpath(name)))
    return MapAssets(files)
