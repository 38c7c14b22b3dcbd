"""Escalation: incidents left unacknowledged past a per-severity time are escalated.

A sweep (run every `ops_escalation_interval` seconds by a worker) raises an incident still
`new` to level N once N periods of its severity's time (`ops_escalation_minutes`) have passed
since it was opened, up to `ops_escalation_max_level`; each escalation goes on the timeline,
which the fact publisher turns into `operations.incident.escalated.<tenant>` on the bus.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import structlog

from smartcity.core.clock import Clock, isoformat
from smartcity.core.errors import Conflict
from smartcity.storage.incidents import NEW, TimelineEvent
from smartcity.storage.sqlincidents import SqlIncidentStore

log = structlog.get_logger(__name__)
ACTOR = "system:escalation"


class Escalator:
    """Escalate unacknowledged incidents by their severity's time."""

    def __init__(
        self,
        store: SqlIncidentStore,
        clock: Clock,
        minutes: dict[str, float],
        max_level: int,
    ) -> None:
        self.store = store
        self.clock = clock
        self.periods = {
            severity: timedelta(minutes=value) for severity, value in minutes.items() if value > 0
        }
        self.max_level = max_level

    def due_level(self, severity: str, created_at: str, now: datetime) -> int:
        """Return the level an incident of this severity opened then should have by now."""
        period = self.periods.get(severity)
        if period is None:
            return 0
        waited = now - datetime.fromisoformat(created_at)
        return min(self.max_level, int(waited / period))

    def sweep(self) -> int:
        """Escalate every incident that is due; return how many were escalated."""
        if not self.periods:
            return 0
        now = self.clock.now()
        shortest = min(self.periods.values())
        escalated = 0
        for incident in self.store.unacknowledged(isoformat(now - shortest)):
            level = self.due_level(incident.severity, incident.created_at, now)
            if level <= incident.escalation_level:
                continue
            try:
                with self.store.write() as tx:
                    current = tx.get(incident.tenant, incident.id)
                    if current is None or current.status != NEW:
                        continue  # acknowledged since the sweep read it
                    if current.escalation_level >= level:
                        continue  # another process's sweep got there first
                    at = isoformat(now)
                    tx.update(
                        replace(
                            current,
                            escalation_level=level,
                            escalated_at=at,
                            version=current.version + 1,
                            updated_at=at,
                        ),
                        current.version,
                    )
                    minutes = self.periods[current.severity].total_seconds() / 60
                    tx.append(
                        [
                            TimelineEvent(
                                current.tenant,
                                current.id,
                                at,
                                ACTOR,
                                "escalated",
                                {
                                    "level": level,
                                    "severity": current.severity,
                                    "unacknowledgedMinutes": round(
                                        (
                                            now - datetime.fromisoformat(current.created_at)
                                        ).total_seconds()
                                        / 60,
                                        1,
                                    ),
                                    "limitMinutes": minutes,
                                },
                            )
                        ]
                    )
                escalated += 1
            except Conflict:
                log.info("incident changed during escalation; next sweep", incident=incident.id)
        return escalated
