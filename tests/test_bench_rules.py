"""The rule engine benchmark: its runs, the sources run beside a compiled one, its section."""

from __future__ import annotations

import gc

from bench.rules import RulesSizes, run_rules, section


def test_the_benchmark_runs_the_rules_and_writes_its_section() -> None:
    thresholds = gc.get_threshold()
    result = run_rules(RulesSizes(changes=600, rules=100))
    assert gc.get_threshold() == thresholds  # the serving setting is undone after the runs
    labels = [run.label for run in result.runs]
    assert labels[0] == "no rules (pass-through)"
    assert result.runs[0].firings == 0
    assert result.runs[1].rules == 100
    assert labels[2] == labels[1] + ", lateness 0"  # the same rules without a reorder buffer
    assert result.runs[2].firings == result.runs[1].firings  # (in order: nothing waits)
    assert all(run.slowest_cpu >= run.cpu > 0 for run in result.runs)
    if result.mode == "compiled":  # the sources ran too, with the same firings
        assert labels[1:] == [
            "100 rules, compiled",
            "100 rules, compiled, lateness 0",
            "100 rules, from sources",
        ]
        assert result.runs[3].firings == result.runs[1].firings
    text = section(result, "today")
    assert f"| {labels[1]} | 100 | 600 |" in text
    assert "the goal of 50,000 is" in text
