"""Subscription routes (stigg-api.md §4): provision, list, retrieve, cancel. The request
is validated here; status, billing periods and replacement are domain/subscriptions.py."""
from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime
from typing import Any

from .. import clock, store
from ..domain import catalog, customers, entitlements
from ..domain.subscriptions import (
    STATUSES, billing_period, cancel_replaced, default_trial_end, insert, load, render, require, set_end, status_at,
    write,
)
from ..http import (
    ApiError, Request, Response, bad_input, check_keys, created_at_filter, ok, opt_bool, opt_datetime,
    opt_enum, opt_number, opt_str, opt_str_map, paginate, req_str, route,
)
from ..webhooks import outbox

# Billing and checkout fields the SDK can send; accepted and ignored (no billing is emulated).
IGNORED_KEYS = {
    "appliedCoupon", "awaitPaymentConfirmation", "billingCountryCode", "billingCycleAnchor", "billingInformation",
    "budget", "cancellationDate", "charges", "checkoutOptions", "minimumSpend", "priceOverrides", "salesforceId",
    "scheduleStrategy",
}
PROVISION_KEYS = IGNORED_KEYS | {
    "customerId", "planId", "id", "addons", "billingId", "billingPeriod", "entitlements", "metadata",
    "payingCustomerId", "paymentCollectionMethod", "resourceId", "startDate", "trialOverrideConfiguration",
    "unitQuantity",
}
OVERRIDE_KEYS = {
    "type", "id", "usageLimit", "hasUnlimitedUsage", "hasSoftLimit", "resetPeriod", "monthlyResetPeriodConfiguration",
    "weeklyResetPeriodConfiguration", "yearlyResetPeriodConfiguration",
}
TRIAL_END_BEHAVIORS = ("CONVERT_TO_PAID", "CANCEL_SUBSCRIPTION")


# --- provisioning ----------------------------------------------------------------------


def _validate_plan(c: sqlite3.Connection, plan_id: str) -> dict[str, Any]:
    plan = catalog.load_package(c, "plan", plan_id)
    if plan is None:
        raise bad_input(f"Plan {plan_id!r} does not exist")
    if plan["status"] != "PUBLISHED":
        raise bad_input(f"Plan {plan_id!r} is {plan['status']}; only a PUBLISHED plan can be provisioned")
    return plan


def _validate_addons(c: sqlite3.Connection, body: dict[str, Any], plan: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("addons")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_input("addons must be an array of {id, quantity}")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        where = f"addons[{i}]"
        if not isinstance(item, dict):
            raise bad_input(f"{where} must be an object")
        check_keys(item, {"id", "quantity"}, where)
        addon_id = req_str(item, "id", where)
        quantity = item.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise bad_input(f"{where}: quantity must be a whole number of at least 1")
        addon = catalog.load_package(c, "addon", addon_id)
        if addon is None or addon["status"] != "PUBLISHED":
            raise bad_input(f"{where}: add-on {addon_id!r} does not exist or is not published")
        compatible = plan.get("compatibleAddonIds") or []
        if addon["productId"] != plan["productId"] or (compatible and addon_id not in compatible):
            raise bad_input(f"{where}: add-on {addon_id!r} is not available for plan {plan['id']!r}")
        if addon.get("maxQuantity") and quantity > addon["maxQuantity"]:
            raise bad_input(f"{where}: quantity {quantity} is over the add-on's maximum {addon['maxQuantity']:g}")
        if any(a["id"] == addon_id for a in out):
            raise bad_input(f"{where}: add-on {addon_id!r} is listed twice")
        out.append({"id": addon_id, "quantity": quantity})
    return out


def _validate_overrides(c: sqlite3.Connection, body: dict[str, Any], now: str) -> dict[str, dict[str, Any]]:
    raw = body.get("entitlements")
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise bad_input("entitlements must be an array")
    out: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(raw):
        where = f"entitlements[{i}]"
        if not isinstance(item, dict):
            raise bad_input(f"{where} must be an object")
        if item.get("type") == "CREDIT":
            raise bad_input(f"{where}: CREDIT entitlements are not emulated")
        if item.get("type") != "FEATURE":
            raise bad_input(f"{where}: type must be FEATURE")
        check_keys(item, OVERRIDE_KEYS, where)
        feature = catalog.require_feature(c, req_str(item, "id", where), status=400)
        values = catalog.parse_values(item, where, feature)
        override = {k: values[k] for k in ("usageLimit", "hasUnlimitedUsage", "hasSoftLimit") if k in item}
        if "resetPeriod" in item:
            override["resetPeriod"], override["resetPeriodConfiguration"] = (
                values["resetPeriod"], values["resetPeriodConfiguration"])
        if feature["id"] in out:
            raise bad_input(f"{where}: feature {feature['id']!r} is overridden twice")
        out[feature["id"]] = {**override, "updatedAt": now}
    return out


def _trial(body: dict[str, Any], plan: dict[str, Any], start: datetime) -> tuple[datetime | None, str | None]:
    """(trialEndDate, trialEndBehavior). Inferred: isTrial false overrides the plan's
    default trial; isTrial true without a date needs the plan's default duration."""
    override = body.get("trialOverrideConfiguration")
    default = plan.get("defaultTrialConfig")
    if override is not None:
        where = "trialOverrideConfiguration"
        if not isinstance(override, dict):
            raise bad_input(f"{where} must be an object")
        check_keys(override, {"isTrial", "trialEndDate", "trialEndBehavior"}, where)
        is_trial = opt_bool(override, "isTrial", where)
        if is_trial is None:
            raise bad_input(f"{where}: isTrial is required")
        end = opt_datetime(override, "trialEndDate", where)
        behavior = opt_enum(override, "trialEndBehavior", TRIAL_END_BEHAVIORS, where)
        if not is_trial:
            return None, None
        if end is None and default is None:
            raise bad_input(f"{where}: trialEndDate is required when plan {plan['id']!r} has no default trial")
        end = end or default_trial_end(default, start)
        if end <= start:
            raise bad_input(f"{where}: trialEndDate must be after the subscription start")
        return end, behavior or (default or {}).get("trialEndBehavior") or "CONVERT_TO_PAID"
    if default:
        return default_trial_end(default, start), default.get("trialEndBehavior") or "CONVERT_TO_PAID"
    return None, None


def _build(c: sqlite3.Connection, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate the whole request and build the new subscription, writing nothing."""
    where = "subscription"
    check_keys(body, PROVISION_KEYS, where)
    customer_id, plan_id = req_str(body, "customerId", where), req_str(body, "planId", where)
    sub_id = opt_str(body, "id", where)
    resource_id = opt_str(body, "resourceId", where) or None
    billing = opt_enum(body, "billingPeriod", ("MONTHLY", "ANNUALLY"), where)
    start = opt_datetime(body, "startDate", where)
    unit_quantity = opt_number(body, "unitQuantity", where, minimum=0)
    if unit_quantity is not None and unit_quantity != int(unit_quantity):
        raise bad_input(f"{where}: unitQuantity must be a whole number")
    metadata = opt_str_map(body, "metadata", where)
    for key in ("billingId", "payingCustomerId"):
        opt_str(body, key, where)
    collection = opt_enum(body, "paymentCollectionMethod", ("CHARGE", "INVOICE", "NONE"), where)
    customer = customers.require(c, customer_id)
    if customer.get("archivedAt"):
        raise bad_input(f"Customer {customer_id!r} is archived; unarchive it before provisioning a subscription")
    plan = _validate_plan(c, plan_id)
    addons = _validate_addons(c, body, plan)
    now = clock.now()
    stamp = clock.iso(now)
    overrides = _validate_overrides(c, body, stamp)
    start = start or now
    trial_end, trial_behavior = _trial(body, plan, start)
    if sub_id and load(c, sub_id) is not None:
        raise ApiError(409, "DuplicatedEntityNotAllowed", f"Subscription {sub_id!r} already exists")
    doc = {
        "id": sub_id or f"subscription-{uuid.uuid4().hex[:20]}", "customerId": customer_id, "planId": plan_id,
        "resourceId": resource_id, "status": "ACTIVE", "pricingType": plan.get("pricingType") or "FREE",
        "paymentCollection": "NOT_REQUIRED", "paymentCollectionMethod": collection,
        "billingId": body.get("billingId"), "payingCustomerId": body.get("payingCustomerId"),
        "billingPeriod": billing or "MONTHLY", "unitQuantity": unit_quantity,
        "startDate": clock.iso(start), "endDate": None, "effectiveEndDate": None, "cancellationDate": None,
        "cancelReason": None, "trialEndDate": clock.iso(trial_end),
        "trial": {"trialEndBehavior": trial_behavior} if trial_behavior else None,
        "billingCycleAnchor": clock.iso(start), "addons": addons, "prices": [], "coupons": [],
        "metadata": metadata or {}, "createdAt": stamp, "updatedAt": stamp, "_overrides": overrides,
    }
    return doc, plan


@route("POST", "/api/v1/subscriptions")
def provision(req: Request) -> Response:
    body = req.json()
    with store.write() as c:
        doc, plan = _build(c, body)
        now = clock.now()
        cancel_replaced(c, doc, plan, now)
        if doc["resourceId"]:
            customers.ensure_resource(c, doc["customerId"], doc["resourceId"], doc["createdAt"])
        insert(c, doc, now)
        rendered = render(doc, now)
        effective = entitlements.effective_entitlements(c, doc["customerId"], doc["resourceId"])
        outbox.emit(c, "subscription.created", doc["customerId"], rendered)
        outbox.emit(c, "entitlements.updated", doc["customerId"], {"resourceId": doc["resourceId"]})
    return ok({"id": doc["id"], "status": "SUCCESS", "subscription": rendered,
               "entitlements": effective["entitlements"]}, 201)


@route("GET", "/api/v1/subscriptions")
def list_subscriptions(req: Request) -> Response:
    sql, params = "SELECT seq, doc FROM subscriptions WHERE 1=1", []
    for arg, column in (("customerId", "customer_id"), ("resourceId", "resource_id"), ("planId", "plan_id")):
        values = req.arg_list(arg)
        if values:
            sql += f" AND {column} IN ({','.join('?' * len(values))})"
            params += values
    statuses, pricing = req.arg_list("status"), req.arg_list("pricingType")
    for name, values, allowed in (("status", statuses, STATUSES), ("pricingType", pricing, catalog.PRICING_TYPES)):
        unknown = sorted(set(values or []) - set(allowed))
        if unknown:
            raise bad_input(f"{name} must be among {', '.join(allowed)}; got {', '.join(unknown)}")
    extra, extra_params = created_at_filter(req)
    if extra:
        sql += " AND " + extra
        params += extra_params
    c, now = store.conn(), clock.now()
    # status depends on the clock, so the filter runs on computed values, then pages by seq
    keep = [r["seq"] for r in c.execute(sql, params).fetchall()
            if _matches(store.loads(r["doc"]), now, statuses, pricing)]
    return paginate(req, "SELECT seq, doc FROM subscriptions WHERE seq IN (SELECT value FROM json_each(?))",
                    [store.dumps(keep)], lambda r: render(store.loads(r["doc"]), now, with_entitlements=False))


def _matches(doc: dict[str, Any], now: datetime, statuses: list[str] | None, pricing: list[str] | None) -> bool:
    return (not statuses or status_at(doc, now) in statuses) and (not pricing or doc["pricingType"] in pricing)


@route("GET", "/api/v1/subscriptions/{id}")
def retrieve(req: Request) -> Response:
    return ok(render(require(store.conn(), req.params["id"])))


# --- cancellation ----------------------------------------------------------------------


def _cancel_end(body: dict[str, Any], doc: dict[str, Any], now: datetime) -> tuple[datetime, str]:
    where = "cancel"
    check_keys(body, {"cancellationTime", "cancellationAction", "endDate", "prorate"}, where)
    when = opt_enum(body, "cancellationTime", ("END_OF_BILLING_PERIOD", "IMMEDIATE", "SPECIFIC_DATE"), where)
    opt_enum(body, "cancellationAction", ("DEFAULT", "REVOKE_ENTITLEMENTS"), where)
    opt_bool(body, "prorate", where)
    end_date = opt_datetime(body, "endDate", where)
    # Inferred default: IMMEDIATE, since the SDK may send nothing at all.
    when = when or ("SPECIFIC_DATE" if end_date else "IMMEDIATE")
    if when == "SPECIFIC_DATE":
        if end_date is None:
            raise bad_input(f"{where}: endDate is required with cancellationTime SPECIFIC_DATE")
        if end_date <= now:
            raise bad_input(f"{where}: endDate must be in the future; use IMMEDIATE to cancel now")
        return end_date, "ScheduledCancellation"
    if end_date is not None:
        raise bad_input(f"{where}: endDate only applies with cancellationTime SPECIFIC_DATE")
    if when == "END_OF_BILLING_PERIOD":
        return billing_period(doc, now)[1], "ScheduledCancellation"
    return now, "Immediate"


@route("POST", "/api/v1/subscriptions/{id}/cancel")
def cancel(req: Request) -> Response:
    body = req.json_or_empty()
    with store.write() as c:
        doc = require(c, req.params["id"])
        now = clock.now()
        if status_at(doc, now) in ("CANCELED", "EXPIRED"):
            raise bad_input(f"Subscription {doc['id']!r} is already {status_at(doc, now)}")
        end, reason = _cancel_end(body, doc, now)
        set_end(doc, end, now, reason)
        if body.get("cancellationAction") == "REVOKE_ENTITLEMENTS":
            # Inferred: entitlements stop now even if the subscription runs to its end date.
            doc["_entitlementsRevoked"] = True
        write(c, doc, now)
        rendered = render(doc, now)
        event = "subscription.canceled" if rendered["status"] == "CANCELED" else "subscription.updated"
        outbox.emit(c, event, doc["customerId"], rendered)
        outbox.emit(c, "entitlements.updated", doc["customerId"], {"resourceId": doc["resourceId"]})
    return ok(rendered)
