"""The operations center's services, built together: incidents, intake, video, escalation."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from smartcity.auth.policy import AccessControl
from smartcity.auth.principal import Caller
from smartcity.broker.changefeed import CommitSignal
from smartcity.bus.base import EventBus
from smartcity.bus.subjects import matches_any
from smartcity.config import Settings
from smartcity.core.clock import Clock
from smartcity.core.errors import BadRequestData, ConfigurationError
from smartcity.core.workers import Periodic, Worker
from smartcity.ingest.deadletters import DeadLetterService
from smartcity.ingest.devices import DeviceService
from smartcity.operations.alerts import IncidentIntake
from smartcity.operations.consumer import SOURCE as ALERT_SOURCE
from smartcity.operations.consumer import AlertConsumer
from smartcity.operations.disaster import DisasterSupport
from smartcity.operations.dispatch import Dispatch, DispatchOptions
from smartcity.operations.escalation import Escalator
from smartcity.operations.facts import FactPublisher, subject_for
from smartcity.operations.fire import FireSupport
from smartcity.operations.incidents import IncidentService
from smartcity.operations.links import LinkSigner
from smartcity.operations.police import PoliceSupport
from smartcity.operations.sop import Procedures
from smartcity.operations.taxonomy import check_type
from smartcity.operations.video import VideoOptions, VideoService
from smartcity.operations.vulnerable import VulnerableSupport
from smartcity.storage.history import SqlHistoryStore
from smartcity.storage.incidents import Incident, TimelineEvent
from smartcity.storage.persons import SqlPersonStore
from smartcity.storage.sqlbase import SqlEntityStore
from smartcity.storage.sqlincidents import IncidentWrite, SqlIncidentStore

log = structlog.get_logger(__name__)


@dataclass
class Operations:
    """Every service of the operations center, sharing one incident store."""

    store: SqlIncidentStore
    incidents: IncidentService
    intake: IncidentIntake
    video: VideoService
    escalator: Escalator
    publisher: FactPublisher
    commits: CommitSignal
    """Set after each incident write of this process: live streams wake at once."""
    dispatch: Dispatch
    police: PoliceSupport
    """112 dispatch support: scene snapshots and escape routes."""
    fire: FireSupport
    """119 dispatch support: site packages and green waves."""
    disaster: DisasterSupport
    vulnerable: VulnerableSupport

    def transition(
        self,
        caller: Caller,
        incident_id: str,
        action: str,
        *,
        expected_version: int | None = None,
        note: str = "",
    ) -> Incident:
        """Move an incident through its lifecycle; closing it ends its video shares at once."""
        grants: list[str] = []

        def on_close(incident: Incident, tx: IncidentWrite) -> list[TimelineEvent]:
            return self.video.end_all(caller, incident, tx, grants)

        changed = self.incidents.transition(
            caller,
            incident_id,
            action,
            expected_version=expected_version,
            note=note,
            on_close=on_close,
        )
        self.video.withdraw(caller.tenant, grants)
        return changed

    def workers(
        self, settings: Settings, bus: EventBus, deadletters: DeadLetterService, clock: Clock
    ) -> list[Worker]:
        """Return the background workers: the escalation sweep, the fact publisher (where the
        bus keeps `operations.>`) and the alert consumer (where `ops_alert_subjects` is set)."""
        workers: list[Worker] = [
            Periodic("incident-escalation", self.escalator.sweep, settings.ops_escalation_interval)
        ]
        if matches_any(settings.bus_subjects, subject_for("created", "_")):
            workers.append(self.publisher)
        else:
            log.warning(
                "bus_subjects do not include operations.>: incident facts are not published",
                bus_subjects=settings.bus_subjects,
            )
        if settings.ops_alert_subjects:
            consumer = AlertConsumer(
                bus,
                settings.ops_alert_subjects,
                self.intake,
                deadletters,
                clock,
                self.vulnerable.take_alert,
            )
            deadletters.register_replayer(ALERT_SOURCE, consumer.replay)
            workers.append(consumer)
        return workers


def build_operations(
    settings: Settings,
    entities: SqlEntityStore,
    access: AccessControl,
    clock: Clock,
    bus: EventBus,
    secret: str,
    devices: DeviceService,
    history: SqlHistoryStore,
) -> Operations:
    """Build the operations services on the platform's database, bus, secret, device
    commands and temporal history."""
    for pattern in settings.ops_video_types:
        incident_type, _, subtype = pattern.partition("/")
        try:
            check_type(incident_type, subtype)
        except BadRequestData as error:
            raise ConfigurationError(f"ops_video_types: {error.detail}") from None
    store = SqlIncidentStore(entities)
    incidents = IncidentService(
        store, access, clock, Procedures.load(settings.ops_sop_file), max_limit=settings.max_limit
    )
    video = VideoService(
        incidents,
        entities,
        access,
        LinkSigner(secret),
        VideoOptions(
            types=tuple(settings.ops_video_types),
            radius=settings.ops_video_radius,
            max_cameras=settings.ops_video_max_cameras,
            share_minutes=settings.ops_video_share_minutes,
            link_seconds=settings.ops_video_link_seconds,
        ),
    )
    dispatch = Dispatch(incidents, access)
    options = DispatchOptions(
        escape_distance=settings.ops_escape_distance,
        escape_routes=settings.ops_escape_routes,
        route_camera_distance=settings.ops_route_camera_distance,
        hydrant_radius=settings.ops_hydrant_radius,
        violation_minutes=settings.ops_violation_minutes,
        trail_minutes=settings.ops_trail_minutes,
    )
    vulnerable = VulnerableSupport(
        dispatch,
        entities,
        history,
        SqlPersonStore(entities),
        settings.ops_trail_minutes,
        settings.ops_sos_agency,
    )
    return Operations(
        dispatch=dispatch,
        police=PoliceSupport(dispatch, entities, options),
        fire=FireSupport(dispatch, entities, devices, options),
        disaster=DisasterSupport(dispatch, entities, settings.ops_timezone, vulnerable.worn),
        vulnerable=vulnerable,
        store=store,
        incidents=incidents,
        intake=IncidentIntake(
            incidents,
            merge_distance=settings.ops_merge_distance,
            merge_minutes=settings.ops_merge_minutes,
        ),
        video=video,
        escalator=Escalator(
            store, clock, settings.ops_escalation_minutes, settings.ops_escalation_max_level
        ),
        publisher=FactPublisher(store, bus, settings.ops_stream_poll_interval),
        commits=CommitSignal(store),
    )
