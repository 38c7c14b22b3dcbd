"""`smartcity rules ...`: validate, apply (versions), list, enable/disable, firings, backtest."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from smartcity.auth.principal import Caller
from smartcity.cli import main
from smartcity.config import load_settings
from smartcity.platform import build_platform
from tests.rules.support import TEMPERATURE, write_reading
from tests.rules.threshold_engine import ThresholdPlug

RULES = f"""rules:
  - id: hot
    attribute: {TEMPERATURE}
    above: 30
    severity: high
    actions:
      - kind: alert
        params: {{category: environment}}
  - id: very-hot
    attribute: {TEMPERATURE}
    above: 35
"""


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCITY_DATABASE_URL", f"sqlite:///{tmp_path / 'city.db'}")
    monkeypatch.setenv("SMARTCITY_AUTH_SECRET", "a-secret-of-at-least-thirty-two-characters")
    monkeypatch.setenv("SMARTCITY_CONTEXT_OFFLINE", "true")


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install the threshold engine as the platform's engine."""
    monkeypatch.setattr("smartcity.platform.engine_plug", lambda *_settings: ThresholdPlug())


def test_the_platform_engine_refuses_rules_it_cannot_run_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)  # the threshold engine's language, not the convergence engine's
    assert main(["rules", "validate", str(rules)]) == 1
    out = capsys.readouterr().out
    assert "hot: not valid" in out
    assert "kind: Field required" in out
    assert main(["rules", "list"]) == 0


@pytest.mark.usefixtures("engine")
def test_rules_are_validated_applied_as_versions_listed_and_disabled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    assert main(["rules", "validate", str(rules)]) == 0
    assert "hot: valid" in capsys.readouterr().out
    assert main(["rules", "apply", str(rules), "--tenant", "dobong"]) == 0
    assert "very-hot: version 1" in capsys.readouterr().out
    rules.write_text(RULES.replace("above: 35", "above: 36"))
    assert main(["rules", "apply", str(rules), "--tenant", "dobong"]) == 0
    applied = capsys.readouterr().out
    assert "hot: unchanged" in applied
    assert "very-hot: version 2" in applied
    assert main(["rules", "disable", "hot", "--tenant", "dobong"]) == 0
    assert main(["rules", "list", "--tenant", "dobong"]) == 0
    listed = capsys.readouterr().out
    assert "very-hot" in listed
    assert "no" in listed
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: cold\nabove: freezing\n")
    assert main(["rules", "validate", str(broken)]) == 1
    assert "`above` must be a number" in capsys.readouterr().out
    assert main(["rules", "apply", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["rules", "enable", "nothing"]) == 1


@pytest.mark.usefixtures("engine")
def test_a_backtest_prints_what_a_rule_would_have_fired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    assert main(["rules", "apply", str(rules)]) == 0
    platform = build_platform(load_settings(None), rules_engine=ThresholdPlug())
    try:
        for minute, value in enumerate([20, 33, 25]):
            write_reading(
                platform, "", "urn:ngsi-ld:Thermo:1", value, f"2026-11-27T10:0{minute}:00Z"
            )
        assert platform.rules.list_rules(Caller.system(""))
    finally:
        platform.close()
    capsys.readouterr()
    window = ["--from", "2026-11-27T10:00:00Z", "--to", "2026-11-27T11:00:00+09:00"]
    assert main(["rules", "backtest", "hot", *window]) == 1
    assert "start before its end" in capsys.readouterr().err
    window[-1] = "2026-11-27T11:00:00Z"
    assert main(["rules", "backtest", "hot", *window, "--json"]) == 0
    fired = orjson.loads(capsys.readouterr().out)
    assert [(f["kind"], f["at"]) for f in fired] == [
        ("raise", "2026-11-27T10:01:00Z"),
        ("clear", "2026-11-27T10:02:00Z"),
    ]
    assert main(["rules", "backtest", "hot", *window]) == 0
    assert "2 firing(s) from 3 change(s)" in capsys.readouterr().out
    assert main(["rules", "firings"]) == 0


def test_the_built_in_rules_are_applied_once_and_what_an_operator_did_is_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from smartcity.rules.commands import install_builtin_rules
    from smartcity.rules.loader import builtin_rule_documents

    shipped = {doc["id"] for doc in builtin_rule_documents()}
    assert {"assault-at-night", "waste-bin-full", "jungnangcheon-flood"} <= shipped
    assert main(["rules", "apply", "--builtin"]) == 0
    assert capsys.readouterr().out.count(": version 1") == len(shipped)
    platform = build_platform(load_settings())
    try:
        system = Caller.system()
        assert {record.id for record in platform.rules.list_rules(system)} == shipped
        platform.rules.set_enabled(system, "waste-bin-full", False)
        platform.rules.delete(system, "pm10-watch")
        counts = install_builtin_rules(platform.rules, system)
        assert counts == {"created": 0, "updated": 0, "unchanged": len(shipped)}
        assert platform.rules.get(system, "waste-bin-full").enabled is False
        stored = {record.id for record in platform.rules.list_rules(system)}
        assert stored == shipped - {"pm10-watch"}
    finally:
        platform.close()
    assert main(["rules", "apply", "--builtin", "--tenant", "nowon"]) == 0
    with pytest.raises(SystemExit) as refused:  # a file or --builtin
        main(["rules", "apply"])
    assert refused.value.code == 2
    assert "one of the arguments file --builtin is required" in capsys.readouterr().err
