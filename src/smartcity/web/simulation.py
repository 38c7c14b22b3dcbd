"""The simulator's endpoints: /sim/v1/status, scenarios, start, stop, pause, resume, speed, jump.

A thin adapter: who may do what is checked by `SimulationService` (admins and operators
control it; analysts read its status), and it answers 409 where the simulator is not enabled.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

from smartcity.sim.service import SimulationService, StartRequest
from smartcity.web.deps import CallerDep

router = APIRouter(prefix="/sim/v1", tags=["simulator"])


async def get_simulation(request: Request) -> SimulationService:
    """Return the app's simulator service."""
    service: SimulationService = request.app.state.simulation
    return service


SimulationDep = Annotated[SimulationService, Depends(get_simulation)]


class Body(BaseModel):
    """A request body: unknown members are refused."""

    model_config = ConfigDict(extra="forbid")


class Start(Body):
    """A scenario to run."""

    scenario: str = Field(description="a shipped scenario's name, e.g. concert-night")
    speed: float | str = Field(1.0, description="simulated seconds per second, or 'max'")
    seed: int = 1
    start: str = Field(
        "scenario",
        description="'scenario' (its own date), 'today', 'now' or a date and time",
    )
    until: str | None = Field(None, description="'HH:MM' or a date and time to stop at")


class Jump(Body):
    """A moment to skip ahead to."""

    to: str = Field(description="'HH:MM' (e.g. 19:00) or a date and time")


class Speed(Body):
    """A new speed."""

    speed: float | str = Field(description="simulated seconds per second, or 'max'")


def _json(body: Any) -> JSONResponse:
    return JSONResponse(body)


@router.get("/status", summary="What the simulator is doing")
async def status(service: SimulationDep, caller: CallerDep) -> JSONResponse:
    """Return the state, scenario, simulated time, speed and what was sent so far."""
    return _json(service.status(caller))


@router.get("/scenarios", summary="The scenarios it can run")
async def scenarios(service: SimulationDep, caller: CallerDep) -> JSONResponse:
    """Return every shipped scenario with its title, description and times."""
    return _json(await run_in_threadpool(service.scenarios, caller))


@router.post("/start", summary="Start a scenario (stopping the one running)")
async def start(body: Start, service: SimulationDep, caller: CallerDep) -> JSONResponse:
    """Register the simulated devices and start sending; answers once it runs."""
    request = StartRequest(
        scenario=body.scenario,
        speed=body.speed,
        seed=body.seed,
        start=body.start,
        until=body.until,
    )
    return _json(await service.start(caller, request))


@router.post("/stop", summary="Stop the running scenario")
async def stop(service: SimulationDep, caller: CallerDep) -> JSONResponse:
    """Stop sending; what was sent stays stored."""
    return _json(await service.stop(caller))


@router.post("/pause", summary="Pause the simulated clock")
async def pause(service: SimulationDep, caller: CallerDep) -> JSONResponse:
    """Stop the simulated clock until resumed."""
    return _json(await service.pause(caller))


@router.post("/resume", summary="Resume the simulated clock")
async def resume(service: SimulationDep, caller: CallerDep) -> JSONResponse:
    """Let the simulated clock run again."""
    return _json(await service.resume(caller))


@router.post("/speed", summary="Change the speed")
async def speed(body: Speed, service: SimulationDep, caller: CallerDep) -> JSONResponse:
    """Change how many simulated seconds pass per second."""
    return _json(await service.set_speed(caller, body.speed))


@router.post("/jump", summary="Skip ahead to a moment of the scenario")
async def jump(body: Jump, service: SimulationDep, caller: CallerDep) -> JSONResponse:
    """Move the models on to a moment (nothing is sent for the time skipped)."""
    return _json(await service.jump(caller, body.to))
