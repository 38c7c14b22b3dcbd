"""The Smart Data Models `Alert` a firing raises or clears, and the fact published about it.

One alert per rule, tenant and key: its id is derived from them, so a raise and the clear that
follows (and any replay of either) write the same entity. A one-off firing (`fire`) makes an
alert of its own, its id derived from its event time too. The alert keeps the rule that raised
it, the firing, the entities involved (`relatedEntities`) and the causal chain (`evidence`:
each change behind the firing), so an operator can follow it back to the readings.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Final

from smartcity.rules.firing import Firing

ALERT_VOCAB: Final = "https://smartdatamodels.org/dataModel.Alert/"
RULES_VOCAB: Final = "https://smartcity.changdong.example/ns/rules/"
ALERT_CONTEXT: Final[dict[str, Any]] = {
    "Alert": ALERT_VOCAB + "Alert",
    "alertSource": ALERT_VOCAB + "alertSource",
    "category": ALERT_VOCAB + "category",
    "subCategory": ALERT_VOCAB + "subCategory",
    "severity": ALERT_VOCAB + "severity",
    "dateIssued": ALERT_VOCAB + "dateIssued",
    "validFrom": "https://smartdatamodels.org/validFrom",
    "validTo": ALERT_VOCAB + "validTo",
    "description": "http://purl.org/dc/terms/description",
    "relatedEntities": RULES_VOCAB + "relatedEntities",
    "evidence": RULES_VOCAB + "evidence",
    "ruleId": RULES_VOCAB + "ruleId",
    "ruleVersion": RULES_VOCAB + "ruleVersion",
    "firingId": RULES_VOCAB + "firingId",
    "ruleKey": RULES_VOCAB + "ruleKey",
}
"""The terms of an alert: the Smart Data Models ones with the same IRIs as its @context."""
CATEGORIES: Final = frozenset(
    {"traffic", "naturalDisaster", "weather", "environment", "health", "security", "agriculture"}
)
SEVERITIES: Final = frozenset({"informational", "low", "medium", "high", "critical"})
_ID_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def alert_id(firing: Firing) -> str:
    """Return the id of the alert a firing writes (the same for its raise and its clear)."""
    parts = [firing.tenant, firing.rule_id, firing.key]
    if firing.kind == "fire":
        parts.append(firing.at)
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return f"urn:ngsi-ld:Alert:rule-{_ID_SAFE.sub('-', firing.rule_id)[:60]}-{digest}"


def rule_source(tenant: str, rule_id: str) -> str:
    """Return the `alertSource` of a rule's alerts."""
    return f"urn:ngsi-ld:Rule:{_ID_SAFE.sub('-', tenant or '_')}:{_ID_SAFE.sub('-', rule_id)}"


def _time(value: str) -> dict[str, Any]:
    return {"type": "Property", "value": {"@type": "DateTime", "@value": value}}


def _property(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


def evidence_doc(firing: Firing) -> list[dict[str, Any]]:
    """Return the causal chain of a firing as JSON (oldest change first)."""
    return [
        {
            "entityId": e.entity_id,
            "entityType": e.entity_type,
            "seq": e.seq,
            "observedAt": e.observed_at,
        }
        for e in firing.evidence
    ]


def description_of(firing: Firing, params: dict[str, Any]) -> str:
    """Return the alert's description: the rule's rendered text, else a plain summary."""
    text = params.get("description")
    if isinstance(text, str) and text:
        return text
    values = ", ".join(f"{k}={v}" for k, v in sorted(firing.values.items()))
    return f"rule {firing.rule_id} fired for {firing.key}" + (f" ({values})" if values else "")


def raised_alert(firing: Firing, params: dict[str, Any]) -> dict[str, Any]:
    """Return the whole Alert entity (normalized NGSI-LD, with @context) a raise writes."""
    category = str(params.get("category") or "security")
    if category not in CATEGORIES:
        raise ValueError(
            f"alert category {category!r} is not a Smart Data Models one: "
            + ", ".join(sorted(CATEGORIES))
        )
    severity = str(params.get("severity") or firing.severity or "medium").lower()
    if severity not in SEVERITIES:
        raise ValueError(
            f"alert severity {severity!r} is not one of " + ", ".join(sorted(SEVERITIES))
        )
    alert: dict[str, Any] = {
        "id": alert_id(firing),
        "type": "Alert",
        "category": _property(category),
        "severity": _property(severity),
        "alertSource": _property(rule_source(firing.tenant, firing.rule_id)),
        "dateIssued": _time(firing.at),
        "validFrom": _time(firing.at),
        "description": _property(description_of(firing, params)),
        "ruleId": _property(firing.rule_id),
        "ruleVersion": _property(firing.rule_version),
        "ruleKey": _property(firing.key),
        "firingId": _property(firing.firing_id),
        "evidence": {"type": "JsonProperty", "json": evidence_doc(firing)},
        "@context": [ALERT_CONTEXT],
    }
    sub_category = params.get("subCategory")
    if sub_category:
        alert["subCategory"] = _property(str(sub_category))
    related = list(dict.fromkeys(e.entity_id for e in firing.evidence))
    if related:
        alert["relatedEntities"] = {"type": "ListRelationship", "objectList": related}
    if firing.location is not None:
        alert["location"] = {"type": "GeoProperty", "value": dict(firing.location)}
    if firing.kind == "fire":
        alert["validTo"] = _time(firing.at)
    return alert


def cleared_alert(firing: Firing) -> dict[str, Any]:
    """Return the attributes a clear changes on the alert (merged into it)."""
    return {
        "id": alert_id(firing),
        "type": "Alert",
        "validTo": _time(firing.at),
        "@context": [ALERT_CONTEXT],
    }


def alert_fact(firing: Firing, params: dict[str, Any]) -> dict[str, Any]:
    """Return the `alert.raised` / `alert.cleared` fact the operations center consumes."""
    evidence = evidence_doc(firing)
    fact: dict[str, Any] = {
        "type": "alert.cleared" if firing.kind == "clear" else "alert.raised",
        "kind": "clear" if firing.kind == "clear" else "raise",
        "alertId": alert_id(firing),
        "firingId": firing.firing_id,
        "tenant": firing.tenant,
        "ruleId": firing.rule_id,
        "ruleVersion": firing.rule_version,
        "key": firing.key,
        "observedAt": firing.at,
        "severity": firing.severity,
        "category": str(params.get("category") or ""),
        "subCategory": str(params.get("subCategory") or ""),
        "description": description_of(firing, params),
        "location": dict(firing.location) if firing.location is not None else None,
        "related": list(dict.fromkeys(item["entityId"] for item in evidence)),
        "causes": evidence,
        "values": dict(firing.values),
    }
    title = _title_text(params.get("title") or params.get("name"))
    if title:
        fact["title"] = title
    # An `incident` action may choose the incident's type instead of the category mapping.
    for name in ("incidentType", "incidentSubtype", "zone"):
        if isinstance(params.get(name), str):
            fact[name] = params[name]
    return fact


def _title_text(value: Any) -> str:
    """Return a title as one text: a {ko, en} pair reads "한국어 · English"."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        parts = [str(value[lang]) for lang in ("ko", "en") if value.get(lang)]
        return " · ".join(parts)
    return ""
