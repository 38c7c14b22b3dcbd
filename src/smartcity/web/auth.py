"""Authentication and administration endpoints: /auth (login, me, principals, keys, shares...)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from smartcity.auth.accounts import PrincipalView
from smartcity.core.clock import isoformat
from smartcity.core.errors import BadRequestData
from smartcity.storage.accounts import AuditFilter, ShareRecord
from smartcity.web.deps import CallerDep, PlatformDep
from smartcity.web.negotiation import read_ld_request

router = APIRouter(prefix="/auth", tags=["authentication and access control"])


class Body(BaseModel):
    """A request body: unknown members are refused."""

    model_config = ConfigDict(extra="forbid")


class Login(Body):
    """A user name and password."""

    name: str
    password: str


class NewUser(Body):
    """A user to create in the caller's tenant."""

    name: str
    password: str
    roles: list[str]


class PrincipalChange(Body):
    """What to change about a principal (only the members given)."""

    password: str | None = None
    disabled: bool | None = None
    entityIds: list[str] | None = None


class Roles(Body):
    """Roles to grant in the caller's tenant."""

    roles: list[str]


class NewKey(Body):
    """An API key to make for a service or device principal."""

    name: str
    roles: list[str]
    entityIds: list[str] = Field(default_factory=list)


class NewShare(Body):
    """A grant to an agency: one entity id or one entity type, until expiresAt."""

    agency: str
    expiresAt: datetime
    entityId: str | None = None
    entityType: str | None = None


def aware(moment: datetime, name: str) -> datetime:
    """Refuse a time without a UTC offset: it would be read in the server's zone."""
    if moment.tzinfo is None:
        raise BadRequestData(f"{name} needs a UTC offset, e.g. 2026-12-01T18:00:00Z")
    return moment


def principal_json(view: PrincipalView) -> dict[str, Any]:
    """Return a principal as shown to an admin (never a hash)."""
    body: dict[str, Any] = {
        "id": view.id,
        "name": view.name,
        "kind": view.kind,
        "roles": sorted(view.roles),
        "disabled": view.disabled,
        "createdAt": view.created_at,
    }
    if view.entity_ids:
        body["entityIds"] = sorted(view.entity_ids)
    return body


def share_json(share: ShareRecord, agency: str | None = None) -> dict[str, Any]:
    """Return an agency share."""
    body: dict[str, Any] = {
        "id": share.id,
        "expiresAt": share.expires_at,
        "createdAt": share.created_at,
        "createdBy": share.created_by,
    }
    if agency is not None:
        body["agency"] = agency
    if share.entity_id is not None:
        body["entityId"] = share.entity_id
    if share.entity_type is not None:
        body["entityType"] = share.entity_type
    return body


@router.post("/login", summary="Log in: user name and password for a bearer token")
async def login(body: Login, platform: PlatformDep) -> JSONResponse:
    """Return a signed bearer token with its expiry; 401 for a wrong name or password."""
    issued = await run_in_threadpool(platform.accounts.login, body.name, body.password)
    return JSONResponse(
        {
            "accessToken": issued.token,
            "tokenType": "Bearer",
            "expiresAt": isoformat(issued.expires_at),
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/me", summary="Who am I in this tenant")
async def me(caller: CallerDep) -> JSONResponse:
    """Return the caller's name, kind, tenant, roles and (for a device) its entities."""
    body: dict[str, Any] = {
        "name": caller.subject,
        "kind": caller.kind.value,
        "tenant": caller.tenant,
        "roles": sorted(caller.roles),
    }
    if caller.entity_ids:
        body["entityIds"] = sorted(caller.entity_ids)
    return JSONResponse(body)


@router.get("/principals", summary="List the principals of this tenant (admin)")
async def list_principals(platform: PlatformDep, caller: CallerDep) -> JSONResponse:
    """Return every user, service and device with a role in the tenant."""
    views = await run_in_threadpool(platform.accounts.principals, caller)
    return JSONResponse([principal_json(view) for view in views])


@router.post("/users", status_code=201, summary="Create a user (admin)")
async def add_user(body: NewUser, platform: PlatformDep, caller: CallerDep) -> JSONResponse:
    """Create a user with a password and roles in this tenant."""
    view = await run_in_threadpool(
        platform.accounts.add_user, caller, body.name, body.password, body.roles
    )
    return JSONResponse(principal_json(view), status_code=201)


@router.get("/principals/{name}", summary="Describe a principal (admin)")
async def get_principal(name: str, platform: PlatformDep, caller: CallerDep) -> JSONResponse:
    """Return one principal with its roles in this tenant."""
    view = await run_in_threadpool(platform.accounts.principal, caller, name)
    return JSONResponse(principal_json(view))


@router.patch("/principals/{name}", status_code=204, summary="Change a principal (admin)")
async def change_principal(
    name: str, body: PrincipalChange, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Set a new password, disable or enable, or replace a device's entities."""
    accounts = platform.accounts
    if body.password is None and body.disabled is None and body.entityIds is None:
        raise BadRequestData("give password, disabled or entityIds")
    # Check the caller may see the principal at all before anything changes.
    await run_in_threadpool(accounts.principal, caller, name)
    if body.password is not None:
        await run_in_threadpool(accounts.set_password, caller, name, body.password)
    if body.disabled is not None:
        await run_in_threadpool(accounts.set_disabled, caller, name, body.disabled)
    if body.entityIds is not None:
        await run_in_threadpool(accounts.set_device_entities, caller, name, body.entityIds)
    return Response(status_code=204)


@router.post("/principals/{name}/roles", summary="Grant roles in this tenant (admin)")
async def grant_roles(
    name: str, body: Roles, platform: PlatformDep, caller: CallerDep
) -> JSONResponse:
    """Give a principal roles in this tenant."""
    view = await run_in_threadpool(platform.accounts.grant, caller, name, body.roles)
    return JSONResponse(principal_json(view))


@router.delete("/principals/{name}/roles/{role}", status_code=204, summary="Revoke a role (admin)")
async def revoke_role(name: str, role: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Take one role of a principal in this tenant away ('*' takes every role)."""
    roles = None if role == "*" else [role]
    await run_in_threadpool(platform.accounts.revoke, caller, name, roles)
    return Response(status_code=204)


@router.post("/keys", status_code=201, summary="Create an API key (admin)")
async def create_key(body: NewKey, platform: PlatformDep, caller: CallerDep) -> JSONResponse:
    """Make a key for a service or device; the key is in this answer and nowhere else."""
    created = await run_in_threadpool(
        platform.accounts.create_key, caller, body.name, body.roles, body.entityIds
    )
    return JSONResponse(
        {
            "key": created.key,
            "prefix": created.prefix,
            "principal": principal_json(created.principal),
        },
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/keys", summary="List API keys (admin)")
async def list_keys(platform: PlatformDep, caller: CallerDep) -> JSONResponse:
    """Return the keys of this tenant's principals: prefixes and states, never the keys."""
    found = await run_in_threadpool(platform.accounts.keys, caller)
    return JSONResponse(
        [
            {
                "prefix": key.prefix,
                "principal": key.principal,
                "createdAt": key.created_at,
                "revokedAt": key.revoked_at,
            }
            for key in found
        ]
    )


@router.delete("/keys/{prefix}", status_code=204, summary="Revoke an API key (admin)")
async def revoke_key(prefix: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Revoke a key at once."""
    await run_in_threadpool(platform.accounts.revoke_key, caller, prefix)
    return Response(status_code=204)


@router.get("/shares", summary="List agency shares (admin)")
async def list_shares(platform: PlatformDep, caller: CallerDep) -> JSONResponse:
    """Return what is shared with agencies in this tenant, expired grants included."""
    shares = await run_in_threadpool(platform.accounts.shares, caller)
    return JSONResponse([share_json(share, agency) for share, agency in shares])


@router.post("/shares", status_code=201, summary="Share with an agency (admin)")
async def add_share(
    body: NewShare, request: Request, platform: PlatformDep, caller: CallerDep
) -> JSONResponse:
    """Let an agency read one entity or every entity of a type (short name via Link) until then."""
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    entity_type = ld.ctx.expand(body.entityType) if body.entityType else None
    share = await run_in_threadpool(
        lambda: platform.accounts.share(
            caller,
            body.agency,
            aware(body.expiresAt, "expiresAt"),
            entity_id=body.entityId,
            entity_type=entity_type,
        )
    )
    return JSONResponse(share_json(share, body.agency), status_code=201)


@router.delete("/shares/{share_id}", status_code=204, summary="Withdraw a share (admin)")
async def delete_share(share_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Withdraw an agency share at once."""
    await run_in_threadpool(platform.accounts.unshare, caller, share_id)
    return Response(status_code=204)


@router.get("/types/{mark}", summary="List public or restricted entity types (admin)")
async def list_marked_types(
    mark: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> JSONResponse:
    """Return the entity types marked public (anyone reads them) or restricted (reads audited)."""
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    types = await run_in_threadpool(platform.accounts.marked_types, caller, mark)
    return JSONResponse(sorted(ld.ctx.compact(type_iri) for type_iri in types))


@router.put("/types/{mark}/{type_name}", status_code=204, summary="Mark a type (admin)")
async def mark_type(
    mark: str, type_name: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Mark an entity type (short name via the Link @context, or an IRI) public or restricted."""
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    type_iri = ld.ctx.expand(type_name)
    await run_in_threadpool(lambda: platform.accounts.mark_type(caller, type_iri, mark))
    return Response(status_code=204)


@router.delete("/types/{mark}/{type_name}", status_code=204, summary="Unmark a type (admin)")
async def unmark_type(
    mark: str, type_name: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Remove the public or restricted mark from an entity type."""
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    type_iri = ld.ctx.expand(type_name)
    await run_in_threadpool(lambda: platform.accounts.mark_type(caller, type_iri, mark, on=False))
    return Response(status_code=204)


@router.get("/audit", summary="Read the audit log (admin)")
async def audit_log(
    platform: PlatformDep,
    caller: CallerDep,
    since: datetime | None = None,
    until: datetime | None = None,
    principal: str | None = None,
    after: int = Query(default=0, ge=0, description="only records after this sequence number"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> JSONResponse:
    """Return audit records of this tenant, oldest first; page on with `after`."""
    query = AuditFilter(
        caller.tenant,
        isoformat(aware(since, "since")) if since else None,
        isoformat(aware(until, "until")) if until else None,
        principal,
        limit,
        after,
    )
    records = await run_in_threadpool(platform.accounts.audit, caller, query)
    return JSONResponse(
        [
            {
                "seq": record.seq,
                "at": record.at,
                "principal": record.principal,
                "action": record.action,
                "target": record.target,
                "outcome": record.outcome,
            }
            for record in records
        ]
    )
