"""What `smartcity device ...` does: add, list, show, delete and import devices, with progress."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from smartcity.auth.principal import Caller
from smartcity.ingest.device_import import read_items
from smartcity.ingest.devices import DeviceService

DEVICE_HELP = """Devices send measures over MQTT (/<apikey>/<deviceId>/attrs) or HTTP
(POST /iot/json?k=<apikey>&i=<deviceId>); the registry says which entity each feeds and how its
fields map to attributes. Only the key's hash is kept: a key made here is printed once."""
IMPORT_HELP = """Import devices from a .json file (a list, or {"devices": [...]}) or a .csv file
with the columns id, apiKey, entityId, entityType, context, protocol, transport, attributes
(t=temperature:CEL;h=relativeHumidity or a JSON list), staticAttributes (JSON), commands,
reportingInterval, timestampField, allowUnknownFields, deviceEntityId, name. Each device is
registered on its own: the report lists the ones that failed and why."""


def add_device_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `smartcity device ACTION` to the command's parser (`common`: tenant, database)."""
    device = commands.add_parser(
        "device", help="manage IoT devices (registry, bulk import)", description=DEVICE_HELP
    )
    actions = device.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        parents=[common],
        help="register one device",
        description="Register a device. Give its key on standard input (--api-key-stdin) or "
        "let the registry make one, printed once; keys are never taken from the command line.",
    )
    add.add_argument("id", help="the device id (letters, digits, '_', '.', ':', '-')")
    add.add_argument("--entity-id", required=True, help="the entity it feeds (a URI)")
    add.add_argument("--entity-type", required=True, help="its type, e.g. AirQualityObserved")
    add.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="FIELD=NAME[:UNIT]",
        help="map a device field to an attribute (repeatable), e.g. t=temperature:CEL",
    )
    add.add_argument("--protocol", choices=["json", "ul"], default="json")
    add.add_argument("--transport", choices=["mqtt", "http"], default="mqtt")
    add.add_argument(
        "--command",
        dest="commands",
        action="append",
        default=[],
        help="a command it accepts (repeatable)",
    )
    add.add_argument("--interval", type=float, help="seconds between its reports (health)")
    add.add_argument("--context", action="append", default=[], help="an @context URL")
    add.add_argument("--api-key-stdin", action="store_true", help="read its key from stdin")
    actions.add_parser("list", parents=[common], help="list the devices of a tenant")
    for action, text in (("show", "show one device as JSON"), ("delete", "delete a device")):
        one = actions.add_parser(action, parents=[common], help=text)
        one.add_argument("id")
    importer = actions.add_parser(
        "import", parents=[common], help="import devices from JSON or CSV", description=IMPORT_HELP
    )
    importer.add_argument("file", type=Path, help="a .json or .csv file")
    importer.add_argument(
        "--replace", action="store_true", help="update devices that exist instead of failing"
    )


def run_device_command(devices: DeviceService, args: argparse.Namespace) -> int:
    """Run one `smartcity device ACTION` for the platform itself in the given tenant."""
    caller = Caller.system(args.tenant)
    console = Console()
    if args.action == "add":
        return _add(devices, caller, args, console)
    if args.action == "list":
        _list(devices, caller, console)
    elif args.action == "show":
        shown = devices.get(caller, args.id).present()
        print(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
    elif args.action == "delete":
        devices.delete(caller, args.id)
        console.print(f"device {args.id} deleted")
    else:
        return import_with_progress(devices, caller, args.file, replace=args.replace)
    return 0


def _add(devices: DeviceService, caller: Caller, args: argparse.Namespace, console: Console) -> int:
    body: dict[str, Any] = {
        "id": args.id,
        "entity": {"id": args.entity_id, "type": args.entity_type, "context": args.context},
        "attributes": [_mapping(text) for text in args.attribute],
        "protocol": args.protocol,
        "transport": args.transport,
        "commands": args.commands,
        "reportingInterval": args.interval,
    }
    if args.api_key_stdin:
        body["apiKey"] = sys.stdin.readline().strip()
    registered = devices.register(caller, body)
    console.print(f"device {registered.device.id} registered")
    if registered.generated_key is not None:
        # Printed to the terminal once, never logged.
        console.print("its API key (shown once, configure the device with it):")
        print(registered.generated_key)
    return 0


def _mapping(text: str) -> dict[str, Any]:
    field, _, target = text.partition("=")
    name, _, unit = target.partition(":")
    mapping: dict[str, Any] = {"objectId": field.strip(), "name": name.strip()}
    if unit.strip():
        mapping["unit"] = unit.strip()
    return mapping


def _list(devices: DeviceService, caller: Caller, console: Console) -> None:
    table = Table("id", "entity", "protocol", "health", "last seen")
    offset = 0
    while True:
        page, total = devices.page(caller, 500, offset)
        for device in page:
            spec = device.spec
            table.add_row(
                device.id,
                spec.entity.id,
                f"{spec.protocol.value}/{spec.transport.value}",
                device.health,
                device.last_seen or "never",
            )
        offset += len(page)
        if not page or offset >= total:
            break
    console.print(table)
    console.print(f"{offset} device(s)")


def import_with_progress(
    devices: DeviceService,
    caller: Caller,
    path: Path,
    *,
    replace: bool = False,
    console: Console | None = None,
) -> int:
    """Import a file of devices, drawing a progress bar; print the report; 1 if any failed."""
    console = console or Console(stderr=True)
    items = read_items(path)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task(f"importing {path.name}", total=len(items))

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = devices.import_devices(caller, items, replace=replace, progress=advance)
    console.print(
        f"{path.name}: {len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.failed)} failed"
    )
    for number, device_id, detail in report.failed:
        console.print(
            f"  item {number} {device_id}: {detail}", markup=False, highlight=False, soft_wrap=True
        )
    if report.generated_keys:
        console.print("API keys made for devices without one (shown once):")
        for device_id, key in report.generated_keys.items():
            print(f"{device_id}\t{key}")
    return 1 if report.failed else 0
