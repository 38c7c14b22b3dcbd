"""CPU accounting from /proc: the server, the database, the bench itself, and everything else."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds a process has used (from /proc/<pid>/stat)."""
    return process_cpu_seconds_at(Path(f"/proc/{pid}/stat"))


def thread_cpu_seconds(native_id: int) -> float:
    """Return the user + system CPU seconds one thread of this process has used."""
    return process_cpu_seconds_at(Path(f"/proc/self/task/{native_id}/stat"))


def process_cpu_seconds_at(stat_file: Path) -> float:
    """Return the user + system CPU seconds in a /proc stat file (a process's or a thread's)."""
    stat = stat_file.read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu_seconds() -> tuple[float, float]:
    """Return (busy, total) CPU seconds of the whole machine so far, over every core."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def postgres_cpu_seconds() -> float:
    """Return the CPU seconds used so far by every running `postgres` process on the machine."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat[stat.index("(") + 1 : stat.rindex(")")] == "postgres":
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds used so far, by whom."""

    wall: float
    machine_busy: float
    machine_total: float
    server: float
    database: float
    bench: float

    @classmethod
    def take(cls, server_pid: int) -> CpuSnapshot:
        """Read the counters now."""
        busy, total = machine_cpu_seconds()
        return cls(
            wall=time.perf_counter(),
            machine_busy=busy,
            machine_total=total,
            server=process_cpu_seconds(server_pid),
            database=postgres_cpu_seconds(),
            bench=time.process_time(),
        )


@dataclass(frozen=True)
class CpuUse:
    """CPU used during a window, in cores (1.0 = one core busy the whole window)."""

    wall: float
    cores: int
    machine: float
    server: float
    database: float
    clients: float

    @property
    def other(self) -> float:
        """Return what processes outside the benchmark used (other work on the machine)."""
        return max(0.0, self.machine - self.server - self.database - self.clients)

    @classmethod
    def between(
        cls, before: CpuSnapshot, after: CpuSnapshot, extra_client_seconds: float = 0.0
    ) -> CpuUse:
        """Return the use between two snapshots; clients = the bench process + extra seconds."""
        wall = after.wall - before.wall
        cores = os.cpu_count() or 1
        share = (after.machine_busy - before.machine_busy) / max(
            after.machine_total - before.machine_total, 1e-9
        )
        return cls(
            wall=wall,
            cores=cores,
            machine=share * cores,
            server=(after.server - before.server) / wall,
            database=(after.database - before.database) / wall,
            clients=(after.bench - before.bench + extra_client_seconds) / wall,
        )


def wait_for_quiet(threshold: float = 0.3, sample: float = 1.0, max_wait: float = 60.0) -> float:
    """Wait (up to max_wait s) until the machine is under `threshold` cores busy; return it."""
    if max_wait <= 0:
        return float("nan")
    deadline = time.monotonic() + max_wait
    while True:
        busy_before, total_before = machine_cpu_seconds()
        time.sleep(sample)
        busy_after, total_after = machine_cpu_seconds()
        share = (busy_after - busy_before) / max(total_after - total_before, 1e-9)
        busy = share * (os.cpu_count() or 1)
        if busy < threshold or time.monotonic() >= deadline:
            return busy
