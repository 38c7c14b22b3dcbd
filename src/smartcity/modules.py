"""The plug-in contract of a domain module (`ModuleSpec`) and the loader that finds modules.

A module is a package (or any module) with a `MODULE` attribute holding a `ModuleSpec`. The
built-in ones are listed in `BUILTIN_MODULES`; a third-party package adds its own through the
`smartcity.modules` entry point group (`name = "package.module"` or `"package.module:SPEC"`).
`Settings.modules` names the enabled ones by short name or by dotted path, and
`Settings.module_settings[name]` holds each one's settings, checked by its `settings_model`.

Every field but `name` is optional: a module declares only the abilities it has. Nothing here
imports a module's heavy parts: `setup` and `routers` are called only for enabled modules.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from smartcity.core.errors import ConfigurationError

if TYPE_CHECKING:
    from fastapi import APIRouter

    from smartcity.auth.policy import AccessControl
    from smartcity.auth.principal import Caller
    from smartcity.broker.contexts import ContextResolver
    from smartcity.broker.service import EntityService
    from smartcity.bus.base import EventBus
    from smartcity.config import Settings
    from smartcity.core.clock import Clock
    from smartcity.core.workers import Worker
    from smartcity.ingest.iot import Iot
    from smartcity.storage.history import HistoryStore
    from smartcity.storage.sqlbase import SqlEntityStore

ENTRY_POINT_GROUP: Final = "smartcity.modules"
BUILTIN_MODULES: Final[Mapping[str, str]] = {"mobility": "smartcity.domains.mobility"}
"""Short name -> the package whose `MODULE` is the built-in module's spec."""
NAME: Final = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

Service = TypeVar("Service")


class ModuleHost(Protocol):
    """What the platform lends a module at setup (the `Platform` is one)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def store(self) -> SqlEntityStore: ...
    @property
    def entities(self) -> EntityService: ...
    @property
    def access(self) -> AccessControl: ...
    @property
    def bus(self) -> EventBus: ...
    @property
    def iot(self) -> Iot: ...
    @property
    def contexts(self) -> ContextResolver: ...
    @property
    def history(self) -> HistoryStore:
        """The broker's temporal history (read-only use: what the module learns from)."""
        ...


@dataclass(frozen=True, slots=True)
class WebHooks:
    """What the web layer lends a module's routers (modules sit below it and cannot import it)."""

    caller: Callable[..., Awaitable[Caller]]
    """A FastAPI dependency that returns the request's authenticated `Caller`."""


@dataclass(frozen=True, slots=True)
class Started(Generic[Service]):
    """What a module's setup returns: its service object and the workers it runs."""

    service: Service
    """Handed to `routers` (and kept as `platform.modules[name]`) for the web layer."""
    workers: tuple[Worker, ...] = ()
    """Background loops started and supervised with the platform's own."""


@dataclass(frozen=True, slots=True)
class Panel:
    """One thing a module adds to the operator dashboard, as data."""

    id: str
    ko: str
    en: str
    kind: str
    """"page" (a link), "layer" (map layer of entity types) or "chart"."""
    path: str = ""
    """The page or data URL it reads, relative to the platform's root."""
    entity_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModuleSpec(Generic[Service]):
    """A domain module's abilities; every one but `name` may be left out."""

    name: str
    """Short name: lowercase letters, digits and '_' (the key of its settings, its URL prefix)."""
    title_ko: str = ""
    title_en: str = ""
    entity_types: tuple[str, ...] = ()
    """Entity types it owns (Smart Data Models names where one exists)."""
    settings_model: type[BaseModel] | None = None
    """Checks `Settings.module_settings[name]`; the validated model is passed to `setup`."""
    setup: Callable[[ModuleHost, Any], Started[Service]] | None = None
    """Build the module's service on the platform (after the platform's own parts exist)."""
    teardown: Callable[[Service], None] | None = None
    """Release what setup took (called when the platform closes)."""
    routers: Callable[[Service, WebHooks], Sequence[APIRouter]] | None = None
    """Its HTTP endpoints, built over its service (the web layer includes them)."""
    rules_files: tuple[Path, ...] = ()
    """YAML files of the convergence rules it contributes."""
    codecs: Mapping[str, Any] = field(default_factory=dict)
    """Payload codecs it adds to ingestion, by name."""
    panels: tuple[Panel, ...] = ()
    simulators: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    """How the simulator drives its devices, by device kind."""

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ConfigurationError(
                f"module name {self.name!r} must be lowercase letters, digits and '_' "
                "(starting with a letter, at most 40)"
            )


@dataclass(frozen=True, slots=True)
class LoadedModule:
    """An enabled module with its checked settings (before setup)."""

    spec: ModuleSpec[Any]
    settings: BaseModel | None
    origin: str
    """Where it came from: the dotted path of the object that holds its spec."""


def available_modules() -> dict[str, str]:
    """Return every module name this installation knows -> its dotted path (built-ins first)."""
    found = dict(BUILTIN_MODULES)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name, point.value)
    return found


def load_spec(reference: str) -> tuple[ModuleSpec[Any], str]:
    """Return the spec a short name or dotted path names ("pkg.mod" or "pkg.mod:ATTRIBUTE")."""
    known = available_modules()
    path = known.get(reference, reference)
    if reference not in known and "." not in reference and ":" not in reference:
        raise ConfigurationError(
            f"unknown module {reference!r}: known modules are {sorted(known)}; "
            "give a dotted path (package.module) for another one"
        )
    module_path, _, attribute = path.partition(":")
    attribute = attribute or "MODULE"
    try:
        imported = importlib.import_module(module_path)
    except ImportError as error:
        raise ConfigurationError(
            f"module {reference!r}: cannot import {module_path}: {error}"
        ) from None
    spec = getattr(imported, attribute, None)
    if not isinstance(spec, ModuleSpec):
        got = "nothing" if spec is None else type(spec).__name__
        raise ConfigurationError(
            f"module {reference!r}: {module_path}.{attribute} must be a ModuleSpec, found {got}"
        )
    if reference in known and reference != spec.name:
        raise ConfigurationError(
            f"module {reference!r} at {path} calls itself {spec.name!r}; the names must agree"
        )
    return spec, f"{module_path}:{attribute}"


def load_modules(
    names: Sequence[str] | None, module_settings: Mapping[str, Mapping[str, Any]]
) -> list[LoadedModule]:
    """Load the enabled modules (None: the built-ins) and check each one's settings."""
    references = list(BUILTIN_MODULES) if names is None else list(names)
    loaded: list[LoadedModule] = []
    seen: dict[str, str] = {}
    for reference in references:
        spec, origin = load_spec(reference)
        if spec.name in seen:
            raise ConfigurationError(
                f"module {spec.name!r} is enabled twice ({seen[spec.name]} and {origin})"
            )
        seen[spec.name] = origin
        loaded.append(LoadedModule(spec, _settings(spec, module_settings.get(spec.name)), origin))
    unused = sorted(set(module_settings) - set(seen))
    if unused:
        raise ConfigurationError(
            f"module_settings has sections for modules that are not enabled: {unused} "
            f"(enabled: {sorted(seen)})"
        )
    return loaded


def _settings(spec: ModuleSpec[Any], raw: Mapping[str, Any] | None) -> BaseModel | None:
    if spec.settings_model is None:
        if raw:
            raise ConfigurationError(f"module {spec.name!r} takes no settings, got {sorted(raw)}")
        return None
    try:
        return spec.settings_model.model_validate(dict(raw or {}))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or '(section)'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ConfigurationError(f"module_settings.{spec.name}: {problems}") from None
