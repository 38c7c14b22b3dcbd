"""Which rules a change meets: rules indexed by entity type, then gated by their shared filters.

Rules of one type often share a trigger filter (the same `when`, watch list, q and zone), so the
index groups them behind one gate per filter (and tenant restriction): a change tests each gate
once, and the rules behind a gate it does not pass are not called at all. The rules behind the
gates it passes are called in the order of their ids, as if each were tested one by one, so
timers and firings come out in the same order (twins that share a sliding window are called
together at the first one's place, and their firings put back in id order: `twins.TwinBank`).
A gate's filter is exactly the filter every rule behind it would test first (and every rule
kind does nothing else with a change that fails it), so no rule is skipped that could have done
anything with the change.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from itertools import pairwise
from operator import itemgetter
from typing import Final

from mypy_extensions import i64

from smartcity.rules.compile import CompiledFilter
from smartcity.rules.compiled import TIME_ONE_IN, Callee, RuleRuntime
from smartcity.rules.events import Env, Event, filter_passes
from smartcity.rules.firing import Firing, gathered
from smartcity.rules.twins import ThresholdBank, TwinBank, bank_twins, banked
from smartcity.rules.windowed import ThresholdRule

Member = tuple[int, RuleRuntime, str]
"""A rule behind a gate: its place in id order, the rule and the role the filter plays."""


Call = tuple[int, Callee, str]
_PLACE = itemgetter(0)
_MAX_MERGED: Final = 4096
"""Sets of gates kept merged per type (there are a few; a bound all the same)."""


class Gate:
    """Rules of one entity type that share a trigger filter and tenant restriction."""

    __slots__ = ("calls", "check", "members", "seen", "tenants")

    def __init__(self, check: CompiledFilter, tenants: frozenset[str] | None) -> None:
        self.check = check
        self.tenants = tenants
        self.members: list[Member] = []
        self.calls: list[Call] = []
        """What a change that passes is given to: the members, thresholds banked together."""
        self.seen = 0
        """Changes that reached the gate since its count was last handed to its rules."""


class RuleIndex:
    """The enabled rules by entity type, behind their gates."""

    def __init__(self, rules: Iterable[RuleRuntime]) -> None:
        self.by_type: dict[str, list[Gate]] = {}
        self.rules: dict[str, list[RuleRuntime]] = {}
        """Every rule indexed under a type (each once), for deletes."""
        self.draws: i64 = 1
        """A pseudo-random sequence that picks the changes whose evaluation is timed (a 64-bit
        integer: compiled, the next draw's product overflows a tagged int and took a big-integer
        multiplication; it stays below 2**62, so the numbers are the same)."""
        self.merged: dict[str, dict[int, list[Call]]] = {}
        """The calls of sets of a type's gates passed together, by type and set (`_merged`)."""
        gates: dict[tuple[str, int, frozenset[str] | None], Gate] = {}
        position = 0
        for runtime in rules:
            for role, check in runtime.triggers():
                for type_name in sorted(check.types):
                    found = gates.get((type_name, check.slot, runtime.tenants))
                    if found is None:
                        found = gates[(type_name, check.slot, runtime.tenants)] = Gate(
                            check, runtime.tenants
                        )
                        self.by_type.setdefault(type_name, []).append(found)
                    found.members.append((position, runtime, role))
                    position += 1
                    listed = self.rules.setdefault(type_name, [])
                    if runtime not in listed:
                        listed.append(runtime)
        for type_gates in self.by_type.values():
            _bank(type_gates)

    def count_events(self) -> None:
        """Hand each gate's count of the changes it saw to its rules' metrics."""
        for gates in self.by_type.values():
            for gate in gates:
                if gate.seen:
                    for _, runtime, _ in gate.members:
                        runtime.metrics.events += gate.seen
                    gate.seen = 0

    def dispatch(self, gates: list[Gate], event: Event, env: Env) -> list[Firing] | None:
        """Give a change to the rules behind the gates it passes; return what fired (None:
        nothing, as for most changes; no list is made for them)."""
        zones, tenant, memo = env.zones, event.tenant, event.memo
        ready: list[Call] | None = None
        passed_gates = 0  # a bit for each gate passed, by its place among the type's gates
        several = False
        for bit, gate in enumerate(gates):
            if gate.tenants is not None and tenant not in gate.tenants:
                continue
            gate.seen += 1
            check = gate.check
            passed = memo.get(check.slot)
            if passed is None:
                passed = memo[check.slot] = filter_passes(check, event, zones)
            if not passed:
                continue
            passed_gates |= 1 << bit
            if ready is None:
                ready = gate.calls
            else:
                several = True
        if ready is None:
            return None
        if several:
            ready = self._merged(event.type_name, gates, passed_gates)
        fired: list[Firing] | None = None
        places: list[int] = []
        reorder = False
        self.draws = draw = (self.draws * 1103515245 + 12345) & 0x7FFFFFFF
        timed = event.timed = (draw >> 16) % TIME_ONE_IN == 0
        started = time.perf_counter() if timed else 0.0
        for place, runtime, role in ready:
            found = runtime.on_event(role, event)
            if found:
                fired = gathered(fired, found)
                if isinstance(runtime, TwinBank):
                    places.extend(runtime.fired_places)
                    reorder = True
                else:
                    places.extend([place] * len(found))
            if timed:
                ended = time.perf_counter()
                runtime.metrics.seconds += (ended - started) * TIME_ONE_IN
                started = ended
        if fired is None:
            return None
        if reorder:  # twins fired at their lead's place: hand the firings out in id order
            order = sorted(range(len(fired)), key=places.__getitem__)
            return [fired[index] for index in order]
        return fired

    def _merged(self, type_name: str, gates: list[Gate], passed: int) -> list[Call]:
        """Return the calls of several gates a change passed (`passed`, a bit a gate), in id
        order: merged once for each set of gates changes pass together (a few per type)."""
        merged = self.merged.get(type_name)
        if merged is None:
            merged = self.merged[type_name] = {}
        found = merged.get(passed)
        if found is None:
            if len(merged) >= _MAX_MERGED:
                merged.clear()
            calls = [
                call for bit, gate in enumerate(gates) if passed >> bit & 1 for call in gate.calls
            ]
            found = merged[passed] = sorted(calls, key=_PLACE)
        return found


def _bank(gates: list[Gate]) -> None:
    """Make each gate's calls: its members, twins banked, thresholds that follow each other
    banked."""
    places = sorted(place for gate in gates for place, _, _ in gate.members)
    following = dict(pairwise(places))
    for gate in gates:
        twins = bank_twins([(place, runtime) for place, runtime, _ in gate.members])
        in_banks: set[int] = set()
        for group in twins.values():
            bank = TwinBank(group)
            role = next(role for place, _, role in gate.members if place == group[0][0])
            gate.calls.append((group[0][0], bank, role))
            in_banks.update(place for place, _ in group)
        run: list[Member] = []
        for member in gate.members:
            if member[0] in in_banks:
                continue
            shares = banked(member[1])
            if (
                shares is not None
                and run
                and banked(run[-1][1]) == shares
                and following.get(run[-1][0]) == member[0]
            ):
                run.append(member)
                continue
            _flush(gate, run)
            run = [member] if shares is not None else []
            if shares is None:
                gate.calls.append(member)
        _flush(gate, run)
        gate.calls.sort(key=_PLACE)


def _flush(gate: Gate, run: list[Member]) -> None:
    if len(run) > 1:
        rules = [rule for _, rule, _ in run if isinstance(rule, ThresholdRule)]
        gate.calls.append((run[0][0], ThresholdBank(rules), run[0][2]))
    else:
        gate.calls.extend(run)
