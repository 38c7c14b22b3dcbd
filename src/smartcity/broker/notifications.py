"""Render what a notification says: its entities (with changes if asked), body and headers."""

from __future__ import annotations

import uuid
from typing import Any, Final

import orjson

from smartcity.broker.core_context import CORE_CONTEXT_URL
from smartcity.broker.matching import CompiledSubscription
from smartcity.broker.render import render_entity
from smartcity.core.entity import Instance, StoredEntity
from smartcity.storage.base import ChangeKind, ChangeRecord

JSON: Final = "application/json"
JSON_LD: Final = "application/ld+json"
CONTEXT_REL: Final = "http://www.w3.org/ns/json-ld#context"
NULL: Final = "urn:ngsi-ld:null"
_NAMESPACE: Final = uuid.UUID("6f1c8d52-2f38-4d0e-9a57-6c2b1a0e5d11")

# The member that carries an attribute's value before the change, by attribute type.
PREVIOUS_MEMBER: Final[dict[str, tuple[str, str]]] = {
    "Property": ("value", "previousValue"),
    "GeoProperty": ("value", "previousValue"),
    "Relationship": ("object", "previousObject"),
    "LanguageProperty": ("languageMap", "previousLanguageMap"),
    "JsonProperty": ("json", "previousJson"),
    "VocabProperty": ("vocab", "previousVocab"),
    "ListProperty": ("valueList", "previousValueList"),
    "ListRelationship": ("objectList", "previousObjectList"),
}


def _types(subscription: CompiledSubscription, types: list[str]) -> str | list[str]:
    compacted = [subscription.render_context.compact(name) for name in types]
    return compacted[0] if len(compacted) == 1 else compacted


def entity_data(subscription: CompiledSubscription, entity: StoredEntity) -> dict[str, Any]:
    """Render an entity the way the subscription asks (format, attributes, sysAttrs, lang)."""
    return render_entity(
        entity,
        subscription.render_context,
        form=subscription.form,
        sys_attrs=subscription.sys_attrs,
        attrs=subscription.attributes,
        lang=subscription.lang,
    )


def notification_data(subscription: CompiledSubscription, change: ChangeRecord) -> dict[str, Any]:
    """Render the entity of a change as the subscription asks, with what changed if asked."""
    entity = change.entity
    if change.kind is ChangeKind.DELETE:
        return {"id": entity.id, "type": _types(subscription, entity.types), "deletedAt": change.at}
    ctx = subscription.render_context
    body = entity_data(subscription, entity)
    if change.kind is not ChangeKind.UPDATE:
        return body
    for name in change.changed:
        if name in entity.attrs or not _shown(subscription, name):
            continue
        # An attribute deleted by the change: shown as the NGSI-LD null (clause 5.2.12).
        before = change.previous.get(name) or [{}]
        body[ctx.compact(name)] = (
            NULL
            if subscription.form == "keyValues"
            else {"type": before[0].get("type", "Property"), "value": NULL, "deletedAt": change.at}
        )
    if subscription.show_changes and subscription.form != "keyValues":
        for name, instances in change.previous.items():
            key = ctx.compact(name)
            if name in entity.attrs and key in body:
                body[key] = _with_previous(body[key], instances)
    return body


def _shown(subscription: CompiledSubscription, name: str) -> bool:
    return (subscription.attributes is None or name in subscription.attributes) and (
        subscription.watched is None or name in subscription.watched
    )


def _with_previous(rendered: Any, previous: list[Instance]) -> Any:
    """Add previousValue (previousObject, ...) to each rendered instance that existed before."""
    before = {instance.get("datasetId"): instance for instance in previous}
    items = rendered if isinstance(rendered, list) else [rendered]
    out = []
    for item in items:
        if not isinstance(item, dict) or looks_bare(item):
            item = {"value": item}
        old = before.get(item.get("datasetId"))
        if old is not None:
            member, previous_member = PREVIOUS_MEMBER.get(
                old.get("type", "Property"), ("value", "previousValue")
            )
            if member in old:
                item = {**item, previous_member: old[member]}
        out.append(item)
    return out if isinstance(rendered, list) else out[0]


def looks_bare(item: dict[str, Any]) -> bool:
    """Tell whether a concise rendering is a bare compound value rather than an attribute."""
    return not any(key in item for key in ("type", "value", "object", "languageMap", "json"))


def notification_id(tenant: str, subscription_id: str, nid: int) -> str:
    """Return the stable id of one outbox row's notification (retries carry the same id)."""
    return f"urn:ngsi-ld:Notification:{uuid.uuid5(_NAMESPACE, f'{tenant}/{subscription_id}/{nid}')}"


def notification_message(
    subscription: CompiledSubscription,
    identifier: str,
    data: list[dict[str, Any]],
    notified_at: str,
) -> tuple[bytes, dict[str, str]]:
    """Return the notification body (JSON bytes) and the headers it is sent with."""
    accept = subscription.endpoint.get("accept", JSON)
    body: dict[str, Any] = {
        "id": identifier,
        "type": "Notification",
        "subscriptionId": subscription.record.id,
        "notifiedAt": notified_at,
        "data": data,
    }
    headers = {"Content-Type": accept}
    if accept == JSON_LD:
        body = {"@context": subscription.context_source, **body}
    else:
        source = subscription.context_source
        url = source if isinstance(source, str) else CORE_CONTEXT_URL
        headers["Link"] = f'<{url}>; rel="{CONTEXT_REL}"; type="{JSON_LD}"'
    if subscription.record.tenant:
        headers["NGSILD-Tenant"] = subscription.record.tenant
    for item in subscription.endpoint.get("receiverInfo") or []:
        headers[str(item["key"])] = str(item["value"])
    return orjson.dumps(body), headers
