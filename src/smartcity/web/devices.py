"""The device registry API: /iot/v1/devices (CRUD, bulk import, commands)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from smartcity.core.errors import BadRequestData, TooManyResults
from smartcity.ingest.commands import present
from smartcity.ingest.device_import import items_from_csv, items_from_json
from smartcity.ingest.devices import ImportReport, Registered
from smartcity.web.bodies import json_body, json_response
from smartcity.web.deps import CallerDep, PlatformDep

router = APIRouter(prefix="/iot/v1", tags=["IoT devices"])
MAX_IMPORT_BYTES = 16 * 1024 * 1024


def _whole(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise BadRequestData(f"{name} must be a whole number, 0 or more, not {raw!r}")
    return int(raw)


def _location(device_id: str) -> str:
    return "/iot/v1/devices/" + quote(device_id, safe="")


def _registered(registered: Registered) -> dict[str, Any]:
    body = registered.device.present()
    if registered.generated_key is not None:
        body["apiKey"] = registered.generated_key  # shown this once; only its hash is kept
    return body


def _report(report: ImportReport) -> dict[str, Any]:
    return {
        "created": report.created,
        "updated": report.updated,
        "failed": [
            {"item": number, "id": device_id, "detail": detail}
            for number, device_id, detail in report.failed
        ],
        "apiKeys": report.generated_keys,
    }


@router.post("/devices", status_code=201, summary="Register a device")
async def register_device(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Register a device (or several, as `{"devices": [...]}` like the FIWARE IoT Agents).

    Without an `apiKey` the registry makes one and returns it once.
    """
    body = await json_body(request)
    devices = platform.iot.devices
    if isinstance(body, dict) and isinstance(body.get("devices"), list):
        report = await run_in_threadpool(devices.import_devices, caller, body["devices"])
        return json_response(_report(report), status=201 if report.created else 200)
    registered = await run_in_threadpool(devices.register, caller, body)
    headers = {"Location": _location(registered.device.id)}
    return json_response(_registered(registered), status=201, headers=headers)


@router.post("/devices/import", summary="Import devices from JSON or CSV")
async def import_devices(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Register many devices from a JSON list or a CSV file (`replace=true` updates those that
    exist); each item succeeds or fails on its own, and the report says which and why."""
    replace = request.query_params.get("replace", "false")
    if replace not in ("true", "false"):
        raise BadRequestData(f"replace must be true or false, not {replace!r}")
    raw = await request.body()
    if len(raw) > MAX_IMPORT_BYTES:
        raise BadRequestData(f"the import is larger than {MAX_IMPORT_BYTES} bytes; split it")
    media = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media == "text/csv":
        try:
            items = items_from_csv(raw.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise BadRequestData("the CSV is not UTF-8 text") from None
    else:
        items = items_from_json(raw)
    report = await run_in_threadpool(
        platform.iot.devices.import_devices, caller, items, replace=replace == "true"
    )
    return json_response(_report(report))


@router.get("/devices", summary="List devices")
async def list_devices(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """List the tenant's devices in id order, paginated by limit and offset."""
    limit = _whole(request, "limit", platform.settings.default_limit)
    if limit > platform.settings.max_limit:
        raise TooManyResults(f"limit must be at most {platform.settings.max_limit}")
    offset = _whole(request, "offset", 0)
    devices, total = await run_in_threadpool(platform.iot.devices.page, caller, limit, offset)
    headers = {"NGSILD-Results-Count": str(total)}
    return json_response([device.present() for device in devices], headers=headers)


@router.get("/devices/{device_id}", summary="Retrieve a device")
async def retrieve_device(device_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Return one device with its health (never its key)."""
    device = await run_in_threadpool(platform.iot.devices.get, caller, device_id)
    return json_response(device.present())


@router.patch("/devices/{device_id}", summary="Change a device")
async def update_device(
    device_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Change members of a device (its mapping, its key, ...); return the device."""
    changes = await json_body(request)
    device = await run_in_threadpool(platform.iot.devices.update, caller, device_id, changes)
    return json_response(device.present())


@router.delete("/devices/{device_id}", status_code=204, summary="Delete a device")
async def delete_device(device_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Delete a device and its Device entity; the entity it fed stays."""
    await run_in_threadpool(platform.iot.devices.delete, caller, device_id)
    return Response(status_code=204)


@router.post("/devices/{device_id}/commands", status_code=202, summary="Send a command")
async def send_command(
    device_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Send `{"name": "dim", "params": {...}}` to a device; follow it on the commands list or
    on the device's entity (`<name>_status`, `<name>_info`)."""
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise BadRequestData('send {"name": "<command>", "params": ...}')
    unknown = sorted(set(body) - {"name", "params"})
    if unknown:
        raise BadRequestData(f"unknown member(s) {unknown}; a command has name and params")
    command = await run_in_threadpool(
        platform.iot.devices.send_command, caller, device_id, body["name"], body.get("params")
    )
    location = f"{_location(device_id)}/commands/{command.id}"
    return json_response(present(command), status=202, headers={"Location": location})


@router.get("/devices/{device_id}/commands", summary="List a device's commands")
async def list_commands(
    device_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Return the device's commands, newest first, with their status."""
    limit = min(_whole(request, "limit", 20), platform.settings.max_limit)
    commands = await run_in_threadpool(
        platform.iot.devices.command_history, caller, device_id, limit
    )
    return json_response([present(command) for command in commands])
