"""The catalog's rules (stigg-api.md §3): what a feature is, which entitlement values it
can take (shared by package entitlements, subscription overrides and promotions), and
reading features, plans and add-ons back from the store."""
from __future__ import annotations

import sqlite3
from typing import Any

from .. import store
from ..http import ApiError, bad_input, check_keys, not_found, opt_bool, opt_enum, opt_number

RESET_PERIODS = ("YEAR", "MONTH", "WEEK", "DAY", "HOUR")
MONTHLY_ANCHORS = ("SubscriptionStart", "StartOfTheMonth")
WEEKLY_ANCHORS = (
    "SubscriptionStart", "EverySunday", "EveryMonday", "EveryTuesday", "EveryWednesday", "EveryThursday",
    "EveryFriday", "EverySaturday",
)
YEARLY_ANCHORS = ("SubscriptionStart",)
PRICING_TYPES = ("FREE", "PAID", "CUSTOM")
NOUN = {"plan": "Plan", "addon": "Addon"}


def is_metered(feature: dict[str, Any]) -> bool:
    return feature.get("meter") is not None or feature.get("meterType") in ("FLUCTUATING", "INCREMENTAL")


def parse_reset(body: dict[str, Any], where: str, feature: dict[str, Any]) -> tuple[str | None, dict | None]:
    """resetPeriod plus its single matching *ResetPeriodConfiguration, normalised to
    the response's ``resetPeriodConfiguration: {accordingTo}``."""
    period = opt_enum(body, "resetPeriod", RESET_PERIODS, where)
    configs = {
        "MONTH": ("monthlyResetPeriodConfiguration", MONTHLY_ANCHORS),
        "WEEK": ("weeklyResetPeriodConfiguration", WEEKLY_ANCHORS),
        "YEAR": ("yearlyResetPeriodConfiguration", YEARLY_ANCHORS),
    }
    config = None
    for unit, (key, anchors) in configs.items():
        value = body.get(key)
        if value is None:
            continue
        if period != unit:
            raise bad_input(f"{where}: {key} only applies with resetPeriod {unit}")
        if not isinstance(value, dict):
            raise bad_input(f"{where}: {key} must be an object with accordingTo")
        check_keys(value, {"accordingTo"}, f"{where}.{key}")
        according = opt_enum(value, "accordingTo", anchors, f"{where}.{key}")
        config = {"accordingTo": according or "SubscriptionStart"}
    if period is not None:
        if feature.get("featureType") != "NUMBER" or not is_metered(feature):
            raise bad_input(f"{where}: resetPeriod only applies to metered features")
        if config is None and period in configs:
            config = {"accordingTo": "SubscriptionStart"}
    return period, config


def parse_values(body: dict[str, Any], where: str, feature: dict[str, Any]) -> dict[str, Any]:
    """The value part of an entitlement: limit, unlimited, soft limit, reset, enum values."""
    limit = opt_number(body, "usageLimit", where, minimum=0)
    unlimited = opt_bool(body, "hasUnlimitedUsage", where)
    soft = opt_bool(body, "hasSoftLimit", where)
    enum_values = body.get("enumValues")
    if enum_values is not None:
        if feature.get("featureType") != "ENUM":
            raise bad_input(f"{where}: enumValues only apply to ENUM features")
        allowed = {e["value"] for e in feature.get("enumConfiguration") or []}
        if not isinstance(enum_values, list) or not all(isinstance(v, str) for v in enum_values):
            raise bad_input(f"{where}: enumValues must be an array of strings")
        unknown = [v for v in enum_values if v not in allowed]
        if unknown:
            raise bad_input(f"{where}: enumValues {unknown} are not values of feature {feature['id']}")
    if (limit is not None or unlimited) and feature.get("featureType") != "NUMBER":
        raise bad_input(f"{where}: usageLimit/hasUnlimitedUsage only apply to NUMBER features")
    period, config = parse_reset(body, where, feature)
    return {
        "usageLimit": limit,
        "hasUnlimitedUsage": unlimited,
        "hasSoftLimit": soft,
        "enumValues": enum_values,
        "resetPeriod": period,
        "resetPeriodConfiguration": config,
    }


def load_feature(c: sqlite3.Connection, feature_id: str) -> dict[str, Any] | None:
    row = c.execute("SELECT doc FROM features WHERE id=?", (feature_id,)).fetchone()
    return store.loads(row["doc"]) if row else None


def require_feature(c: sqlite3.Connection, feature_id: str, *, status: int = 404) -> dict[str, Any]:
    feature = load_feature(c, feature_id)
    if feature is None:
        raise ApiError(status, "FeatureNotFound", f"Feature {feature_id!r} not found")
    return feature


def load_package(c: sqlite3.Connection, kind: str, package_id: str) -> dict[str, Any] | None:
    row = c.execute("SELECT doc FROM packages WHERE id=? AND kind=?", (package_id, kind)).fetchone()
    return store.loads(row["doc"]) if row else None


def require_package(c: sqlite3.Connection, kind: str, package_id: str) -> dict[str, Any]:
    doc = load_package(c, kind, package_id)
    if doc is None:
        raise not_found(f"{NOUN[kind]}NotFound", f"{NOUN[kind]} {package_id!r} not found")
    return doc


def package_entitlements(c: sqlite3.Connection, package_id: str) -> list[dict[str, Any]]:
    rows = c.execute("SELECT doc FROM package_entitlements WHERE package_id=? ORDER BY seq", (package_id,))
    return [store.loads(r["doc"]) for r in rows]


def render_package(c: sqlite3.Connection, doc: dict[str, Any]) -> dict[str, Any]:
    refs = c.execute("SELECT feature_id FROM package_entitlements WHERE package_id=? ORDER BY seq", (doc["id"],))
    return {**doc, "entitlements": [{"id": r["feature_id"], "type": "FEATURE"} for r in refs]}
