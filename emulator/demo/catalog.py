"""The demo company's catalog: one product, features of every shape (flags, a
configuration number, enums, calculated seats, meters over raw events), four plans with
parent inheritance, two add-ons and the Governance entity types. Shared with the bulk
seeder, so both build the catalog through the same endpoint code."""
from __future__ import annotations

from typing import Any

PRODUCT_ID = "tessellate-platform"
MONTHLY = {"resetPeriod": "MONTH", "monthlyResetPeriodConfiguration": {"accordingTo": "SubscriptionStart"}}
CALENDAR_MONTHLY = {"resetPeriod": "MONTH", "monthlyResetPeriodConfiguration": {"accordingTo": "StartOfTheMonth"}}


def _event_meter(function: str, event_name: str, field_name: str | None = None) -> dict[str, Any]:
    aggregation: dict[str, Any] = {"function": function}
    if field_name:
        aggregation["field"] = field_name
    return {"aggregation": aggregation,
            "filters": [{"conditions": [{"field": "eventName", "operation": "EQUALS", "value": event_name}]}]}


FEATURES: list[dict[str, Any]] = [
    {"id": "sso", "displayName": "Single sign-on (SAML)", "featureType": "BOOLEAN",
     "description": "SAML/OIDC single sign-on for the workspace"},
    {"id": "audit-log", "displayName": "Audit log", "featureType": "BOOLEAN",
     "description": "Exportable audit trail of every admin action"},
    {"id": "max-projects", "displayName": "Projects", "featureType": "NUMBER", "meterType": "None",
     "featureUnits": "project", "featureUnitsPlural": "projects"},
    {"id": "support-tier", "displayName": "Support tier", "featureType": "ENUM",
     "enumConfiguration": [{"value": "community", "displayName": "Community"},
                           {"value": "standard", "displayName": "Standard (next business day)"},
                           {"value": "priority", "displayName": "Priority (4 h)"},
                           {"value": "dedicated", "displayName": "Dedicated CSM (1 h)"}]},
    {"id": "data-region", "displayName": "Data residency", "featureType": "ENUM",
     "enumConfiguration": [{"value": "us", "displayName": "United States"},
                           {"value": "eu", "displayName": "European Union"},
                           {"value": "apac", "displayName": "Asia-Pacific"}]},
    {"id": "seats", "displayName": "Seats", "featureType": "NUMBER", "meterType": "FLUCTUATING",
     "featureUnits": "seat", "featureUnitsPlural": "seats",
     "description": "Active members, reported by the app with usage SET"},
    {"id": "api-calls", "displayName": "API calls", "featureType": "NUMBER", "meterType": "INCREMENTAL",
     "featureUnits": "call", "featureUnitsPlural": "calls", "meter": _event_meter("COUNT", "api_call")},
    {"id": "ai-tokens", "displayName": "AI tokens", "featureType": "NUMBER", "meterType": "INCREMENTAL",
     "featureUnits": "token", "featureUnitsPlural": "tokens", "meter": _event_meter("SUM", "llm_completion", "tokens")},
    {"id": "monthly-active-users", "displayName": "Monthly active users", "featureType": "NUMBER",
     "meterType": "INCREMENTAL", "featureUnits": "user", "featureUnitsPlural": "users",
     "meter": _event_meter("UNIQUE", "user_active", "userId")},
    {"id": "agent-runs", "displayName": "Agent runs", "featureType": "NUMBER", "meterType": "INCREMENTAL",
     "featureUnits": "run", "featureUnitsPlural": "runs",
     "description": "Autonomous agent executions, reported by the app with usage DELTA"},
]


# (plan id, display name, parent, pricing type, {feature: entitlement values}).
# Children restate a value with behavior Override; features they leave out are inherited.
PLANS: list[tuple[str, str, str | None, str, dict[str, dict[str, Any]]]] = [
    ("free", "Free", None, "FREE", {
        "max-projects": {"usageLimit": 3},
        "support-tier": {"enumValues": ["community"]},
        "data-region": {"enumValues": ["us"]},
        "seats": {"usageLimit": 3},
        "api-calls": {"usageLimit": 500, **CALENDAR_MONTHLY},
        "ai-tokens": {"usageLimit": 50_000, **MONTHLY},
        "monthly-active-users": {"usageLimit": 50, **CALENDAR_MONTHLY},
        "agent-runs": {"usageLimit": 20, **MONTHLY},
    }),
    ("starter", "Starter", "free", "PAID", {
        "max-projects": {"usageLimit": 10},
        "support-tier": {"enumValues": ["standard"]},
        "data-region": {"enumValues": ["us", "eu"]},
        "seats": {"usageLimit": 10},
        "api-calls": {"usageLimit": 5_000, **CALENDAR_MONTHLY},
        "ai-tokens": {"usageLimit": 1_000_000, **MONTHLY},
        "monthly-active-users": {"usageLimit": 500, **CALENDAR_MONTHLY},
        "agent-runs": {"usageLimit": 300, **MONTHLY},
    }),
    ("pro", "Pro", "starter", "PAID", {
        "audit-log": {},
        "max-projects": {"usageLimit": 50},
        "support-tier": {"enumValues": ["priority"]},
        "seats": {"usageLimit": 50},
        "api-calls": {"usageLimit": 25_000, **CALENDAR_MONTHLY},
        "ai-tokens": {"usageLimit": 10_000_000, **MONTHLY},
        "monthly-active-users": {"usageLimit": 5_000, **CALENDAR_MONTHLY},
        "agent-runs": {"usageLimit": 3_000, **MONTHLY},
    }),
    ("enterprise", "Enterprise", "pro", "CUSTOM", {
        "sso": {},
        "max-projects": {"hasUnlimitedUsage": True},
        "support-tier": {"enumValues": ["dedicated"]},
        "data-region": {"enumValues": ["us", "eu", "apac"]},
        "seats": {"usageLimit": 500},
        "api-calls": {"usageLimit": 100_000, **CALENDAR_MONTHLY},
        "ai-tokens": {"usageLimit": 100_000_000, **MONTHLY},
        "monthly-active-users": {"hasUnlimitedUsage": True, **CALENDAR_MONTHLY},
        "agent-runs": {"hasUnlimitedUsage": True, **MONTHLY},
    }),
]
PLAN_IDS = [p[0] for p in PLANS]

# (add-on id, display name, max quantity, {feature: values per unit})
ADDONS: list[tuple[str, str, int, dict[str, dict[str, Any]]]] = [
    ("extra-seats", "Extra seats (pack of 10)", 50, {"seats": {"usageLimit": 10}}),
    ("extra-ai-tokens", "Extra AI tokens (5M / month)", 20, {"ai-tokens": {"usageLimit": 5_000_000, **MONTHLY}}),
]

ENTITY_TYPES: list[dict[str, Any]] = [
    {"id": "org", "displayName": "Organization", "attributionKeys": [], "description": "The customer's tenant root"},
    {"id": "department", "displayName": "Department", "attributionKeys": []},
    {"id": "team", "displayName": "Team", "attributionKeys": ["teamId"]},
    {"id": "user", "displayName": "User", "attributionKeys": ["userId"]},
    {"id": "agent", "displayName": "AI agent", "attributionKeys": ["agentId"]},
    {"id": "model", "displayName": "LLM model", "attributionKeys": ["model"],
     "description": "Used as a budget scope: spend on one model"},
]

# event name -> the feature whose meter reads it
METERED_EVENTS = {f["meter"]["filters"][0]["conditions"][0]["value"]: f for f in FEATURES if f.get("meter")}
# dimensions that name a governance entity (whose budgets then count the usage)
ATTRIBUTION_KEYS = {key for t in ENTITY_TYPES for key in t["attributionKeys"]}


def catalog_calls() -> list[list[tuple[str, str, dict[str, Any]]]]:
    """The catalog as ordered stages of REST calls; calls inside a stage are
    independent (parents come in earlier stages). Shared with the bulk seeder so both
    build the catalog through the same endpoint code."""
    stages: list[list[tuple[str, str, dict[str, Any]]]] = [[("POST", "/api/v1/products", {
        "id": PRODUCT_ID, "displayName": "Tessellate Platform",
        "description": "AI developer platform: projects, APIs, LLM gateway and agents"})]]
    stages.append([("POST", "/api/v1/features", dict(f)) for f in FEATURES])
    paid_addons = [a[0] for a in ADDONS]
    for plan_id, name, parent, pricing, _ in PLANS:
        body: dict[str, Any] = {"id": plan_id, "displayName": name, "productId": PRODUCT_ID,
                                "pricingType": pricing, "status": "PUBLISHED",
                                "description": f"The {name} plan"}
        if parent:
            body["parentPlanId"] = parent
        if plan_id != "free":
            body["compatibleAddonIds"] = paid_addons
        stages.append([("POST", "/api/v1/plans", body)])
    stages.append([
        ("POST", "/api/v1/addons", {"id": a, "displayName": n, "productId": PRODUCT_ID, "pricingType": "PAID",
                                    "status": "PUBLISHED", "maxQuantity": q})
        for a, n, q, _ in ADDONS
    ])
    entitlement_calls = []
    for plan_id, _, parent, _, values in PLANS:
        items = [{"type": "FEATURE", "id": fid, "behavior": "Override" if parent else "Increment", **v}
                 for fid, v in values.items()]
        entitlement_calls.append(("POST", f"/api/v1/plans/{plan_id}/entitlements", {"entitlements": items}))
    for addon_id, _, _, values in ADDONS:
        items = [{"type": "FEATURE", "id": fid, "behavior": "Increment", **v} for fid, v in values.items()]
        entitlement_calls.append(("POST", f"/api/v1/addons/{addon_id}/entitlements", {"entitlements": items}))
    stages.append(entitlement_calls)
    stages.append([("PUT", "/api/v1-beta/entity-types", {"types": ENTITY_TYPES})])
    return stages


def effective_plan_limits(plan_id: str) -> dict[str, float | None]:
    """Numeric limits of a plan after inheritance (None = unlimited); used to aim
    usage at a chosen utilization. Mirrors the Override behaviour used above."""
    by_id = {p[0]: p for p in PLANS}
    chain = []
    current: str | None = plan_id
    while current:
        chain.append(by_id[current])
        current = by_id[current][2]
    limits: dict[str, float | None] = {}
    for _, _, _, _, values in reversed(chain):
        for fid, v in values.items():
            if v.get("hasUnlimitedUsage"):
                limits[fid] = None
            elif "usageLimit" in v:
                limits[fid] = v["usageLimit"]
    return limits


def attributed(item: dict[str, Any]) -> tuple[str, str | None, float] | None:
    """(feature, the dimension that holds the amount or None, amount) of a usage report or
    event the emulator attributes to governance budgets (stigg-api.md §9.4: usage reports,
    COUNT and SUM meters); None for one it does not (UNIQUE meters, unmetered events)."""
    if "eventName" not in item:
        return item["featureId"], None, item["value"]
    feature = METERED_EVENTS.get(item["eventName"])
    function = feature["meter"]["aggregation"]["function"] if feature else None
    if function == "COUNT":
        return feature["id"], None, 1
    if function == "SUM":
        field = feature["meter"]["aggregation"]["field"]
        return feature["id"], field, item["dimensions"][field]
    return None
