"""Subscriptions (stigg-api.md §4): status from the clock, billing periods, which
subscriptions grant entitlements now, and the writes every provisioning or cancellation
shares (ending one, replacing the live one of a product).

A subscription's status is computed at read time from its dates (start, trial end,
effective end), so a scheduled cancellation or a trial end takes effect when the
emulator's clock passes it, without any background job. Keys starting with ``_`` are
internal (e.g. ``_overrides``, the full override values) and never leave the emulator.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from .. import clock, periods, store
from ..http import not_found
from ..webhooks import outbox
from . import catalog

ACTIVE = ("ACTIVE", "IN_TRIAL")
STATUSES = ("PAYMENT_PENDING", "ACTIVE", "EXPIRED", "IN_TRIAL", "CANCELED", "NOT_STARTED")


def status_at(doc: dict[str, Any], now: datetime) -> str:
    """The status the clock implies. Inferred: a trial that ends with CANCEL_SUBSCRIPTION
    reads EXPIRED afterwards; one that converts reads ACTIVE."""
    end = doc.get("effectiveEndDate")
    if end and clock.parse(end) <= now:
        return "CANCELED"
    if clock.parse(doc["startDate"]) > now:
        return "NOT_STARTED"
    trial_end = doc.get("trialEndDate")
    if trial_end:
        if now < clock.parse(trial_end):
            return "IN_TRIAL"
        if (doc.get("trial") or {}).get("trialEndBehavior") == "CANCEL_SUBSCRIPTION":
            return "EXPIRED"
    return "ACTIVE"


def billing_period(doc: dict[str, Any], now: datetime) -> tuple[datetime, datetime]:
    unit = "YEAR" if doc.get("billingPeriod") == "ANNUALLY" else "MONTH"
    start, end, _ = periods.reset_window(unit, "SubscriptionStart", clock.parse(doc["startDate"]), now)
    return start, end


def render(doc: dict[str, Any], now: datetime | None = None, *, with_entitlements: bool = True) -> dict[str, Any]:
    now = now or clock.now()
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    out["status"] = status_at(doc, now)
    start, end = billing_period(doc, now)
    out["currentBillingPeriodStart"], out["currentBillingPeriodEnd"] = clock.iso(start), clock.iso(end)
    if with_entitlements:
        out["subscriptionEntitlements"] = [{"id": fid, "type": "FEATURE"} for fid in doc.get("_overrides") or {}]
    else:
        out.pop("subscriptionEntitlements", None)
    return out


def load(c: sqlite3.Connection, subscription_id: str) -> dict[str, Any] | None:
    row = c.execute("SELECT doc FROM subscriptions WHERE id=?", (subscription_id,)).fetchone()
    return store.loads(row["doc"]) if row else None


def require(c: sqlite3.Connection, subscription_id: str) -> dict[str, Any]:
    doc = load(c, subscription_id)
    if doc is None:
        raise not_found("SubscriptionNotFound", f"Subscription {subscription_id!r} not found")
    return doc


def active_for(c: sqlite3.Connection, customer_id: str, resource_id: str | None, now: datetime) -> list[dict[str, Any]]:
    """Subscriptions that grant entitlements now: ACTIVE or IN_TRIAL, for exactly this
    resource (Inferred: a customer-level subscription does not cover a resource), and not
    cancelled with REVOKE_ENTITLEMENTS."""
    rows = c.execute("SELECT doc FROM subscriptions WHERE customer_id=? AND resource_id IS ? ORDER BY seq",
                     (customer_id, resource_id)).fetchall()
    docs = [store.loads(r["doc"]) for r in rows]
    return [d for d in docs if status_at(d, now) in ACTIVE and not d.get("_entitlementsRevoked")]


def insert(c: sqlite3.Connection, doc: dict[str, Any], now: datetime) -> None:
    c.execute(
        "INSERT INTO subscriptions (id, customer_id, plan_id, resource_id, status, created_at, doc) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (doc["id"], doc["customerId"], doc["planId"], doc["resourceId"], status_at(doc, now), doc["createdAt"],
         store.dumps(doc)),
    )


def write(c: sqlite3.Connection, doc: dict[str, Any], now: datetime) -> None:
    c.execute("UPDATE subscriptions SET status=?, doc=? WHERE id=?",
              (status_at(doc, now), store.dumps(doc), doc["id"]))


def set_end(doc: dict[str, Any], end: datetime, now: datetime, reason: str) -> None:
    """End the subscription at ``end``, cancelled at ``now`` for ``reason``."""
    doc.update(endDate=clock.iso(end), effectiveEndDate=clock.iso(end), cancellationDate=clock.iso(now),
               cancelReason=reason, updatedAt=clock.iso(now))


def cancel_replaced(c: sqlite3.Connection, doc: dict[str, Any], plan: dict[str, Any], now: datetime) -> None:
    """One live subscription per (customer, resource, product): the new one replaces the
    old (Inferred: unless the product allows multiple subscriptions)."""
    product = c.execute("SELECT doc FROM products WHERE id=?", (plan["productId"],)).fetchone()
    if product and store.loads(product["doc"]).get("multipleSubscriptions"):
        return
    rows = c.execute("SELECT doc FROM subscriptions WHERE customer_id=? AND resource_id IS ?",
                     (doc["customerId"], doc["resourceId"])).fetchall()
    for row in rows:
        old = store.loads(row["doc"])
        if status_at(old, now) not in ("ACTIVE", "IN_TRIAL", "NOT_STARTED"):
            continue
        old_plan = catalog.load_package(c, "plan", old["planId"])
        if old_plan is None or old_plan["productId"] != plan["productId"]:
            continue
        set_end(old, now, now, "UPGRADE_OR_DOWNGRADE")
        write(c, old, now)
        outbox.emit(c, "subscription.canceled", old["customerId"], render(old, now))


def default_trial_end(config: dict[str, Any], start: datetime) -> datetime:
    duration = int(config["duration"])
    if config["units"] == "MONTH":
        return periods.add_months(start, duration)
    return start + timedelta(days=duration)
