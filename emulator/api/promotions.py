"""Promotional entitlement routes (stigg-api.md §6): grant, list, revoke. Status, end
dates, replacement and expiry notices are domain/promotions.py."""
from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime
from typing import Any

from .. import clock, config, store
from ..domain import catalog, customers
from ..domain.promotions import end_date, promotion_status, render_promotion, replace_promotion
from ..http import (
    Request, Response, bad_input, check_keys, created_at_filter, not_found, ok, opt_bool, opt_enum, paginate,
    req_list, req_str, route,
)
from ..webhooks import outbox

PROMO_PERIODS = ("1 week", "1 month", "6 month", "1 year", "lifetime", "custom")
PROMO_STATUSES = ("Active", "Expired", "Paused")
PROMO_KEYS = {
    "featureId", "period", "customEndDate", "usageLimit", "hasUnlimitedUsage", "hasSoftLimit", "isVisible",
    "enumValues", "resetPeriod", "monthlyResetPeriodConfiguration", "weeklyResetPeriodConfiguration",
    "yearlyResetPeriodConfiguration",
}
MAX_GRANTS = 100  # Inferred: the same 1–100 batch size as the other bulk writes


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
        "status": "Active", "period": period, "startDate": stamp, "endDate": clock.iso(end_date(period, now, custom)),
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
            replace_promotion(c, req.params["id"], doc)
        outbox.emit(c, "entitlements.updated", req.params["id"], {"featureIds": [d["featureId"] for d in docs]})
    return ok([render_promotion(d, now) for d in docs], 201)


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
