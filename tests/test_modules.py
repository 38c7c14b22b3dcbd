"""The module contract: loading by short name, dotted path and entry point; clear errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from smartcity.config import Settings
from smartcity.core.errors import ConfigurationError
from smartcity.domains.mobility import MODULE as MOBILITY
from smartcity.modules import ModuleSpec, Started, available_modules, load_modules, load_spec
from smartcity.platform import build_platform


class GreeterSettings(BaseModel):
    """Settings of the test module."""

    model_config = ConfigDict(extra="forbid")
    greeting: str = "안녕하세요"


GREETED: list[str] = []

GREETER: ModuleSpec[str] = ModuleSpec(
    name="greeter",
    settings_model=GreeterSettings,
    setup=lambda host, settings: Started(f"{settings.greeting} from {host.settings.environment}"),
    teardown=GREETED.append,
)
NOT_A_SPEC = {"name": "greeter"}


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[str]:
    """Install a package with a `smartcity.modules` entry point on sys.path; yield its name."""
    package = tmp_path / "district_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from smartcity.modules import ModuleSpec\nMODULE = ModuleSpec(name='lights')\n"
    )
    info = tmp_path / "district_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: district-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[smartcity.modules]\nlights = district_plugin\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield "lights"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("district_plugin", None)


def test_the_built_ins_load_by_default() -> None:
    loaded = load_modules(None, {})
    assert [m.spec.name for m in loaded] == ["mobility"]
    assert loaded[0].spec is MOBILITY
    assert loaded[0].settings is not None


def test_a_module_loads_by_dotted_path_with_its_settings() -> None:
    loaded = load_modules([f"{__name__}:GREETER"], {"greeter": {"greeting": "hello"}})
    assert loaded[0].spec is GREETER
    assert loaded[0].settings == GreeterSettings(greeting="hello")
    assert loaded[0].origin == f"{__name__}:GREETER"


def test_a_third_party_module_loads_through_its_entry_point(plugin: str) -> None:
    assert available_modules()[plugin] == "district_plugin"
    spec, origin = load_spec(plugin)
    assert (spec.name, origin) == ("lights", "district_plugin:MODULE")


@pytest.mark.parametrize(
    ("names", "settings", "message"),
    [
        (["parking"], {}, "unknown module 'parking': known modules are"),
        (["no_such.package"], {}, "cannot import no_such.package"),
        ([f"{__name__}:NOT_A_SPEC"], {}, "must be a ModuleSpec, found dict"),
        (["mobility", "smartcity.domains.mobility"], {}, "enabled twice"),
        (["mobility"], {"safety": {}}, "sections for modules that are not enabled: ['safety']"),
        (["mobility"], {"mobility": {"parking_max_walk": -1}}, "module_settings.mobility: "),
        ([f"{__name__}:GREETER"], {"greeter": {"greting": "x"}}, "greting: Extra inputs"),
    ],
)
def test_what_is_wrong_is_said(
    names: list[str], settings: dict[str, dict[str, object]], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_modules(names, settings)


def test_a_bad_module_name_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="lowercase"):
        ModuleSpec(name="Parking Lots")


def test_the_platform_sets_modules_up_and_tears_them_down(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        context_offline=True,
        modules=["mobility", f"{__name__}:GREETER"],
    )
    platform = build_platform(settings)
    assert [m.spec.name for m in platform.modules] == ["mobility", "greeter"]
    assert platform.services["greeter"] == "안녕하세요 from development"
    assert {w.name for w in platform.workers} >= {"parking-no-shows", "parking-signs"}
    platform.close()
    assert GREETED[-1] == "안녕하세요 from development"


def test_no_modules_at_all(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}", modules=[])
    platform = build_platform(settings)
    try:
        assert platform.modules == []
        assert platform.services == {}
    finally:
        platform.close()
