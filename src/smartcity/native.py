"""The rule engine's hot modules compiled to C extensions by mypyc, and the way back to sources.

`python -m smartcity.build_native` (run by `make`) compiles the modules every change goes through
on its way through the rule engine (`COMPILED`) with mypyc, from the same typed sources, and
writes a manifest of the sources it compiled. The extensions sit next to the `.py` files, where
Python's import prefers them. When a source has changed since it was compiled, the shared mypyc
library is missing, or `SMARTCITY_PURE_PYTHON=1` is set, `use_sources_if_stale` (called when the
`smartcity` package is imported, before any of them) makes Python import every compiled module
from its source instead: all of them, as compiled modules expect their compiled neighbours.
Nothing else differs between the two: the same code runs either way, and a test runs both on
the same changes.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

PACKAGE = "smartcity"
HERE = Path(__file__).resolve().parent
SOURCE_ROOT = HERE.parent
MANIFEST = HERE / "_native.json"
COMPILED: tuple[str, ...] = (
    "core.entity",
    "rules.accumulators",
    "rules.aggregates",
    "rules.calendars",
    "rules.compile",
    "rules.compiled",
    "rules.convergence",
    "rules.dispatch",
    "rules.engine",
    "rules.events",
    "rules.firing",
    "rules.kinds",
    "rules.match",
    "rules.names",
    "rules.patterns",
    "rules.spatial",
    "rules.state",
    "rules.twins",
    "rules.windowed",
)
"""The modules a change goes through in the rule engine (below `smartcity`), compiled together."""
PURE_ENV = "SMARTCITY_PURE_PYTHON"

_status: dict[str, str] = {"mode": "sources", "why": "not compiled"}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _source(name: str) -> Path:
    return HERE.joinpath(*name.split(".")).with_suffix(".py")


def _extensions() -> dict[str, Path]:
    """Return the C extensions below the package, by module name (`rules.engine`)."""
    found: dict[str, Path] = {}
    for path in HERE.rglob("*.so"):
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            if path.name.endswith(suffix):
                relative = path.relative_to(HERE).parent.parts
                found[".".join([*relative, path.name[: -len(suffix)]])] = path
                break
    return found


def _stale_reason(extensions: dict[str, Path]) -> str | None:
    """Return why the compiled modules must not be used (None: they are current)."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return f"{PURE_ENV} is set"
    if not MANIFEST.exists():
        return "not compiled"
    try:
        manifest = json.loads(MANIFEST.read_text())
        sources: dict[str, str] = manifest["sources"]
        shared: str = manifest["shared"]
    except (OSError, ValueError, KeyError, TypeError):
        return "the manifest of the compiled modules is unreadable"
    if importlib.util.find_spec(shared) is None:
        return f"the shared mypyc library {shared} is missing"
    for name in COMPILED:
        if name not in extensions:
            return f"{name} is not compiled"
        if sources.get(name) != _digest(_source(name)):
            return f"{name}.py changed since it was compiled"
    stray = sorted(set(extensions) - set(COMPILED))
    if stray:
        return f"{', '.join(stray)} compiled, but no longer in the list"
    return None


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Import modules that have a compiled form from their `.py` sources instead."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != PACKAGE or name not in self.names:
            return None
        return importlib.util.spec_from_file_location(fullname, _source(name))


def use_sources_if_stale() -> None:
    """Make the compiled modules import from sources unless their extensions are current."""
    if any(isinstance(finder, _SourcesFirst) for finder in sys.meta_path):
        return
    extensions = _extensions()
    reason = _stale_reason(extensions)
    if reason is None:
        _status.update(mode="compiled", why="mypyc extensions match their sources")
        return
    _status.update(mode="sources", why=reason)
    if extensions:
        sys.meta_path.insert(0, _SourcesFirst(set(extensions)))


def status() -> dict[str, str]:
    """Return how the engine's hot modules run: `compiled` or `sources`, and why."""
    return dict(_status)


def build(strict: bool = False) -> int:
    """Compile the modules with mypyc in place; return the exit status.

    A failed compile leaves the sources to run and exits 0, unless `strict`.
    """
    if not _in_source_tree():
        print(f"{SOURCE_ROOT} is not the src/ folder of a checkout: nothing compiled")
        return 1 if strict else 0
    try:
        import mypyc  # noqa: F401
    except ImportError:
        print("mypyc is not installed (pip install mypy): the rule engine runs from sources")
        return 1 if strict else 0
    started = time.monotonic()
    clean()  # a half-done build must not be taken for a current one
    sources = {name: _digest(_source(name)) for name in COMPILED}
    paths = [str(_source(name).relative_to(SOURCE_ROOT)) for name in COMPILED]
    config = SOURCE_ROOT.parent / "pyproject.toml"
    command = [sys.executable, "-m", "mypyc"]
    if config.exists():
        command += ["--config-file", str(config)]
    print(f"compiling {len(paths)} rule engine modules with mypyc (about a minute)...", flush=True)
    done = subprocess.run(
        [*command, *paths],
        cwd=SOURCE_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MYPYC_OPT_LEVEL": "3"},
    )
    shared = sorted(SOURCE_ROOT.glob("*__mypyc*"))
    if done.returncode != 0 or len(shared) != 1 or set(_extensions()) != set(COMPILED):
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
        print("compiling failed: the rule engine runs from its sources (slower, the same results)")
        return (done.returncode or 1) if strict else 0
    MANIFEST.write_text(
        json.dumps({"shared": shared[0].name.split(".")[0], "sources": sources}, indent=1)
    )
    print(f"compiled in {time.monotonic() - started:.0f} s")
    return 0


def _in_source_tree() -> bool:
    """Tell whether the package sits in a checkout's src/ (the only place it is compiled in;
    in site-packages the shared libraries of other mypyc-compiled packages sit beside it)."""
    return SOURCE_ROOT.name == "src" and (SOURCE_ROOT.parent / "pyproject.toml").exists()


def clean() -> None:
    """Remove the compiled modules (the engine then runs from sources)."""
    for extension in _extensions().values():
        extension.unlink()
    if _in_source_tree():
        for shared in SOURCE_ROOT.glob("*__mypyc*"):
            shared.unlink()
    MANIFEST.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Compile (or remove) the rule engine's C extensions."""
    parser = argparse.ArgumentParser(
        prog="python -m smartcity.build_native",
        description=(
            "Compile the rule engine's hot modules to C extensions with mypyc, in place. "
            "Without them (or with SMARTCITY_PURE_PYTHON=1) the same modules run from sources."
        ),
    )
    parser.add_argument("--clean", action="store_true", help="remove the compiled modules")
    parser.add_argument("--strict", action="store_true", help="exit non-zero when compiling fails")
    args = parser.parse_args(argv)
    if args.clean:
        clean()
        return 0
    return build(strict=args.strict)
