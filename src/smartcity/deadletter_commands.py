"""`smartcity deadletters ...`: read and discard on the database, replay through the server."""

from __future__ import annotations

import argparse
import base64
import os
import sys
from typing import Any

import httpx
import orjson

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.core.errors import ConfigurationError, SmartCityError
from smartcity.storage.deadletters import DeadLetter, DeadLetterFilter

API_KEY_VARIABLE = "SMARTCITY_API_KEY"


def _filter(args: argparse.Namespace) -> DeadLetterFilter:
    return DeadLetterFilter(
        device_id=args.device,
        source=args.source,
        reason=args.reason,
        status=getattr(args, "status", None),
        since=args.since,
        until=args.until,
    )


def _line(letter: DeadLetter) -> str:
    where = f" at {letter.path}" if letter.path else ""
    return (
        f"{letter.id}\t{letter.received_at}\t{letter.status}\t{letter.source}\t"
        f"{letter.device_id or '-'}\t{letter.reason} ({letter.stage}{where})\t{letter.message}"
    )


def _json(letter: DeadLetter) -> dict[str, Any]:
    try:
        payload, encoding = letter.payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(letter.payload).decode("ascii"), "base64"
    return {
        "id": letter.id,
        "receivedAt": letter.received_at,
        "source": letter.source,
        "deviceId": letter.device_id,
        "topic": letter.topic,
        "contentType": letter.content_type,
        "reason": letter.reason,
        "stage": letter.stage,
        "path": letter.path,
        "message": letter.message,
        "meta": letter.meta,
        "status": letter.status,
        "attempts": letter.attempts,
        "lastReplayAt": letter.last_replay_at,
        "lastReplayResult": letter.last_replay_result,
        "resolvedAt": letter.resolved_at,
        "payload": payload,
        "payloadEncoding": encoding,
    }


def local(settings: Settings, args: argparse.Namespace) -> int:
    """Run list, show or discard directly on the database, as the platform in --tenant."""
    from smartcity.platform import build_platform

    platform = build_platform(settings)
    service = platform.deadletters
    system = Caller.system(args.tenant)
    try:
        if args.action == "list":
            where = _filter(args)
            page = service.page(system, where, limit=args.limit, offset=args.offset, count=True)
            counts = service.counts_by_reason(system, where)
            if args.json:
                for letter in page.letters:
                    print(orjson.dumps(_json(letter)).decode())
                return 0
            for letter in page.letters:
                print(_line(letter))
            shown = f"{len(page.letters)} of {page.total}"
            per_reason = ", ".join(f"{reason} {count}" for reason, count in counts.items())
            print(f"{shown} dead letters" + (f" ({per_reason})" if per_reason else ""))
        elif args.action == "show":
            letter = service.get(system, args.id)
            if args.raw:
                sys.stdout.buffer.write(letter.payload)
                sys.stdout.flush()
            else:
                for key, value in _json(letter).items():
                    print(f"{key}: {value if value is not None else '-'}")
        else:
            discarded = service.discard(system, args.id)
            print(f"{discarded} of {len(args.id)} dead letters discarded")
    finally:
        platform.close()
    return 0


def _api_key(args: argparse.Namespace) -> str:
    if args.api_key_file is not None:
        try:
            return str(args.api_key_file.read_text()).strip()
        except OSError as error:
            raise ConfigurationError(f"cannot read {args.api_key_file}: {error}") from error
    key = os.environ.get(API_KEY_VARIABLE, "").strip()
    if not key:
        raise ConfigurationError(
            f"replay needs an operator's or admin's API key: set {API_KEY_VARIABLE} or give "
            "--api-key-file"
        )
    return key


def replay(settings: Settings, args: argparse.Namespace) -> int:
    """Ask the running server to replay dead letters; print what became of each."""
    where = _filter(args)
    has_filter = (
        any(value is not None for value in (args.device, args.source, args.reason, args.since))
        or args.until is not None
    )
    if bool(args.id) == has_filter:
        print(
            "smartcity: give dead letter ids or a filter (--device, --reason, ...)", file=sys.stderr
        )
        return 2
    body: dict[str, Any] = (
        {"ids": args.id}
        if args.id
        else {
            "filter": {
                key: value
                for key, value in {
                    "deviceId": where.device_id,
                    "source": where.source,
                    "reason": where.reason,
                    "since": where.since,
                    "until": where.until,
                }.items()
                if value is not None
            }
        }
    )
    if args.limit is not None:
        body["limit"] = args.limit
    url = (args.url or settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    headers = {"X-API-Key": _api_key(args)}
    if args.tenant:
        headers["NGSILD-Tenant"] = args.tenant
    try:
        response = httpx.post(
            f"{url}/ingest/v1/deadletters/replay", json=body, headers=headers, timeout=300
        )
    except httpx.HTTPError as error:
        raise SmartCityError(
            f"cannot reach the server at {url} ({error}): is `smartcity serve` running there?"
        ) from error
    if response.status_code != 200:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise SmartCityError(f"the server refused the replay ({response.status_code}): {detail}")
    report = response.json()
    for item in report["outcomes"]:
        reason = f" [{item['reason']}]" if item.get("reason") else ""
        print(f"{item['id']}\t{item['outcome']}{reason}\t{item.get('detail') or ''}")
    print(
        f"{report['replayed']} replayed, {report['failed']} still failing, "
        f"{report['errors']} errors, {report['skipped']} skipped, {report['notFound']} not "
        f"found (of {report['matched']} matched)"
    )
    return 0 if report["failed"] == report["errors"] == report["notFound"] == 0 else 1
