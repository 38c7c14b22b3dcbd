"""The simulation: the district's models moved on minute by minute, and what its devices send.

`Simulation.advance()` moves every model one simulated minute on (traffic, parking, waste, the
crowds of an event) and returns that minute; `emissions(minute)` returns the messages the
devices send during it, each with its simulated time and its payload bytes, in a stable order.
Randomness comes from one generator per minute and purpose, seeded with the seed and the
minute, so a run is the same byte for byte for the same seed and scenario, whenever it runs and
however fast; skipping ahead (`skip_to`) moves the models on without emitting.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from smartcity.core.clock import isoformat
from smartcity.core.durations import parse_duration
from smartcity.sim import lights, waste
from smartcity.sim.crowds import CrowdModel, beacon_report, camera_report
from smartcity.sim.devices import SimDevice, build_devices
from smartcity.sim.emission import Emission
from smartcity.sim.environment import EnvironmentModel
from smartcity.sim.events import ConcertFlows, ConcertModel
from smartcity.sim.faults import FaultPlan
from smartcity.sim.generate import Asset, generate_assets
from smartcity.sim.geodesy import Planar
from smartcity.sim.incidents import Incidents
from smartcity.sim.model import District
from smartcity.sim.parking import ParkingModel, poisson
from smartcity.sim.patterns import FOOTFALL, TRAFFIC, Weather, hourly, sun_times, warmth, weather_at
from smartcity.sim.roads import RoadGraph
from smartcity.sim.scenario import Scenario
from smartcity.sim.traffic import LinkState, TrafficModel

MINUTE = timedelta(minutes=1)
HEARTBEAT_ONLY = frozenset({"parking-spot", "food-waste-bin"})
"""Kinds whose periodic report is only a heartbeat, skipped in a minute they report a change."""
VEHICLE_LENGTH = 7.5
"""Metres a car takes on a detector loop (its length and the loop's)."""


@dataclass(frozen=True, slots=True)
class CommandAnswer:
    """How a device took a command, and the report it sends of its new state (if any)."""

    ok: bool
    info: str
    report: Emission | None = None


@dataclass(slots=True)
class Minute:
    """One simulated minute: its conditions and what the models did in it."""

    start: datetime
    local: datetime
    weather: Weather
    day_type: str
    footfall: float
    school: float
    warmth: float
    links: list[LinkState]
    flows: list[ConcertFlows]
    spot_changes: list[tuple[str, int, bool]] = field(default_factory=list)
    weighings: list[waste.Weighing] = field(default_factory=list)
    emptied: list[tuple[str, int]] = field(default_factory=list)

    @property
    def index(self) -> int:
        """Return the minute's number since 1970 (seeds its random generators)."""
        return int(self.start.timestamp()) // 60


def school_level(local: datetime, day_type: str) -> float:
    """Return how busy school gates are (pupils arriving and leaving on weekdays)."""
    if day_type != "weekday":
        return 0.05
    hours = local.hour + local.minute / 60
    if 7.5 <= hours < 8.75:
        return 1.0
    if 12.5 <= hours < 13.5 or 14.5 <= hours < 16.5:
        return 0.7
    if 8.75 <= hours < 17.0:
        return 0.15
    return 0.03


class Simulation:
    """A district under a scenario, for one seed."""

    def __init__(
        self,
        district: District,
        scenario: Scenario,
        seed: int,
        *,
        assets: list[Asset] | None = None,
        graph: RoadGraph | None = None,
    ) -> None:
        self.district = district
        self.scenario = scenario
        self.seed = seed
        self.zone = ZoneInfo(district.timezone)
        self.graph = graph or RoadGraph(district)
        assets = assets if assets is not None else generate_assets(district, self.graph)
        self.devices = build_devices(district, assets, seed)
        self.by_id = {device.id: device for device in self.devices}
        self.by_subject = {(d.kind.name, d.subject): d for d in self.devices}
        positions = [node.position for node in district.nodes.values()]
        self.centre = (
            sum(p[0] for p in positions) / len(positions),
            sum(p[1] for p in positions) / len(positions),
        )
        self.planar = Planar(self.centre)
        self.traffic = TrafficModel(district, self.graph)
        self.concerts = [ConcertModel(concert, district) for concert in scenario.concerts]
        venue = self.concerts[0].venue if self.concerts else None
        self.venue_node = self.graph.nearest_node(venue) if venue else None
        self.parking = ParkingModel(district.parking, venue)
        self.crowds = CrowdModel(district, self.planar, self.concerts)
        self.environment = EnvironmentModel(self.traffic, self.planar)
        self._event_origins = self._origins()
        self._build_models(venue)
        self.incidents = Incidents(
            scenario,
            district,
            self.graph,
            self.planar,
            {d.id: d.position for d in self._of("cctv-analytics")},
            {d.subject: d.position for d in self._of("streetlight")},
            self.traffic.index,
            seed,
        )
        self.broken = lights.broken_lamps(self.lamps, seed) | self.incidents.dark_lamps
        self.boosts: dict[str, lights.Boost] = {}
        """Lamps brightened by a command, by lamp id."""
        self.faults = FaultPlan(scenario.faults, self.devices, seed, scenario.source)
        self.cursor = self._floor(scenario.start)
        self._settle(self.cursor)

    # -- building -----------------------------------------------------------------------------

    def _of(self, kind: str) -> list[SimDevice]:
        return [device for device in self.devices if device.kind.name == kind]

    def _build_models(self, venue: Any) -> None:
        for device in self._of("cctv-analytics"):
            self.crowds.add_sensor(device.id, device.position, 40.0)
        for device in self._of("ble-beacon"):
            self.crowds.add_sensor(device.id, device.position, 60.0)
        for device in self._of("air-quality"):
            self.environment.add_station(device.subject, device.position, venue)
        self.lamps = lights.make_lamps(
            [(d.subject, float(d.extra["height"])) for d in self._of("streetlight")], self.seed
        )
        bins = self._of("food-waste-bin")
        complexes = {place.id: place for place in self.district.places_of("apartment")}
        per_complex: dict[str, int] = {}
        for device in bins:
            per_complex[device.extra["complex"]] = per_complex.get(device.extra["complex"], 0) + 1
        self.bins = waste.make_bins(
            [
                (
                    d.subject,
                    d.extra["complex"],
                    int(complexes[d.extra["complex"]].extra.get("households", 0)),
                    per_complex[d.extra["complex"]],
                )
                for d in bins
            ],
            self.seed,
        )
        self.lamp_by_id = {lamp.id: lamp for lamp in self.lamps}
        self.bin_by_id = {state.id: state for state in self.bins}

    def _origins(self) -> list[tuple[str, float]]:
        """Return where event traffic comes from: the gateways (70 %) and the zones (30 %)."""
        gateways = self.traffic.gateways
        zones = sorted(
            {self.graph.nearest_node(_centre(zone.geometry)) for zone in self.district.zones}
        )
        origins = [(node, 0.7 / max(len(gateways), 1)) for node in gateways]
        origins += [(node, 0.3 / max(len(zones), 1)) for node in zones]
        return origins

    @staticmethod
    def _floor(moment: datetime) -> datetime:
        return moment.replace(second=0, microsecond=0)

    def _settle(self, moment: datetime) -> None:
        """Put the stateful models where they would be at a moment of an ordinary day."""
        local = moment.astimezone(self.zone)
        weekend = self.scenario.day_type_on(local.date()) != "weekday"
        rng = random.Random(f"{self.seed}:settle")
        self.parking.settle(rng, local, weekend, self.scenario.demand)
        waste.settle(self.bins, local)
        for _ in range(3):  # let last minute's travel times settle the route split
            self._traffic(moment, local, weather_at(self.scenario, moment, self.zone), [])

    # -- moving on ----------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Tell whether the scenario's end is reached."""
        return self.cursor >= self.scenario.end

    def _rng(self, minute: int, purpose: str) -> random.Random:
        return random.Random(f"{self.seed}:{minute}:{purpose}")

    def _traffic(
        self, start: datetime, local: datetime, weather: Weather, flows: list[ConcertFlows]
    ) -> list[LinkState]:
        day_type = self.scenario.day_type_on(local.date())
        demand = hourly(TRAFFIC[day_type], local) * self.scenario.demand
        if weather.rain > 0:
            demand *= 1.1
        extra = []
        if self.venue_node is not None:
            for flow in flows:
                for origin, share in self._event_origins:
                    if flow.cars_arriving > 0:
                        extra.append((origin, self.venue_node, flow.cars_arriving * 60 * share))
                    if flow.cars_leaving > 0:
                        extra.append((self.venue_node, origin, flow.cars_leaving * 60 * share))
        heavy = weather.rain >= 5
        return self.traffic.step(
            demand,
            extra,
            speed_factor=0.85 if heavy else (0.93 if weather.rain > 0 else 1.0),
            capacity_factor=0.9 if heavy else (0.95 if weather.rain > 0 else 1.0),
            closures=self.incidents.closures(start),
        )

    def advance(self) -> Minute:
        """Move every model one minute on and return that minute."""
        start = self.cursor
        local = start.astimezone(self.zone)
        day_type = self.scenario.day_type_on(local.date())
        weekend = day_type != "weekday"
        weather = weather_at(self.scenario, start, self.zone)
        flows = [c.flows(start, start + MINUTE) for c in self.concerts if c.active(start)]
        links = self._traffic(start, local, weather, flows)
        number = int(start.timestamp()) // 60
        leaving_share = 0.0
        for concert in self.concerts:
            left_before = concert.left(start)
            if left_before < 1:
                leaving_share = max(
                    leaving_share, (concert.left(start + MINUTE) - left_before) / (1 - left_before)
                )
        arriving = sum(flow.cars_arriving for flow in flows)
        changes = self.parking.step(
            self._rng(number, "parking"),
            local,
            weekend,
            self.scenario.demand,
            event_arriving=arriving,
            event_leaving_share=leaving_share,
        )
        weighings, emptied = waste.step(
            self.bins, self._rng(number, "waste"), local, self.scenario.demand
        )
        footfall = hourly(FOOTFALL[day_type], local) * min(self.scenario.demand, 2.0)
        self.cursor = start + MINUTE
        return Minute(
            start=start,
            local=local,
            weather=weather,
            day_type=day_type,
            footfall=footfall,
            school=school_level(local, day_type),
            warmth=warmth(local.hour + local.minute / 60),
            links=links,
            flows=flows,
            spot_changes=changes,
            weighings=weighings,
            emptied=emptied,
        )

    def skip_to(self, moment: datetime) -> int:
        """Move the models on to a moment without emitting; return the minutes skipped."""
        target = self._floor(moment)
        skipped = 0
        while self.cursor < target:
            self.advance()
            skipped += 1
        return skipped

    def run(self, until: datetime | None = None) -> Iterator[tuple[Minute, list[Emission]]]:
        """Yield each minute and its emissions until `until` or the scenario's end."""
        end = min(until, self.scenario.end) if until is not None else self.scenario.end
        while self.cursor < end:
            minute = self.advance()
            yield minute, self.emissions(minute)

    # -- what the devices send ----------------------------------------------------------------

    def emissions(self, minute: Minute) -> list[Emission]:
        """Return the messages the devices send during a minute, in time then device order."""
        noise = self._rng(minute.index, "noise")
        events = self._rng(minute.index, "events")
        sun = sun_times(minute.local.date(), self.centre[0], self.centre[1], self.district.timezone)
        found: list[tuple[datetime, int, int, SimDevice, dict[str, Any]]] = []
        sequence = 0

        def emit(at: datetime, device: SimDevice, values: dict[str, Any]) -> None:
            nonlocal sequence
            sequence += 1
            found.append((at, device.number, sequence, device, values))

        self._events(minute, sun, events, emit)
        # A report on change stands for the heartbeat of that minute (its state is current).
        reported = {item[3].number for item in found if item[3].kind.name in HEARTBEAT_ONLY}
        second0 = minute.index * 60
        for device in self.devices:
            interval = device.kind.interval
            first = math.ceil((second0 - device.phase) / interval) * interval + device.phase
            if first < second0 + 60 and device.number not in reported:
                at = minute.start + timedelta(seconds=first - second0)
                emit(at, device, self._periodic(device, minute, at, sun, noise))
        found.sort(key=lambda item: (item[0], item[1], item[2]))
        emissions = []
        sent: set[tuple[int, datetime, bytes]] = set()
        for at, _, number, device, values in found:
            emission = self.faults.apply(device, at, values, self.zone, number)
            if emission is None:
                continue
            key = (device.number, at, emission.payload)
            if key in sent:
                continue  # a device does not send the same message twice in one second
            sent.add(key)
            emissions.append(emission)
        return emissions

    def _periodic(
        self,
        device: SimDevice,
        minute: Minute,
        at: datetime,
        sun: Any,
        rng: random.Random,
    ) -> dict[str, Any]:
        kind = device.kind.name
        if kind == "traffic-detector":
            return self._detector(device, minute, rng)
        if kind == "cctv-analytics":
            return self._camera(device, minute, rng, None)
        if kind == "parking-lot":
            state = self.parking.by_id[device.subject]
            spots = state.lot.total_spots
            return {
                "free": state.free,
                "used": state.occupied,
                "rate": round(state.occupied / spots * 100, 1),
                "in": state.entries,
                "out": state.exits,
            }
        if kind == "parking-spot":
            lot, index = device.subject.split("#")
            return {"st": 1 if self.parking.by_id[lot].spots[int(index)] else 0}
        if kind == "streetlight":
            return self._lamp(device.subject, at, sun).values()
        if kind == "food-waste-bin":
            return self.bin_by_id[device.subject].values()
        if kind == "air-quality":
            factors = (rng.gauss(1, 0.05), rng.gauss(1, 0.05), rng.gauss(1, 0.04))
            plumes = self.incidents.plumes(at)
            return self.environment.air(
                device.subject, minute.links, minute.weather, minute.warmth, plumes, factors
            )
        if kind == "noise":
            crowd = sum(flow.present for flow in minute.flows)
            jitter = (rng.gauss(0, 0.8), rng.gauss(0, 3))
            return self.environment.noise(
                device.subject, minute.links, minute.weather, crowd, jitter
            )
        if kind == "ble-beacon":
            people = self._people(device, minute)
            return {"n": beacon_report(people, rng.gauss(1, 0.1))}
        raise ValueError(f"no model for device kind {kind}")

    def _detector(self, device: SimDevice, minute: Minute, rng: random.Random) -> dict[str, Any]:
        number = self.traffic.index[device.subject]
        state = minute.links[number]
        link = self.traffic.links[number].link
        count = poisson(rng, state.volume / 60)
        if count == 0:
            # No vehicle, no speed: a speed of 0 would read as a standstill.
            return {"vol": 0, "occ": 0.0, "jam": False}
        speed = max(3.0, state.speed * rng.gauss(1, 0.04))
        per_lane = count * 60 / link.lanes
        occupancy = min(95.0, per_lane / 3600 * VEHICLE_LENGTH / (speed / 3.6) * 100)
        jam = speed < link.speed_limit * 0.5
        return {"vol": count, "spd": round(speed, 1), "occ": round(occupancy, 1), "jam": jam}

    def _people(self, device: SimDevice, minute: Minute) -> float:
        xy = self.crowds.sensors[device.id].xy
        return self.crowds.people(
            device.id,
            minute.footfall,
            minute.school,
            minute.weather.rain,
            minute.flows,
            self.incidents.onlookers(xy, minute.start),
        )

    def _camera(
        self,
        device: SimDevice,
        minute: Minute,
        rng: random.Random,
        incident: tuple[str, float] | None,
    ) -> dict[str, Any]:
        count, density, crowded = camera_report(self._people(device, minute), rng.gauss(1, 0.12))
        values: dict[str, Any] = {"people": count, "density": density, "crowded": crowded}
        if incident is not None:
            values["event"], values["confidence"] = incident
        elif self.incidents.smoke_seen(device.id, minute.start):
            values["event"], values["confidence"] = "smoke", 0.9
        elif crowded:
            values["event"], values["confidence"] = "crowd", round(min(0.99, 0.6 + density / 3), 2)
        else:
            values["event"] = "none"
        return values

    def _lamp(self, lamp_id: str, at: datetime, sun: Any) -> lights.LampState:
        lamp = self.lamp_by_id[lamp_id]
        local = at.astimezone(self.zone)
        hour = local.hour + local.minute / 60 + local.second / 3600
        rain = weather_at(self.scenario, at, self.zone).rain if self.scenario.rains else 0.0
        boost = self.boosts.get(lamp_id)
        level = boost.at(at) if boost is not None else None
        return lights.lamp_state(lamp, at, hour, sun, rain, lamp_id in self.broken, level)

    # -- commands from the platform -------------------------------------------------------------

    def command(self, device_id: str, name: str, params: Any, at: datetime) -> CommandAnswer:
        """Carry out a command a device received at a simulated moment; say how it went.

        A streetlight obeys `brighten`; any other command, or a device that takes none, is
        answered with an error as its controller would.
        """
        device = self.by_id.get(device_id)
        if device is None or name not in device.kind.commands:
            return CommandAnswer(False, f"{device_id} does not obey {name!r}")
        arguments = params if isinstance(params, dict) else {}
        if device.kind.name == "streetlight" and name == "brighten":
            return self._brighten(device, arguments, at.replace(microsecond=0))
        return CommandAnswer(False, f"the simulated {device.kind.name} cannot carry out {name!r}")

    def _brighten(
        self, device: SimDevice, arguments: dict[str, Any], start: datetime
    ) -> CommandAnswer:
        """Burn a lamp at `illuminanceLevel` (0-1, default 1) for `duration` (default PT30M).

        A broken lamp cannot; the answer comes with the report of the lamp's new state.
        """
        lamp_id = device.subject
        if lamp_id in self.broken:
            return CommandAnswer(False, "defective lamp: it cannot be switched on")
        try:
            level = float(arguments.get("illuminanceLevel", 1.0))
            duration = parse_duration(str(arguments.get("duration", "PT30M")))
        except (TypeError, ValueError) as error:
            return CommandAnswer(False, f"bad arguments: {error}")
        if not 0.0 < level <= 1.0 or duration <= timedelta(0):
            return CommandAnswer(False, "illuminanceLevel must be in (0, 1], duration positive")
        self.boosts[lamp_id] = lights.Boost(start, start + duration, round(level * 100))
        local = start.astimezone(self.zone)
        sun = sun_times(local.date(), self.centre[0], self.centre[1], self.district.timezone)
        values = self._lamp(lamp_id, start, sun).values()
        report = self.faults.apply(device, start, values, self.zone, 0)
        until = isoformat(start + duration)
        return CommandAnswer(True, f"on at {round(level * 100)}% until {until}", report)

    def _events(self, minute: Minute, sun: Any, rng: random.Random, emit: Any) -> None:
        """Add the event-driven messages of a minute: spots, lamps, bins, camera detections."""
        for lot, index, _ in minute.spot_changes:
            device = self.by_subject.get(("parking-spot", f"{lot}#{index}"))
            if device is not None:
                at = minute.start + timedelta(seconds=rng.randrange(60))
                emit(at, device, {"st": 1 if self.parking.by_id[lot].spots[index] else 0})
        for moment, lamp_id in self._switches(minute, sun):
            device = self.by_subject[("streetlight", lamp_id)]
            emit(moment, device, self._lamp(lamp_id, moment, sun).values())
        for bin_id, second in minute.emptied:
            device = self.by_subject[("food-waste-bin", bin_id)]
            emit(minute.start + timedelta(seconds=second), device, {"tot": 0.0, "fill": 0})
        for weighing in minute.weighings:
            device = self.by_subject[("food-waste-bin", weighing.bin_id)]
            values = {
                "card": weighing.card,
                "kg": weighing.kilograms,
                "tot": weighing.total,
                "fill": weighing.fill,
            }
            emit(minute.start + timedelta(seconds=weighing.second), device, values)
        for event in self.incidents.camera_events(minute.start, minute.start + MINUTE):
            device = self.by_id[event.camera]
            emit(
                event.at, device, self._camera(device, minute, rng, (event.event, event.confidence))
            )

    def _switches(self, minute: Minute, sun: Any) -> list[tuple[datetime, str]]:
        """Return the lamp switches (on, off, dim) during a minute, as (moment, lamp id)."""
        start, end = minute.start, minute.start + MINUTE
        local_day = minute.local.replace(hour=0, minute=0, second=0, microsecond=0)
        shared = [
            sun.sunrise,
            sun.sunset,
            local_day + timedelta(hours=lights.DIM_FROM),
            local_day + timedelta(hours=lights.DIM_UNTIL),
        ]
        for rain in self.scenario.rains:
            shared += [rain.start, rain.end]
        switches = []
        second = timedelta(seconds=1)
        for lamp in self.lamps:
            candidates = [*shared, sun.dusk + lamp.photocell, sun.dawn + lamp.photocell]
            boost = self.boosts.get(lamp.id)
            if boost is not None:
                candidates += [boost.start, boost.end]
            for moment in sorted(c for c in candidates if start <= c < end):
                moment = moment.replace(microsecond=0) + (
                    second if moment.microsecond else timedelta(0)
                )
                if not start <= moment < end:
                    continue
                before = self._lamp(lamp.id, moment - second, sun)
                after = self._lamp(lamp.id, moment, sun)
                if before != after:
                    switches.append((moment, lamp.id))
        return switches


def _centre(geometry: dict[str, Any]) -> tuple[float, float]:
    from shapely.geometry import shape

    point = shape(geometry).representative_point()
    return (float(point.x), float(point.y))
