"""Rule engine benchmark: changes per second through the engine with 100 rules of mixed kinds.

The workload is the district's own mix of readings (traffic detectors every minute, CCTV
analytics, air and noise sensors, parking lots and spots, streetlights, food-waste bins), built
beforehand as the messages the change relay publishes (`encode_change`), in event-time order.
Each timed step is what a rule partition does per change after the bus handed it over: decode
the message (`decode_change`) and give the change to the plug's tenant engines (event time, the
reorder buffer, the watermark, the rule index, the rules). The rules
are the built-in ones plus generated thresholds, windows (by entity, zone and grid cell),
matches with "near" joins, sequences, absences and state rules over the same types. The same
changes run through an engine without rules (its own pass-through cost: event time, the
reorder buffer, the type index) and with the rules, in one process on one core. Figures are
per CPU second of the process as well as per wall second (other work shares the machine).

`python -m bench.rules [--quick] [--profile]` runs it alone; `python -m bench --only rules`
writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import heapq
import json
import os
import pstats
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.cpu import wait_for_quiet
from smartcity import native
from smartcity.broker.change_events import decode_change, encode_change
from smartcity.core.entity import StoredEntity
from smartcity.platform import collect_young_objects_less_often
from smartcity.rules.convergence import TenantEngines
from smartcity.rules.loader import builtin_rule_set, load_rule_set_text, merge_rule_sets
from smartcity.rules.model import RuleSet
from smartcity.storage.base import ChangeKind, ChangeRecord

SECTION = "rules"
INVESTIGATIONS = Path(__file__).with_name("rules_investigations.md")
"""What was found by hand about the engine's cost (cache counts, experiments): kept in the
section, which a run of the benchmark writes anew."""
NO_RULES = "no rules (pass-through)"
LATENESS_0 = ", lateness 0"
GOAL = 50_000
GOAL_SHARE = 0.3
_DEFAULT_THRESHOLDS = gc.get_threshold()
SDM = "https://smartdatamodels.org/dataModel."
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # 18:00 in Seoul: concert evening
ORIGIN = (127.0477, 37.6531)
TENANT = "changdong"

# type, SDM domain, devices, interval (s), attributes -> value makers
KINDS: list[tuple[str, str, int, int]] = [
    ("TrafficFlowObserved", "Transportation", 300, 60),
    ("CrowdFlowObserved", "Transportation", 150, 300),
    ("AirQualityObserved", "Environment", 40, 300),
    ("NoiseLevelObserved", "Environment", 40, 60),
    ("OffStreetParking", "Parking", 25, 60),
    ("ParkingSpot", "Parking", 1000, 600),
    ("Streetlight", "Streetlighting", 1500, 900),
    ("WasteContainer", "WasteManagement", 400, 1800),
]


@dataclass(frozen=True)
class RulesSizes:
    """How much the benchmark runs."""

    changes: int = 120_000
    rules: int = 100
    rounds: int = 3
    """Timed passes of each run, taken in turns (the fastest is reported: see `Run`)."""
    lateness: float = 30.0
    """The allowed lateness of the runs (seconds), but the one without a reorder buffer."""


FULL = RulesSizes()
QUICK = RulesSizes(changes=12_000, rounds=2)


@dataclass
class Run:
    """The timed passes of the changes through one engine set-up: the fastest is reported.

    The passes of every run are taken in turns, so that a busy spell of this shared machine
    falls on all of them alike; the fastest pass is the closest to what the code costs (the
    slowest shows how much the machine varied).
    """

    label: str
    rules: int
    changes: int
    wall: float
    cpu: float
    firings: int
    slowest_cpu: float = 0.0
    """CPU seconds of the slowest pass (the same as `cpu` for a run of one pass)."""

    @property
    def per_wall_second(self) -> float:
        return self.changes / self.wall

    @property
    def per_cpu_second(self) -> float:
        return self.changes / self.cpu


@dataclass
class RulesResult:
    """What the benchmark measured."""

    sizes: RulesSizes
    runs: list[Run]
    kinds: dict[str, int]
    load_before: float
    rules_met_per_change: float
    rules_passed_per_change: float
    """Rules whose filters a change passed (the rest were skipped at their shared filter)."""
    decode_us: float
    """CPU µs per change of `decode_change` alone."""
    reference_ns: float
    """CPU nanoseconds per step of a plain Python loop just before: how fast this core is now."""
    mode: str = "sources"
    """How the engine ran: `compiled` (mypyc, `smartcity/native.py`) or from `sources`."""
    why: str = ""


def _attrs(kind: str, rng: random.Random, level: float) -> dict[str, object]:
    """Return a reading of one device at its level (0-1, a slow random walk per device)."""
    if kind == "TrafficFlowObserved":
        return {
            "averageVehicleSpeed": round(5 + 50 * level, 1),
            "intensity": int(40 * (1 - level)),
            "occupancy": round(1 - level, 2),
            "congested": level < 0.15,
        }
    if kind == "CrowdFlowObserved":
        events = ["none"] * 60 + ["violence", "running", "fall", "illegalParking", "smoke"]
        return {
            "peopleCount": int(80 * level),
            "detectedEvent": rng.choice(events),
            "eventConfidence": round(rng.random(), 2),
        }
    if kind == "AirQualityObserved":
        return {
            "pm10": round(40 + 160 * level, 1),
            "pm25": round(20 + 80 * level, 1),
            "no2": round(level / 10, 3),
        }
    if kind == "NoiseLevelObserved":
        return {"LAeq": round(45 + 35 * level, 1), "LAmax": round(60 + 30 * level, 1)}
    if kind == "OffStreetParking":
        return {"availableSpotNumber": int(120 * level), "occupancy": round(1 - level, 2)}
    if kind == "ParkingSpot":
        return {"status": "occupied" if level > 0.5 else "free"}
    if kind == "Streetlight":
        return {"powerState": "off" if level < 0.1 else "on", "illuminanceLevel": round(level, 2)}
    return {"fillingLevel": round(level, 2), "cargoWeight": round(50 * level, 1)}


def build_changes(count: int, seed: int = 7) -> list[ChangeRecord]:
    """Return `count` changes of the district's devices in event-time order."""
    rng = random.Random(seed)
    devices = []
    for kind, domain, number, interval in KINDS:
        for index in range(number):
            where = [
                round(ORIGIN[0] + rng.uniform(-0.015, 0.015), 6),
                round(ORIGIN[1] + rng.uniform(-0.012, 0.012), 6),
            ]
            devices.append(
                (
                    rng.randrange(interval),
                    interval,
                    kind,
                    domain,
                    f"urn:ngsi-ld:{kind}:bench-{index:05d}",
                    where,
                )
            )
    type_iris = {kind: f"{SDM}{domain}/{kind}" for kind, domain, _, _ in KINDS}
    levels = {device[4]: rng.random() for device in devices}
    due = [(phase, number) for number, (phase, *_rest) in enumerate(devices)]
    heapq.heapify(due)
    changes: list[ChangeRecord] = []
    while len(changes) < count:
        second, number = heapq.heappop(due)
        _, interval, kind, domain, entity_id, where = devices[number]
        heapq.heappush(due, (second + interval, number))
        observed = (START + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ")
        attrs = {
            f"{SDM}{domain}/{name}": [{"type": "Property", "value": value, "observedAt": observed}]
            for name, value in _attrs(kind, rng, _step(levels, entity_id, rng)).items()
        }
        changed = list(attrs)
        attrs[LOCATION] = [
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": where}}
        ]
        entity = StoredEntity(entity_id, [type_iris[kind]], attrs, modified_at=observed)
        changes.append(
            ChangeRecord(len(changes) + 1, TENANT, ChangeKind.UPDATE, observed, entity, changed, {})
        )
    return changes


def _step(levels: dict[str, float], entity_id: str, rng: random.Random) -> float:
    level = min(1.0, max(0.0, levels[entity_id] + rng.uniform(-0.05, 0.05)))
    levels[entity_id] = level
    return level


_TEMPLATES: list[str] = [
    # thresholds
    (
        "- {{id: t{n}, kind: threshold, when: {{type: WasteContainer}}, "
        'value: fillingLevel, raise: ">= {a}", clear: "< {b}"}}'
    ),
    (
        "- {{id: t{n}, kind: threshold, when: {{type: AirQualityObserved}}, "
        'window: {{size: 30m}}, value: avg(pm10), raise: ">= {p}", clear: "< {q}", '
        "for: 10m}}"
    ),
    (
        "- {{id: t{n}, kind: threshold, when: {{type: TrafficFlowObserved}}, "
        'value: averageVehicleSpeed, raise: "< {s}", clear: ">= {u}"}}'
    ),
    (
        "- {{id: t{n}, kind: threshold, when: {{type: NoiseLevelObserved}}, "
        'window: {{count: 5}}, value: max(LAeq), raise: ">= {l}", clear: "< 60"}}'
    ),
    (
        "- {{id: t{n}, kind: threshold, when: {{type: OffStreetParking}}, "
        'value: availableSpotNumber, raise: "< {f}", clear: ">= 30", suppress: 15m}}'
    ),
    # windows
    (
        "- {{id: a{n}, kind: aggregate, when: {{type: TrafficFlowObserved, "
        "inside: bench-zone}}, key: {{zone: [bench-zone]}}, window: {{size: 10m}}, "
        "aggregates: {{v: avg(averageVehicleSpeed), d: distinct(id)}}, "
        'having: "v<{s};d>=3"}}'
    ),
    (
        "- {{id: a{n}, kind: aggregate, when: {{type: TrafficFlowObserved, "
        "q: congested==true}}, key: {{grid: 500}}, window: {{size: 5m}}, "
        'aggregates: {{c: count()}}, having: "c>={c}"}}'
    ),
    (
        "- {{id: a{n}, kind: aggregate, when: {{type: CrowdFlowObserved}}, "
        "key: {{grid: 300}}, window: {{size: 15m, tumbling: true}}, "
        'aggregates: {{p: sum(peopleCount), x: "percentile(peopleCount, 90)"}}, '
        'having: "p>={pp}"}}'
    ),
    (
        "- {{id: a{n}, kind: aggregate, when: {{type: ParkingSpot, "
        'q: status=="occupied"}}, key: global, window: {{size: 10m}}, '
        'aggregates: {{taken: distinct(id)}}, having: "taken>={k}"}}'
    ),
    # matches with joins and schedules
    (
        "- {{id: m{n}, kind: match, when: {{type: CrowdFlowObserved, "
        'q: detectedEvent=="violence";eventConfidence>=0.{g}}}, '
        'require: [{{type: Streetlight, near: 60, q: powerState=="off"}}], '
        "suppress: 10m, actions: [{{command: {{command: brighten}}, "
        "target: {{type: Streetlight, near: 50}}}}]}}"
    ),
    (
        "- {{id: m{n}, kind: match, when: {{type: CrowdFlowObserved, "
        'q: detectedEvent=="fall"}}, schedule: {{night: true}}, suppress: 5m, '
        'actions: [{{alert: {{category: health, description: "{{{{ entity.id }}}}"}}}}]}}'
    ),
    # sequences, absences, states
    (
        "- {{id: s{n}, kind: sequence, sequence: {{first: {{type: CrowdFlowObserved, "
        'q: detectedEvent=="violence"}}, then: {{type: CrowdFlowObserved, '
        'q: detectedEvent=="running"}}, within: {w}m}}}}'
    ),
    (
        "- {{id: s{n}, kind: sequence, sequence: {{first: {{type: CrowdFlowObserved, "
        'q: detectedEvent=="smoke"}}, then: {{type: CrowdFlowObserved, '
        "q: peopleCount>=60}}, within: {w}m, distance: 300}}}}"
    ),
    ("- {{id: b{n}, kind: absence, when: {{type: {absent}}}, after: {ab}m}}"),
    (
        "- {{id: z{n}, kind: state, when: {{type: Streetlight}}, "
        'condition: {{q: powerState=="off";illuminanceLevel<0.{g}}}}}'
    ),
]
_ABSENT = [
    "TrafficFlowObserved",
    "NoiseLevelObserved",
    "OffStreetParking",
    "AirQualityObserved",
    "CrowdFlowObserved",
]


def generated_rules(count: int, seed: int = 11) -> RuleSet:
    """Return the built-in rules plus generated ones, `count` in all."""
    builtin = builtin_rule_set()
    rng = random.Random(seed)
    lines = []
    for n in range(count - len(builtin.rules)):
        template = _TEMPLATES[n % len(_TEMPLATES)]
        lines.append(
            "  "
            + template.format(
                n=n,
                a=round(rng.uniform(0.8, 0.95), 2),
                b=0.7,
                p=rng.randrange(100, 200),
                q=80,
                s=rng.randrange(10, 25),
                u=30,
                l=rng.randrange(70, 85),
                f=rng.randrange(5, 20),
                c=rng.randrange(3, 8),
                pp=rng.randrange(200, 600),
                k=rng.randrange(100, 400),
                g=rng.randrange(5, 9),
                w=rng.randrange(2, 10),
                absent=_ABSENT[n % len(_ABSENT)],
                ab=rng.randrange(3, 20),
            )
        )
    corners = [(127.040, 37.648), (127.055, 37.648), (127.055, 37.658), (127.040, 37.658)]
    zone = str([[list(corner) for corner in [*corners, corners[0]]]])
    text = f"zones:\n  bench-zone: {{type: Polygon, coordinates: {zone}}}\nrules:\n" + "\n".join(
        lines
    )
    return merge_rule_sets([builtin, load_rule_set_text(text, "bench")])


def _timed(
    label: str, rule_set: RuleSet, messages: list[bytes], profile: bool, lateness: float
) -> tuple[Run, TenantEngines]:
    engines = TenantEngines({TENANT: rule_set.model_copy(update={"lateness": lateness})})
    gc.collect()
    collect_young_objects_less_often()  # as a serving process does (`platform.py`)
    profiler = cProfile.Profile() if profile else None
    firings = 0
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    process, decode = engines.process, decode_change
    for message in messages:
        firings += len(process(decode(message)))
    firings += len(engines.engines[TENANT].flush())
    if profiler:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    gc.set_threshold(*_DEFAULT_THRESHOLDS)
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return Run(label, len(rule_set.rules), len(messages), wall, cpu, firings, cpu), engines


def _fastest(passes: list[Run]) -> Run:
    """Return the fastest of a run's passes, with the slowest one's CPU time."""
    fastest = min(passes, key=lambda run: run.cpu)
    fastest.slowest_cpu = max(run.cpu for run in passes)
    return fastest


def decode_only_us(messages: list[bytes]) -> float:
    """Return the CPU time per message of decoding alone (part of every run)."""
    gc.collect()
    decode = decode_change
    started = time.process_time()
    for message in messages:
        decode(message)
    return (time.process_time() - started) / len(messages) * 1e6


def reference_loop_ns(steps: int = 2_000_000) -> float:
    """Return the CPU time of one step of a plain Python loop (a yardstick of the core's speed).

    On a quiet machine CPython 3.11 takes some 25-40 ns; a machine shared with other work
    shows more, and every figure of the run scales with it.
    """
    started = time.process_time()
    total = 0
    for step in range(steps):
        total += step
    return (time.process_time() - started) / steps * 1e9


def sources_run(sizes: RulesSizes) -> Run:
    """Run the rule mix on the engine's sources, in a process that does not load the compiled
    modules (`SMARTCITY_PURE_PYTHON=1`), for comparison."""
    code = (
        "import json, sys\n"
        "from bench.rules import RulesSizes, _sources_main\n"
        "print(json.dumps(_sources_main(RulesSizes(*json.loads(sys.argv[1])))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps([sizes.changes, sizes.rules, 1, sizes.lateness])],
        env={**os.environ, "SMARTCITY_PURE_PYTHON": "1"},
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return Run(**json.loads(done.stdout.strip().splitlines()[-1]))


def _sources_main(sizes: RulesSizes) -> dict[str, object]:
    assert native.status()["mode"] == "sources"
    messages = [encode_change(change) for change in build_changes(sizes.changes)]
    rule_set = generated_rules(sizes.rules)
    run, _ = _timed(
        f"{len(rule_set.rules)} rules, from sources", rule_set, messages, False, sizes.lateness
    )
    return asdict(run)


def run_rules(sizes: RulesSizes, profile: bool = False) -> RulesResult:
    """Run the changes with no rules and with the rule mix; return the figures."""
    wait_for_quiet(max_wait=60.0 if sizes.changes >= FULL.changes else 0.0)
    load_before = os.getloadavg()[0]
    reference = reference_loop_ns()
    messages = [encode_change(change) for change in build_changes(sizes.changes)]
    rule_set = generated_rules(sizes.rules)
    kinds: dict[str, int] = {}
    for rule in rule_set.rules:
        kinds[rule.kind] = kinds.get(rule.kind, 0) + 1
    mode = native.status()
    label = f"{len(rule_set.rules)} rules" + (", compiled" if mode["mode"] == "compiled" else "")
    empties, fulls, prompt = [], [], []
    engines: TenantEngines | None = None
    for number in range(sizes.rounds):
        empties.append(_timed(NO_RULES, RuleSet(), messages, False, sizes.lateness)[0])
        full, engines = _timed(label, rule_set, messages, profile and number == 0, sizes.lateness)
        fulls.append(full)
        prompt.append(_timed(label + LATENESS_0, rule_set, messages, False, 0.0)[0])
    assert engines is not None
    runs = [_fastest(empties), _fastest(fulls), _fastest(prompt)]
    if mode["mode"] == "compiled":
        runs.append(sources_run(sizes))
    rule_metrics = engines.metrics()[TENANT]["rules"].values()
    met = sum(m["events"] for m in rule_metrics) / len(messages)
    passed = sum(m["matches"] for m in rule_metrics) / len(messages)
    decoding = decode_only_us(messages)
    reference = (reference + reference_loop_ns()) / 2
    return RulesResult(
        sizes,
        runs,
        dict(sorted(kinds.items())),
        load_before,
        met,
        passed,
        decoding,
        reference,
        mode["mode"],
        mode["why"],
    )


def print_result(console: Console, result: RulesResult) -> None:
    """Print the figures as a table."""
    table = Table(title="rule engine: changes through the engine on one core")
    for column in (
        "run",
        "rules",
        "changes",
        "firings",
        "changes/s (CPU)",
        "changes/s (wall)",
        "µs/change (CPU)",
        "slowest pass",
    ):
        table.add_column(column, justify="right")
    for run in result.runs:
        table.add_row(
            run.label,
            str(run.rules),
            f"{run.changes:,}",
            f"{run.firings:,}",
            f"{run.per_cpu_second:,.0f}",
            f"{run.per_wall_second:,.0f}",
            f"{1e6 * run.cpu / run.changes:.1f}",
            f"{1e6 * run.slowest_cpu / run.changes:.1f}",
        )
    console.print(table)
    console.print(
        f"share of pass-through (CPU): {share(result):.0%}; "
        f"rules met per change: {result.rules_met_per_change:.1f} "
        f"({result.rules_passed_per_change:.1f} past their filters); "
        f"decoding alone: {result.decode_us:.1f} µs/change; "
        f"load average before: {result.load_before:.1f}; "
        f"reference loop: {result.reference_ns:.0f} ns per step"
    )


def share(result: RulesResult) -> float:
    """Return the rate with rules as a share of the pass-through rate (CPU figures)."""
    return result.runs[1].per_cpu_second / result.runs[0].per_cpu_second


def _sources(result: RulesResult) -> Run | None:
    return next((run for run in result.runs if run.label.endswith("from sources")), None)


def section(result: RulesResult, now: str) -> str:
    """Return the docs section of the benchmark."""
    kinds = ", ".join(f"{count} {kind}" for kind, count in result.kinds.items())
    how = (
        "compiled by mypyc (`make native`, `smartcity/native.py`)"
        if result.mode == "compiled"
        else f"from its Python sources ({result.why})"
    )
    lines = [
        f"Measured {now} by `python -m bench --only rules`; the machine's load average was "
        f"{result.load_before:.1f} just before. "
        f"{result.sizes.changes:,} changes of the district's device mix (traffic detectors every "
        "minute, CCTV analytics, air and noise sensors, parking lots and spots, streetlights, "
        "food-waste bins), each as the message the change relay publishes, decoded "
        "(`decode_change`) and given to the convergence plug's tenant engines "
        "(`rules.convergence.TenantEngines`), as a rule partition does, in one process on one "
        f"core (allowed lateness {result.sizes.lateness:g} s; the garbage collector set as a "
        "serving process sets it). "
        f"The engine ran {how}. Each run made {result.sizes.rounds} passes, taken in turns with "
        "the other runs' passes; the table gives the fastest pass, and the slowest for how much "
        "this shared machine varied. "
        f"The rules: {kinds} (the built-in ones and generated ones over the same types). "
        f"Each change met {result.rules_met_per_change:.1f} rules of its type on average and "
        f"passed the filters of {result.rules_passed_per_change:.1f} (the index tests each "
        "shared filter once and calls only the rules behind the filters passed; rules that keep "
        "the same sliding windows share them). A plain Python loop step took "
        f"{result.reference_ns:.0f} ns of CPU during the run (some 25-30 ns on a quiet machine; "
        "every figure below scales with it).",
        "",
        "| run | rules | changes | firings | changes/s per CPU second | changes/s (wall) "
        "| µs per change (CPU) | slowest pass (µs) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in result.runs:
        lines.append(
            f"| {run.label} | {run.rules} | {run.changes:,} | {run.firings:,} | "
            f"{run.per_cpu_second:,.0f} | {run.per_wall_second:,.0f} | "
            f"{1e6 * run.cpu / run.changes:.1f} | {1e6 * run.slowest_cpu / run.changes:.1f} |"
        )
    rate = result.runs[1].per_cpu_second
    lines += [
        "",
        f"With {result.runs[1].rules} rules the engine takes "
        f"{rate:,.0f} changes per CPU second: the goal of {GOAL:,} is "
        + ("met" if rate >= GOAL else "not met")
        + f". Decoding alone took {result.decode_us:.1f} µs per change, and is part of every "
        "run. Without rules a change goes no further than decoding and the check of its type "
        "(the engine skips the changes of types no rule reads: they do not even move its time), "
        f"so the pass-through is decoding, and the engine with rules runs at {share(result):.0%} "
        f"of it (the goal asks for {GOAL_SHARE:.0%}: "
        + ("met" if share(result) >= GOAL_SHARE else "not met")
        + "). That share would need the rules a change meets to cost no more than about "
        "twice its decoding; each costs some microseconds (more when it fires: evidence kept, "
        "actions rendered).",
    ]
    full, prompt = result.runs[1], result.runs[2]
    lines[-1] += (
        f" With an allowed lateness of 0 (no reorder buffer: a change meets the rules as soon as "
        f"it is the newest) the same rules take {1e6 * prompt.cpu / prompt.changes:.1f} µs per "
        f"change instead of {1e6 * full.cpu / full.changes:.1f}: while changes wait for the "
        f"watermark ({result.sizes.lateness:g} s of them), they leave the processor's caches, "
        "and each is read and freed again from memory when its turn comes."
    )
    sources = _sources(result)
    if sources is not None:
        lines[-1] += (
            f" The same engine from its sources runs {sources.per_cpu_second:,.0f} "
            "changes per CPU second, the same firings."
        )
    return "\n".join([*lines, "", INVESTIGATIONS.read_text().rstrip("\n")])


def main() -> None:
    """Run the benchmark alone and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.rules")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of the run with rules"
    )
    args = parser.parse_args()
    print_result(Console(), run_rules(QUICK if args.quick else FULL, args.profile))


if __name__ == "__main__":
    main()
