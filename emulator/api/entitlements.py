"""Customer entitlements (stigg-api.md §5) and promotional entitlements (§6).

The effective value of a feature is worked out at read time from every source the
customer has (active subscriptions with their plan, parent plans, overrides and
add-ons, and Active promotions), combined by the generous rule of §5.4. Nothing
derived is stored, so advancing the clock or revoking a grant takes effect at once.
"""
from __future__ import annotations

import logging
import math
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .. import clock, config, periods, store
from ..http import (
    Request, Response, bad_input, check_keys, created_at_filter, not_found, ok, opt_bool,
    opt_enum, paginate, req_list, req_str, route,
)
from ..webhooks import outbox
from . import catalog, customers, subscriptions

log = logging.getLogger(__name__)

PROMO_PERIODS = ("1 week", "1 month", "6 month", "1 year", "lifetime", "custom")
PROMO_STATUSES = ("Active", "Expired", "Paused")
PROMO_KEYS = {
    "featureId", "period", "customEndDate", "usageLimit", "hasUnlimitedUsage", "hasSoftLimit", "isVisible",
    "enumValues", "resetPeriod", "monthlyResetPeriodConfiguration", "weeklyResetPeriodConfiguration",
    "yearlyResetPeriodConfiguration",
}
MAX_GRANTS = 100  # Inferred: the same 1–100 batch size as the other bulk writes
EXPIRED_NOTIFIED = "_expiredNotified"  # internal key, stripped when rendering


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


def promotion_status(doc: dict[str, Any], now: datetime) -> str:
    if doc.get("status") == "Paused":
        return "Paused"  # Inferred: only seeding sets Paused, and it grants nothing
    end = doc.get("endDate")
    return "Active" if end is None or clock.parse(end) > now else "Expired"


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


# --- usage -----------------------------------------------------------------------------


AGGREGATES = {"SUM": "SUM(num)", "MAX": "MAX(num)", "MIN": "MIN(num)", "AVG": "AVG(num)", "COUNT": "COUNT(*)",
              "UNIQUE": "COUNT(DISTINCT str)"}


def usage_in_period(c: sqlite3.Connection, customer_id: str, resource_id: str | None, feature: dict[str, Any],
                    start: datetime | None, end: datetime | None) -> float:
    """Usage of one feature in [start, end). Calculated usage stores deltas, so it sums;
    meters aggregate by their function. FLUCTUATING features never reset."""
    meter = feature.get("meter")
    expression = AGGREGATES[meter["aggregation"]["function"]] if meter else "SUM(num)"
    sql = f"SELECT {expression} FROM measurements WHERE customer_id=? AND resource_id=? AND feature_id=?"
    params: list[Any] = [customer_id, resource_id or "", feature["id"]]
    if feature.get("meterType") != "FLUCTUATING":
        if start is not None:
            sql += " AND ts >= ?"
            params.append(clock.iso(start))
        if end is not None:
            sql += " AND ts < ?"
            params.append(clock.iso(end))
    value = c.execute(sql, params).fetchone()[0] or 0
    return _transform(float(value), feature.get("unitTransformation"))


def _transform(value: float, transformation: dict[str, Any] | None) -> float:
    if not transformation or not transformation.get("divide"):
        return value
    divided = value / transformation["divide"]
    return float(math.ceil(divided) if transformation.get("round") == "UP" else math.floor(divided))


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


@route("GET", "/api/v1/customers/{id}/entitlements")
def list_entitlements(req: Request) -> Response:
    return ok(effective_entitlements(store.conn(), req.params["id"], req.arg("resourceId") or None))


@route("GET", "/api/v1/customers/{id}/entitlements/check")
def check_entitlement(req: Request) -> Response:
    feature_id, currency_id = req.arg("featureId"), req.arg("currencyId")
    if bool(feature_id) == bool(currency_id):
        raise bad_input("Send exactly one of featureId or currencyId")
    if currency_id:
        raise bad_input("Credit entitlements are not emulated; check a featureId")  # Inferred
    requested = req.arg_number("requestedUsage", 1.0)
    if requested is not None and requested < 0:
        raise bad_input("requestedUsage must not be negative")
    values = req.arg_list("requestedValues")
    result = evaluate_feature(store.conn(), req.params["id"], feature_id, resource_id=req.arg("resourceId") or None,
                              requested_usage=requested, requested_values=values)
    return ok(result)


# --- promotional entitlements (§6) ---------------------------------------------------


def render_promotion(doc: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    out["status"] = promotion_status(doc, now or clock.now())
    return out


def _end_date(period: str, start: datetime, custom: datetime | None) -> datetime | None:
    """Inferred mapping of §6: calendar arithmetic in UTC."""
    if period == "1 week":
        return start + timedelta(days=7)
    months = {"1 month": 1, "6 month": 6, "1 year": 12}.get(period)
    if months:
        return periods.add_months(start, months)
    return custom if period == "custom" else None


def _parse_grant(c: sqlite3.Connection, item: Any, where: str, now: datetime) -> dict[str, Any]:
    """Validate one grant completely and build its record. The SDK sends every key, most
    as null, so a missing key counts as null (Inferred)."""
    if not isinstance(item, dict):
        raise bad_input(f"{where} must be an object")
    check_keys(item, PROMO_KEYS, where)
    feature = catalog.require_feature(c, req_str(item, "featureId", where), status=400)
    period = opt_enum(item, "period", PROMO_PERIODS, where)
    if period is None:
        raise bad_input(f"{where}: period is required ({', '.join(PROMO_PERIODS)})")
    custom = _custom_end(item, where, period, now)
    values = catalog.parse_values(item, where, feature)
    if feature["featureType"] == "NUMBER" and values["usageLimit"] is None and not values["hasUnlimitedUsage"]:
        raise bad_input(f"{where}: a NUMBER feature needs usageLimit or hasUnlimitedUsage")
    visible = opt_bool(item, "isVisible", where)
    stamp = clock.iso(now)
    return {
        "id": f"promo-{uuid.uuid4()}", "featureId": feature["id"], "environmentId": config.ENVIRONMENT_ID,
        "status": "Active", "period": period, "startDate": stamp, "endDate": clock.iso(_end_date(period, now, custom)),
        "usageLimit": values["usageLimit"], "hasUnlimitedUsage": values["hasUnlimitedUsage"],
        "hasSoftLimit": values["hasSoftLimit"], "enumValues": values["enumValues"],
        "isVisible": True if visible is None else visible, "resetPeriod": values["resetPeriod"],
        "resetPeriodConfiguration": values["resetPeriodConfiguration"], "description": None,
        "featureGroupIds": None, "createdAt": stamp, "updatedAt": stamp,
    }


def _custom_end(item: dict[str, Any], where: str, period: str, now: datetime) -> datetime | None:
    raw = item.get("customEndDate")
    if raw is None:
        if period == "custom":
            raise bad_input(f"{where}: customEndDate is required with period custom")
        return None
    if period != "custom":
        raise bad_input(f"{where}: customEndDate only applies with period custom")  # Inferred
    try:
        end = clock.parse(raw)
    except (ValueError, TypeError):
        raise bad_input(f"{where}: customEndDate must be an ISO-8601 timestamp") from None
    if end <= now:
        raise bad_input(f"{where}: customEndDate must be in the future")
    return end


def _require_grantable(c: sqlite3.Connection, customer_id: str) -> None:
    customer = customers.require(c, customer_id)
    if customer.get("archivedAt"):
        # Inferred: an archived customer gets no new grants, like no new subscriptions.
        raise bad_input(f"Customer {customer_id!r} is archived; unarchive it before granting")


@route("POST", "/api/v1/customers/{id}/promotional-entitlements")
def grant(req: Request) -> Response:
    body = req.json()
    check_keys(body, {"promotionalEntitlements"}, "grant")
    items = req_list(body, "promotionalEntitlements", "grant", max_items=MAX_GRANTS)
    now = clock.now()
    with store.write() as c:
        _require_grantable(c, req.params["id"])
        docs = [_parse_grant(c, item, f"promotionalEntitlements[{i}]", now) for i, item in enumerate(items)]
        if len({d["featureId"] for d in docs}) != len(docs):
            raise bad_input("grant: each featureId may appear only once per request")
        for doc in docs:
            _replace_promotion(c, req.params["id"], doc)
        outbox.emit(c, "entitlements.updated", req.params["id"], {"featureIds": [d["featureId"] for d in docs]})
    return ok([render_promotion(d, now) for d in docs], 201)


def _replace_promotion(c: sqlite3.Connection, customer_id: str, doc: dict[str, Any]) -> None:
    """Replace, not stack (guarantee 15): the old record goes, the new one gets a new id
    and a new seq, so it lists after older grants."""
    c.execute("DELETE FROM promotions WHERE customer_id=? AND feature_id=?", (customer_id, doc["featureId"]))
    c.execute("INSERT INTO promotions (customer_id, feature_id, created_at, doc) VALUES (?, ?, ?, ?)",
              (customer_id, doc["featureId"], doc["createdAt"], store.dumps(doc)))
    outbox.emit(c, "promotional_entitlement.granted", customer_id, render_promotion(doc))


@route("GET", "/api/v1/customers/{id}/promotional-entitlements")
def list_promotions(req: Request) -> Response:
    c = store.conn()
    customers.require(c, req.params["id"])
    statuses = req.arg_list("status")
    unknown = sorted(set(statuses or []) - set(PROMO_STATUSES))
    if unknown:
        raise bad_input(f"status must be among {', '.join(PROMO_STATUSES)}; got {', '.join(unknown)}")
    now = clock.now()
    rows = c.execute("SELECT seq, doc FROM promotions WHERE customer_id=?", (req.params["id"],)).fetchall()
    # status depends on the clock, so it is filtered here rather than stored
    keep = [r["seq"] for r in rows if not statuses or promotion_status(store.loads(r["doc"]), now) in statuses]
    sql = "SELECT seq, doc FROM promotions WHERE seq IN (SELECT value FROM json_each(?))"
    extra, params = created_at_filter(req)
    if extra:
        sql += " AND " + extra
    return paginate(req, sql, [store.dumps(keep), *params], lambda r: render_promotion(store.loads(r["doc"]), now))


@route("DELETE", "/api/v1/customers/{id}/promotional-entitlements/{featureId}")
def revoke(req: Request) -> Response:
    customer_id, feature_id = req.params["id"], req.params["featureId"]
    with store.write() as c:
        customers.require(c, customer_id)
        row = c.execute("SELECT doc FROM promotions WHERE customer_id=? AND feature_id=?",
                        (customer_id, feature_id)).fetchone()
        if row is None:
            raise not_found("PromotionalEntitlementNotFoundError",
                            f"Customer {customer_id!r} has no promotional entitlement for {feature_id!r}")
        doc = render_promotion(store.loads(row["doc"]))
        # Inferred: revoke deletes the record, since no Revoked status exists.
        c.execute("DELETE FROM promotions WHERE customer_id=? AND feature_id=?", (customer_id, feature_id))
        outbox.emit(c, "promotional_entitlement.revoked", customer_id, doc)
        outbox.emit(c, "entitlements.updated", customer_id, {"featureIds": [feature_id]})
    return ok(doc)


def expire_due_promotions(c: sqlite3.Connection) -> int:
    """Emit promotional_entitlement.expired once per promotion whose endDate has passed.
    Returns how many were announced. Safe to call from any thread, repeatedly."""
    if c.in_transaction:
        return _expire(c)
    # store.write() would use this thread's default connection, not the one given.
    c.execute("BEGIN IMMEDIATE")
    try:
        count = _expire(c)
    except BaseException:
        c.execute("ROLLBACK")
        raise
    c.execute("COMMIT")
    return count


def _expire(c: sqlite3.Connection) -> int:
    # The dispatcher thread serves no request, so it reads the clock offset itself.
    clock.set_request_offset(float(store.get_control(c).get("clockOffsetSeconds") or 0))
    now = clock.now()
    rows = c.execute(
        "SELECT seq, customer_id, doc FROM promotions WHERE json_extract(doc, '$.endDate') IS NOT NULL "
        f"AND json_extract(doc, '$.{EXPIRED_NOTIFIED}') IS NULL AND json_extract(doc, '$.endDate') <= ?",
        (clock.iso(now),),
    ).fetchall()
    for row in rows:
        doc = store.loads(row["doc"])
        doc[EXPIRED_NOTIFIED] = clock.iso(now)
        c.execute("UPDATE promotions SET doc=? WHERE seq=?", (store.dumps(doc), row["seq"]))
        outbox.emit(c, "promotional_entitlement.expired", row["customer_id"], render_promotion(doc, now))
        outbox.emit(c, "entitlements.updated", row["customer_id"], {"featureIds": [doc["featureId"]]})
    return len(rows)
