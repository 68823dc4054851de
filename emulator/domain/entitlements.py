"""Effective entitlements (stigg-api.md §5): the generous rule and the check decision.

The effective value of a feature is worked out at read time from every source the
customer has (active subscriptions with their plan, parent plans, overrides and
add-ons, and Active promotions), combined by the generous rule of §5.4. Nothing
derived is stored, so advancing the clock or revoking a grant takes effect at once.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import clock, periods, store
from . import catalog, customers, subscriptions
from .measurements import usage_in_period
from .promotions import promotion_status


# --- sources and the generous rule (§5.4) ----------------------------------------------


@dataclass
class Source:
    """One source's value for one feature: a subscription total or an Active promotion."""

    granted: bool
    limit: float | None = None
    unlimited: bool = False
    soft: bool = False
    enum: list[str] | None = None
    reset_period: str | None = None
    reset_config: dict[str, Any] | None = None
    anchor: datetime | None = None
    valid_until: datetime | None = None
    updated_at: str | None = None


def _from_values(values: dict[str, Any]) -> Source:
    return Source(
        granted=values.get("isGranted") is not False,
        limit=values.get("usageLimit"),
        unlimited=bool(values.get("hasUnlimitedUsage")),
        soft=bool(values.get("hasSoftLimit")),
        enum=list(values["enumValues"]) if values.get("enumValues") is not None else None,
        reset_period=values.get("resetPeriod"),
        reset_config=values.get("resetPeriodConfiguration"),
        updated_at=values.get("updatedAt"),
    )


def _scaled(source: Source, quantity: int) -> Source:
    limit = source.limit * quantity if source.limit is not None else None
    return Source(source.granted, limit, source.unlimited, source.soft, source.enum, source.reset_period,
                  source.reset_config, updated_at=source.updated_at)


def _add(base: Source | None, extra: Source) -> Source:
    """Increment semantics: add-ons and Increment child plans add to what is there."""
    if base is None or not base.granted:
        return extra
    if not extra.granted:
        return base
    limit = None if base.limit is None and extra.limit is None else (base.limit or 0) + (extra.limit or 0)
    enum = None if base.enum is None and extra.enum is None else sorted(set(base.enum or []) | set(extra.enum or []))
    return Source(
        True, limit, base.unlimited or extra.unlimited, base.soft or extra.soft, enum,
        base.reset_period or extra.reset_period,
        base.reset_config if base.reset_period else extra.reset_config,
        updated_at=max(filter(None, [base.updated_at, extra.updated_at]), default=None),
    )


def _plan_values(c: sqlite3.Connection, plan_id: str, depth: int = 0) -> dict[str, Source]:
    """A plan's entitlements with its parents' underneath (Inferred: Increment adds to the
    parent's value, Override replaces it)."""
    plan = catalog.load_package(c, "plan", plan_id)
    if plan is None:
        return {}
    parent = plan.get("parentPlanId")
    values = _plan_values(c, parent, depth + 1) if parent and depth < 10 else {}
    for ent in catalog.package_entitlements(c, plan_id):
        own = _from_values(ent)
        values[ent["id"]] = own if ent.get("behavior") == "Override" else _add(values.get(ent["id"]), own)
    return values


def _apply_override(base: Source | None, override: dict[str, Any]) -> Source:
    """Inferred: a subscription override replaces the plan's value for each key it sends,
    and grants the feature even when the plan does not."""
    source = Source(True) if base is None else Source(**base.__dict__)
    source.granted = True
    if "usageLimit" in override:
        source.limit = override["usageLimit"]
    if "hasUnlimitedUsage" in override:
        source.unlimited = bool(override["hasUnlimitedUsage"])
    if "hasSoftLimit" in override:
        source.soft = bool(override["hasSoftLimit"])
    if "resetPeriod" in override:
        source.reset_period = override["resetPeriod"]
        source.reset_config = override.get("resetPeriodConfiguration")
    source.updated_at = override.get("updatedAt") or source.updated_at
    return source


def subscription_values(c: sqlite3.Connection, sub: dict[str, Any]) -> dict[str, Source]:
    """Subscription total per feature: plan (or override) plus add-on value × quantity."""
    values = _plan_values(c, sub["planId"])
    for feature_id, override in (sub.get("_overrides") or {}).items():
        values[feature_id] = _apply_override(values.get(feature_id), override)
    for addon in sub.get("addons") or []:
        for ent in catalog.package_entitlements(c, addon["id"]):
            values[ent["id"]] = _add(values.get(ent["id"]), _scaled(_from_values(ent), int(addon["quantity"])))
    anchor = clock.parse(sub["startDate"])
    end = sub.get("effectiveEndDate")
    for source in values.values():
        source.anchor = anchor
        source.valid_until = clock.parse(end) if end else None
        source.updated_at = max(filter(None, [source.updated_at, sub.get("updatedAt")]), default=None)
    return values


def _promotion_source(doc: dict[str, Any]) -> Source:
    source = _from_values({**doc, "isGranted": True})
    source.anchor = clock.parse(doc["startDate"])
    source.valid_until = clock.parse(doc["endDate"]) if doc.get("endDate") else None
    return source


@dataclass
class Customer:
    """Everything the evaluation needs about one customer (and resource), loaded once."""

    id: str
    doc: dict[str, Any] | None
    resource_id: str | None
    resource_known: bool
    now: datetime
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    promotions: list[dict[str, Any]] = field(default_factory=list)
    _values: list[dict[str, Source]] | None = None

    def subscription_values(self, c: sqlite3.Connection) -> list[dict[str, Source]]:
        if self._values is None:
            self._values = [subscription_values(c, sub) for sub in self.subscriptions]
        return self._values

    def sources(self, c: sqlite3.Connection, feature_id: str) -> list[Source]:
        """Subscriptions first, so a tie goes to the subscription's reset period."""
        found = [values[feature_id] for values in self.subscription_values(c) if feature_id in values]
        return found + [_promotion_source(p) for p in self.promotions if p["featureId"] == feature_id]

    def feature_ids(self, c: sqlite3.Connection) -> list[str]:
        ids: list[str] = []
        for values in self.subscription_values(c):
            ids += [f for f in values if f not in ids]
        return ids + [p["featureId"] for p in self.promotions if p["featureId"] not in ids]


def load_customer(c: sqlite3.Connection, customer_id: str, resource_id: str | None) -> Customer:
    now = clock.now()
    doc = customers.load(c, customer_id)
    known = resource_id is None or c.execute(
        "SELECT 1 FROM resources WHERE customer_id=? AND id=?", (customer_id, resource_id)).fetchone() is not None
    ctx = Customer(customer_id, doc, resource_id, known, now)
    if doc is None:
        return ctx
    ctx.subscriptions = subscriptions.active_for(c, customer_id, resource_id, now)
    # Inferred: promotions are customer-level, so they also apply when a resourceId is given.
    rows = c.execute("SELECT doc FROM promotions WHERE customer_id=? ORDER BY seq", (customer_id,))
    ctx.promotions = [p for p in map(lambda r: store.loads(r["doc"]), rows) if promotion_status(p, now) == "Active"]
    return ctx


def _winner(sources: list[Source]) -> Source | None:
    """The most generous granted source: unlimited beats any limit, then the highest limit;
    ties keep the earlier source."""
    best: Source | None = None
    for source in sources:
        if not source.granted:
            continue
        if best is None or (source.unlimited, source.limit or 0) > (best.unlimited, best.limit or 0):
            best = source
    return best


# --- evaluation ------------------------------------------------------------------------


def _feature_ref(feature: dict[str, Any]) -> dict[str, Any]:
    return {key: feature[key] for key in ("id", "displayName", "featureStatus", "featureType")}


def _denied(feature: dict[str, Any] | None, reason: str) -> dict[str, Any]:
    return {
        "type": "FEATURE", "isGranted": False, "accessDeniedReason": reason,
        "feature": _feature_ref(feature) if feature else None, "currentUsage": None, "usageLimit": None,
        "hasUnlimitedUsage": None, "resetPeriod": None, "usagePeriodAnchor": None, "usagePeriodStart": None,
        "usagePeriodEnd": None, "validUntil": None, "entitlementUpdatedAt": None,
    }


def _entitled(c: sqlite3.Connection, ctx: Customer, feature: dict[str, Any], sources: list[Source]) -> dict[str, Any]:
    """The wire entitlement of a feature the customer has (granted, before any request check)."""
    granted = [s for s in sources if s.granted]
    best = _winner(sources)
    if best is None:
        return _denied(feature, "NoFeatureEntitlementInSubscription")
    out = _denied(feature, "")
    out.update(isGranted=True, accessDeniedReason=None, entitlementUpdatedAt=best.updated_at)
    valid_until = [s.valid_until for s in [best] if s.valid_until]
    if feature["featureType"] == "NUMBER":
        unlimited = any(s.unlimited for s in granted)
        out["hasUnlimitedUsage"] = unlimited
        out["usageLimit"] = None if unlimited else max((s.limit or 0) for s in granted)
    if feature["featureType"] == "ENUM":
        out["_enumValues"] = sorted({v for s in granted for v in (s.enum or [])})
    if catalog.is_metered(feature):
        start = end = None
        if best.reset_period and feature.get("meterType") != "FLUCTUATING":
            according = (best.reset_config or {}).get("accordingTo")
            start, end, anchor = periods.reset_window(best.reset_period, according, best.anchor or ctx.now, ctx.now)
            out.update(resetPeriod=best.reset_period, usagePeriodAnchor=clock.iso(anchor),
                       usagePeriodStart=clock.iso(start), usagePeriodEnd=clock.iso(end))
            valid_until.append(end)
        out["currentUsage"] = usage_in_period(c, ctx.id, ctx.resource_id, feature, start, end)
    out["validUntil"] = clock.iso(min(valid_until)) if valid_until else None
    out["_soft"] = best.soft
    return out


def _decide(out: dict[str, Any], feature: dict[str, Any], requested_usage: float | None,
            requested_values: list[str] | None) -> dict[str, Any]:
    """Apply the request to a granted entitlement (guarantees 10 and 12)."""
    reason = None
    if requested_values:
        if feature["featureType"] != "ENUM":
            reason = "FeatureTypeMismatch"
        elif not set(requested_values) <= set(out.get("_enumValues") or []):
            reason = "RequestedValuesMismatch"
    elif requested_usage is not None and feature["featureType"] == "NUMBER":
        # Inferred: a configuration value (not metered) is checked as 0 + requestedUsage.
        used = out["currentUsage"] or 0
        if not (out["hasUnlimitedUsage"] or out.get("_soft") or used + requested_usage <= (out["usageLimit"] or 0)):
            reason = "RequestedUsageExceedingLimit"
    if reason:
        out.update(isGranted=False, accessDeniedReason=reason)
    return out


def _wire(out: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in out.items() if not k.startswith("_")}


def _evaluate(c: sqlite3.Connection, ctx: Customer, feature_id: str, requested_usage: float | None,
              requested_values: list[str] | None) -> dict[str, Any]:
    feature = catalog.load_feature(c, feature_id)
    if ctx.doc is None:
        return _denied(feature, "CustomerNotFound")
    if ctx.doc.get("archivedAt"):
        return _denied(feature, "CustomerIsArchived")
    if feature is None:
        return _denied(None, "FeatureNotFound")
    if not ctx.resource_known:
        return _denied(feature, "CustomerResourceNotFound")
    sources = ctx.sources(c, feature_id)
    if not sources:
        return _denied(feature, "NoFeatureEntitlementInSubscription" if ctx.subscriptions else "NoActiveSubscription")
    return _wire(_decide(_entitled(c, ctx, feature, sources), feature, requested_usage, requested_values))


def period_origin(c: sqlite3.Connection, customer_id: str, feature_id: str,
                  resource_id: str | None = None) -> datetime | None:
    """Where the periods of the customer's winning source for a feature begin: its
    subscription's or promotion's start (None without one). Usage history uses it so
    earlier periods of a calendar-aligned reset are not cut off at this month's 1st."""
    ctx = load_customer(c, customer_id, resource_id)
    if ctx.doc is None or not ctx.resource_known:
        return None
    best = _winner(ctx.sources(c, feature_id))
    return best.anchor if best else None


def evaluate_feature(c: sqlite3.Connection, customer_id: str, feature_id: str, *, resource_id: str | None = None,
                     requested_usage: float | None = None, requested_values: list[str] | None = None) -> dict[str, Any]:
    """The customer's FEATURE entitlement with the check decision applied. Used by the
    check endpoints (v1 and v1-beta), usage reports and governance."""
    ctx = load_customer(c, customer_id, resource_id)
    return _evaluate(c, ctx, feature_id, requested_usage, requested_values)


def effective_entitlements(c: sqlite3.Connection, customer_id: str, resource_id: str | None) -> dict[str, Any]:
    """The §5.1 body: one item per feature found in any source, denied ones included."""
    ctx = load_customer(c, customer_id, resource_id)
    if ctx.doc is None:
        return {"accessDeniedReason": "CustomerNotFound", "entitlements": []}
    if ctx.doc.get("archivedAt"):
        return {"accessDeniedReason": "CustomerIsArchived", "entitlements": []}
    items = [_evaluate(c, ctx, fid, None, None) for fid in ctx.feature_ids(c)]
    # A feature deleted from the catalog after it was granted is not listed.
    items = [i for i in items if i["accessDeniedReason"] != "FeatureNotFound"]
    return {"accessDeniedReason": None if ctx.subscriptions else "NoActiveSubscription", "entitlements": items}
