"""What limits each figure, read off the measurements of the same run."""

from __future__ import annotations

from collections.abc import Sequence

from bench.cpu import CpuUse
from bench.report import NAMES, ms, rate, share
from bench.scenarios import BackendResult, Sizes


def _bound(cpu: CpuUse) -> str:
    if cpu.server >= 0.9:
        return "the server process is CPU-bound on one core (one uvicorn worker: one GIL)"
    if cpu.machine >= 0.9 * cpu.cores:
        return "every core of the machine is busy (server, database and client share them)"
    return "no CPU is saturated: waiting (I/O, locks, round trips) bounds it"


def _cpu(cpu: CpuUse) -> str:
    return (
        f"server {cpu.server:.2f} cores, database {cpu.database:.2f}, "
        f"load generator {cpu.clients:.2f}, other processes {cpu.other:.2f} "
        f"(machine {cpu.machine:.2f} of {cpu.cores})"
    )


def findings(results: Sequence[BackendResult], sizes: Sizes) -> list[str]:
    """Return bullet lines (markdown) on what bounds each figure, from this run's numbers."""
    lines: list[str] = []
    for result in results:
        name = NAMES[result.backend]
        if result.upsert:
            up = result.upsert
            per_entity = up.run.wall / (up.entities * up.rounds)
            db_share = up.rate / up.ceiling.rate
            build = up.ceiling.build_seconds / up.ceiling.entities
            lines.append(
                f"- Batch upsert on {name}: {rate(up.rate)}; CPU: {_cpu(up.cpu)}: "
                f"{_bound(up.cpu)}; "
                f"{per_entity * 1e6:.0f} µs of wall time per entity, of which the same rows "
                f"written directly take {1e6 / up.ceiling.rate:.0f} µs "
                f"({share(db_share)}); parsing an entity and building its rows with the "
                f"store's functions alone takes {build * 1e6:.0f} µs."
            )
        if result.retrieve:
            entity, live = result.retrieve.entity.cpu, result.retrieve.live.cpu
            lines.append(
                f"- Retrieve by id on {name}: {_cpu(entity)}: {_bound(entity)}. "
                f"/health/live: {_cpu(live)}: {_bound(live)}."
            )
        if result.queries:
            slow = [
                f"{line.name} {ms(max(line.run.latencies))}"
                for line in result.queries.lines
                if line.run.latencies
            ]
            lines.append(
                f"- Queries on {name}: slowest single request per kind: {', '.join(slow)}."
            )
    return lines
