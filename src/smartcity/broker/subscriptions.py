"""NGSI-LD subscriptions: validate, store, show, change and delete them, per tenant."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from smartcity.auth.policy import Permission, require
from smartcity.auth.principal import Caller
from smartcity.broker.contexts import ActiveContext
from smartcity.broker.matching import TRIGGERS, compile_subscription
from smartcity.broker.notifications import JSON, JSON_LD, NULL
from smartcity.core.clock import Clock, isoformat
from smartcity.core.errors import (
    AlreadyExists,
    BadRequestData,
    ResourceNotFound,
)
from smartcity.core.qlang import parse_datetime
from smartcity.storage.subscriptions import SubscriptionRecord, SubscriptionStore

FORMATS: Final = ("normalized", "keyValues", "concise")
ENDPOINT_SCHEMES: Final = ("http", "https", "mqtt", "mqtts")
_MEMBERS: Final = frozenset(
    {
        "id",
        "type",
        "subscriptionName",
        "description",
        "entities",
        "watchedAttributes",
        "notificationTrigger",
        "timeInterval",
        "q",
        "geoQ",
        "scopeQ",
        "isActive",
        "notification",
        "expiresAt",
        "throttling",
        "lang",
        "jsonldContext",
    }
)
# Members the broker maintains: accepted in a body (clients echo them back) and ignored.
_READ_ONLY: Final = frozenset({"status", "createdAt", "modifiedAt"})
_NOTIFICATION_MEMBERS: Final = frozenset(
    {"attributes", "sysAttrs", "format", "showChanges", "endpoint"}
)
_NOTIFICATION_READ_ONLY: Final = frozenset(
    {"status", "timesSent", "timesFailed", "lastNotification", "lastFailure", "lastSuccess"}
)
_ENDPOINT_MEMBERS: Final = frozenset(
    {"uri", "accept", "timeout", "cooldown", "receiverInfo", "notifierInfo"}
)
_UNSUPPORTED: Final = frozenset({"csf", "temporalQ"})
ContextResolve = Callable[[Any], ActiveContext]


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequestData(f"{where} must be a non-empty string")
    return value


def _uri(value: Any, where: str) -> str:
    text = _string(value, where)
    scheme, _, rest = text.partition(":")
    if not scheme or not rest or not scheme[0].isalpha() or " " in text:
        raise BadRequestData(f"{where} must be a URI, not {text!r}")
    return text


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequestData(f"{where} must be a number of seconds")
    if value <= 0:
        raise BadRequestData(f"{where} must be greater than 0")
    return float(value)


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise BadRequestData(f"{where} must be a non-empty array of attribute names")
    return [_string(item, f"each item of {where}") for item in value]


def _key_values(value: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise BadRequestData(f"{where} must be an array of {{key, value}} objects")
    for item in value:
        if not isinstance(item, dict) or set(item) != {"key", "value"}:
            raise BadRequestData(f"each item of {where} must be an object with key and value")
        _string(item["key"], f"{where}.key")
        if not isinstance(item["value"], str):
            raise BadRequestData(f"{where}.value must be a string")
        if any(ch in item["key"] + item["value"] for ch in "\r\n"):
            raise BadRequestData(f"{where} must not contain line breaks")
    return value


def _endpoint(value: Any) -> None:
    if not isinstance(value, dict):
        raise BadRequestData("notification.endpoint must be an object with a uri")
    unknown = sorted(set(value) - _ENDPOINT_MEMBERS)
    if unknown:
        raise BadRequestData(f"notification.endpoint has unknown members {unknown}")
    uri = _uri(value.get("uri"), "notification.endpoint.uri")
    parts = urlsplit(uri)
    if parts.scheme not in ENDPOINT_SCHEMES or not parts.hostname:
        raise BadRequestData(
            "notification.endpoint.uri must be an http://, https://, mqtt:// or mqtts:// URL "
            f"with a host, not {uri!r}"
        )
    if parts.scheme.startswith("mqtt") and not parts.path.strip("/"):
        raise BadRequestData("an mqtt:// endpoint names its topic in the path: mqtt://host/topic")
    if value.get("accept", JSON) not in (JSON, JSON_LD):
        raise BadRequestData(f"notification.endpoint.accept must be {JSON} or {JSON_LD}")
    for name in ("timeout", "cooldown"):
        if name in value:
            _positive(value[name], f"notification.endpoint.{name}")
    if "receiverInfo" in value:
        _key_values(value["receiverInfo"], "notification.endpoint.receiverInfo")
    if "notifierInfo" in value:
        for item in _key_values(value["notifierInfo"], "notification.endpoint.notifierInfo"):
            if item["key"] == "MQTT-QoS" and item["value"] not in ("0", "1", "2"):
                raise BadRequestData("notifierInfo MQTT-QoS must be 0, 1 or 2")


def _notification(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequestData("notification must be an object with an endpoint")
    notification: dict[str, Any] = {
        str(k): v for k, v in value.items() if k not in _NOTIFICATION_READ_ONLY
    }
    unknown = sorted(set(notification) - _NOTIFICATION_MEMBERS)
    if unknown:
        raise BadRequestData(f"notification has unknown members {unknown}")
    if "endpoint" not in notification:
        raise BadRequestData("notification needs an endpoint")
    _endpoint(notification["endpoint"])
    if "attributes" in notification:
        _names(notification["attributes"], "notification.attributes")
    if notification.get("format", "normalized") not in FORMATS:
        raise BadRequestData(f"notification.format must be one of {list(FORMATS)}")
    for flag in ("sysAttrs", "showChanges"):
        if flag in notification and not isinstance(notification[flag], bool):
            raise BadRequestData(f"notification.{flag} must be true or false")
    return notification


def _entities(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise BadRequestData("entities must be a non-empty array of {id?, idPattern?, type}")
    for item in value:
        if not isinstance(item, dict):
            raise BadRequestData("each item of entities must be an object with a type")
        unknown = sorted(set(item) - {"id", "idPattern", "type"})
        if unknown:
            raise BadRequestData(f"an item of entities has unknown members {unknown}")
        _string(item.get("type"), "entities[].type")
        if "id" in item:
            _uri(item["id"], "entities[].id")
        if "idPattern" in item:
            _string(item["idPattern"], "entities[].idPattern")
    return value


def validate(body: Any, now: datetime) -> dict[str, Any]:
    """Check a whole subscription document; return it without read-only members."""
    if not isinstance(body, dict):
        raise BadRequestData("a subscription must be a JSON object")
    doc = {k: v for k, v in body.items() if k not in _READ_ONLY}
    unsupported = sorted(set(doc) & _UNSUPPORTED)
    if unsupported:
        raise BadRequestData(f"this broker does not support {unsupported} in subscriptions")
    unknown = sorted(set(doc) - _MEMBERS)
    if unknown:
        raise BadRequestData(f"a subscription has no members {unknown}")
    if doc.get("type") != "Subscription":
        raise BadRequestData('a subscription needs "type": "Subscription"')
    if "id" in doc:
        _uri(doc["id"], "id")
    for name in ("subscriptionName", "description", "q", "scopeQ", "lang"):
        if name in doc:
            _string(doc[name], name)
    if "jsonldContext" in doc:
        _uri(doc["jsonldContext"], "jsonldContext")
    if "entities" in doc:
        _entities(doc["entities"])
    if "watchedAttributes" in doc:
        _names(doc["watchedAttributes"], "watchedAttributes")
    if "entities" not in doc and "watchedAttributes" not in doc:
        raise BadRequestData("a subscription needs entities, watchedAttributes or both")
    if "notificationTrigger" in doc:
        triggers = doc["notificationTrigger"]
        if not isinstance(triggers, list) or not triggers or not set(triggers) <= set(TRIGGERS):
            raise BadRequestData(f"notificationTrigger must be a non-empty array of {TRIGGERS}")
    if "timeInterval" in doc:
        _positive(doc["timeInterval"], "timeInterval")
        for other in ("watchedAttributes", "throttling", "notificationTrigger"):
            if other in doc:
                raise BadRequestData(f"timeInterval and {other} cannot be used together")
        if "entities" not in doc:
            raise BadRequestData("a periodic subscription (timeInterval) needs entities")
    if "throttling" in doc:
        _positive(doc["throttling"], "throttling")
    if "isActive" in doc and not isinstance(doc["isActive"], bool):
        raise BadRequestData("isActive must be true or false")
    if "geoQ" in doc and not isinstance(doc["geoQ"], dict):
        raise BadRequestData("geoQ must be an object with georel, geometry and coordinates")
    if "expiresAt" in doc:
        moment = parse_datetime(_string(doc["expiresAt"], "expiresAt").replace("Z", "+00:00"))
        if moment is None or moment.tzinfo is None:
            raise BadRequestData("expiresAt must be a date-time with a time zone, e.g. ...Z")
        if moment <= now:
            raise BadRequestData("expiresAt must be in the future")
    if "notification" not in doc:
        raise BadRequestData("a subscription needs a notification member (with an endpoint)")
    doc["notification"] = _notification(doc["notification"])
    return doc


def merge_fragment(doc: dict[str, Any], fragment: Any) -> dict[str, Any]:
    """Apply a PATCH fragment: members replace, null removes, notification merges by member."""
    if not isinstance(fragment, dict) or not fragment:
        raise BadRequestData("a subscription update must be a non-empty JSON object")
    if "id" in fragment and fragment["id"] != doc.get("id"):
        raise BadRequestData("a subscription's id cannot change")
    merged = dict(doc)
    for key, value in fragment.items():
        if key in _READ_ONLY:
            continue
        if value is None or value == NULL:
            merged.pop(key, None)
        elif key == "notification" and isinstance(value, dict):
            notification = dict(merged.get("notification") or {})
            for member, item in value.items():
                if item is None or item == NULL:
                    notification.pop(member, None)
                else:
                    notification[member] = item
            merged["notification"] = notification
        else:
            merged[key] = value
    return merged


def present(record: SubscriptionRecord, now: datetime) -> dict[str, Any]:
    """Show a subscription with its status members (clause 5.2.12)."""
    doc = dict(record.doc)
    expires = doc.get("expiresAt")
    if expires and datetime.fromisoformat(expires.replace("Z", "+00:00")) <= now:
        status = "expired"
    elif doc.get("isActive", True) is False:
        status = "paused"
    else:
        status = "active"
    notification = dict(doc.get("notification") or {})
    delivery = record.status
    notification["timesSent"] = delivery.times_sent
    notification["timesFailed"] = delivery.times_failed
    for member, value in (
        ("lastNotification", delivery.last_notification),
        ("lastSuccess", delivery.last_success),
        ("lastFailure", delivery.last_failure),
    ):
        if value is not None:
            notification[member] = value
    if delivery.last_status is not None:
        notification["status"] = delivery.last_status
    doc.setdefault("isActive", True)
    doc["notification"] = notification
    doc["status"] = status
    return {"id": record.id, "type": "Subscription", **doc}


class SubscriptionService:
    """Subscription operations on behalf of a caller, in the caller's tenant."""

    def __init__(self, store: SubscriptionStore, resolve: ContextResolve, clock: Clock) -> None:
        self.store = store
        self.resolve = resolve
        self.clock = clock

    def _allow(self, caller: Caller) -> None:
        # Only roles that read every entity of their tenant may subscribe (the permission
        # table), so a notification never carries an entity its subscriber could not read.
        require(caller, Permission.MANAGE_SUBSCRIPTIONS)

    def _check(self, record: SubscriptionRecord, ctx: ActiveContext) -> None:
        """Compile the subscription once, so that a bad q, geoQ or pattern is a 400 now."""
        jsonld_context = record.doc.get("jsonldContext")
        render_ctx = self.resolve(jsonld_context) if jsonld_context else None
        try:
            compile_subscription(record, ctx, render_ctx)
        except (ValueError, TypeError, KeyError) as error:
            raise BadRequestData(f"invalid subscription: {error}") from None

    def create(self, caller: Caller, body: Any, ctx: ActiveContext, context: Any) -> str:
        """Create a subscription; return its id (generated when the body has none)."""
        self._allow(caller)
        now = self.clock.now()
        doc = validate(body, now)
        doc.setdefault("id", f"urn:ngsi-ld:Subscription:{uuid.uuid4()}")
        stamp = isoformat(now)
        record = SubscriptionRecord(
            caller.tenant, doc["id"], doc, context, stamp, stamp, owner=caller.principal_id
        )
        self._check(record, ctx)
        if not self.store.create(record):
            raise AlreadyExists(f"subscription {doc['id']} already exists", instance=doc["id"])
        return str(doc["id"])

    def retrieve(self, caller: Caller, subscription_id: str) -> SubscriptionRecord:
        """Return one subscription of the caller's tenant."""
        self._allow(caller)
        record = self.store.get(caller.tenant, subscription_id)
        if record is None:
            raise ResourceNotFound(
                f"no subscription with id {subscription_id}", instance=subscription_id
            )
        return record

    def page(self, caller: Caller, limit: int, offset: int) -> tuple[list[SubscriptionRecord], int]:
        """Return a page of the tenant's subscriptions and their total."""
        self._allow(caller)
        return self.store.page(caller.tenant, limit, offset)

    def update(self, caller: Caller, subscription_id: str, fragment: Any) -> None:
        """Change members of a subscription (the @context it was created with stays)."""
        record = self.retrieve(caller, subscription_id)
        now = self.clock.now()
        doc = validate(merge_fragment(record.doc, fragment), now)
        record.doc = doc
        record.modified_at = isoformat(now)
        self._check(record, self.resolve(record.context))
        if not self.store.replace(record):
            raise ResourceNotFound(
                f"no subscription with id {subscription_id}", instance=subscription_id
            )

    def delete(self, caller: Caller, subscription_id: str) -> None:
        """Delete a subscription and what it had not yet delivered."""
        self._allow(caller)
        if not self.store.delete(caller.tenant, subscription_id):
            raise ResourceNotFound(
                f"no subscription with id {subscription_id}", instance=subscription_id
            )
