"""The compiled engine (`smartcity/native.py`): used while current, else sources; same results."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.rules import TENANT, build_changes, generated_rules

import smartcity.rules.engine
from smartcity import native
from smartcity.broker.change_events import decode_change, encode_change
from smartcity.rules.convergence import TenantEngines

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
WORKLOAD = 4_000


def _is_extension(path: str | None) -> bool:
    return path is not None and any(
        path.endswith(suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES
    )


def test_the_engine_runs_compiled_when_built_and_from_sources_otherwise() -> None:
    status = native.status()
    if os.environ.get("SMARTCITY_REQUIRE_NATIVE") == "1":  # CI: `make test` compiled them
        assert status["mode"] == "compiled", status["why"]
    compiled = _is_extension(smartcity.rules.engine.__file__)
    assert compiled == (status["mode"] == "compiled"), status


def test_pure_python_is_one_setting_away() -> None:
    code = (
        "import json, smartcity.native as n, smartcity.rules.engine as e, "
        "smartcity.core.entity as c; print(json.dumps([e.__file__, c.__file__, n.status()]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "SMARTCITY_PURE_PYTHON": "1"},
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    engine_file, entity_file, status = json.loads(done.stdout)
    assert engine_file.endswith("engine.py")
    assert entity_file.endswith("entity.py")
    assert status == {"mode": "sources", "why": "SMARTCITY_PURE_PYTHON is set"}


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package tree with one module, "compiled" (an extension file and a manifest)."""
    package = tmp_path / "smartcity"
    (package / "rules").mkdir(parents=True)
    (package / "rules" / "engine.py").write_text("x = 1\n")
    (package / "rules" / f"engine{SUFFIX}").write_bytes(b"")
    (tmp_path / f"0123abcd__mypyc{SUFFIX}").write_bytes(b"")
    monkeypatch.setattr(native, "HERE", package)
    monkeypatch.setattr(native, "SOURCE_ROOT", tmp_path)
    monkeypatch.setattr(native, "MANIFEST", package / "_native.json")
    monkeypatch.setattr(native, "COMPILED", ("rules.engine",))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("SMARTCITY_PURE_PYTHON", raising=False)
    digest = native._digest(package / "rules" / "engine.py")
    (package / "_native.json").write_text(
        json.dumps({"shared": "0123abcd__mypyc", "sources": {"rules.engine": digest}})
    )
    return package


def test_compiled_modules_are_used_only_while_they_match_their_sources(tree: Path) -> None:
    assert native._stale_reason(native._extensions()) is None
    (tree / "rules" / "engine.py").write_text("x = 2\n")
    assert native._stale_reason(native._extensions()) == (
        "rules.engine.py changed since it was compiled"
    )


def test_a_missing_part_or_a_stray_extension_means_sources(tree: Path) -> None:
    (tree / "rules" / f"other{SUFFIX}").write_bytes(b"")
    assert "rules.other compiled, but no longer in the list" in str(
        native._stale_reason(native._extensions())
    )
    (tree / "rules" / f"other{SUFFIX}").unlink()
    (tree.parent / f"0123abcd__mypyc{SUFFIX}").unlink()
    assert native._stale_reason(native._extensions()) == (
        "the shared mypyc library 0123abcd__mypyc is missing"
    )
    (tree / "_native.json").write_text("{")
    assert "unreadable" in str(native._stale_reason(native._extensions()))
    (tree / "_native.json").unlink()
    assert native._stale_reason(native._extensions()) == "not compiled"


def test_the_sources_load_instead_of_stale_extensions(tree: Path) -> None:
    finder = native._SourcesFirst({"rules.engine"})
    spec = finder.find_spec("smartcity.rules.engine", None)
    assert spec is not None
    assert spec.origin == str(tree / "rules" / "engine.py")
    assert finder.find_spec("smartcity.rules.windowed", None) is None
    assert finder.find_spec("othercity.rules.engine", None) is None


def _run(messages: list[bytes]) -> dict[str, Any]:
    engines = TenantEngines({TENANT: generated_rules(100).model_copy(update={"lateness": 30.0})})
    firings = []
    for message in messages:
        firings += engines.process(decode_change(message))
    firings += engines.engines[TENANT].flush()
    rules = engines.metrics()[TENANT]["rules"]
    return {
        "firings": [
            [f.rule_id, f.key, f.kind, f.at, [e.entity_id for e in f.evidence], f.values]
            for f in firings
        ],
        "counts": {
            rule: [m["events"], m["matches"], m["firings"], m["actions"], m["suppressed"]]
            for rule, m in sorted(rules.items())
        },
        "snapshot": engines.snapshot(),
    }


def test_compiled_and_sources_give_the_same_firings_metrics_and_state(tmp_path: Path) -> None:
    messages = [encode_change(change) for change in build_changes(WORKLOAD)]
    script = (
        "import json, sys\n"
        "from bench.rules import build_changes\n"
        "from smartcity.broker.change_events import encode_change\n"
        "from tests.rules.test_native import WORKLOAD, _run\n"
        "import smartcity.native as n\n"
        "assert n.status()['mode'] == 'sources', n.status()\n"
        "out = _run([encode_change(c) for c in build_changes(WORKLOAD)])\n"
        "json.dump(out, open(sys.argv[1], 'w'), default=str)\n"
    )
    target = tmp_path / "sources.json"
    subprocess.run(
        [sys.executable, "-c", script, str(target)],
        env={**os.environ, "SMARTCITY_PURE_PYTHON": "1", "PYTHONPATH": str(ROOT)},
        check=True,
        cwd=ROOT,
        timeout=600,
    )
    ours = json.loads(json.dumps(_run(messages), default=str))
    theirs = json.loads(target.read_text())
    assert len(ours["firings"]) > 100  # the workload fires: the comparison means something
    assert ours == theirs


def test_nothing_is_built_or_removed_outside_a_checkout(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Installed in site-packages, other packages' mypyc libraries sit beside ours."""
    foreign = tree.parent / f"0123abcd__mypyc{SUFFIX}"
    assert native.build(strict=True) == 1
    assert "not the src/ folder of a checkout" in capsys.readouterr().out
    native.clean()
    assert foreign.exists()  # not ours to remove
    assert not (tree / "rules" / f"engine{SUFFIX}").exists()  # ours: gone
    assert not (tree / "_native.json").exists()
